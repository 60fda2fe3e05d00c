"""A plugin written against an older plugin API: it loads, and assayrunner warns."""

import assayrunner

PLUGIN_API = "0.3"


@assayrunner.hookimpl
def register_commands(app):
    @app.command("oldapi-hello")
    def hello():
        print("hello from an old plugin")
