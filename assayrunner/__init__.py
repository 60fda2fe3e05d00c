"""assayrunner: a plugin-based runner for NCL-style nanomedicine safety assays.

Everything a plugin may use is exported here (see docs/plugins.md); nothing else is promised.
Names that need numpy or pydantic models are imported on first use, so `import assayrunner`
stays cheap for the command line.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from .errors import FormatMismatch, PluginError, UserError
from .hookspecs import hookimpl
from .registry import Assay, AssayInput, AssayResult, Reader, Result, Sample
from .source import Source

#: The version of the plugin API (the names in __all__ and the hooks); a plugin states the one it was
#: written against as PLUGIN_API in its module.
PLUGIN_API = "1.0"

try:
    __version__ = version("assayrunner")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

#: Exported name -> the module it lives in, imported when the name is first used.
_LAZY = {"Plate": "plate", "Read": "plate", "Layout": "layout", "Group": "layout", "Protocol": "protocol",
         "Check": "criteria", "Fit": "curves", "fit": "curves"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'assayrunner' has no attribute {name!r}")


__all__ = [
    "PLUGIN_API", "Assay", "AssayInput", "AssayResult", "Check", "Fit", "FormatMismatch", "Group", "Layout",
    "Plate", "PluginError", "Protocol", "Read", "Reader", "Result", "Sample", "Source", "UserError", "__version__",
    "fit", "hookimpl",
]
