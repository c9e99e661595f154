"""The engine interface every fabric implements, and the shapes it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlglot import exp

WriteMode = Literal["overwrite", "append", "error_if_exists", "merge"]


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


class Engine(Protocol):
    """What every fabric's engine offers to the compiler, the runner and the front doors."""

    name: str
    dialect: str

    def describe(self, query: exp.Query) -> list[tuple[str, str]]: ...

    def preview(self, query: exp.Query, limit: int = 100) -> PreviewResult: ...

    def write(self, query: exp.Query, spec: WriteSpec) -> int: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...
