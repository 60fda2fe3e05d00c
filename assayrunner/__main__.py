"""`python -m assayrunner` is `assayrun`."""

from .cli import main

main()
