"""Plasma coagulation (NCL ITA-12): PT, APTT, TT and reptilase times from a coagulometer or kinetic plate reads."""

from pathlib import Path

import assayrunner

PLUGIN_API = "1.0"  # the assayrunner plugin API this plugin is written against


def analyze(inp):
    """The coagulation analysis, imported at its first run: a command that runs another assay never imports it."""
    from .analysis import analyze

    return analyze(inp)


@assayrunner.hookimpl
def register_assays(register):
    from .model import Parameters

    register(assayrunner.Assay(
        name="coagulation",
        title="Plasma coagulation (NCL ITA-12)",
        default_protocol="ncl-ita-12",
        analyze=analyze,
        parameters=Parameters,
        template="coagulation.html",
    ))


@assayrunner.hookimpl
def register_readers(register):
    from .coagulometer import READER

    register(READER)


@assayrunner.hookimpl
def register_template_dirs():
    return [Path(__file__).parent / "templates"]
