"""Bacterial endotoxin by end-point chromogenic LAL (NCL STE-1 style), an assayrunner plugin.

The hooks only; the analysis (numpy, pydantic) is imported when the assay is registered, so commands
that do not run an assay (`assayrun --help`, `--version`) stay fast with the plugin installed.
"""

from pathlib import Path

import assayrunner

PLUGIN_API = "1.0"
HERE = Path(__file__).parent


@assayrunner.hookimpl
def register_assays(register):
    from .analysis import Parameters, analyze

    register(assayrunner.Assay(name="lal", title="Bacterial endotoxin, end-point chromogenic LAL",
                               default_protocol="lal-endpoint-chromogenic", analyze=analyze,
                               parameters=Parameters, template="lal.html"))


@assayrunner.hookimpl
def register_protocols(register):
    register(HERE / "lal-endpoint-chromogenic.toml")


@assayrunner.hookimpl
def register_template_dirs():
    return [HERE / "templates"]
