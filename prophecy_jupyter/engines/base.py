"""The engine interface every fabric implements, and the shapes it returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Self

from sqlglot import exp

WriteMode = Literal["overwrite", "append", "error_if_exists", "merge"]
FrameKind = Literal["pandas", "polars", "arrow"]


@dataclass
class PreviewResult:
    """First rows of a relation, with the engine's own column types."""

    columns: list[tuple[str, str]]
    rows: list[tuple[Any, ...]]
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [{"name": n, "type": t} for n, t in self.columns],
            "rows": [[_jsonable(v) for v in row] for row in self.rows],
            "truncated": self.truncated,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or Infinity: a strict parser would reject the body
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


@dataclass
class WriteSpec:
    """Where and how a Target writes (engine-neutral)."""

    format: Literal["table", "csv", "parquet", "json"]
    mode: WriteMode
    table: str | None = None
    path: str | None = None
    keys: list[str] = field(default_factory=list)
    header: bool = True
    table_comment: str | None = None
    """The written table's comment (``format="table"``): the documentation of the pipeline
    persisted in the warehouse, where catalogs and SQL clients show it. Set on every write,
    inside the write's transaction where the engine has one; ``None`` leaves the table's
    comment as it is."""
    column_comments: dict[str, str] = field(default_factory=dict)
    """Comments of the written table's columns, keyed by column name as the query spells it;
    columns not listed keep whatever comment they have."""


@dataclass
class TableDocs:
    """The documentation a Target's table carries into the warehouse: see `WriteSpec`."""

    comment: str | None = None
    columns: dict[str, str] = field(default_factory=dict)


def comment_statements(table: exp.Table, spec: WriteSpec) -> list[exp.Comment]:
    """``COMMENT ON TABLE`` and ``COMMENT ON COLUMN`` statements giving ``table`` the
    comments ``spec`` asks for (none for a spec without any)."""
    statements = []
    if spec.table_comment is not None:
        statements.append(
            exp.Comment(
                this=table.copy(), kind="TABLE", expression=exp.Literal.string(spec.table_comment)
            )
        )
    for name, text in spec.column_comments.items():
        column = exp.Column(
            this=exp.to_identifier(name, quoted=True),
            table=table.this.copy(),
            db=table.args["db"].copy() if table.args.get("db") else None,
            catalog=table.args["catalog"].copy() if table.args.get("catalog") else None,
        )
        statements.append(
            exp.Comment(this=column, kind="COLUMN", expression=exp.Literal.string(text))
        )
    return statements


class Engine(Protocol):
    """What every fabric's engine offers to the compiler, the runner and the front doors."""

    name: str
    dialect: str

    def describe(self, query: exp.Query) -> list[tuple[str, str]]: ...

    def preview(self, query: exp.Query, limit: int = 100) -> PreviewResult: ...

    def query(self, query: exp.Query) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and every row of a query (small results: tests, connection checks)."""
        ...

    def write(self, query: exp.Query, spec: WriteSpec) -> int: ...

    def materialize(self, name: str, query: exp.Query) -> int:
        """Store a query's rows as the session-private table ``name``; returns the row count."""
        ...

    def drop_materialized(self, name: str) -> None: ...

    def table_exists(self, name: str) -> bool:
        """Whether ``[[catalog.]schema.]name`` is a table of the engine's warehouse."""
        ...

    def register_frame(self, name: str, frame: Any) -> None:
        """Make a data frame (pandas, polars, Arrow) readable as the relation ``name``."""
        ...

    def unregister_frame(self, name: str) -> None: ...

    def fetch(self, query: exp.Query, kind: FrameKind = "pandas") -> Any:
        """Every row of a query as a data frame of the given kind."""
        ...

    def session(self) -> Engine:
        """An engine for one piece of work (a preview, a run) that can be cancelled and
        closed without touching the others; engines without such sessions return themselves."""
        ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...
