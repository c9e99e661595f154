"""What a gem kind is, and the context it compiles in.

A gem kind declares its ports and a pydantic model of its properties (whose JSON Schema
drives the properties form), and implements one method, `GemKind.build`, that returns the
gem's SELECT over its inputs together with its output columns. Validation and schema
inference are the same code path as compilation, so they cannot disagree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.schema import MappingSchema

from prophecy_jupyter.compiler.columns import UNKNOWN, Column, find_column, union_lineage
from prophecy_jupyter.compiler.expressions import (
    ExpressionProblem,
    ExpressionRejected,
    node_position,
    parse_expression,
)
from prophecy_jupyter.errors import Issue, ProphecyError
from prophecy_jupyter.model.pipeline import Gem, pointer

if TYPE_CHECKING:
    from prophecy_jupyter.connections import ResolvedConnection
    from prophecy_jupyter.engines.base import Engine, TableDocs


class Properties(BaseModel):
    """Base of every gem's properties model: unknown keys are errors, not silently kept."""

    model_config = ConfigDict(extra="forbid")


class Catalog(Protocol):
    """What the compiler needs from an engine: the columns of a relation, without scanning it."""

    def describe(self, query: exp.Query) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class InputRelation:
    """One connected input as a gem sees it: its alias in expressions, its CTE, its columns."""

    alias: str
    columns: list[Column]

    @property
    def table(self) -> exp.Table:
        return exp.Table(this=exp.to_identifier(self.alias, quoted=True))


@dataclass
class GemOutput:
    query: exp.Query
    columns: list[Column]


@dataclass
class GemContext:
    """Everything a gem may use while it builds; issues are collected, not raised."""

    gem: Gem
    index: int
    inputs: list[InputRelation]
    parameters: dict[str, exp.Expr]
    catalog: Catalog
    dialect: str = "duckdb"
    issues: list[Issue] = field(default_factory=list)
    gem_ids: frozenset[str] = frozenset()
    """Lower-cased ids of every gem in the pipeline: names a table reference must not shadow."""
    planned_tables: Mapping[tuple[str, str], list[Column]] = field(default_factory=dict)
    """Columns that Targets built earlier in the pipeline write, by (schema, table): what a
    Source reading such a table sees when the table does not exist before the run."""
    connections: Callable[[str], ResolvedConnection] | None = None
    """Looks up the project's connections (with their secrets) for connector gems; None
    where the front door has no project."""
    upstream_query: Callable[[str], exp.Query] | None = None
    """The whole statement (its ancestors as CTEs) of an input, by its alias: for a gem
    that reads its input's rows while it builds (DynamicInput); None where not offered."""
    fetch_limit: int | None = None
    """How many rows a gem that fetches from outside the engine (a database, an API) needs
    while it builds: None for all of them, as a run does; a front door that only validates
    or previews may bound it."""

    # -- issues -------------------------------------------------------------------------
    def field_pointer(self, *path: str | int) -> str:
        return pointer("gems", self.index, "properties", *path)

    def issue(
        self,
        code: str,
        message: str,
        *path: str | int,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.issues.append(
            Issue(
                code=code,
                message=message,
                gem_id=self.gem.id,
                field=self.field_pointer(*path) if path else pointer("gems", self.index),
                line=line,
                column=column,
            )
        )

    def connection(self, name: str, *path: str | int) -> ResolvedConnection | None:
        """The connection a property names, or ``None`` with an issue on that property."""
        if self.connections is None:
            self.issue("no_connections", "connections need a project", *path)
            return None
        try:
            return self.connections(name)
        except ProphecyError as exc:
            self.issue("unknown_connection", str(exc), *path)
            return None

    def fetched(self, frame: Any, key: str, *path: str | int) -> GemOutput | None:
        """Rows a connector fetched from outside the engine (an API, a database, a remote
        file: a pandas, polars or Arrow frame) as this gem's output.

        The frame is registered with the engine the pipeline compiles on, which is the
        session a preview or run then executes on, under a name private to the gem and
        ``key`` (what was fetched, e.g. a hash of the properties), so that the compiled
        query reads it like any table.
        """
        register = getattr(self.catalog, "register_frame", None)
        if register is None:
            self.issue("no_frames", "this engine cannot read rows fetched by a connector", *path)
            return None
        digest = hashlib.sha1(f"{self.gem.id}\0{key}".encode()).hexdigest()[:16]
        name = f"__prophecy_in_{digest}"
        try:
            register(name, frame)
            query = exp.select(exp.Star()).from_(exp.to_identifier(name, quoted=True))
            described = self.catalog.describe(query)
        except ProphecyError as exc:
            self.issue("unreadable_source", f"cannot read the fetched rows: {exc}", *path)
            return None
        columns = [
            Column(column, dtype, frozenset({(self.gem.id, column)})) for column, dtype in described
        ]
        return GemOutput(query, columns)

    def problem(self, problem: ExpressionProblem, *path: str | int) -> None:
        self.issue(problem.code, problem.message, *path, line=problem.line, column=problem.column)

    # -- inputs -------------------------------------------------------------------------
    @property
    def input(self) -> InputRelation:
        return self.inputs[0]

    def all_columns(self) -> list[Column]:
        return [c for rel in self.inputs for c in rel.columns]

    def column(self, name: str, *path: str | int) -> Column | None:
        """Look up an input column named in a property (not an expression)."""
        found = [c for rel in self.inputs if (c := find_column(rel.columns, name)) is not None]
        if not found:
            self.issue("unknown_column", f"unknown column '{name}'{self._available()}", *path)
            return None
        if len(found) > 1:
            self.issue("ambiguous_column", f"column '{name}' is in more than one input", *path)
            return None
        return found[0]

    def _available(self) -> str:
        names = [c.name for c in self.all_columns()]
        if not names:
            return ""
        shown = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
        return f"; available: {shown}"

    # -- expressions --------------------------------------------------------------------
    def expression(
        self, text: str, *path: str | int, extra_columns: Sequence[Column] = ()
    ) -> exp.Expr | None:
        """Parse, check and bind one user expression; ``None`` (with issues) if it is bad.

        Column references must name a column of an input (qualified by the input's gem id
        when ambiguous) or one of ``extra_columns`` (e.g. aggregate outputs in HAVING).
        """
        try:
            tree = parse_expression(text, self.dialect)
        except ExpressionRejected as rejected:
            self.problem(rejected.problem, *path)
            return None
        tree, bound = self.bind_parameters(tree, *path)
        checked = self._check_columns(tree, path, extra_columns)
        return tree if bound and checked else None

    def bind_parameters(self, tree: exp.Expr, *path: str | int) -> tuple[exp.Expr, bool]:
        """``tree`` with each ``$name`` replaced by its pipeline parameter's literal (in the
        AST: a value never becomes SQL text), and whether every one was known; an unknown
        one is an issue at ``path``, with its line and column."""
        ok = True
        for node in list(tree.find_all(exp.Placeholder, exp.Parameter)):
            name = str(node.name)
            literal = self.parameters.get(name.lower())
            if literal is None:
                line, col = node_position(node)
                known = ", ".join(sorted(self.parameters)) or "none declared"
                self.issue(
                    "unknown_parameter",
                    f"unknown parameter ${name} ({known})",
                    *path,
                    line=line,
                    column=col,
                )
                ok = False
            elif node is tree:
                tree = literal.copy()
            else:
                node.replace(literal.copy())
        return tree, ok

    def _check_columns(
        self, tree: exp.Expr, path: tuple[str | int, ...], extra: Sequence[Column]
    ) -> bool:
        ok = True
        aliases = {rel.alias.lower(): rel for rel in self.inputs}
        for col in tree.find_all(exp.Column):
            if isinstance(col.this, exp.Star):
                continue
            line, pos = node_position(col)
            table = col.table
            if table and table.lower() in aliases and not col.args.get("db"):
                rel = aliases[table.lower()]
                found = find_column(rel.columns, col.name)
                if found is None:
                    self.issue(
                        "unknown_column",
                        f"input '{table}' has no column '{col.name}'",
                        *path,
                        line=line,
                        column=pos,
                    )
                    ok = False
                else:
                    _canonical(col, found.name, rel.alias)
                continue
            # An unqualified name, or ``struct_col.field``: the first part must be a column.
            head = table if table else col.name
            matches = [
                rel.alias for rel in self.inputs if find_column(rel.columns, head) is not None
            ]
            if not matches and find_column(extra, head) is None:
                self.issue(
                    "unknown_column",
                    f"unknown column '{head}'{self._available()}",
                    *path,
                    line=line,
                    column=pos,
                )
                ok = False
            elif len(matches) == 1 and not table:
                found = find_column(aliases[matches[0].lower()].columns, head)
                assert found is not None
                _canonical(col, found.name, None)
            elif len(matches) > 1:
                self.issue(
                    "ambiguous_column",
                    f"column '{head}' is in inputs {', '.join(matches)}; "
                    f"qualify it, e.g. {matches[0]}.{head}",
                    *path,
                    line=line,
                    column=pos,
                )
                ok = False
        return ok

    # -- schema inference -----------------------------------------------------------------
    def lineage(self, tree: exp.Expr) -> frozenset[tuple[str, str]]:
        refs = []
        for col in tree.find_all(exp.Column):
            for rel in self._owners(col):
                found = find_column(rel.columns, col.table if self._is_struct(col) else col.name)
                if found is not None:
                    refs.append(found)
        return union_lineage(refs)

    def _is_struct(self, col: exp.Column) -> bool:
        aliases = {rel.alias.lower() for rel in self.inputs}
        return bool(col.table) and col.table.lower() not in aliases

    def _owners(self, col: exp.Column) -> Iterable[InputRelation]:
        if col.table and not self._is_struct(col):
            return [rel for rel in self.inputs if rel.alias.lower() == col.table.lower()]
        return self.inputs

    def infer_type(self, tree: exp.Expr, extra: Sequence[Column] = ()) -> str:
        """Best-effort type of an expression over the inputs, without touching data.

        A bare column keeps its input's type; anything else goes through sqlglot's type
        annotator over just the columns it references, memoised on (expression, their
        types) because pipelines repeat the same expressions over the same schemas.
        """
        probe = tree.copy()
        referenced: dict[str, dict[str, str]] = {}
        for col in probe.find_all(exp.Column):
            if isinstance(col.this, exp.Star):
                continue
            struct = self._is_struct(col)
            head = col.table if struct else col.name
            owners = [rel for rel in self._owners(col) if find_column(rel.columns, head)]
            found = find_column(owners[0].columns, head) if owners else find_column(extra, head)
            if found is None:
                continue
            owner = owners[0].alias if owners else "__extra"
            if isinstance(tree, exp.Column) and not struct:
                return found.type
            if found.type != UNKNOWN:
                referenced.setdefault(owner, {})[found.name] = found.type
            part = "db" if struct else "table"
            col.set(part, exp.to_identifier(owner))
        key = (
            probe.sql(self.dialect),
            tuple((o, tuple(sorted(cols.items()))) for o, cols in sorted(referenced.items())),
            self.dialect,
        )
        cached = _TYPE_CACHE.get(key)
        if cached is None:
            cached = _annotate(probe, referenced, self.dialect)
            if len(_TYPE_CACHE) > 50_000:
                _TYPE_CACHE.clear()
            _TYPE_CACHE[key] = cached
        return cached

    def computed(self, name: str, tree: exp.Expr, extra: Sequence[Column] = ()) -> Column:
        return Column(name, self.infer_type(tree, extra), self.lineage(tree))


_TYPE_CACHE: dict[tuple[object, ...], str] = {}


def _annotate(probe: exp.Expr, referenced: dict[str, dict[str, str]], dialect: str) -> str:
    try:
        schema = MappingSchema(dict(referenced), dialect=dialect, normalize=False)
        tables = [exp.Table(this=exp.to_identifier(name)) for name in referenced or ["__none"]]
        select = exp.select(exp.alias_(probe, "__t"), copy=False).from_(tables[0], copy=False)
        for table in tables[1:]:
            select = select.join(table, join_type="CROSS", copy=False)
        dtype = annotate_types(select, schema=schema, dialect=dialect).selects[0].type
    except Exception:  # inference is best effort; an odd type must not break compiling
        return UNKNOWN
    if dtype is None or dtype.is_type(exp.DataType.Type.UNKNOWN):
        return UNKNOWN
    return dtype.sql(dialect)


def _canonical(col: exp.Column, name: str, table: str | None) -> None:
    """Spell a checked column reference exactly as the schema does, quoted."""
    col.set("this", exp.to_identifier(name, quoted=True))
    if table is not None:
        col.set("table", exp.to_identifier(table, quoted=True))


@dataclass(frozen=True)
class LocalPath:
    """A file or folder of the project that a gem reads, lists or writes itself (no
    connection involved), named by one of its properties: what a front door checks before
    compiling or running (it must stay inside the root; what is read must be there)."""

    field: str
    """The property that names it, e.g. ``path``."""
    path: str
    use: Literal["read", "list", "write", "template"]
    """``read``: a file, or a glob matching at least one; ``list``: a folder; ``write``: a
    file whose folder can be created; ``template``: a path filled in per input row, whose
    confinement alone can be checked."""


class GemKind:
    """Base class of gem kinds. Subclasses set the class attributes and implement `build`."""

    kind: ClassVar[str]
    category: ClassVar[str]
    summary: ClassVar[str]
    Props: ClassVar[type[Properties]]
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    has_output: ClassVar[bool] = True
    row_wise: ClassVar[bool] = False
    """A one-input gem that keeps, drops or rewrites each row on its own (filters, cleansing,
    flattening): see `subset_inputs`."""

    def build(self, props: Any, ctx: GemContext) -> GemOutput | None:
        raise NotImplementedError

    def write(
        self,
        props: Any,
        engine: Engine,
        query: exp.Query,
        connections: Callable[[str], ResolvedConnection] | None,
        docs: TableDocs | None = None,
    ) -> int:
        """Deliver the rows of ``query`` (gems without an output, the Targets); returns how
        many. A warehouse Target writes through the engine; an egress gem fetches the rows
        and hands them to its connector (a database, a mail server, a remote file).
        ``docs`` is the documentation a written table gets as comments (`target_docs`);
        gems that write no warehouse table ignore it."""
        raise NotImplementedError(f"{self.kind} gems do not write")

    def subset_inputs(self, props: Any, inputs: int) -> frozenset[int]:
        """Input ports on which the gem is monotone: fed only some of that input's rows, it
        outputs only rows it would also output given all of them (filters and row-wise maps
        are; aggregates, sorts and windows are not). A preview may then read a sample of a
        large source upstream and still show only true output rows."""
        return frozenset({0}) if self.row_wise else frozenset()

    def local_paths(self, props: Any) -> list[LocalPath]:
        """The project files and folders ``props`` make the gem read, list or write without
        a connection (remote files, reached through a connection, are not among them)."""
        return []

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The catalog entry the palette and properties form are generated from."""
        return {
            "kind": cls.kind,
            "category": cls.category,
            "summary": cls.summary,
            "inputs": {"min": cls.min_inputs, "max": cls.max_inputs},
            "has_output": cls.has_output,
            "properties_schema": cls.Props.model_json_schema(),
        }


def star_select(rel: InputRelation) -> exp.Select:
    return exp.select(exp.Star()).from_(rel.table, copy=False)


def quoted(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def column_ref(name: str, table: str | None = None) -> exp.Column:
    return exp.column(quoted(name), table=quoted(table) if table else None)
