"""Hemolysis (NCL ITA-1): % hemolysis of nanoparticles from a cyanmethemoglobin plate read at 540 nm."""

from pathlib import Path

import assayrunner

PLUGIN_API = "1.0"  # the assayrunner plugin API this plugin is written against


def analyze(inp):
    """The hemolysis analysis, imported at its first run: a command that runs another assay never imports it."""
    from .analysis import analyze

    return analyze(inp)


def percent_of_positive(inp):
    """The hemolysis-pc analysis, imported at its first run."""
    from .percent_pc import analyze

    return analyze(inp)


@assayrunner.hookimpl
def register_assays(register):
    from .parameters import Parameters, PercentParameters  # imported when used: `assayrun --help` stays light

    register(assayrunner.Assay(
        name="hemolysis",
        title="Hemolysis (NCL ITA-1)",
        default_protocol="ncl-ita-1",
        analyze=analyze,
        parameters=Parameters,
        template="hemolysis.html",
    ))
    register(assayrunner.Assay(
        name="hemolysis-pc",
        title="Hemolysis as % of the positive control, dose series and HC50",
        default_protocol="hemolysis-percent-pc",
        analyze=percent_of_positive,
        parameters=PercentParameters,
        template="hemolysis-pc.html",
    ))


@assayrunner.hookimpl
def register_template_dirs():
    return [Path(__file__).parent / "templates"]
