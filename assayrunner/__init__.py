"""assayrunner: a plugin-based runner for NCL-style nanomedicine safety assays."""

from importlib.metadata import PackageNotFoundError, version

from .errors import PluginError, UserError
from .hookspecs import hookimpl
from .registry import Assay, AssayInput, AssayResult, Reader, Result, Sample

try:
    __version__ = version("assayrunner")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "Assay", "AssayInput", "AssayResult", "PluginError", "Reader", "Result", "Sample",
    "UserError", "__version__", "hookimpl",
]
