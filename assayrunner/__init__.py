"""assayrunner: a plugin-based runner for NCL-style nanomedicine safety assays.

Everything a plugin may use is exported here (see docs/plugins.md); nothing else is promised.
Every name is imported on first use (the version too), so `assayrun --version` and `--help` start
as quickly as typer itself.
"""

from importlib import import_module

#: The version of the plugin API (the names in __all__ and the hooks); a plugin states the one it was
#: written against as PLUGIN_API in its module.
PLUGIN_API = "1.0"

#: Exported name -> the module it lives in, imported when the name is first used.
_LAZY = {
    "Assay": "registry", "AssayInput": "registry", "AssayResult": "registry", "Reader": "registry",
    "Result": "registry", "Sample": "registry", "Source": "source", "FormatMismatch": "errors",
    "PluginError": "errors", "UserError": "errors", "hookimpl": "hookspecs", "Plate": "plate", "Read": "plate",
    "Layout": "layout", "Group": "layout", "Protocol": "protocol", "Check": "criteria", "Fit": "curves",
    "fit": "curves", "DoseSeries": "doseseries", "series_for": "doseseries",
}

#: Exported modules (a namespace of functions), imported when first used.
_MODULES = ("doseresponse",)


def __getattr__(name: str):
    if name in _MODULES:
        value = import_module(f".{name}", __name__)
    elif name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    elif name == "__version__":
        value = _version()
    else:
        raise AttributeError(f"module 'assayrunner' has no attribute {name!r}")
    globals()[name] = value
    return value


def _version() -> str:
    try:
        from ._version import __version__  # written by the build (hatch's version hook)

        return __version__
    except ImportError:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("assayrunner")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0.0.0"


__all__ = [
    "PLUGIN_API", "Assay", "AssayInput", "AssayResult", "Check", "DoseSeries", "Fit", "FormatMismatch", "Group", "Layout",
    "Plate", "PluginError", "Protocol", "Read", "Reader", "Result", "Sample", "Source", "UserError", "__version__",
    "doseresponse", "fit", "hookimpl", "series_for",
]
