"""A plugin implementing a hook that does not exist (a misspelt register_assays)."""

import assayrunner


@assayrunner.hookimpl
def register_asays(register):
    raise AssertionError("never called")
