"""A plugin that ships an invalid protocol file (a misspelt key): the plugin, its assay with it, is disabled."""

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
    register(assayrunner.Assay(name="badprotocol-od", title="Blank-corrected OD", default_protocol="badprotocol-od-1",
                               analyze=analyze, parameters=Parameters))


@assayrunner.hookimpl
def register_protocols(register):
    register(HERE / "badprotocol-od-1.toml")
