"""One registry for plugins: model backends, scorers and mutation operators.

Each kind of plugin has a :class:`Registry`, found by name. Built-ins are registered in
code, so a source checkout with no installed entry points works; a third-party package
adds its own through the kind's entry-point group, read the first time the registry is
asked for a name::

    [project.entry-points."probegen.models"]     # a BackendInfo
    mybackend = "my_package.backend:INFO"

    [project.entry-points."probegen.scorers"]    # factory(arg, **options) -> Scorer
    myscorer = "my_package.scoring:make_my_scorer"

    [project.entry-points."probegen.mutators"]   # a Mutator class or instance
    my_operator = "my_package.ops:MyOperator"

A name registered in code wins over an entry point of the same name, so an installed
plugin can never silently replace a built-in (``register(..., replace=True)`` can).
An entry point is imported only when its name is asked for, so a broken plugin stops
only the runs that use it, with one line naming its entry point and distribution.

A plugin passed to a run as an object rather than by name is recorded by
:func:`object_ref` (``python:module:qualname``), as a Python function model is.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar, cast

from probegen.errors import UsageError

__all__ = ["PYTHON_PREFIX", "Registry", "installed_entry_points", "object_ref"]

T = TypeVar("T")

PYTHON_PREFIX = "python:"
"""How a run records a plugin passed as an object: ``python:module:qualname``."""


def installed_entry_points(group: str) -> Iterable[EntryPoint]:
    """The entry points of ``group`` in the installed distributions."""
    return entry_points(group=group)


def object_ref(value: object) -> str:
    """``python:module:qualname`` of a function or class, or of an instance's class."""
    named = value if inspect.isclass(value) or inspect.isroutine(value) else type(value)
    module = getattr(named, "__module__", None) or "?"
    qualname = getattr(named, "__qualname__", None) or type(named).__qualname__
    return f"{PYTHON_PREFIX}{module}:{qualname}"


class Registry(Generic[T]):
    """Plugins of one kind by name: registered in code, or found in an entry-point group.

    Args:
        group: The entry-point group (``probegen.mutators``).
        kind: What a plugin is, for messages (``mutator``).
        check: Turns a loaded entry point's object into a plugin, or raises
            ``ValueError`` saying what is wrong with it; default: as loaded.
        discover: Lists a group's entry points (default: the installed distributions';
            tests pass fakes).
    """

    def __init__(
        self,
        group: str,
        kind: str,
        *,
        check: Callable[[str, object], T] | None = None,
        discover: Callable[[str], Iterable[EntryPoint]] = installed_entry_points,
    ) -> None:
        self.group = group
        self.kind = kind
        self._check = check
        self._discover = discover
        self._registered: dict[str, T] = {}
        self._found: dict[str, EntryPoint] | None = None
        self._loaded: dict[str, T] = {}

    def register(self, name: str, plugin: T, *, replace: bool = False) -> None:
        """Register ``plugin`` as ``name`` in code.

        Raises:
            ValueError: The name is empty or contains ``:``, or is taken and not
                ``replace``.
        """
        if not name or ":" in name:
            raise ValueError(f"{self.kind} name must be non-empty and without ':', got {name!r}")
        if name in self._registered and not replace:
            raise ValueError(f"{self.kind} '{name}' is already registered: pass replace=True")
        self._registered[name] = plugin

    def unregister(self, name: str) -> None:
        """Forget a plugin registered in code (entry points stay)."""
        self._registered.pop(name, None)

    def refresh(self) -> None:
        """Read the entry-point group again on next use (a plugin installed meanwhile)."""
        self._found = None
        self._loaded.clear()

    def names(self) -> list[str]:
        """Every known name: those registered in code, in order, then the entry points'."""
        found = [name for name in sorted(self._entries()) if name not in self._registered]
        return [*self._registered, *found]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._registered or name in self._entries())

    def get(self, name: str) -> T:
        """The plugin named ``name``, loading its entry point now if it has one.

        Raises:
            UsageError: The name is unknown (listing the known ones), or its entry point
                fails to load or is not a plugin of this kind (naming it).
        """
        if name in self._registered:
            return self._registered[name]
        if name in self._loaded:
            return self._loaded[name]
        entry = self._entries().get(name)
        if entry is None:
            raise UsageError(
                f"unknown {self.kind} '{name}'",
                fix=f"use one of: {', '.join(self.names()) or '(none installed)'}",
            )
        try:
            loaded = entry.load()
        except Exception as error:  # a plugin may fail in any way while importing
            raise self.error(
                name,
                f"failed to import: {type(error).__name__}: {error}",
                "install the package that provides it, or uninstall the broken plugin",
            ) from None
        try:
            plugin = self._check(name, loaded) if self._check else cast(T, loaded)
        except ValueError as error:
            raise self.error(name, str(error), f"see the {self.group} plugin contract") from None
        self._loaded[name] = plugin
        return plugin

    def values(self) -> list[T]:
        """Every plugin, in :meth:`names` order (loading every entry point)."""
        return [self.get(name) for name in self.names()]

    def origin(self, name: str) -> str:
        """Where ``name`` comes from, for messages: ``'x' (module:attr) from distribution
        'pkg'``, or ``'x' (registered in code)``."""
        if name in self._registered:
            return f"'{name}' (registered in code)"
        entry = self._entries().get(name)
        if entry is None:
            return f"'{name}'"
        dist = getattr(entry, "dist", None)
        where = f" from distribution '{dist.name}'" if dist is not None else ""
        return f"'{name}' ({entry.value}){where}"

    def error(self, name: str, problem: str, fix: str) -> UsageError:
        """One line about the plugin ``name``: ``<kind> plugin <origin> <problem>``."""
        return UsageError(f"{self.kind} plugin {self.origin(name)} {problem}", fix=fix)

    def _entries(self) -> dict[str, EntryPoint]:
        if self._found is None:
            found: dict[str, EntryPoint] = {}
            for entry in self._discover(self.group):
                found.setdefault(entry.name, entry)  # two distributions: the first wins
            self._found = found
        return self._found
