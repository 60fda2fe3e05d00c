"""A plugin whose register hooks raise: register_template_dirs after its assay and protocol are registered (as a
wheel missing its templates folder would), register_commands too."""

from pathlib import Path

from pydantic import BaseModel

import assayrunner

HERE = Path(__file__).parent


class Parameters(BaseModel):
    read: str


def analyze(inp):
    raise AssertionError("a disabled plugin's assay is never run")


@assayrunner.hookimpl
def register_assays(register):
    register(assayrunner.Assay(name="raising-od", title="Never runs", default_protocol="raising-od-1",
                               analyze=analyze, parameters=Parameters))


@assayrunner.hookimpl
def register_protocols(register):
    register(HERE / "raising-od-1.toml")


@assayrunner.hookimpl
def register_template_dirs():
    raise FileNotFoundError("templates folder missing from the wheel")


@assayrunner.hookimpl
def register_commands(app):
    raise RuntimeError("no commands today")
