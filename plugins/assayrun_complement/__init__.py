"""Complement activation (NCL ITA-5.2): SC5b-9 by single-plex EIA at 450 nm, fold change vs the negative control."""

from pathlib import Path

import assayrunner

PLUGIN_API = "1.0"  # the assayrunner plugin API this plugin is written against


def analyze(inp):
    """The complement analysis, imported at its first run: a command that runs another assay never imports it."""
    from .analysis import analyze

    return analyze(inp)


@assayrunner.hookimpl
def register_assays(register):
    from .parameters import Parameters  # imported when used: `assayrun --help` stays light

    register(assayrunner.Assay(
        name="complement",
        title="Complement activation, SC5b-9 EIA (NCL ITA-5.2)",
        default_protocol="ncl-ita-5.2-sc5b9",
        analyze=analyze,
        parameters=Parameters,
        template="complement.html",
    ))


@assayrunner.hookimpl
def register_template_dirs():
    return [Path(__file__).parent / "templates"]
