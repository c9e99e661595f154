"""What a warehouse engine does on this machine, with DuckDB and Arrow.

A warehouse cannot read the user's files or the notebook's data frames, so the engine reads
them here with DuckDB, exactly as the In-Memory fabric would (same readers, same sniffing),
and sends the rows; each DuckDB type becomes the nearest type every warehouse has. Rows
fetched back become Arrow tables typed from the warehouse's column types, for data frames
and for file Targets, which DuckDB writes here as the In-Memory fabric writes them.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from prophecy_jupyter.compiler.dialects import render
from prophecy_jupyter.engines.files import FileSource
from prophecy_jupyter.errors import EngineError
from prophecy_jupyter.gems.base import quoted
from prophecy_jupyter.gems.sources import file_reader

T = exp.DataType.Type
BATCH_ROWS = 10_000
FRAME = "__prophecy_frame"

_SCALARS: dict[str, exp.DataType] = {
    name: exp.DataType.build(sql)
    for name, sql in {
        "boolean": "BOOLEAN",
        "tinyint": "SMALLINT",
        "utinyint": "SMALLINT",
        "smallint": "SMALLINT",
        "usmallint": "INT",
        "integer": "INT",
        "uinteger": "BIGINT",
        "bigint": "BIGINT",
        # Wider than any warehouse's BIGINT: exact as a 38-digit decimal.
        "ubigint": "DECIMAL(38, 0)",
        "hugeint": "DECIMAL(38, 0)",
        "uhugeint": "DECIMAL(38, 0)",
        "float": "FLOAT",
        "double": "DOUBLE",
        "varchar": "TEXT",
        "date": "DATE",
        "time": "TIME",
        "time with time zone": "TIMETZ",
        "timestamp": "TIMESTAMP",
        "timestamp_s": "TIMESTAMP",
        "timestamp_ms": "TIMESTAMP",
        "timestamp_ns": "TIMESTAMP",
        "timestamp with time zone": "TIMESTAMPTZ",
        "interval": "INTERVAL",
        "blob": "VARBINARY",
        "uuid": "UUID",
    }.items()
}
_NESTED = frozenset({"list", "array", "struct", "map", "union"})


@dataclass(frozen=True)
class LocalColumn:
    """One column read here: its name, the warehouse type it gets, and whether its values
    travel as JSON text (structs, maps, nested lists; any list where arrays are not used)."""

    name: str
    type: exp.DataType
    json: bool = False


def warehouse_type(duck_type: Any, arrays: bool) -> tuple[exp.DataType, bool, bool]:
    """(type, as JSON, as text) for a DuckDB column type: scalars map one to one, a list
    of scalars becomes an array where the warehouse has them, other nested values JSON, and
    anything else (ENUM, BIT, …) text."""
    kind = str(duck_type.id)
    if str(duck_type) == "JSON":
        return exp.DataType.build("JSON"), False, False
    if kind == "decimal":
        precision, scale = (value for _, value in duck_type.children)
        return exp.DataType.build(f"DECIMAL({precision}, {scale})"), False, False
    if kind in _SCALARS:
        return _SCALARS[kind].copy(), False, False
    if kind in {"list", "array"} and arrays:
        child = duck_type.children[0][1]
        if str(child.id) in _SCALARS or str(child.id) == "decimal":
            element, _, _ = warehouse_type(child, arrays)
            return exp.DataType(this=T.ARRAY, expressions=[element], nested=True), False, False
    if kind in _NESTED:
        return exp.DataType.build("JSON"), True, False
    return exp.DataType.build("TEXT"), False, True


class LocalRelation:
    """Rows DuckDB reads here (a file, a data frame), with their warehouse column types."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, source: exp.Query, arrays: bool):
        self._connection = connection
        with _translated():
            described = connection.sql(render(source, "duckdb"))
            self.columns: list[LocalColumn] = []
            selects: list[exp.Expr] = []
            for name, duck_type in zip(described.columns, described.types, strict=True):
                dtype, as_json, as_text = warehouse_type(duck_type, arrays)
                column: exp.Expr = exp.column(quoted(name))
                if as_json:
                    column = exp.cast(exp.func("to_json", column), "VARCHAR")
                elif as_text:
                    column = exp.cast(column, "VARCHAR")
                self.columns.append(LocalColumn(name, dtype, as_json))
                selects.append(exp.alias_(column, quoted(name)))
        self._select = exp.select(*selects).from_(source.subquery("local")) if selects else None

    def batches(self, size: int = BATCH_ROWS) -> Iterator[list[tuple[Any, ...]]]:
        """The rows, ``size`` at a time."""
        if self._select is None:
            return
        with _translated():
            cursor = self._connection.execute(render(self._select, "duckdb"))
            while True:
                batch = cursor.fetchmany(size)
                if not batch:
                    return
                yield batch


@contextlib.contextmanager
def read_file(source: FileSource, path: str, arrays: bool) -> Iterator[LocalRelation]:
    """A file (or glob) read by DuckDB's reader of the Source, as the In-Memory fabric reads
    it; ``path`` is the absolute path or URL to read."""
    query = exp.select(exp.Star()).from_(
        file_reader(source.format, path, source.header, source.delimiter)
    )
    with contextlib.closing(duckdb.connect(":memory:")) as connection:
        yield LocalRelation(connection, query, arrays)


@contextlib.contextmanager
def read_frame(frame: Any, arrays: bool) -> Iterator[LocalRelation]:
    """A pandas, polars or Arrow data frame, read through DuckDB."""
    with contextlib.closing(duckdb.connect(":memory:")) as connection:
        try:
            connection.register(FRAME, frame)
        except (duckdb.Error, TypeError, ValueError) as exc:
            raise EngineError(f"cannot read {type(frame).__name__}: {_first_line(exc)}") from None
        yield LocalRelation(
            connection, exp.select(exp.Star()).from_(exp.Table(this=quoted(FRAME))), arrays
        )


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except duckdb.Error as exc:
        raise EngineError(_first_line(exc)) from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# -- rows back to Arrow ---------------------------------------------------------------------
def arrow_type(dtype: exp.DataType | None) -> pa.DataType | None:
    """The Arrow type for a warehouse column type, or ``None`` to infer it from the values."""
    if dtype is None:
        return None
    kind = dtype.this
    simple: dict[Any, pa.DataType] = {
        T.BOOLEAN: pa.bool_(),
        T.TINYINT: pa.int8(),
        T.SMALLINT: pa.int16(),
        T.INT: pa.int32(),
        T.BIGINT: pa.int64(),
        T.FLOAT: pa.float32(),
        T.DOUBLE: pa.float64(),
        T.DATE: pa.date32(),
        T.TIME: pa.time64("us"),
        T.TIMESTAMP: pa.timestamp("us"),
        T.TIMESTAMPNTZ: pa.timestamp("us"),
        T.DATETIME: pa.timestamp("us"),
        T.TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
        T.TIMESTAMPLTZ: pa.timestamp("us", tz="UTC"),
        T.INTERVAL: pa.duration("us"),
        T.VARBINARY: pa.binary(),
        T.BINARY: pa.binary(),
    }
    if kind in simple:
        return simple[kind]
    if kind in exp.DataType.TEXT_TYPES or kind in {T.JSON, T.JSONB, T.UUID}:
        return pa.string()
    if kind in {T.DECIMAL, T.BIGDECIMAL}:
        sizes = [int(e.name) for e in dtype.expressions if isinstance(e, exp.DataTypeParam)]
        if len(sizes) == 2 and 0 < sizes[0] <= 38:
            return pa.decimal128(sizes[0], sizes[1])
        return None
    return None


def _textual(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    return json.dumps(value, default=str)


def arrow_table(
    names: Sequence[str], types: Sequence[exp.DataType | None], rows: Sequence[Sequence[Any]]
) -> pa.Table:
    """Rows as an Arrow table, each column typed from the warehouse's type where it maps to
    one (else inferred from the values; text as a last resort). Repeated names are kept."""
    arrays = []
    for index, dtype in enumerate(types):
        values = [row[index] for row in rows]
        wanted = arrow_type(dtype)
        if wanted is not None and pa.types.is_string(wanted):
            values = [_textual(v) for v in values]
        arrays.append(_array(values, wanted))
    return pa.Table.from_arrays(arrays, names=list(names))


def _array(values: list[Any], wanted: pa.DataType | None) -> pa.Array:
    try:
        if wanted is not None:
            return pa.array(values, type=wanted)
        if all(v is None for v in values):
            return pa.array(values, type=pa.string())
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return pa.array([None if v is None else _plain_text(v) for v in values], type=pa.string())


def _plain_text(value: Any) -> str:
    if isinstance(value, (datetime.date, datetime.time, decimal.Decimal, uuid.UUID, str)):
        return str(value)
    return json.dumps(value, default=str)
