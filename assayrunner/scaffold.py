"""`assayrun plugin new NAME`: write a ready assay-plugin package from assayrunner/plugin_template."""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from . import PLUGIN_API, __version__
from .errors import UserError

TEMPLATE = Path(__file__).parent / "plugin_template"
NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

#: template file -> where it goes in the new package ($module etc. substituted).
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "plugin.py.tmpl": "${module}/__init__.py",
    "analysis.py.tmpl": "${module}/analysis.py",
    "protocol.toml.tmpl": "${module}/${protocol_id}.toml",
    "block.html.tmpl": "${module}/templates/${name}.html",
    "plate.csv.tmpl": "examples/plate.csv",
    "test_plugin.py.tmpl": "tests/test_${module}.py",
}


def new_plugin(name: str, folder: Path, title: str | None = None) -> list[Path]:
    """Write the package for assay NAME into folder (which must not exist yet); returns the files written."""
    if not NAME.match(name):
        raise UserError(f"plugin name {name!r}: use lower-case letters, digits and single hyphens, "
                        "starting with a letter (e.g. 'endotoxin' or 'lal-endpoint')")
    if folder.exists():
        raise UserError("already exists; choose another --dir or remove it", file=folder)
    values = {"name": name, "module": "assayrun_" + name.replace("-", "_"), "dist": f"assayrun-{name}",
              "protocol_id": f"{name}-1", "title": title or name.replace("-", " ").capitalize() + " assay",
              "assayrunner_version": __version__, "plugin_api": PLUGIN_API}
    written = []
    for template, target in FILES.items():
        path = folder / Template(target).substitute(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template((TEMPLATE / template).read_text(encoding="utf-8")).substitute(values),
                        encoding="utf-8")
        written.append(path)
    return written
