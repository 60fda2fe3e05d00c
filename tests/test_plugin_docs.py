"""The plugin guide (docs/plugins.md) documents every hook, every exported name and every protocol key."""

import inspect
import re
import typing

import pytest
from pydantic import BaseModel

import assayrunner
from assayrunner import UserError, hookspecs
from assayrunner.plugins import load
from assayrunner.protocol import Protocol, load_file
from assayrunner.reading import read_input
from conftest import REPO

GUIDE = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
CODE_SPANS = set(re.findall(r"`([^`\n]+)`", GUIDE))
HEADINGS = set(re.findall(r"^#+ .*?`([^`]+)`", GUIDE, re.MULTILINE))
INTERNAL_KEYS = {"path", "sha256", "text"}  # set by the loader, not written in a file


def documented(name: str) -> bool:
    """A name in backticks, alone or at the start of a signature or assignment (`fit(x, y ...)`,
    `assayrunner.fit(...)`, `@assayrunner.hookimpl`, `PLUGIN_API = ...`)."""
    spans = (span.lstrip("@").removeprefix("assayrunner.") for span in CODE_SPANS)
    return any(span == name or span.startswith((name + "(", name + " ")) for span in spans)


def protocol_keys(model: type[BaseModel] = Protocol, seen=None) -> set[str]:
    """Every field name of the protocol model and the models nested in it."""
    seen = set() if seen is None else seen
    keys = set()
    for name, info in model.model_fields.items():
        keys.add(name)
        for inner in _models(info.annotation):
            if inner not in seen:
                seen.add(inner)
                keys |= protocol_keys(inner, seen)
    return keys - INTERNAL_KEYS


def _models(annotation) -> list[type[BaseModel]]:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def test_every_hook_has_a_section():
    hooks = [name for name, f in vars(hookspecs).items() if callable(f) and hasattr(f, "assayrunner_spec")]
    assert len(hooks) >= 5
    missing = [h for h in hooks if not any(heading.startswith(h + "(") for heading in HEADINGS)]
    assert not missing, f"hooks without a section in docs/plugins.md: {missing}"


def test_every_exported_name_is_documented():
    missing = [name for name in assayrunner.__all__ if name != "__version__" and not documented(name)]
    assert not missing, f"exported but not in docs/plugins.md: {missing}"


def test_every_protocol_key_is_documented():
    keys = protocol_keys()
    assert {"id", "layout", "wells", "nominal", "interference", "require", "at_least", "classes", "below"} <= keys
    missing = sorted(k for k in keys if not documented(k))
    assert not missing, f"protocol keys not in docs/plugins.md: {missing}"


def test_exported_names_resolve():
    for name in assayrunner.__all__:
        assert getattr(assayrunner, name) is not None


def example(tag: str) -> str:
    """The guide's code block that starts with the comment `# tag`."""
    found = re.search(rf"```python\n# {tag}\n(.*?)```", GUIDE, re.S)
    assert found, f"no '# {tag}' example in docs/plugins.md"
    return found.group(1)


def test_every_python_example_compiles():
    blocks = re.findall(r"```python\n(.*?)```", GUIDE, re.S)
    assert len(blocks) >= 5
    for block in blocks:
        compile(block, "docs/plugins.md", "exec")


def test_protocol_example_loads(tmp_path):
    """The protocol file of section 4, through the loader `assayrun protocols` uses."""
    text = next(b for b in re.findall(r"```toml\n(.*?)```", GUIDE, re.S) if b.startswith("id = "))
    (tmp_path / "lal-endpoint-1.toml").write_text(text, encoding="utf-8")
    protocol = load_file(tmp_path / "lal-endpoint-1.toml")
    assert (protocol.id, protocol.assay, [g.role for g in protocol.layout.wells]) == \
        ("lal-endpoint-1", "endotoxin", ["blank", "calibrator", "sample", "sample"])
    assert [c.id for c in protocol.acceptance] == ["linearity", "standards"]


def acme_reader() -> assayrunner.Reader:
    """The reader example of section 2, registered through its own hook implementation."""
    namespace: dict = {}
    exec(compile(example("reader example"), "docs/plugins.md", "exec"), namespace)
    registered = []
    namespace["register_readers"](registered.append)
    return registered[0]


def test_reader_example_reads_its_format(tmp_path):
    export = tmp_path / "acme.txt"
    export.write_text("ACME Reader 3 Export\nWavelength(nm): 450\nWell;OD\nA01;0,051\nA02;0,049\nB02;OVER\n",
                      encoding="utf-8")
    reader = acme_reader()
    readers = {**load().readers, reader.name: reader}
    read = read_input(export, readers)
    assert read.format == "acme"
    od = read.plates[0].reads[0]
    assert (od.wavelength_nm, od.values[0, 0], od.values[0, 1]) == (450, 0.051, 0.049)  # decimal commas
    assert od.flags["B2"] == "saturated" and od.flags["H12"] == "missing"
    assert read_input(export, readers, "acme").plates[0].metadata["instrument"] == "ACME Reader 3"


def test_reader_example_refuses_bad_lines(tmp_path):
    reader = acme_reader()
    readers = {**load().readers, reader.name: reader}
    bad_well = tmp_path / "bad.txt"
    for line, well in (("A13;0,06", "A13"), ("Q1;0,06", "Q1"), ("well 7;0,06", "well 7")):
        bad_well.write_text(f"ACME Reader 3 Export\nWell;OD\nA01;0,05\n{line}\n", encoding="utf-8")
        with pytest.raises(UserError) as caught:
            read_input(bad_well, readers)
        assert caught.value.where == "line 4" and well in str(caught.value)
    headless = tmp_path / "headless.txt"  # no Well;OD line: not this layout, and no other reader takes it
    headless.write_text("ACME Reader 3 Export\nWavelength(nm): 450\n", encoding="utf-8")
    with pytest.raises(UserError):
        read_input(headless, readers, "acme")
