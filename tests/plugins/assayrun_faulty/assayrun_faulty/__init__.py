"""A plugin that misbehaves on purpose: readers whose sniff or read raise, an assay returning malformed results."""

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

import assayrunner

HERE = Path(__file__).parent


def sniff_raises(source: assayrunner.Source) -> float:
    raise RuntimeError("sniff exploded")


def sniff_marked(source: assayrunner.Source) -> float:
    return 0.99 if b"FAULTY-READ" in source.head else 0.0


def read_raises(source: assayrunner.Source) -> list:
    return [][1]  # IndexError, as a buggy reader would raise


class Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: str


def _result(mode: str, mean: float):
    R, AR = assayrunner.Result, assayrunner.AssayResult
    good_fit = {"name": "line", "model": "linear", "parameters": {"slope": 1.0}, "se": {"slope": 0.1}, "r2": 1.0,
                "n": 2, "converged": True}
    return {
        "good": lambda: AR({"mean": mean}, [R("S1", "od", mean, "OD")], [good_fit]),
        "none": lambda: None,
        "dict": lambda: {"metrics": {}, "results": []},
        "nan": lambda: AR({"mean": mean}, [R("S1", "od", float("nan"), "OD")]),
        "inf": lambda: AR({"mean": mean}, [R("S1", "od", float("inf"), "OD")]),
        "text-value": lambda: AR({"mean": mean}, [R("S1", "od", "0.5", "OD")]),
        "no-unit": lambda: AR({"mean": mean}, [R("S1", "od", mean, None)]),
        "not-a-result": lambda: AR({"mean": mean}, [{"sample": "S1", "metric": "od", "value": mean}]),
        "non-json": lambda: AR({"mean": mean, "when": object()}, [R("S1", "od", mean, "OD")]),
        "broken-fit": lambda: AR({"mean": mean}, [R("S1", "od", mean, "OD")], [{"name": "line", "model": "linear"}]),
        "fit-points": lambda: AR({"mean": mean}, [R("S1", "od", mean, "OD")], [{**good_fit, "x": [1, 2], "y": [1]}]),
        "raise": lambda: 1 / 0,
    }[mode]()


def analyze(inp: assayrunner.AssayInput):
    return _result(inp.parameters.mode, float(np.mean(inp.values(inp.layout.group("sample", "S1")))))


@assayrunner.hookimpl
def register_readers(register):
    register(assayrunner.Reader(name="faulty-sniff", sniff=sniff_raises, read=read_raises, title="sniff raises"))
    register(assayrunner.Reader(name="faulty-read", sniff=sniff_marked, read=read_raises, title="read raises"))


@assayrunner.hookimpl
def register_assays(register):
    register(assayrunner.Assay(name="faulty", title="Malformed results on demand", default_protocol="faulty-1",
                               analyze=analyze, parameters=Parameters))


@assayrunner.hookimpl
def register_protocols(register):
    register(HERE / "faulty-1.toml")
