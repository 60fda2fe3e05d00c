"""Cytotoxicity (NCL GTA-1 LLC-PK1 kidney, GTA-2 Hep G2 liver; ASTM E2526): MTT viability or LDH release,
dose-response and IC50 per nanoparticle sample."""

from pathlib import Path

import assayrunner

PLUGIN_API = "1.0"  # the assayrunner plugin API this plugin is written against


def analyze(inp):
    """The cytotoxicity analysis, imported at its first run: a command that runs another assay never imports it."""
    from .analysis import analyze

    return analyze(inp)


@assayrunner.hookimpl
def register_assays(register):
    from .parameters import Parameters  # imported when used: `assayrun --help` stays light

    register(assayrunner.Assay(
        name="cytotoxicity",
        title="Cytotoxicity (NCL GTA-1 / GTA-2, MTT and LDH)",
        default_protocol="ncl-gta-1-mtt",
        analyze=analyze,
        parameters=Parameters,
        template="cytotoxicity.html",
    ))


@assayrunner.hookimpl
def register_template_dirs():
    return [Path(__file__).parent / "templates"]
