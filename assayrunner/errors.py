"""The two kinds of failure: what the user can fix (exit 2) and what a plugin broke (exit 3)."""


class UserError(Exception):
    """Bad input or usage: one line naming the file, the place and what to do."""

    exit_code = 2

    def __init__(self, message: str, *, file: object = None, where: str | None = None):
        parts = [str(p) for p in (file, where) if p]
        self.message, self.file, self.where = message, file, where
        super().__init__(": ".join([*parts, message]))


class FormatMismatch(UserError):
    """The file is not laid out the way a reader expects: the next reader that sniffed it may try."""


class PluginError(Exception):
    """A plugin (or our own code) failed: the message names the plugin."""

    exit_code = 3
