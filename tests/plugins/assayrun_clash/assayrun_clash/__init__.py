"""A plugin that registers a reader under a name the built-in grid reader already has."""

import assayrunner
from assayrunner.readers.grid import read_grid, sniff_grid


@assayrunner.hookimpl
def register_readers(register):
    register(assayrunner.Reader(name="grid", sniff=sniff_grid, read=read_grid))
