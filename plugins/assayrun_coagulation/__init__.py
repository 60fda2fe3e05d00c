"""Plasma coagulation (NCL ITA-12): PT, APTT, TT and reptilase times from a coagulometer or kinetic plate reads."""

from pathlib import Path

import assayrunner

PLUGIN_API = "1.0"  # the assayrunner plugin API this plugin is written against


@assayrunner.hookimpl
def register_assays(register):
    from .analysis import analyze
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
