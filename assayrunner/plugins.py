"""Plugin manager: built-in modules plus the 'assayrunner' entry points; a broken plugin is reported, not fatal.

ASSAYRUN_LOAD_PLUGINS=name,name loads only those distributions' entry points ('' loads none).
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
import traceback
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

from . import PLUGIN_API, hookspecs
from .errors import PluginError, UserError
from .readers import BUILTIN_READERS
from .registry import Assay, Reader

if TYPE_CHECKING:
    from .protocol import Protocol


@dataclass
class PluginInfo:
    """One plugin as `assayrun plugins` shows it. error: why it is broken (disabled), None when it works."""

    name: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    api: str | None = None  # the PLUGIN_API the plugin says it was written against
    assays: list[str] = field(default_factory=list)  # what it registers (a broken one: what it got to register)
    readers: list[str] = field(default_factory=list)
    protocols: list[str] = field(default_factory=list)  # protocol files, as paths
    problems: list[str] = field(default_factory=list)  # not disabling it: e.g. a protocol id another file has too


@dataclass
class Plugins:
    """The loaded plugin manager and everything the working plugins registered."""

    manager: pluggy.PluginManager
    info: list[PluginInfo]
    readers: dict[str, Reader]
    assays: dict[str, Assay]
    protocol_files: list[Path]
    template_dirs: list[Path]
    assay_plugins: dict[str, PluginInfo] = field(default_factory=dict)  # assay name -> the plugin registering it
    protocol_plugins: dict[Path, str] = field(default_factory=dict)  # plugin protocol file -> the plugin's name

    @property
    def broken(self) -> list[PluginInfo]:
        return [i for i in self.info if i.error]

    def assay(self, name: str) -> Assay:
        """The assay of this name; PluginError when its plugin is broken, UserError when no plugin has it."""
        if name in self.assays:
            return self.assays[name]
        for info in self.broken:
            if name in info.assays:
                raise PluginError(f"assay {name!r} comes from {_broken(info)}")
        known = ", ".join(sorted(self.assays)) or "none"
        broken = ", ".join(i.name for i in self.broken)
        hint = f"; broken plugins, which may have it: {broken} (see `assayrun plugins`)" if broken else ""
        raise UserError(f"unknown assay {name!r}; installed assays: {known}{hint}")

    def protocol(self, ref: str | Path) -> Protocol:
        """A protocol by path or id (see protocol.find); PluginError when only a broken plugin ships that id."""
        from .protocol import find, protocol_index, shipped_files

        if str(ref) not in protocol_index(shipped_files(self.protocol_files)):
            for info in self.broken:
                if str(ref) in protocol_index([Path(f) for f in info.protocols]):
                    raise PluginError(f"protocol {str(ref)!r} comes from {_broken(info)}")
        return find(ref, self.protocol_files, self.protocol_plugins)

    def problems(self, commands: dict[str, str] | None = None) -> list[str]:
        """What disables no plugin but needs fixing: a protocol id two files declare (commands using that id
        fail), a register_commands that raised (commands: plugin name -> reason, from add_commands). Sets
        each plugin's problems and returns one line per problem."""
        from .protocol import describe, duplicate_ids, shipped_files

        commands = commands or {}
        lines = [f"plugin {name!r} adds no command: {reason}" for name, reason in commands.items()]
        for i in self.info:
            i.problems = [line for line in lines if line.startswith(f"plugin {i.name!r} ")]
        for pid, files in duplicate_ids(shipped_files(self.protocol_files)).items():
            line = (f"protocol id {pid!r} is declared by " + " and by ".join(describe(f, self.protocol_plugins)
                                                                              for f in files)
                    + "; commands using this id fail until one of them is uninstalled")
            lines.append(line)
            owners = {self.protocol_plugins.get(f) for f in files}
            for i in self.info:
                if i.name in owners:
                    i.problems.append(line)
        return lines


def _broken(info: PluginInfo) -> str:
    return (f"plugin {info.name!r} ({info.distribution} {info.version}), which is broken: {info.error}; "
            f"fix or uninstall it (pip uninstall {info.distribution})")


@cache
def _entry_points() -> tuple[tuple[str, str, str, bool, object | None, str | None], ...]:
    """(name, distribution, version, builtin, plugin or None, error) per allowed entry point, imported once
    per process (a broken one is warned about once)."""
    from importlib.metadata import entry_points  # not on the path of `--help`

    only = os.environ.get("ASSAYRUN_LOAD_PLUGINS")
    allowed = None if only is None else {n.strip() for n in only.split(",") if n.strip()}
    found, parsed = [], {}
    for ep in entry_points(group="assayrunner"):
        if ep.dist is None:
            dist, version = ep.value, "?"
        else:
            if ep.dist not in parsed:  # .name and .version would each parse the distribution's METADATA again
                metadata = ep.dist.metadata
                parsed[ep.dist] = metadata["Name"], metadata["Version"]
            dist, version = parsed[ep.dist]
        builtin = dist == "assayrunner"
        if allowed is not None and not builtin and dist not in allowed:
            continue
        try:
            found.append((ep.name, dist, version, builtin, ep.load(), None))
        except Exception as exc:  # a third-party plugin must never break the tool
            message = f"{type(exc).__name__}: {exc}"
            print(f"warning: plugin {ep.name!r} ({dist} {version}) failed to load and is disabled: {message}",
                  file=sys.stderr)
            found.append((ep.name, dist, version, builtin, None, message))
    return tuple(found)


def _load_entry_points(pm: pluggy.PluginManager, info: list[PluginInfo]) -> None:
    for name, dist, version, builtin, plugin, error in _entry_points():
        if plugin is None:
            info.append(PluginInfo(name, dist, version, builtin, error=error))
            continue
        try:
            pm.register(plugin, name=name)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            print(f"warning: plugin {name!r} ({dist} {version}) failed to load and is disabled: {message}",
                  file=sys.stderr)
            info.append(PluginInfo(name, dist, version, builtin, error=message))
            continue
        api = getattr(plugin, "PLUGIN_API", None)
        if api is not None and str(api).split(".")[0] != PLUGIN_API.split(".")[0]:
            print(f"warning: plugin {name!r} ({dist} {version}) was written for plugin API {api}; this "
                  f"assayrunner has {PLUGIN_API}: check it works, or install a version made for {PLUGIN_API}",
                  file=sys.stderr)
        info.append(PluginInfo(name, dist, version, builtin, _hook_names(pm, plugin),
                               api=None if api is None else str(api)))


def add_commands(app) -> dict[str, str]:
    """Let the installed plugins add CLI commands, each through its own hook call: a plugin whose
    register_commands raises adds none (warned, and returned as plugin name -> reason). Only entry-point
    plugins are imported: the built-in readers add none, and skipping them keeps `assayrun --help` quick."""
    pm = pluggy.PluginManager("assayrunner")
    pm.add_hookspecs(hookspecs)
    _trace(pm)
    for name, _, _, _, plugin, _ in _entry_points():
        if plugin is not None and pm.get_plugin(name) is None:
            try:
                pm.register(plugin, name=name)
            except Exception:  # `assayrun plugins` names it; it adds no command
                continue
    failed = {}
    for name, plugin in pm.list_name_plugin():
        if "register_commands" not in _hook_names(pm, plugin):
            continue
        commands, groups = list(app.registered_commands), list(app.registered_groups)
        try:
            _own_caller(pm, "register_commands", plugin)(app=app)
        except Exception as exc:
            app.registered_commands[:], app.registered_groups[:] = commands, groups
            failed[name] = f"register_commands failed: {format_traceback(exc)}"
            print(f"warning: plugin {name!r} adds no command: {failed[name]}", file=sys.stderr)
    return failed


def _hook_names(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])


def _own_caller(pm: pluggy.PluginManager, hook: str, plugin: object):
    """The hook called on this one plugin, through pluggy (so ASSAYRUN_TRACE_PLUGINS shows the call)."""
    return pm.subset_hook_caller(hook, [p for p in pm.get_plugins() if p is not plugin])


def _trace(pm: pluggy.PluginManager) -> None:
    """ASSAYRUN_TRACE_PLUGINS=1: every hook call on stderr, with the plugins called and how it ended."""
    if not os.environ.get("ASSAYRUN_TRACE_PLUGINS"):
        return

    def before(hook, impls, kwargs):
        print(f"trace: {hook}({', '.join(kwargs)}) -> {', '.join(i.plugin_name for i in impls) or 'no plugin'}",
              file=sys.stderr)

    def after(outcome, hook, impls, kwargs):
        failed = outcome.exception
        print(f"trace: {hook} " + (f"raised {type(failed).__name__}: {failed}" if failed else "returned"),
              file=sys.stderr)

    pm.add_hookcall_monitoring(before, after)


@dataclass
class _Registered:
    """What one plugin's register hooks gave."""

    readers: dict[str, Reader] = field(default_factory=dict)
    assays: dict[str, Assay] = field(default_factory=dict)
    protocols: list[Path] = field(default_factory=list)
    template_dirs: list[Path] = field(default_factory=list)


def _register_objects(kind: type, into: dict, plugin: str):
    def register(obj):
        if not isinstance(obj, kind):
            raise TypeError(f"register() was given a {type(obj).__name__}, not an assayrunner.{kind.__name__}")
        if obj.name in into:
            raise ValueError(f"{kind.__name__.lower()} {obj.name!r} is registered twice")
        into[obj.name] = replace(obj, plugin=plugin)
    return register


def _registered(pm: pluggy.PluginManager, plugin: object, info: PluginInfo) -> _Registered:
    """Call the plugin's register hooks one by one and check its protocol files; a failure sets info.error
    (the plugin is then broken, and info keeps what it got to register, for the messages that name it)."""
    from .protocol import load_file

    got = _Registered()
    steps = (("register_readers", lambda call: call(register=_register_objects(Reader, got.readers, info.name))),
             ("register_assays", lambda call: call(register=_register_objects(Assay, got.assays, info.name))),
             ("register_protocols", lambda call: call(register=lambda path: got.protocols.append(Path(path)))),
             ("register_template_dirs",
              lambda call: got.template_dirs.extend(Path(d) for dirs in call() for d in dirs or [])))
    for hook, call in steps:
        if hook not in info.hooks:
            continue
        try:
            call(_own_caller(pm, hook, plugin))
        except Exception as exc:
            info.error = f"{hook} failed: {format_traceback(exc)}"
            break
    info.readers, info.assays, info.protocols = list(got.readers), list(got.assays), [str(p) for p in got.protocols]
    for path in got.protocols if not info.error else ():
        try:
            load_file(path)
        except UserError as exc:
            info.error = f"invalid protocol file {exc}"
            break
    return got


def _clashes(info: list[PluginInfo]) -> None:
    """An assay or reader name registered by two plugins breaks the third-party one(s), naming the other."""
    for kind in ("assays", "readers"):
        owners: dict[str, list[PluginInfo]] = {}
        for i in info:
            for name in getattr(i, kind) if not i.error else ():
                owners.setdefault(name, []).append(i)
        for name, same in owners.items():
            builtin = [i for i in same if i.builtin]
            for i in same if len(same) > 1 else ():
                other = ", ".join(repr(o.name) for o in (builtin or same) if o is not i)
                if not i.builtin or not builtin:
                    i.error = f"registers {kind[:-1]} {name!r}, which plugin {other} registers too"


@cache
def load() -> Plugins:
    """Load the plugins once per process. A plugin that fails to import, to register or whose protocol file is
    invalid is disabled and named (warned once, listed as broken); the others work as usual."""
    pm = pluggy.PluginManager("assayrunner")
    pm.add_hookspecs(hookspecs)
    info: list[PluginInfo] = []
    from . import __version__

    for module_name in BUILTIN_READERS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name)
        info.append(PluginInfo(module_name, "assayrunner", __version__, True, _hook_names(pm, module),
                               api=PLUGIN_API))
    _load_entry_points(pm, info)  # warns about each plugin that fails to import
    working = [i for i in info if not i.error]
    _check_pending(pm, info)
    _trace(pm)
    by_name = {i.name: i for i in info}
    registered = {i.name: _registered(pm, pm.get_plugin(i.name), i) for i in working if not i.error}
    _clashes(info)
    for i in working:
        if i.error:
            print(f"warning: plugin {i.name!r} ({i.distribution} {i.version}) is broken and disabled: {i.error}",
                  file=sys.stderr)
    good = [registered[i.name] for i in reversed(working) if not i.error]  # pluggy's order: the last one first
    owner = {name: i.name for i in working if not i.error for name in i.assays}
    return Plugins(pm, info, {n: r for g in good for n, r in g.readers.items()},
                   {n: a for g in good for n, a in g.assays.items()},
                   [p for g in good for p in g.protocols], [d for g in good for d in g.template_dirs],
                   {name: by_name[plugin] for name, plugin in owner.items()},
                   {Path(p): i.name for i in working if not i.error for p in i.protocols})


def _check_pending(pm: pluggy.PluginManager, info: list[PluginInfo]) -> None:
    """A plugin implementing a hook that does not exist (a misspelling) is broken, and unregistered."""
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin)
            unknown = [h for h in _hook_names(pm, exc.plugin) if not getattr(pm.hook, h).has_spec()]
            pm.unregister(exc.plugin)
            hooks = [h for h in dir(hookspecs) if h.startswith("register_")]
            close = [difflib.get_close_matches(h, hooks, n=1) for h in unknown]
            next(i for i in info if i.name == name).error = "implements " + ", ".join(
                f"{h!r}, which is not a hook" + (f" (did you mean {c[0]!r}?)" if c else "")
                for h, c in zip(unknown, close))


def format_traceback(exc: BaseException) -> str:
    """The last frame of an exception, for an 'internal error' line that still points somewhere."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"
