"""The two kinds of failure: what the user can fix (exit 2) and what a plugin broke (exit 3)."""


class UserError(Exception):
    """Bad input or usage: one line naming the file, the place and what to do."""

    exit_code = 2

    def __init__(self, message: str, *, file: object = None, where: str | None = None):
        parts = [str(p) for p in (file, where) if p]
        self.message = message
        super().__init__(": ".join([*parts, message]))


class PluginError(Exception):
    """A plugin (or our own code) failed: the message names the plugin."""

    exit_code = 3
