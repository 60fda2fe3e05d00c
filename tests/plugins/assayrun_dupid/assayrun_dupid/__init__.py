"""A plugin shipping protocols whose ids clash: one with the built-in hemolysis protocol's id, two with one id."""

from pathlib import Path

import assayrunner

HERE = Path(__file__).parent


@assayrunner.hookimpl
def register_protocols(register):
    for name in ("ncl-ita-1-copy.toml", "twin-a.toml", "twin-b.toml"):
        register(HERE / name)
