"""A plugin whose register hooks raise: register_template_dirs after its protocol is registered (as a wheel
missing its templates folder would), register_commands too."""

from pathlib import Path

import assayrunner

HERE = Path(__file__).parent


@assayrunner.hookimpl
def register_protocols(register):
    register(HERE / "raising-od-1.toml")


@assayrunner.hookimpl
def register_template_dirs():
    raise FileNotFoundError("templates folder missing from the wheel")


@assayrunner.hookimpl
def register_commands(app):
    raise RuntimeError("no commands today")
