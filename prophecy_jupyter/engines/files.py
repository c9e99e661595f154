"""File Sources inside compiled queries, for engines that read files their own way.

The compiler writes a file Source as DuckDB's table functions (``read_csv('p', header = …,
delim = …)``, ``read_parquet``, ``read_json_auto``). DuckDB runs them as they are; Spark reads
the file with its own readers and a SQL warehouse loads it into a temporary table. Such an
engine finds the readers with `file_sources` and puts its own relation in their place with
`replace_file_sources`, on a copy of the query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlglot import exp

FileFormat = Literal["csv", "parquet", "json"]

READERS: dict[str, FileFormat] = {
    "read_csv": "csv",
    "read_csv_auto": "csv",
    "read_parquet": "parquet",
    "read_json": "json",
    "read_json_auto": "json",
}


@dataclass(frozen=True)
class FileSource:
    """One file (or glob) a query reads, with the reader's options."""

    format: FileFormat
    path: str
    header: bool = True
    delimiter: str = ","


def _reader(table: exp.Table) -> exp.Func | None:
    function = table.this
    if isinstance(function, exp.Func):
        name = function.name if isinstance(function, exp.Anonymous) else function.sql_name()
        if name.lower() in READERS:
            return function
    return None


def _source_of(function: exp.Func) -> FileSource:
    name = function.name if isinstance(function, exp.Anonymous) else function.sql_name()
    arguments = list(function.expressions) or [function.this]
    path = arguments[0]
    if not isinstance(path, exp.Literal) or not path.is_string:
        raise ValueError(f"{name}: the path must be a string literal")
    options: dict[str, exp.Expr] = {}
    for argument in arguments[1:]:
        if isinstance(argument, exp.EQ | exp.PropertyEQ):
            options[argument.this.name.lower()] = argument.expression
    header = options.get("header")
    delimiter = options.get("delim") or options.get("sep") or options.get("delimiter")
    return FileSource(
        format=READERS[name.lower()],
        path=path.name,
        header=not (isinstance(header, exp.Boolean) and not header.this),
        delimiter=delimiter.name if isinstance(delimiter, exp.Literal) else ",",
    )


def file_sources(query: exp.Expr) -> list[FileSource]:
    """Every distinct file reader of a query, in the order they appear."""
    found: list[FileSource] = []
    for table in query.find_all(exp.Table):
        function = _reader(table)
        if function is not None:
            source = _source_of(function)
            if source not in found:
                found.append(source)
    return found


def replace_file_sources(query: exp.Expr, relation: Callable[[FileSource], exp.Table]) -> exp.Expr:
    """A copy of the query with each file reader replaced by ``relation(source)``; an alias
    the reader had is kept."""

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table):
            function = _reader(node)
            if function is not None:
                replacement = relation(_source_of(function))
                alias = node.args.get("alias")
                if alias is not None:
                    replacement.set("alias", alias.copy())
                return replacement
        return node

    return query.copy().transform(swap)
