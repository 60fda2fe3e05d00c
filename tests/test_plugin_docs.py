"""The plugin guide (docs/plugins.md) documents every hook, every exported name and every protocol key."""

import inspect
import re
import typing

from pydantic import BaseModel

import assayrunner
from assayrunner import hookspecs
from assayrunner.protocol import Protocol
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
