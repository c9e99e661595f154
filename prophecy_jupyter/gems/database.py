"""DatabaseSource and DatabaseTarget: tables of databases reached through a ``database``
connection (SQLAlchemy), beside the fabric's own warehouse.

A DatabaseSource fetches its rows while the pipeline compiles and hands them to the engine
as an Arrow table (`GemContext.fetched`), so every downstream gem reads them like any
relation. How many rows it fetches: all of them, unless the front door compiling says it
needs fewer (`GemContext.fetch_limit`, for validation and previews), in which case the
query is wrapped in ``LIMIT n`` (``TOP``/``FETCH FIRST`` as the database spells it) and the
database never sends the rest. The columns of an empty result are typed from the table's
definition (table mode) or the driver's description (query mode).

A DatabaseTarget fetches its input from the engine as Arrow and writes it through the
connector in one transaction (see `Database.write_table`).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator
from sqlglot import exp

from prophecy_jupyter.compiler.expressions import ExpressionRejected, parse_query
from prophecy_jupyter.connectors.database import (
    Database,
    DatabaseConnectorError,
    sqlglot_dialect,
)
from prophecy_jupyter.gems.base import (
    GemContext,
    GemKind,
    GemOutput,
    Properties,
    star_select,
)
from prophecy_jupyter.gems.sources import writable_input

if TYPE_CHECKING:
    from prophecy_jupyter.connections import ConnectionResolver, ResolvedConnection
    from prophecy_jupyter.engines.base import Engine, TableDocs

DB_TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$"


class DatabaseSourceProps(Properties):
    connection: str = Field(min_length=1, description="Name of a database connection")
    table: str | None = Field(
        default=None, pattern=DB_TABLE_NAME, description="[schema.]table to read"
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        description="One SELECT in the database's own SQL dialect; $name reads a pipeline "
        "parameter, bound as a literal",
    )

    @model_validator(mode="after")
    def _one_of(self) -> DatabaseSourceProps:
        if (self.table is None) == (self.query is None):
            raise ValueError("set either a table or a query")
        return self


def database_connection(ctx: GemContext, name: str, *path: str | int) -> ResolvedConnection | None:
    """The ``database`` connection a property names, or None with an issue on it."""
    connection = ctx.connection(name, *path)
    if connection is None:
        return None
    if connection.kind != "database":
        ctx.issue(
            "wrong_connection",
            f"connection '{name}' is a {connection.kind} connection; a database one is needed",
            *path,
        )
        return None
    try:
        sqlglot_dialect(connection)
    except DatabaseConnectorError as exc:
        ctx.issue("bad_connection", str(exc), *path)
        return None
    return connection


def parsed_select(ctx: GemContext, text: str, dialect: str, field: str) -> exp.Query | None:
    """A hand-written SELECT in ``dialect``, checked (one read-only query) and with its
    parameters bound; None with an issue at the line and column of what is wrong."""
    try:
        tree = parse_query(text, dialect)
    except ExpressionRejected as exc:
        ctx.problem(exc.problem, field)
        return None
    _, bound = ctx.bind_parameters(tree, field)
    return tree if bound else None


def limited(query: exp.Query, limit: int | None) -> exp.Query:
    """``query`` bounded to ``limit`` rows (as a subquery, so its own LIMIT or ORDER BY
    stay as written)."""
    if limit is None:
        return query
    return exp.select(exp.Star()).from_(query.subquery("__prophecy_q")).limit(limit)


class DatabaseSource(GemKind):
    kind = "DatabaseSource"
    category = "Source/Target"
    summary = "Read a table or a SELECT of a database (PostgreSQL, MySQL, SQL Server…)"
    Props = DatabaseSourceProps
    min_inputs = 0
    max_inputs = 0

    def build(self, props: DatabaseSourceProps, ctx: GemContext) -> GemOutput | None:
        field = "table" if props.table is not None else "query"
        connection = database_connection(ctx, props.connection, "connection")
        if connection is None:
            return None
        dialect = sqlglot_dialect(connection)
        sql: str | None = None
        if props.query is not None:
            tree = parsed_select(ctx, props.query, dialect, "query")
            if tree is None:
                return None
            sql = limited(tree, ctx.fetch_limit).sql(dialect=dialect)
        try:
            with Database(connection) as database:
                if sql is not None:
                    rows = database.read_sql(sql)
                else:
                    assert props.table is not None
                    rows = database.read_table(props.table, ctx.fetch_limit)
        except DatabaseConnectorError as exc:
            ctx.issue("unreadable_source", str(exc), field)
            return None
        key = hashlib.sha1(
            f"{connection.name}\0{sql or props.table}\0{ctx.fetch_limit}".encode()
        ).hexdigest()
        return ctx.fetched(rows, key, field)


class DatabaseTargetProps(Properties):
    connection: str = Field(min_length=1, description="Name of a database connection")
    table: str = Field(pattern=DB_TABLE_NAME, description="[schema.]table to write")
    mode: Literal["overwrite", "append", "error_if_exists", "merge"] = Field(
        default="overwrite",
        description="overwrite replaces the rows (keeping the table's definition); append "
        "adds rows; error_if_exists refuses an existing table; merge upserts on the keys. "
        "Each runs in one transaction",
    )
    keys: list[str] = Field(default_factory=list, description="merge: key columns")
    batch_rows: int = Field(
        default=5000, ge=1, le=1_000_000, description="Rows sent per INSERT batch"
    )

    @model_validator(mode="after")
    def _keys_for_merge(self) -> DatabaseTargetProps:
        if self.mode == "merge" and not self.keys:
            raise ValueError("merge mode needs at least one key column")
        return self


class DatabaseTarget(GemKind):
    kind = "DatabaseTarget"
    category = "Source/Target"
    summary = "Write to a database table in one transaction (overwrite, append, merge…)"
    Props = DatabaseTargetProps
    has_output = False
    row_wise = True

    def build(self, props: DatabaseTargetProps, ctx: GemContext) -> GemOutput | None:
        connected = database_connection(ctx, props.connection, "connection") is not None
        if not writable_input(ctx, props.keys) or not connected:
            return None
        return GemOutput(star_select(ctx.input), list(ctx.input.columns))

    def write(
        self,
        props: DatabaseTargetProps,
        engine: Engine,
        query: exp.Query,
        connections: ConnectionResolver | None,
        docs: TableDocs | None = None,
    ) -> int:
        if connections is None:
            raise DatabaseConnectorError("writing to a database needs the project's connections")
        connection = connections(props.connection)
        rows: Any = engine.fetch(query, "arrow")
        with Database(connection, batch_rows=props.batch_rows) as database:
            return database.write_table(props.table, rows, props.mode, props.keys)


GEMS: list[type[GemKind]] = [DatabaseSource, DatabaseTarget]
