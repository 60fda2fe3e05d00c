"""`python -m assayrunner` is `assayrun`."""

from .cli import run

run()
