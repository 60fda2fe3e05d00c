"""A plugin that fails on import, as a plugin with a missing dependency does."""

import a_module_that_is_not_installed  # noqa: F401
