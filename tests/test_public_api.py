"""Built-in plugins and the LAL example import only the declared plugin API: `assayrunner` itself (and
`assayrunner.testing` in tests), and only names it exports."""

import ast
from pathlib import Path

import pytest

import assayrunner
from conftest import REPO

MODULES = sorted([*(REPO / "plugins").rglob("*.py"), *(REPO / "examples" / "plugins").rglob("*.py")])


def private_uses(path: Path) -> list[str]:
    """What a module uses of assayrunner beyond the public API, as 'line: text'."""
    allowed = {"assayrunner"} | ({"assayrunner.testing"} if "tests" in path.parts else set())
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "assayrunner":
            if node.module not in allowed:
                found.append(f"{node.lineno}: from {node.module} import ...")
            elif node.module == "assayrunner":
                found += [f"{node.lineno}: {a.name} is not exported" for a in node.names
                          if a.name not in assayrunner.__all__]
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] == "assayrunner" and a.name not in allowed]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "assayrunner":
            if node.attr not in assayrunner.__all__:
                found.append(f"{node.lineno}: assayrunner.{node.attr} is not exported")
    return found


def test_the_modules_are_found():
    names = {p.relative_to(REPO).as_posix() for p in MODULES}
    assert {"plugins/assayrun_hemolysis/analysis.py", "plugins/assayrun_coagulation/kinetic.py",
            "examples/plugins/assayrun-lal/assayrun_lal/analysis.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_plugin_imports_only_the_public_api(path):
    assert not private_uses(path), f"{path.relative_to(REPO)} uses internals: {private_uses(path)}"


def test_the_check_catches_internal_imports(tmp_path):
    module = tmp_path / "plugin.py"
    module.write_text("import assayrunner\nfrom assayrunner.curves import fit\nfrom assayrunner import Plate, _LAZY\n"
                      "import assayrunner.stats\nx = assayrunner.engine\ny = assayrunner.Result\n")
    assert private_uses(module) == ["2: from assayrunner.curves import ...", "3: _LAZY is not exported",
                                    "4: import assayrunner.stats", "5: assayrunner.engine is not exported"]
