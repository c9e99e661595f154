"""Upgrades of older pipeline documents, keyed on their ``version``.

A migration takes the raw dict of version N and returns the dict of version N+1. Loading runs
every step from the document's version up to `CURRENT_VERSION`, so files written by any older
release open unchanged on disk until they are saved again.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from prophecy_jupyter.errors import Issue, ValidationError

CURRENT_VERSION = 1

Migration = Callable[[dict[str, Any]], dict[str, Any]]

MIGRATIONS: dict[int, Migration] = {}
"""``MIGRATIONS[n]`` upgrades a version-``n`` document to version ``n + 1``."""


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    version = data.get("version", CURRENT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValidationError(
            [Issue("version", "version must be a positive integer", field="/version")]
        )
    if version > CURRENT_VERSION:
        raise ValidationError(
            [
                Issue(
                    "version",
                    f"document version {version} is newer than this release understands "
                    f"({CURRENT_VERSION}); upgrade prophecy-jupyter",
                    field="/version",
                )
            ]
        )
    if version < CURRENT_VERSION:
        data = copy.deepcopy(data)  # steps may edit in place; the caller's document stays as given
    while version < CURRENT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ValidationError(
                [Issue("version", f"no migration from version {version}", field="/version")]
            )
        try:
            data = step(data)
        except Exception as exc:  # a step expects a well-formed old document; this one is not
            raise ValidationError(
                [
                    Issue(
                        "version",
                        f"cannot upgrade from version {version}: the document is malformed "
                        f"({type(exc).__name__}: {exc})",
                        field="/version",
                    )
                ]
            ) from None
        version += 1
        data["version"] = version
    return data
