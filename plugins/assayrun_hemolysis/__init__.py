"""Hemolysis (NCL ITA-1): % hemolysis of nanoparticles from a cyanmethemoglobin plate read at 540 nm."""

from pathlib import Path

import assayrunner

PLUGIN_API = "1.0"  # the assayrunner plugin API this plugin is written against


@assayrunner.hookimpl
def register_assays(register):
    from .analysis import Parameters, analyze  # imported when used: `assayrun --help` stays light

    register(assayrunner.Assay(
        name="hemolysis",
        title="Hemolysis (NCL ITA-1)",
        default_protocol="ncl-ita-1",
        analyze=analyze,
        parameters=Parameters,
        template="hemolysis.html",
    ))
    from .percent_pc import Parameters as PercentParameters, analyze as percent_of_positive

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
