"""DynamicInput: for each row of its input, a query or a file built from that row's values,
all of their rows unioned by column name.

Templates name input columns in braces:

- ``query`` mode: a SELECT in which ``{column}`` stands for a value
  (``WHERE region = {region}``) or a table name (``FROM {table_name}``). It runs on the
  engine the pipeline runs on, or on a ``database`` connection when one is given.
- ``file`` mode: a path such as ``data/{region}/orders_{day}.csv`` read with the table
  functions the Source gem uses (csv, parquet, json).

Values are substituted in the parsed statement, never in its text: a value becomes a typed
literal (``x'; DROP TABLE t; --`` is a string like any other), a table name must be a
``[schema.]table`` identifier and a path part a plain file name, or the gem reports an
issue. Braces inside quotes are text (build strings with ``'prefix_' || {region}``).
``$name`` reads a pipeline parameter, as everywhere.

The input's rows are read while the pipeline compiles (its statement run on the engine),
at most ``max_rows`` of them: a larger input is an issue, not a silent cut.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, model_validator
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from prophecy_jupyter.compiler.columns import UNKNOWN, Column, find_column
from prophecy_jupyter.compiler.expressions import (
    ExpressionProblem,
    ExpressionRejected,
    check_read_only,
    node_position,
    rejected_at,
    token_position,
    true_positions,
)
from prophecy_jupyter.connections import ResolvedConnection
from prophecy_jupyter.connectors.database import (
    Database,
    DatabaseConnectorError,
    sqlglot_dialect,
)
from prophecy_jupyter.errors import ProphecyError
from prophecy_jupyter.gems.base import (
    GemContext,
    GemKind,
    GemOutput,
    LocalPath,
    Properties,
    quoted,
)
from prophecy_jupyter.gems.database import database_connection, limited
from prophecy_jupyter.gems.sources import TABLE_NAME, file_reader, table_expression

SLOT = "__prophecy_slot_{}"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TABLE = re.compile(TABLE_NAME)
PATH_VALUE = re.compile(r"^[A-Za-z0-9_\-=+@ ][A-Za-z0-9_.\-=+@ ]*$")
"""What a value may be inside a path: a plain file name (no separator, no glob, no leading
dot), so a row cannot lead the read to another folder."""
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


class DynamicInputProps(Properties):
    mode: Literal["query", "file"] = Field(
        default="query", description="query: a SELECT per row; file: a file per row"
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        description="query: a SELECT where {column} is the row's value of an input column "
        "(a literal, or a table name after FROM/JOIN)",
    )
    connection: str | None = Field(
        default=None,
        description="query: a database connection to run it on (default: the pipeline's engine)",
    )
    format: Literal["csv", "parquet", "json"] = Field(default="csv", description="file: format")
    path: str | None = Field(
        default=None,
        min_length=1,
        description="file: a path relative to the project, e.g. data/{region}.csv",
    )
    header: bool = Field(default=True, description="csv: first line holds column names")
    delimiter: str = Field(default=",", min_length=1, max_length=4, description="csv separator")
    max_rows: int = Field(
        default=1000, ge=1, le=100_000, description="Most input rows (queries or files) to run"
    )
    origin_column: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="If set, an added column naming where each row came from: the file "
        "path, or the 1-based number of the input row whose query produced it",
    )

    @model_validator(mode="after")
    def _needs_template(self) -> DynamicInputProps:
        if self.mode == "query" and not self.query:
            raise ValueError("query mode needs a query")
        if self.mode == "file" and not self.path:
            raise ValueError("file mode needs a path")
        return self


class SlotRejected(ProphecyError):
    """A row's value cannot stand where its slot is (not an identifier, not a file name)."""

    code = "invalid_value"


@dataclass
class Template:
    """A parsed SELECT whose ``{column}`` slots are marker identifiers, by marker."""

    tree: exp.Query
    slots: dict[str, str]
    """Marker → input column named in the braces."""
    tables: set[str]
    """Markers that stand for a table name."""


# -- query templates -------------------------------------------------------------------------
def _slot_tokens(tokens: list[Token]) -> tuple[list[Token], dict[str, str]]:
    """``{ name }`` token runs replaced by one marker identifier each (at the braces'
    position, so issues still point into the text the user wrote)."""
    out: list[Token] = []
    slots: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if (
            token.token_type == TokenType.L_BRACE
            and i + 2 < len(tokens)
            and tokens[i + 2].token_type == TokenType.R_BRACE
            and (
                IDENTIFIER.match(tokens[i + 1].text)
                or tokens[i + 1].token_type == TokenType.IDENTIFIER
            )
        ):
            marker = SLOT.format(len(slots))
            slots[marker] = tokens[i + 1].text
            closing = tokens[i + 2]
            out.append(
                Token(
                    TokenType.VAR,
                    marker,
                    line=closing.line,
                    col=closing.col,
                    start=token.start,
                    end=closing.end,
                )
            )
            i += 3
            continue
        out.append(token)
        i += 1
    return out, slots


def parse_template(text: str, dialect: str) -> Template:
    """A SELECT template parsed and held to the SQLStatement gem's rules (one read-only
    query, no file or environment functions, no table functions); raises
    `ExpressionRejected` at the position of what is wrong."""
    reader = Dialect.get_or_raise(dialect)
    try:
        tokens, slots = _slot_tokens(true_positions(reader.tokenize(text), text))
        parsed = [s for s in reader.parser().parse(tokens, text) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        raise ExpressionRejected(
            ExpressionProblem(
                "syntax",
                f"cannot parse the query: {first.get('description', str(exc))}",
                first.get("line"),
                first.get("col"),
            )
        ) from None
    except (TokenError, RecursionError) as exc:
        raise ExpressionRejected(
            ExpressionProblem("syntax", f"cannot parse the query: {exc}")
        ) from None
    if len(parsed) != 1:
        separator = next((t for t in tokens if t.token_type == TokenType.SEMICOLON), None)
        where = token_position(separator) if separator is not None else (None, None)
        raise ExpressionRejected(
            ExpressionProblem("multiple_statements", "write exactly one SELECT statement", *where)
        )
    tree = check_read_only(parsed[0], dialect, "use file mode")
    tables: set[str] = set()
    for ident in tree.find_all(exp.Identifier):
        if ident.name not in slots:
            continue
        parent = ident.parent
        if isinstance(parent, exp.Table) and parent.this is ident:
            tables.add(ident.name)
        elif not (isinstance(parent, exp.Column) and parent.this is ident and not parent.table):
            raise rejected_at(
                ident,
                "misplaced_slot",
                f"{{{slots[ident.name]}}} may stand for a value or a table name only",
            )
    return Template(tree, slots, tables)


def literal(value: Any) -> exp.Expr:
    """A value of an input row as a typed SQL literal (never as SQL text)."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return -exp.Literal.number(str(-value)) if value < 0 else exp.Literal.number(str(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return exp.cast(exp.Literal.string(repr(value)), "DOUBLE")
        return -exp.Literal.number(repr(-value)) if value < 0 else exp.Literal.number(repr(value))
    if isinstance(value, decimal.Decimal):
        return exp.cast(exp.Literal.string(str(value)), "DECIMAL(38, 10)")
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, dt.time):
        return exp.cast(exp.Literal.string(value.isoformat()), "TIME")
    return exp.Literal.string(str(value))


def instantiate(
    template: Template, values: dict[str, Any], gem_ids: frozenset[str] = frozenset()
) -> exp.Query:
    """The template with one row's values in place of its slots (``values`` by input
    column); a table-name value that is not a ``[schema.]table`` identifier, or that names a
    gem of the pipeline, raises `SlotRejected`."""
    tree = template.tree.copy()
    for ident in list(tree.find_all(exp.Identifier)):
        column = template.slots.get(ident.name)
        if column is None:
            continue
        value = values[column]
        parent = ident.parent
        if ident.name in template.tables:
            assert isinstance(parent, exp.Table)
            name = "" if value is None else str(value)
            qualified = parent.args.get("db") is not None
            if not (IDENTIFIER if qualified else TABLE).match(name):
                raise SlotRejected(f"{{{column}}} = {name!r} is not a table name ([schema.]table)")
            if name.lower() in gem_ids:
                raise SlotRejected(
                    f"{{{column}}} = {name!r} is the name of a gem; qualify it with its schema"
                )
            if qualified:
                ident.replace(quoted(name))
            else:
                named = table_expression(name)
                for part in ("this", "db", "catalog"):
                    parent.set(part, named.args.get(part))
        else:
            assert isinstance(parent, exp.Column)
            parent.replace(literal(value))
    return tree


# -- file templates --------------------------------------------------------------------------
def path_fields(template: str) -> list[str]:
    """The input columns a path template names; raises `ValueError` for a malformed one."""
    fields = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not IDENTIFIER.match(name) or spec or conversion:
            raise ValueError(f"{{{name}}} must name an input column, without a format")
        fields.append(name)
    return fields


def render_path(template: str, values: dict[str, Any]) -> str:
    """A path with each slot replaced by its value, each value a plain file name."""
    out = []
    for text, name, _, _ in string.Formatter().parse(template):
        out.append(text)
        if name is None:
            continue
        value = values[name]
        shown = "" if value is None else str(value)
        if not PATH_VALUE.match(shown) or shown in {".", ".."}:
            raise SlotRejected(
                f"{{{name}}} = {shown!r} cannot be part of a path: use letters, digits, "
                "spaces and _ - . = + @ (no separator, glob or leading dot)"
            )
        out.append(shown)
    return "".join(out)


def inside(path: str, root: Path | None) -> bool:
    """Whether a local path stays inside the project (``root``), as Source paths must;
    a URL (``s3://…``) is left to the engine."""
    if URL.match(path) and not path.lower().startswith("file://"):
        return True
    local = path.removeprefix("file://")
    if "\x00" in local or ".." in Path(local).parts:
        return False
    if root is None:
        return not Path(local).is_absolute()
    try:
        (root / local).resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


# -- the gem ---------------------------------------------------------------------------------
@dataclass
class _Branch:
    """One input row's relation: its statement, where it came from and its columns."""

    query: exp.Query
    origin: Any
    columns: list[tuple[str, str]]


class DynamicInput(GemKind):
    kind = "DynamicInput"
    category = "Source/Target"
    summary = "For each input row, run a query or read a file built from its values; union all"
    Props = DynamicInputProps

    def build(self, props: DynamicInputProps, ctx: GemContext) -> GemOutput | None:
        if props.mode == "file":
            return self._files(props, ctx)
        return self._queries(props, ctx)

    def local_paths(self, props: DynamicInputProps) -> list[LocalPath]:
        if props.mode == "file" and props.path:
            return [LocalPath("path", props.path, "template")]
        return []

    # -- input rows ----------------------------------------------------------------------
    def _rows(
        self, props: DynamicInputProps, ctx: GemContext, needed: Sequence[str], field: str
    ) -> list[dict[str, Any]] | None:
        """The input's rows (only the columns the template names), at most ``max_rows``."""
        columns: dict[str, Column] = {}
        for name in needed:
            found = find_column(ctx.input.columns, name)
            if found is None:
                names = ", ".join(c.name for c in ctx.input.columns)
                ctx.issue(
                    "unknown_column",
                    f"{{{name}}} is not a column of the input (its columns: {names})",
                    field,
                )
                return None
            columns[name] = found
        run = getattr(ctx.catalog, "query", None)
        if ctx.upstream_query is None or run is None:
            ctx.issue("no_input_rows", "this front door cannot read the input's rows")
            return None
        upstream = ctx.upstream_query(ctx.input.alias)
        picked: list[exp.Expr] = [
            exp.alias_(exp.column(quoted(c.name)), quoted(n)) for n, c in columns.items()
        ]
        projected = exp.select(*(picked or [exp.Literal.number(1)])).from_(
            upstream.subquery("__prophecy_rows")
        )
        try:
            _, rows = run(projected.limit(props.max_rows + 1))
        except ProphecyError as exc:
            ctx.issue("unreadable_input", f"cannot read the input's rows: {exc}")
            return None
        if len(rows) > props.max_rows:
            ctx.issue(
                "too_many_rows",
                f"the input has more than {props.max_rows} rows; filter it or raise max_rows",
                "max_rows",
            )
            return None
        keys = list(columns)
        return [dict(zip(keys, row, strict=False)) for row in rows]

    # -- query mode ----------------------------------------------------------------------
    def _queries(self, props: DynamicInputProps, ctx: GemContext) -> GemOutput | None:
        assert props.query is not None
        connection = None
        dialect = ctx.dialect
        if props.connection:
            connection = database_connection(ctx, props.connection, "connection")
            if connection is None:
                return None
            dialect = sqlglot_dialect(connection)
        try:
            template = parse_template(props.query, dialect)
        except ExpressionRejected as exc:
            ctx.problem(exc.problem, "query")
            return None
        if not ctx.bind_parameters(template.tree, "query")[1]:
            return None
        for marker, name in template.slots.items():
            if find_column(ctx.input.columns, name) is None:
                ident = next(i for i in template.tree.find_all(exp.Identifier) if i.name == marker)
                line, col = node_position(ident)
                names = ", ".join(c.name for c in ctx.input.columns)
                ctx.issue(
                    "unknown_column",
                    f"{{{name}}} is not a column of the input (its columns: {names})",
                    "query",
                    line=line,
                    column=col,
                )
                return None
        if connection is None:
            for table in template.tree.find_all(exp.Table):
                if (
                    isinstance(table.this, exp.Identifier)
                    and table.name not in template.slots
                    and not table.args.get("db")
                    and table.name.lower() in ctx.gem_ids
                ):
                    line, col = node_position(table)
                    ctx.issue(
                        "shadowed_table",
                        f"table '{table.name}' has the name of a gem, which would be read "
                        "instead; qualify it with its schema",
                        "query",
                        line=line,
                        column=col,
                    )
                    return None
        rows = self._rows(props, ctx, sorted(set(template.slots.values())), "query")
        if rows is None:
            return None
        tables = {template.slots[m] for m in template.tables}
        queries: list[tuple[exp.Query, Any, object]] = []
        try:
            for number, row in enumerate(rows, start=1):
                values = {name: row[name] for name in set(template.slots.values())}
                # Rows naming the same tables with values of the same types have the same
                # columns: each such shape is described once.
                shape = tuple(
                    (n, v if n in tables else type(v).__name__) for n, v in sorted(values.items())
                )
                queries.append((instantiate(template, values, ctx.gem_ids), number, shape))
        except SlotRejected as exc:
            ctx.issue(exc.code, f"input row {len(queries) + 1}: {exc}", "query")
            return None
        if not queries:
            if template.tables:
                ctx.issue(
                    "no_input_rows",
                    "the input has no rows, so no table to read is known",
                    "query",
                )
                return None
            nulls = {name: None for name in set(template.slots.values())}
            queries = [(limited(instantiate(template, nulls), 0), None, None)]
        if connection is not None:
            return self._on_database(props, ctx, connection, queries, dialect)
        return self._union(props, ctx, queries, "query")

    def _on_database(
        self,
        props: DynamicInputProps,
        ctx: GemContext,
        connection: ResolvedConnection,
        queries: list[tuple[exp.Query, Any, object]],
        dialect: str,
    ) -> GemOutput | None:
        tables = []
        texts = []
        try:
            with Database(connection) as database:
                for query, origin, _ in queries:
                    sql = limited(query, ctx.fetch_limit).sql(dialect=dialect)
                    texts.append(sql)
                    rows = database.read_sql(sql)
                    if props.origin_column:
                        rows = rows.append_column(
                            props.origin_column,
                            pa.array([origin] * rows.num_rows, type=pa.int64()),
                        )
                    tables.append(rows)
        except DatabaseConnectorError as exc:
            ctx.issue("unreadable_source", f"query {len(texts)}: {exc}", "query")
            return None
        try:
            union = pa.concat_tables(tables, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            ctx.issue("incompatible_results", f"the queries' results do not union: {exc}", "query")
            return None
        key = hashlib.sha1("\0".join([connection.name, *texts]).encode()).hexdigest()
        return ctx.fetched(union, key, "query")

    # -- file mode -----------------------------------------------------------------------
    def _files(self, props: DynamicInputProps, ctx: GemContext) -> GemOutput | None:
        assert props.path is not None
        try:
            fields = path_fields(props.path)
        except ValueError as exc:
            ctx.issue("bad_template", str(exc), "path")
            return None
        rows = self._rows(props, ctx, sorted(set(fields)), "path")
        if rows is None:
            return None
        root = getattr(ctx.catalog, "root", None)
        queries: list[tuple[exp.Query, Any, object]] = []
        for number, row in enumerate(rows, start=1):
            values = {name: row[name] for name in set(fields)}
            try:
                path = render_path(props.path, values)
            except SlotRejected as exc:
                ctx.issue(exc.code, f"input row {number}: {exc}", "path")
                return None
            if not inside(path, Path(root) if root is not None else None):
                ctx.issue("path", f"input row {number}: {path!r} is outside the project", "path")
                return None
            reader = file_reader(props.format, path, props.header, props.delimiter)
            queries.append((exp.select(exp.Star()).from_(reader), path, path))
        if not queries:
            ctx.issue("no_input_rows", "the input has no rows, so no file to read", "path")
            return None
        return self._union(props, ctx, queries, "path")

    # -- union by name -------------------------------------------------------------------
    def _union(
        self,
        props: DynamicInputProps,
        ctx: GemContext,
        queries: list[tuple[exp.Query, Any, object]],
        field: str,
    ) -> GemOutput | None:
        """Every relation's rows under the union of their column names (a column missing
        from one is NULL there), as ``UNION ALL`` of aligned SELECTs: what ``UNION ALL BY
        NAME`` means, written so that any engine runs it."""
        branches: list[_Branch] = []
        shapes: dict[object, list[tuple[str, str]]] = {}
        for index, (query, origin, shape) in enumerate(queries, start=1):
            described = shapes.get(shape)
            if described is None:
                try:
                    described = ctx.catalog.describe(query)
                except ProphecyError as exc:
                    what = f"{origin!r}" if field == "path" else f"the query of input row {index}"
                    ctx.issue("unreadable_source", f"cannot read {what}: {exc}", field)
                    return None
                shapes[shape] = described
            branches.append(_Branch(query, origin, described))
        names: list[str] = []
        types: dict[str, set[str]] = {}
        for branch in branches:
            for name, dtype in branch.columns:
                found = next((n for n in names if n.lower() == name.lower()), None)
                if found is None:
                    names.append(name)
                    found = name
                types.setdefault(found, set()).add(dtype)
        if props.origin_column and any(n.lower() == props.origin_column.lower() for n in names):
            ctx.issue(
                "duplicate_column",
                f"the rows already have a column '{props.origin_column}'",
                "origin_column",
            )
            return None
        selects = [_aligned(branch, names, props.origin_column) for branch in branches]
        columns = [
            Column(n, next(iter(types[n])) if len(types[n]) == 1 else UNKNOWN, frozenset())
            for n in names
        ]
        columns = [Column(c.name, c.type, frozenset({(ctx.gem.id, c.name)})) for c in columns]
        if props.origin_column:
            dtype = "VARCHAR" if field == "path" else "BIGINT"
            lineage = frozenset({(ctx.gem.id, props.origin_column)})
            columns.append(Column(props.origin_column, dtype, lineage))
        return GemOutput(_balanced_union(selects), columns)


def _aligned(branch: _Branch, names: list[str], origin_column: str | None) -> exp.Select:
    own = {n.lower(): n for n, _ in branch.columns}
    projections: list[exp.Expr] = []
    for name in names:
        present = own.get(name.lower())
        value: exp.Expr = exp.column(quoted(present)) if present is not None else exp.null()
        projections.append(exp.alias_(value, quoted(name)))
    if origin_column:
        origin = branch.origin
        value = exp.Literal.string(origin) if isinstance(origin, str) else literal(origin)
        projections.append(exp.alias_(value, quoted(origin_column)))
    return exp.select(*projections).from_(branch.query.subquery("__prophecy_branch"))


def _balanced_union(selects: list[exp.Select]) -> exp.Query:
    """``UNION ALL`` of many SELECTs as a balanced tree: as deep as log2 of their number,
    so that a thousand of them render without deep recursion."""
    level: list[exp.Query] = list(selects)
    while len(level) > 1:
        paired: list[exp.Query] = []
        for i in range(0, len(level) - 1, 2):
            paired.append(exp.Union(this=level[i], expression=level[i + 1], distinct=False))
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


GEMS: list[type[GemKind]] = [DynamicInput]
