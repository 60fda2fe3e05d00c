"""Standard-curve quantitation (ELISA, BCA, PicoGreen ...): concentrations from a standard curve, checked against
the reader software's own calculated values when the export carries them."""

from pathlib import Path

import assayrunner

PLUGIN_API = "1.0"  # the assayrunner plugin API this plugin is written against
HERE = Path(__file__).parent


def analyze(inp):
    """The quantitation analysis, imported at its first run: a command that runs another assay never imports it."""
    from .analysis import analyze

    return analyze(inp)


@assayrunner.hookimpl
def register_assays(register):
    from .parameters import Parameters  # imported when used: `assayrun --help` stays light

    register(assayrunner.Assay(
        name="quant",
        title="Standard-curve quantitation",
        default_protocol="quant-elisa-4pl-1",
        analyze=analyze,
        parameters=Parameters,
        template="quant.html",
    ))


@assayrunner.hookimpl
def register_protocols(register):
    for path in sorted((HERE / "protocols").glob("*.toml")):
        register(path)


@assayrunner.hookimpl
def register_template_dirs():
    return [HERE / "templates"]
