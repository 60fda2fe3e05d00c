"""Every hook a plugin can implement, in one place. Each is called on one plugin at a time: a register hook
that raises disables its plugin alone (docs/plugins.md, "When a plugin is at fault")."""

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
