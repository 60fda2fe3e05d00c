"""A third-party plugin using every hook: a reader, an assay with its protocol and template, a command."""

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

import assayrunner

HERE = Path(__file__).parent
PLUGIN_API = "1.0"


def sniff(source: assayrunner.Source) -> float:
    return 0.95 if source.head.startswith(b"DEMO-READER") else 0.0


def read(source: assayrunner.Source) -> list:
    """'DEMO-READER' then lines 'A1 0.123'."""
    from assayrunner.plate import Plate, Read, parse_well

    values = np.full((8, 12), np.nan)
    for line in source.lines[1:]:
        well, value = line.split()
        values[parse_well(well)] = float(value)
    return [Plate("demo", 8, 12, [Read("OD 450", values, wavelength_nm=450.0)], {"instrument": "demo"})]


class Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    read: str


def analyze(inp: assayrunner.AssayInput) -> assayrunner.AssayResult:
    blank = float(np.mean(inp.values(inp.layout.group("blank"))))
    results = [assayrunner.Result(inp.sample_name(g.name), "od_corrected", float(np.mean(inp.values(g))) - blank, "OD")
               for g in inp.layout.groups("sample")]
    return assayrunner.AssayResult({"blank": {"od": blank}}, results, details={"blank": blank})


@assayrunner.hookimpl
def register_readers(register):
    register(assayrunner.Reader(name="demo", sniff=sniff, read=read, title="Demo reader"))


@assayrunner.hookimpl
def register_assays(register):
    register(assayrunner.Assay(name="demo-od", title="Demo blank-corrected OD", default_protocol="demo-od-1",
                               analyze=analyze, parameters=Parameters, template="demo.html"))


@assayrunner.hookimpl
def register_protocols(register):
    register(HERE / "demo-od-1.toml")


@assayrunner.hookimpl
def register_template_dirs():
    return [HERE / "templates"]


@assayrunner.hookimpl
def register_commands(app):
    @app.command()
    def demo_hello():
        """Say hello from the demo plugin."""
        print("hello from assayrun-demo")
