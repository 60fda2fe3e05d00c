"""Built-in export readers. Each module is a plugin registered like a third-party one."""

#: Modules registered as built-in plugins (see assayrunner.plugins).
BUILTIN_READERS = (
    "assayrunner.readers.grid",
    "assayrunner.readers.long_table",
    "assayrunner.readers.tecan",
    "assayrunner.readers.bmg",
    "assayrunner.readers.perkinelmer",
    "assayrunner.readers.skanit",
    "assayrunner.readers.allotropy_fallback",
    "assayrunner.readers.gen5",
    "assayrunner.readers.softmax",
)
