"""Plugin manager: built-in modules plus the 'assayrunner' entry points; a broken plugin is reported, not fatal.

ASSAYRUN_LOAD_PLUGINS=name,name loads only those distributions' entry points ('' loads none).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from dataclasses import dataclass, field, replace
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

import pluggy

from . import PLUGIN_API, hookspecs
from .errors import PluginError
from .readers import BUILTIN_READERS
from .registry import Assay, Reader


@dataclass
class PluginInfo:
    """One plugin as `assayrun plugins` shows it."""

    name: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    api: str | None = None  # the PLUGIN_API the plugin says it was written against


@dataclass
class Plugins:
    """The loaded plugin manager and everything the plugins registered."""

    manager: pluggy.PluginManager
    info: list[PluginInfo]
    readers: dict[str, Reader]
    assays: dict[str, Assay]
    protocol_files: list[Path]
    template_dirs: list[Path]
    assay_plugins: dict[str, PluginInfo] = field(default_factory=dict)  # assay name -> the plugin registering it

    def assay(self, name: str) -> Assay:
        from .errors import UserError

        if name not in self.assays:
            known = ", ".join(sorted(self.assays)) or "none"
            raise UserError(f"unknown assay {name!r}; installed assays: {known}")
        return self.assays[name]


def _load_entry_points(pm: pluggy.PluginManager, info: list[PluginInfo]) -> None:
    only = os.environ.get("ASSAYRUN_LOAD_PLUGINS")
    allowed = None if only is None else {n.strip() for n in only.split(",") if n.strip()}
    for ep in entry_points(group="assayrunner"):
        dist = ep.dist.name if ep.dist else ep.value
        version = ep.dist.version if ep.dist else "?"
        builtin = dist == "assayrunner"
        if allowed is not None and not builtin and dist not in allowed:
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a third-party plugin must never break the tool
            message = f"{type(exc).__name__}: {exc}"
            print(f"warning: plugin {ep.name!r} ({dist} {version}) failed to load and is disabled: {message}",
                  file=sys.stderr)
            info.append(PluginInfo(ep.name, dist, version, builtin, error=message))
            continue
        api = getattr(plugin, "PLUGIN_API", None)
        if api is not None and str(api).split(".")[0] != PLUGIN_API.split(".")[0]:
            print(f"warning: plugin {ep.name!r} ({dist} {version}) was written for plugin API {api}; this "
                  f"assayrunner has {PLUGIN_API}: check it works, or install a version made for {PLUGIN_API}",
                  file=sys.stderr)
        info.append(PluginInfo(ep.name, dist, version, builtin, _hook_names(pm, plugin),
                               api=None if api is None else str(api)))


def _hook_names(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])


def _collect(pm: pluggy.PluginManager, hook: str, kind: str) -> dict[str, tuple[object, str]]:
    """Call one register_* hook per plugin, so a duplicate name can name both plugins."""
    found: dict[str, tuple[object, str]] = {}
    for impl in reversed(getattr(pm.hook, hook).get_hookimpls()):
        def register(obj, plugin=impl.plugin_name):
            name = getattr(obj, "name", None) or str(obj)
            if name in found:
                raise PluginError(f"{kind} {name!r} is registered twice: by plugin {found[name][1]!r} "
                                  f"and by plugin {plugin!r}; uninstall one of them")
            if isinstance(obj, (Reader, Assay)):
                obj = replace(obj, plugin=plugin)
            found[name] = (obj, plugin)
        try:
            impl.function(register=register)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {impl.plugin_name!r} failed in {hook}: {exc}") from exc
    return found


@cache
def load() -> Plugins:
    """Load the plugins once per process."""
    pm = pluggy.PluginManager("assayrunner")
    pm.add_hookspecs(hookspecs)
    info: list[PluginInfo] = []
    from . import __version__

    for module_name in BUILTIN_READERS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        info.append(PluginInfo(module_name, "assayrunner", __version__, True, _hook_names(pm, module),
                               api=PLUGIN_API))
    _load_entry_points(pm, info)
    pm.check_pending()
    if os.environ.get("ASSAYRUN_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda message: print(message, end="", file=sys.stderr))
        pm.enable_tracing()
    readers = {name: obj for name, (obj, _) in _collect(pm, "register_readers", "reader").items()}
    registered = _collect(pm, "register_assays", "assay")
    assays = {name: obj for name, (obj, _) in registered.items()}
    by_name = {i.name: i for i in info}
    assay_plugins = {name: by_name[plugin] for name, (_, plugin) in registered.items() if plugin in by_name}
    protocol_files: list[Path] = []
    pm.hook.register_protocols(register=lambda path: protocol_files.append(Path(path)))
    template_dirs = [Path(d) for dirs in pm.hook.register_template_dirs() for d in dirs or []]
    return Plugins(pm, info, readers, assays, protocol_files, template_dirs, assay_plugins)


def format_traceback(exc: BaseException) -> str:
    """The last frame of an exception, for an 'internal error' line that still points somewhere."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"
