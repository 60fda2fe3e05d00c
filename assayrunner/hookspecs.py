"""Every hook a plugin can implement, in one place."""

import pluggy

hookspec = pluggy.HookspecMarker("assayrunner")
hookimpl = pluggy.HookimplMarker("assayrunner")


@hookspec
def register_assays(register):
    """Register assays: call register(assayrunner.Assay(...)) for each."""


@hookspec
def register_readers(register):
    """Register export readers: call register(assayrunner.Reader(...)) for each."""


@hookspec
def register_protocols(register):
    """Register protocol files the plugin ships: call register(path) for each TOML file."""


@hookspec
def register_template_dirs():
    """Return a list of template folders the plugin ships (searched after the user's, before the built-in)."""


@hookspec
def register_commands(app):
    """Add commands to the typer app."""
