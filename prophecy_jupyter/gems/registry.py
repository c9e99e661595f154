"""The gem catalog: built-in kinds plus those registered by other packages.

A third-party package adds gems by declaring an entry point in the group
``prophecy_jupyter.gems`` that points at a `GemKind` subclass (or a module-level list of
them); they appear in the catalog, the palette and the compiler with no change here.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from prophecy_jupyter.gems.base import GemKind

ENTRY_POINT_GROUP = "prophecy_jupyter.gems"


def _builtin() -> list[type[GemKind]]:
    from prophecy_jupyter.gems import (
        aggregate,
        cleanse,
        custom,
        database,
        directory,
        dynamic,
        email,
        join,
        reshape,
        rest,
        sources,
        transform,
    )

    kinds: list[type[GemKind]] = []
    for module in (
        sources,
        transform,
        join,
        aggregate,
        reshape,
        cleanse,
        custom,
        directory,
        dynamic,
        database,
        rest,
        email,
    ):
        kinds.extend(module.GEMS)
    return kinds


def _plugins() -> list[type[GemKind]]:
    kinds: list[type[GemKind]] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        loaded: Any = ep.load()
        for item in loaded if isinstance(loaded, (list, tuple)) else [loaded]:
            if isinstance(item, type) and issubclass(item, GemKind):
                kinds.append(item)
    return kinds


@lru_cache(maxsize=1)
def gem_kinds() -> dict[str, GemKind]:
    """Kind name → gem instance. Plugins may not replace a built-in kind."""
    registry: dict[str, GemKind] = {}
    for cls in _builtin():
        registry[cls.kind] = cls()
    for cls in _plugins():
        registry.setdefault(cls.kind, cls())
    return registry


def catalog() -> list[dict[str, Any]]:
    """Every gem kind's description, for the palette and the properties forms."""
    return [gem.describe() for gem in gem_kinds().values()]
