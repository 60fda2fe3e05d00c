"""assayrunner: a plugin-based runner for NCL-style nanomedicine safety assays."""

from importlib.metadata import PackageNotFoundError, version

from .errors import FormatMismatch, PluginError, UserError
from .hookspecs import hookimpl
from .registry import Assay, AssayInput, AssayResult, Reader, Result, Sample
from .source import Source

try:
    __version__ = version("assayrunner")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "Assay", "AssayInput", "AssayResult", "FormatMismatch", "PluginError", "Reader", "Result", "Sample", "Source",
    "UserError", "__version__", "hookimpl",
]
