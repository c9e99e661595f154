"""Source and Target: where data enters and leaves a pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator
from sqlglot import exp

from prophecy_jupyter.compiler.columns import Column
from prophecy_jupyter.errors import ProphecyError
from prophecy_jupyter.gems.base import (
    GemContext,
    GemKind,
    GemOutput,
    Properties,
    quoted,
    star_select,
)

if TYPE_CHECKING:
    from prophecy_jupyter.connections import ConnectionResolver
    from prophecy_jupyter.engines.base import Engine, WriteSpec

TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$"


class SeedColumn(Properties):
    name: str = Field(min_length=1, max_length=256)
    type: str = Field(default="VARCHAR", description="SQL type, e.g. INTEGER, DOUBLE, DATE")


class SourceProps(Properties):
    format: Literal["csv", "parquet", "json", "table", "seed"] = Field(
        description="csv/parquet/json read files; table reads a table; seed is inline rows"
    )
    path: str | None = Field(
        default=None,
        description="File path or glob, relative to the project folder",
        min_length=1,
    )
    table: str | None = Field(default=None, pattern=TABLE_NAME, description="[schema.]table")
    header: bool = Field(default=True, description="csv: first line holds column names")
    delimiter: str = Field(default=",", min_length=1, max_length=4, description="csv separator")
    columns: list[SeedColumn] = Field(
        default_factory=list, description="seed: column names and types"
    )
    rows: list[list[Any]] = Field(
        default_factory=list, description="seed: one list of values per row"
    )

    @model_validator(mode="after")
    def _needs_location(self) -> SourceProps:
        if self.format in {"csv", "parquet", "json"} and not self.path:
            raise ValueError(f"a {self.format} source needs a path")
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
                [tuple(seed_literal(v) for v in row) for row in props.rows],
                alias="seed",
                columns=names,
            )
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
    format: Literal["table", "csv", "parquet", "json"] = Field(
        default="table", description="Write a warehouse table or a file"
    )
    table: str | None = Field(default=None, pattern=TABLE_NAME, description="[schema.]table")
    path: str | None = Field(
        default=None, min_length=1, description="File path, relative to the project"
    )
    mode: Literal["overwrite", "append", "error_if_exists", "merge"] = Field(
        default="overwrite",
        description="overwrite replaces; append adds rows; error_if_exists refuses to touch "
        "existing data; merge upserts on the key columns",
    )
    keys: list[str] = Field(default_factory=list, description="merge: key columns")
    header: bool = Field(default=True, description="csv: write a header line")

    @model_validator(mode="after")
    def _needs_location(self) -> TargetProps:
        if self.format == "table" and not self.table:
            raise ValueError("a table target needs a table name")
        if self.format != "table" and not self.path:
            raise ValueError(f"a {self.format} target needs a path")
        if self.mode == "merge" and not self.keys:
            raise ValueError("merge mode needs at least one key column")
        return self


class Target(GemKind):
    kind = "Target"
    category = "Source/Target"
    summary = "Write to a warehouse table or a file (overwrite, append, error if exists, merge)"
    Props = TargetProps
    row_wise = True
    has_output = False

    def build(self, props: TargetProps, ctx: GemContext) -> GemOutput | None:
        ok = True
        for i, key in enumerate(props.keys):
            if ctx.column(key, "keys", i) is None:
                ok = False
        names = [c.name.lower() for c in ctx.input.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            ctx.issue(
                "duplicate_columns",
                f"cannot write duplicate column names: {', '.join(duplicates)}",
            )
            ok = False
        if not ok:
            return None
        return GemOutput(star_select(ctx.input), list(ctx.input.columns))

    def write(
        self,
        props: TargetProps,
        engine: Engine,
        query: exp.Query,
        connections: ConnectionResolver | None,
    ) -> int:
        return engine.write(query, write_spec(props))


def write_spec(props: TargetProps) -> WriteSpec:
    # The engines package imports this module (DuckDB reads Sources' tables): import late.
    from prophecy_jupyter.engines.base import WriteSpec

    return WriteSpec(
        format=props.format,
        mode=props.mode,
        table=props.table,
        path=props.path,
        keys=list(props.keys),
        header=props.header,
    )


def written_relation(props: TargetProps) -> exp.Query:
    """A query that reads back what a Target wrote."""
    if props.format == "table":
        assert props.table is not None
        return exp.select(exp.Star()).from_(table_expression(props.table))
    assert props.path is not None
    return exp.select(exp.Star()).from_(file_reader(props.format, props.path, props.header))


GEMS: list[type[GemKind]] = [Source, Target]
