"""assayrunner: a plugin-based runner for NCL-style nanomedicine safety assays."""

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

__all__ = [
    "PLUGIN_API", "Assay", "AssayInput", "AssayResult", "FormatMismatch", "PluginError", "Reader", "Result", "Sample", "Source",
    "UserError", "__version__", "hookimpl",
]
