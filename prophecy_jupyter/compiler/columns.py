"""Output columns of a gem: name, inferred type and lineage back to source columns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

UNKNOWN = "UNKNOWN"

ColumnRef = tuple[str, str]
"""(source gem id, source column name)."""


@dataclass(frozen=True)
class Column:
    """One output column.

    ``type`` is a SQL type in DuckDB's spelling, or ``UNKNOWN`` when it cannot be inferred
    without running the query. ``lineage`` names the source columns its value is computed from.
    """

    name: str
    type: str
    lineage: frozenset[ColumnRef] = frozenset()

    def renamed(self, name: str) -> Column:
        return Column(name, self.type, self.lineage)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.type,
            "lineage": [list(ref) for ref in sorted(self.lineage)],
        }


def union_lineage(columns: Iterable[Column]) -> frozenset[ColumnRef]:
    out: set[ColumnRef] = set()
    for column in columns:
        out |= column.lineage
    return frozenset(out)


def find_column(columns: Sequence[Column], name: str) -> Column | None:
    """Case-insensitive lookup, as unquoted identifiers resolve in SQL engines."""
    lowered = name.lower()
    for column in columns:
        if column.name.lower() == lowered:
            return column
    return None
