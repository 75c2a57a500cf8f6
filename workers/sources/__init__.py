"""Sources: the registry of the CRMs crmflow serves, from which everything source-specific is derived.

Each CRM declares itself in one module here (zoho.py, hubspot.py; shapes in base.py). The receiver's filter
(which notifications become jobs), the rules' catalogue and action targets, fetch and action dispatch all
ask this registry, so adding a CRM or a module is one new declaration plus its client, and nothing else.
"""

from __future__ import annotations

from typing import Any

from workers.sources import hubspot, zoho
from workers.sources.base import Source, SourceModule

_REGISTRY: dict[str, Source[Any]] = {}


def register(source: Source[Any]) -> None:
    """Serve `source` from now on (in this process); ValueError if a source of that name is registered."""
    if source.name in _REGISTRY:
        raise ValueError(f"a source named {source.name!r} is already registered")
    _REGISTRY[source.name] = source


def unregister(name: str) -> None:
    """Stop serving the source called `name` (tests register sources of their own for a while)."""
    _REGISTRY.pop(name, None)


def all_sources() -> tuple[Source[Any], ...]:
    """Every registered source, in registration order."""
    return tuple(_REGISTRY.values())


def source_named(name: str) -> Source[Any] | None:
    return _REGISTRY.get(name)


def module_of(source: str, module: str) -> SourceModule[Any] | None:
    """The module `module` (its exact name) of `source`, if crmflow serves it."""
    found = _REGISTRY.get(source)
    return found.module(module) if found is not None else None


def notified_module(source: str, name: str) -> SourceModule[Any] | None:
    """The module a notification from `source` means by `name` (the module's name or one of its aliases)."""
    found = _REGISTRY.get(source)
    return found.notified(name) if found is not None else None


def supported(source: str, module: str) -> bool:
    """Whether the workers can fetch and act on records of `module` in `source`."""
    return module_of(source, module) is not None


def all_modules() -> frozenset[tuple[str, str]]:
    """Every (source, module) pair crmflow serves."""
    return frozenset((source.name, module.name) for source in _REGISTRY.values() for module in source.modules)


def action_targets(action_type: str) -> frozenset[tuple[str, str]]:
    """The (source, module) pairs that implement `action_type`."""
    return frozenset(
        (source.name, module.name)
        for source in _REGISTRY.values()
        for module in source.modules
        if action_type in module.actions
    )


register(zoho.SOURCE)
register(hubspot.SOURCE)
