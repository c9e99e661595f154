"""Source and Target: where data enters and leaves a pipeline.

A local csv, parquet or json file is read by the engine itself (DuckDB's table functions,
which other engines swap for their own readers: see `prophecy_jupyter.engines.files`).
Excel and XML files, and any file reached through a ``files`` connection (S3, GCS, Azure,
SFTP or a local folder), go through the file connector: a Source fetches the rows while it
is built and hands them to the engine, a Target fetches its rows and writes them itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator
from sqlglot import exp

from prophecy_jupyter.compiler.columns import Column
from prophecy_jupyter.errors import EngineError, ProphecyError
from prophecy_jupyter.gems.base import (
    GemContext,
    GemKind,
    GemOutput,
    LocalPath,
    Properties,
    quoted,
    star_select,
)

if TYPE_CHECKING:
    from prophecy_jupyter.connections import ConnectionResolver
    from prophecy_jupyter.connectors.files import FileOptions, FileStore
    from prophecy_jupyter.engines.base import Engine, TableDocs, WriteSpec

TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$"
CONNECTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
ENGINE_FORMATS = frozenset({"csv", "parquet", "json"})
"""File formats the engine reads and writes itself, when no connection is named."""
CONNECTOR_FORMATS = frozenset({"excel", "xml"})
"""File formats only the file connector reads and writes."""
FILE_FORMATS = ENGINE_FORMATS | CONNECTOR_FORMATS
"""Every file format a Source reads and a Target writes."""


class SeedColumn(Properties):
    name: str = Field(min_length=1, max_length=256)
    type: str = Field(default="VARCHAR", description="SQL type, e.g. INTEGER, DOUBLE, DATE")


class SourceProps(Properties):
    format: Literal["csv", "parquet", "json", "excel", "xml", "table", "seed"] = Field(
        description="csv/parquet/json/excel/xml read files; table reads a table; "
        "seed is inline rows"
    )
    path: str | None = Field(
        default=None,
        description="File path or glob, relative to the project folder (or to the "
        "connection's root)",
        min_length=1,
    )
    connection: str | None = Field(
        default=None,
        pattern=CONNECTION_NAME,
        description="Name of a files connection (S3, GCS, Azure, SFTP, a folder) to read "
        "the file from; empty reads the project's own files",
    )
    table: str | None = Field(default=None, pattern=TABLE_NAME, description="[schema.]table")
    header: bool = Field(default=True, description="csv/excel: first line holds column names")
    delimiter: str = Field(default=",", min_length=1, max_length=4, description="csv separator")
    sheet: str | None = Field(
        default=None, min_length=1, description="excel: worksheet to read (default: the first)"
    )
    row_path: str | None = Field(
        default=None,
        min_length=1,
        description="xml: XPath of the row elements, e.g. /orders/order (default: every "
        "child of the root)",
    )
    columns: list[SeedColumn] = Field(
        default_factory=list, description="seed: column names and types"
    )
    rows: list[list[Any]] = Field(
        default_factory=list, description="seed: one list of values per row"
    )

    @model_validator(mode="after")
    def _needs_location(self) -> SourceProps:
        if self.format in FILE_FORMATS and not self.path:
            raise ValueError(f"a {self.format} source needs a path")
        if self.connection and self.format in {"table", "seed"}:
            raise ValueError(f"a {self.format} source reads no file: remove the connection")
        if self.format == "table" and not self.table:
            raise ValueError("a table source needs a table name")
        if self.format == "seed" and not self.columns:
            raise ValueError("a seed source needs at least one column")
        return self


def table_expression(name: str) -> exp.Table:
    """``schema.table`` as a quoted table reference."""
    parts = name.split(".")
    table = exp.Table(this=quoted(parts[-1]))
    if len(parts) > 1:
        table.set("db", quoted(parts[-2]))
    if len(parts) > 2:
        table.set("catalog", quoted(parts[-3]))
    return table


def table_key(name: str) -> tuple[str, str]:
    """``(schema, table)`` as the engine resolves ``[schema.]table``: ``Orders`` and
    ``main.orders`` are the same table."""
    parts = name.lower().split(".")
    return (parts[-2] if len(parts) > 1 else "main", parts[-1])


def reads_table(props: object) -> tuple[str, str] | None:
    """The table a Source's properties read, if any."""
    if isinstance(props, SourceProps) and props.format == "table" and props.table:
        return table_key(props.table)
    return None


def writes_table(props: object) -> tuple[str, str] | None:
    """The table a Target's properties write, if any."""
    if isinstance(props, TargetProps) and props.format == "table" and props.table:
        return table_key(props.table)
    return None


def _option(name: str, value: exp.Expr) -> exp.Expr:
    return exp.EQ(this=exp.column(name), expression=value)


def seed_literal(value: Any) -> exp.Expr:
    """A seed value as a SQL literal: JSON objects become structs and arrays lists, so a
    seed can hold nested rows (sqlglot alone would turn an object into a MAP)."""
    if isinstance(value, dict):
        return exp.Struct(
            expressions=[
                exp.PropertyEQ(
                    this=exp.to_identifier(str(k), quoted=True), expression=seed_literal(v)
                )
                for k, v in value.items()
            ]
        )
    if isinstance(value, list):
        return exp.Array(expressions=[seed_literal(v) for v in value])
    return exp.convert(value)


def file_reader(fmt: str, path: str, header: bool = True, delimiter: str = ",") -> exp.Table:
    """``read_csv('path', …)`` and friends as a table expression."""
    literal = exp.Literal.string(path)
    if fmt == "csv":
        reader = exp.Anonymous(
            this="read_csv",
            expressions=[
                literal,
                _option("header", exp.Boolean(this=header)),
                _option("delim", exp.Literal.string(delimiter)),
            ],
        )
    elif fmt == "parquet":
        reader = exp.Anonymous(this="read_parquet", expressions=[literal])
    else:
        reader = exp.Anonymous(this="read_json_auto", expressions=[literal])
    return exp.Table(this=reader)


class Source(GemKind):
    kind = "Source"
    category = "Source/Target"
    summary = "Read a file (CSV, Parquet, JSON), a warehouse table, or inline seed rows"
    Props = SourceProps
    min_inputs = 0
    max_inputs = 0

    def build(self, props: SourceProps, ctx: GemContext) -> GemOutput | None:
        if props.format == "seed":
            return self._seed(props, ctx)
        if through_connector(props):
            return self._fetch(props, ctx)
        others = ctx.gem_ids - {ctx.gem.id.lower()}
        if props.format == "table" and props.table and props.table.lower() in others:
            ctx.issue(
                "shadowed_table",
                f"table '{props.table}' has the name of a gem, which would be read instead; "
                f"qualify it with its schema (e.g. main.{props.table}) or rename the gem",
                "table",
            )
            return None
        relation = self._relation(props)
        query = exp.select(exp.Star()).from_(relation)
        field = "table" if props.format == "table" else "path"
        try:
            described = ctx.catalog.describe(query)
        except ProphecyError as exc:
            # A table that a Target earlier in this pipeline creates is read after it is written.
            read = reads_table(props)
            planned = ctx.planned_tables.get(read) if read is not None else None
            if planned is None:
                ctx.issue("unreadable_source", f"cannot read source: {exc}", field)
                return None
            described = [(c.name, c.type) for c in planned]
        columns = [
            Column(name, dtype, frozenset({(ctx.gem.id, name)})) for name, dtype in described
        ]
        return GemOutput(query, columns)

    def local_paths(self, props: SourceProps) -> list[LocalPath]:
        if props.format in FILE_FORMATS and props.connection is None and props.path:
            return [LocalPath("path", props.path, "read")]
        return []

    def _fetch(self, props: SourceProps, ctx: GemContext) -> GemOutput | None:
        """Read the file through the connector and hand its rows to the engine."""
        from prophecy_jupyter.connectors.files import read_table

        assert props.path is not None
        store = gem_store(ctx, props.connection, props.path)
        if store is None:
            return None
        try:
            with store:
                table = read_table(
                    store, props.path, _file_format(props.format), file_options(props)
                )
        except ProphecyError as exc:
            ctx.issue("unreadable_source", f"cannot read source: {exc}", "path")
            return None
        return ctx.fetched(table, props.model_dump_json(), "path")

    def _relation(self, props: SourceProps) -> exp.Expr:
        if props.format == "table":
            assert props.table is not None
            return table_expression(props.table)
        assert props.path is not None
        return file_reader(props.format, props.path, props.header, props.delimiter)

    def _seed(self, props: SourceProps, ctx: GemContext) -> GemOutput | None:
        types: list[exp.DataType] = []
        ok = True
        for i, col in enumerate(props.columns):
            try:
                types.append(exp.DataType.build(col.type, dialect=ctx.dialect))
            except Exception:
                ctx.issue("bad_type", f"unknown type '{col.type}'", "columns", i, "type")
                ok = False
        for i, row in enumerate(props.rows):
            if len(row) != len(props.columns):
                ctx.issue(
                    "row_width",
                    f"row has {len(row)} values, expected {len(props.columns)}",
                    "rows",
                    i,
                )
                ok = False
        if not ok:
            return None
        names = [c.name for c in props.columns]
        if props.rows:
            values = exp.values(
                [tuple(seed_literal(v) for v in row) for row in props.rows], alias="seed"
            )
            # Quoted, as the projections refer to them: an engine that folds unquoted names
            # (PostgreSQL) would otherwise lose a mixed-case column.
            values.args["alias"].set("columns", [quoted(n) for n in names])
            projections: list[exp.Expr] = [
                exp.cast(exp.column(quoted(n), table="seed"), t).as_(quoted(n))
                for n, t in zip(names, types, strict=True)
            ]
            query = exp.select(*projections).from_(values)
        else:
            projections = [
                exp.cast(exp.null(), t).as_(quoted(n)) for n, t in zip(names, types, strict=True)
            ]
            query = exp.select(*projections).where(exp.false())
        # The engine spells the declared types as it reports them everywhere else (INT is
        # INTEGER, TEXT is VARCHAR), so a seed and a file of the same schema agree.
        try:
            described = ctx.catalog.describe(query)
        except ProphecyError as exc:
            ctx.issue("bad_seed", f"cannot build the seed rows: {exc}", "columns")
            return None
        columns = [
            Column(n, dtype, frozenset({(ctx.gem.id, n)}))
            for n, (_, dtype) in zip(names, described, strict=True)
        ]
        return GemOutput(query, columns)


class TargetProps(Properties):
    format: Literal["table", "csv", "parquet", "json", "excel", "xml"] = Field(
        default="table", description="Write a warehouse table or a file"
    )
    table: str | None = Field(default=None, pattern=TABLE_NAME, description="[schema.]table")
    path: str | None = Field(
        default=None,
        min_length=1,
        description="File path, relative to the project (or to the connection's root)",
    )
    connection: str | None = Field(
        default=None,
        pattern=CONNECTION_NAME,
        description="Name of a files connection (S3, GCS, Azure, SFTP, a folder) to write "
        "the file to; empty writes into the project",
    )
    mode: Literal["overwrite", "append", "error_if_exists", "merge"] = Field(
        default="overwrite",
        description="overwrite replaces; append adds rows; error_if_exists refuses to touch "
        "existing data; merge upserts on the key columns",
    )
    keys: list[str] = Field(default_factory=list, description="merge: key columns")
    header: bool = Field(default=True, description="csv/excel: write a header line")
    sheet: str | None = Field(
        default=None,
        min_length=1,
        max_length=31,
        description="excel: worksheet name (default: Sheet1)",
    )
    root_tag: str = Field(
        default="rows",
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$",
        description="xml: element name of the document's root",
    )
    row_tag: str = Field(
        default="row",
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$",
        description="xml: element name of each row",
    )

    @model_validator(mode="after")
    def _needs_location(self) -> TargetProps:
        if self.format == "table" and not self.table:
            raise ValueError("a table target needs a table name")
        if self.format == "table" and self.connection:
            raise ValueError("a table target writes no file: remove the connection")
        if self.format != "table" and not self.path:
            raise ValueError(f"a {self.format} target needs a path")
        if self.mode == "merge" and not self.keys:
            raise ValueError("merge mode needs at least one key column")
        return self


def writable_input(ctx: GemContext, keys: list[str]) -> bool:
    """Whether the input can be written as a table (its column names differ) keyed on
    ``keys`` (each a column of it); issues say what is not."""
    ok = all([ctx.column(key, "keys", i) is not None for i, key in enumerate(keys)])
    names = [c.name.lower() for c in ctx.input.columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        ctx.issue(
            "duplicate_columns",
            f"cannot write duplicate column names: {', '.join(duplicates)}",
        )
        ok = False
    return ok


class Target(GemKind):
    kind = "Target"
    category = "Source/Target"
    summary = "Write to a warehouse table or a file (overwrite, append, error if exists, merge)"
    Props = TargetProps
    row_wise = True
    has_output = False

    def build(self, props: TargetProps, ctx: GemContext) -> GemOutput | None:
        ok = writable_input(ctx, props.keys)
        if through_connector(props) and not self._connector_ok(props, ctx):
            ok = False
        if not ok:
            return None
        return GemOutput(star_select(ctx.input), list(ctx.input.columns))

    def local_paths(self, props: TargetProps) -> list[LocalPath]:
        if props.format in FILE_FORMATS and props.connection is None and props.path:
            return [LocalPath("path", props.path, "write")]
        return []

    def _connector_ok(self, props: TargetProps, ctx: GemContext) -> bool:
        """What can be checked before the run of a file the connector writes: the mode, the
        connection and that the path stays inside its root."""
        if props.mode == "merge":
            where = f"through connection '{props.connection}'" if props.connection else ""
            ctx.issue(
                "unsupported_mode",
                f"merge is not available for {props.format} files{' ' if where else ''}{where}"
                ": use overwrite, append or error_if_exists",
                "mode",
            )
            return False
        assert props.path is not None
        if props.connection is None:
            return gem_store(ctx, None, props.path) is not None
        connection = ctx.connection(props.connection, "connection")
        if connection is None:
            return False
        if connection.kind != "files":
            ctx.issue(
                "connection_kind",
                f"connection '{props.connection}' is a {connection.kind} connection; "
                "a file needs a files connection",
                "connection",
            )
            return False
        return _path_ok(ctx, props.path)

    def write(
        self,
        props: TargetProps,
        engine: Engine,
        query: exp.Query,
        connections: ConnectionResolver | None,
        docs: TableDocs | None = None,
    ) -> int:
        if not through_connector(props):
            return engine.write(query, write_spec(props, docs))
        from prophecy_jupyter.connectors.files import local_store, open_store, write_table

        assert props.path is not None
        root = project_root(engine)
        if props.connection is None:
            store = local_store(root)
        elif connections is None:
            raise EngineError(f"connection '{props.connection}' needs a project")
        else:
            store = open_store(connections(props.connection), root)
        with store:
            table = engine.fetch(query, "arrow")
            return write_table(
                store,
                props.path,
                _file_format(props.format),
                table,
                props.mode,
                file_options(props),
            )


def through_connector(props: SourceProps | TargetProps) -> bool:
    """Whether the file connector (rather than the engine) reads or writes this file."""
    return props.connection is not None or props.format in CONNECTOR_FORMATS


def project_root(engine: object) -> Path:
    """The folder an engine resolves relative paths in: the project's."""
    root = getattr(engine, "root", None)
    return Path(root) if root is not None else Path.cwd()


def file_options(props: SourceProps | TargetProps) -> FileOptions:
    from prophecy_jupyter.connectors.files import FileOptions

    if isinstance(props, SourceProps):
        return FileOptions(
            header=props.header,
            delimiter=props.delimiter,
            sheet=props.sheet,
            row_path=props.row_path,
        )
    return FileOptions(
        header=props.header, sheet=props.sheet, root_tag=props.root_tag, row_tag=props.row_tag
    )


def _file_format(fmt: str) -> Literal["csv", "parquet", "json", "excel", "xml"]:
    assert fmt in FILE_FORMATS
    return fmt  # type: ignore[return-value]


def _path_ok(ctx: GemContext, path: str) -> bool:
    from prophecy_jupyter.connectors.files import relative_path_problem

    problem = relative_path_problem(path)
    if problem is not None:
        ctx.issue("path", problem, "path")
        return False
    return True


def gem_store(ctx: GemContext, connection: str | None, path: str) -> FileStore | None:
    """The store a gem reads ``path`` from: its ``files`` connection, or the project
    folder, whose files a path must not leave. ``None``, with an issue on the property at
    fault, when there is none."""
    from prophecy_jupyter.connectors.files import local_store, open_store, project_path_problem

    root = project_root(ctx.catalog)
    if connection is None:
        problem = project_path_problem(root, path)
        if problem is not None:
            ctx.issue("path", problem, "path")
            return None
        return local_store(root)
    resolved = ctx.connection(connection, "connection")
    if resolved is None:
        return None
    if resolved.kind != "files":
        ctx.issue(
            "connection_kind",
            f"connection '{connection}' is a {resolved.kind} connection; "
            "a file needs a files connection",
            "connection",
        )
        return None
    if not _path_ok(ctx, path):
        return None
    try:
        return open_store(resolved, root)
    except ProphecyError as exc:
        ctx.issue("connection", str(exc), "connection")
        return None


def write_spec(props: TargetProps, docs: TableDocs | None = None) -> WriteSpec:
    """How the engine writes a Target's rows; a table gets ``docs`` as its comments."""
    # The engines package imports this module (DuckDB reads Sources' tables): import late.
    from prophecy_jupyter.engines.base import WriteSpec

    assert props.format in ENGINE_FORMATS | {"table"}, "connector formats write in Target.write"
    spec = WriteSpec(
        format=props.format,  # type: ignore[arg-type]
        mode=props.mode,
        table=props.table,
        path=props.path,
        keys=list(props.keys),
        header=props.header,
    )
    if props.format == "table" and docs is not None:
        spec.table_comment = docs.comment
        spec.column_comments = dict(docs.columns)
    return spec


def written_relation(props: TargetProps) -> exp.Query:
    """A query that reads back what a Target wrote (a file the engine can read itself)."""
    if props.format == "table":
        assert props.table is not None
        return exp.select(exp.Star()).from_(table_expression(props.table))
    assert props.path is not None
    if through_connector(props):
        raise EngineError(
            f"{props.path} was written through the file connector; read it with a Source "
            f"of format {props.format}"
            + (f" and connection {props.connection}" if props.connection else "")
        )
    return exp.select(exp.Star()).from_(file_reader(props.format, props.path, props.header))


def reading_back(props: TargetProps) -> dict[str, Any]:
    """The properties of a file Source that reads what a file Target wrote, through the same
    connection, sheet or elements."""
    assert props.format != "table" and props.path is not None
    read: dict[str, Any] = {"format": props.format, "path": props.path}
    if props.connection is not None:
        read["connection"] = props.connection
    if props.format in {"csv", "excel"}:
        read["header"] = props.header
    if props.format == "excel":
        read["sheet"] = props.sheet or "Sheet1"
    if props.format == "xml":
        read["row_path"] = f"/{props.root_tag}/{props.row_tag}"
    return read


GEMS: list[type[GemKind]] = [Source, Target]
