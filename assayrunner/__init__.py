"""assayrunner: a plugin-based runner for NCL-style nanomedicine safety assays.

Everything a plugin may use is exported here (see docs/plugins.md); nothing else is promised.
Every name is imported on first use (the version too), so `assayrun --version` and `--help` start
as quickly as typer itself.
"""

from importlib import import_module

#: The version of the plugin API (the names in __all__ and the hooks); a plugin states the one it was
#: written against as PLUGIN_API in its module.
PLUGIN_API = "1.0"

#: Exported name -> the module it lives in ("module:name" when named otherwise there), imported on first use.
_LAZY = {
    "Assay": "registry", "AssayInput": "registry", "AssayResult": "registry", "Reader": "registry",
    "Result": "registry", "Sample": "registry", "Source": "source", "FormatMismatch": "errors",
    "PluginError": "errors", "UserError": "errors", "hookimpl": "hookspecs", "Plate": "plate", "Read": "plate",
    "Layout": "layout", "Group": "layout", "Protocol": "protocol", "Check": "criteria", "Fit": "curves",
    "fit": "curves", "DoseSeries": "doseseries", "series_for": "doseseries",
    "NOT_COMPUTABLE": "registry", "flag_not_computable": "registry",
    # statistics and plots every assay uses
    "mean": "stats", "sd": "stats", "cv_percent": "stats", "dunnett": "stats", "P_FLOOR": "stats",
    "line_through": "plots",
    # the assay toolkit (assayrunner/toolkit/)
    **dict.fromkeys(("ABOVE_ULOQ", "BELOW_LLOQ", "CENSORED", "INTERFERENCE", "MIXED_CENSORED", "NEGATIVE_NET",
                     "NOT_REACHED", "REASSAY", "REPLICATE_CV", "SATURATED", "well_flags"), "toolkit.flags"),
    **dict.fromkeys(("required_group", "required_groups", "required_controls", "matched_groups", "check_reads",
                     "reference_corrected"),
                    "toolkit.groups"),
    **dict.fromkeys(("Replicates", "BackCalculated", "CensoredReplicates", "percent_difference", "recovery_percent"),
                    "toolkit.levels"),
    **dict.fromkeys(("StandardCurve", "blank_mean", "standard_points", "fit_standards", "range_flag", "censored"),
                    "toolkit.standards"),
    "FitRecord": "toolkit.records", "Quantified": "toolkit.quantified",
    "dilution_step": "doseseries",
    # plates, wells, cells, kinetic curves and acceptance criteria, for readers and kinetic assays
    "parse_cell": "cells:parse", "well_name": "plate", "parse_well": "plate", "expand_wells": "layout",
    "CurveSummary": "kinetics", "summarize_curve": "kinetics", "plateau_from_start": "kinetics",
    "kinetic_plot": "plots", "evaluate": "criteria", "MissingMetric": "criteria",
    # what reader software adds to an export (assayrunner/vendor.py)
    "ExportLayout": "vendor", "VendorResults": "vendor", "printed_half_unit": "vendor", "half_unit": "vendor", "weight_vector": "curves",
}

#: Exported modules (a namespace of functions), imported when first used.
_MODULES = ("doseresponse",)


def __getattr__(name: str):
    if name in _MODULES:
        value = import_module(f".{name}", __name__)
    elif name in _LAZY:
        module, _, attribute = _LAZY[name].partition(":")  # "module:attribute" when exported under another name
        value = getattr(import_module(f".{module}", __name__), attribute or name)
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


__all__ = ["PLUGIN_API", "__version__", *_MODULES, *sorted(_LAZY)]
