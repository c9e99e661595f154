"""The columns and types a compiled statement works with, for rules that depend on them.

Whether ``len(x)`` counts characters or list elements, whether ``x[1]`` reads a list, what
``*`` expands to: the answer is in the types of the relations the statement reads. The
compiler knows them (each gem's output columns, spelled as DuckDB spells types); `Relations`
takes them by relation name (the gem ids the CTEs are named after) and derives everything else
from the tree itself: CTE bodies, subqueries, VALUES, UNNEST and row generators.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types

from prophecy_jupyter.compiler.columns import UNKNOWN, Column

SOURCE_DIALECT = "duckdb"
"""The dialect of the trees the compiler builds, and of the type names of its columns."""


@dataclass(frozen=True)
class Field:
    """One column of a relation: its name and type (``None`` when unknown)."""

    name: str
    type: exp.DataType | None


Schema = list[Field]


def parse_type(text: str) -> exp.DataType | None:
    if text == UNKNOWN:
        return None
    try:
        return exp.DataType.build(text, dialect=SOURCE_DIALECT)
    except Exception:  # an exotic engine type is opaque, not an error
        return None


def fields_of(columns: Iterable[Column]) -> Schema:
    return [Field(c.name, parse_type(c.type)) for c in columns]


class Relations:
    """Types of the nodes of one tree, given the columns of the relations it reads by name."""

    def __init__(self, known: Mapping[str, Sequence[Column]] | None = None) -> None:
        self._known = {name.lower(): fields_of(cols) for name, cols in (known or {}).items()}
        self._types: dict[int, tuple[exp.Expr, exp.DataType | None]] = {}

    # -- relations ------------------------------------------------------------------------
    def sources(self, select: exp.Select) -> list[exp.Expr]:
        """The relations a SELECT reads: its FROM and each JOIN."""
        found: list[exp.Expr] = []
        from_ = select.args.get("from_")
        if from_ is not None:
            found.append(from_.this)
        found.extend(join.this for join in select.args.get("joins") or [])
        return found

    def source_columns(self, source: exp.Expr) -> Schema | None:
        """Columns of one FROM/JOIN item, under its alias's column names if it gives them."""
        columns = self._unaliased_columns(source)
        alias = source.args.get("alias")
        names = [c.name for c in alias.columns] if isinstance(alias, exp.TableAlias) else []
        if columns is None or not names:
            return columns
        renamed = [Field(n, c.type) for n, c in zip(names, columns, strict=False)]
        return renamed + columns[len(names) :]

    def _unaliased_columns(self, source: exp.Expr) -> Schema | None:
        if isinstance(source, exp.Table):
            target = source.this
            if isinstance(target, exp.GenerateSeries):
                name = "range" if target.args.get("is_end_exclusive") else "generate_series"
                return [Field(name, exp.DataType.build("BIGINT"))]
            if isinstance(target, exp.Identifier) and not source.args.get("db"):
                return self._table_columns(source)
            return None
        if isinstance(source, exp.Subquery):
            return self.query_columns(source.this)
        if isinstance(source, exp.Values):
            rows = source.expressions
            first = rows[0].expressions if rows and isinstance(rows[0], exp.Tuple) else []
            return [Field(f"col{i}", self.type_of(e)) for i, e in enumerate(first, start=1)]
        if isinstance(source, exp.Unnest) and len(source.expressions) == 1:
            listed = self.type_of(source.expressions[0])
            if listed is None or not listed.is_type(exp.DType.ARRAY) or not listed.expressions:
                return [Field("unnest", None)]
            element = listed.expressions[0]
            return [Field("unnest", element if isinstance(element, exp.DataType) else None)]
        return None

    def _table_columns(self, table: exp.Table) -> Schema | None:
        """A name resolves to a CTE of the statement a user wrote inside a gem, else to a
        relation the compiler knows (a gem), else to a CTE of the pipeline's chain."""
        name = table.name.lower()
        nested = self._visible_cte(table, name, nested=True)
        if nested is not None:
            return self.query_columns(nested.this)
        if name in self._known:
            return self._known[name]
        outer = self._visible_cte(table, name, nested=False)
        return self.query_columns(outer.this) if outer is not None else None

    @staticmethod
    def _visible_cte(table: exp.Table, name: str, nested: bool) -> exp.CTE | None:
        node: exp.Expr | None = table
        while node is not None:
            with_ = node.args.get("with_") if isinstance(node, exp.Query) else None
            if isinstance(with_, exp.With):
                outermost = with_.find_ancestor(exp.With) is None
                if nested != outermost:
                    for cte in with_.expressions:
                        if cte.alias.lower() == name and not _contains(cte.this, table):
                            found: exp.CTE = cte
                            return found
            node = node.parent
        return None

    def query_columns(self, query: exp.Expr) -> Schema | None:
        """Output columns of a query; ``None`` when a star cannot be expanded."""
        if isinstance(query, exp.Subquery):
            return self.query_columns(query.this)
        if isinstance(query, exp.SetOperation):
            return self.query_columns(query.this)
        if not isinstance(query, exp.Select):
            return None
        out: Schema = []
        for projection in query.expressions:
            if _is_star(projection):
                expanded = self.star_columns(query, projection)
                if expanded is None:
                    return None
                out.extend(Field(name, dtype) for _, name, dtype in expanded)
            else:
                out.append(Field(projection.alias_or_name, self.type_of(projection)))
        return out

    def star_columns(
        self, select: exp.Select, star: exp.Expr
    ) -> list[tuple[str, str, exp.DataType | None]] | None:
        """What a ``*`` or ``t.*`` projection of ``select`` expands to, as (source alias,
        column, type) after EXCLUDE; ``None`` when a source's columns are unknown or a join
        merges columns (USING, NATURAL). REPLACE and RENAME are the caller's to apply."""
        if any(j.args.get("using") or j.args.get("method") for j in select.args.get("joins") or []):
            return None
        qualifier = star.table if isinstance(star, exp.Column) else ""
        options = star.this if isinstance(star, exp.Column) else star
        excluded = {e.name.lower() for e in options.args.get("except_") or []}
        out: list[tuple[str, str, exp.DataType | None]] = []
        for source in self.sources(select):
            alias = source.alias_or_name
            if qualifier and alias.lower() != qualifier.lower():
                continue
            columns = self.source_columns(source)
            if columns is None:
                return None
            out.extend((alias, f.name, f.type) for f in columns if f.name.lower() not in excluded)
        return out

    # -- types ----------------------------------------------------------------------------
    def type_of(self, node: exp.Expr) -> exp.DataType | None:
        """The DuckDB type of ``node`` where the tree and the known relations tell it."""
        cached = self._types.get(id(node))
        if cached is not None and cached[0] is node:
            return cached[1]
        self._types[id(node)] = (node, None)  # what a query asks of itself while typed
        dtype = self._column_type(node) if isinstance(node, exp.Column) else self._annotated(node)
        if dtype is not None and dtype.is_type(exp.DType.UNKNOWN):
            dtype = None
        self._types[id(node)] = (node, dtype)
        return dtype

    def carry(self, original: exp.Expr, replacement: exp.Expr) -> None:
        """Let ``replacement`` keep the type already found for the node it replaces."""
        cached = self._types.get(id(original))
        if cached is not None and cached[0] is original:
            self._types[id(replacement)] = (replacement, cached[1])

    def _column_type(self, col: exp.Column) -> exp.DataType | None:
        if _is_star(col) or _lambda_variable(col):
            return None
        select = col.find_ancestor(exp.Select)
        while select is not None:
            found = self._resolve(col, select)
            if found is not None:
                return found.type
            select = select.find_ancestor(exp.Select)  # a correlated reference
        return None

    def _resolve(self, col: exp.Column, select: exp.Select) -> Field | None:
        sources = [s for s in self.sources(select) if not _contains(s, col)]
        name = col.name.lower()
        if col.table:
            qualifier = col.table.lower()
            for source in sources:
                if source.alias_or_name.lower() == qualifier:
                    return _field(self.source_columns(source), name)
            # ``struct_column.field``: the qualifier names a column
            parent = self._resolve(exp.column(col.table), select)
            if parent is not None and parent.type is not None:
                return _struct_field(parent.type, name)
            return None
        matches = [f for s in sources if (f := _field(self.source_columns(s), name)) is not None]
        if len(matches) == 1:
            return matches[0]
        for projection in select.expressions:
            if isinstance(projection, exp.Alias) and projection.alias.lower() == name:
                if _contains(projection, col):
                    return None
                return Field(projection.alias, self.type_of(projection.this))
        return None

    def _annotated(self, node: exp.Expr) -> exp.DataType | None:
        """sqlglot's annotator over a copy in which each column is a NULL of its type."""
        if isinstance(node, exp.Split):
            return exp.DataType.build("VARCHAR[]", dialect=SOURCE_DIALECT)
        probe = node.copy()
        for original, copied in zip(list(node.walk()), list(probe.walk()), strict=True):
            dtype = None
            if isinstance(original, exp.Column) and copied is not probe:
                dtype = self.type_of(original)
            elif isinstance(original, exp.Literal):
                dtype = decimal_literal(original)
            if dtype is not None:
                typed = exp.cast(exp.null(), dtype.copy())
                if copied is probe:
                    probe = typed
                else:
                    copied.replace(typed)
        try:
            annotated = annotate_types(probe, dialect=SOURCE_DIALECT)
        except Exception:  # the annotator is best effort; an odd node is simply untyped
            return None
        return annotated.type


def decimal_literal(literal: exp.Literal) -> exp.DataType | None:
    """DuckDB reads ``2.50`` as a DECIMAL(3,2) (sqlglot's annotator as a DOUBLE)."""
    text = literal.name
    if literal.is_string or "." not in text or not text.replace(".", "", 1).isdigit():
        return None
    digits = text.replace(".", "").lstrip("0") or "0"
    scale = len(text.split(".")[1])
    return exp.DataType.build(f"DECIMAL({max(len(digits), scale, 1)}, {scale})")


def _contains(tree: exp.Expr, node: exp.Expr) -> bool:
    return any(n is node for n in tree.walk())


def _is_star(node: exp.Expr) -> bool:
    return isinstance(node, exp.Star) or (isinstance(node, exp.Column) and node.is_star)


def _lambda_variable(col: exp.Column) -> bool:
    lam = col.find_ancestor(exp.Lambda)
    while lam is not None:
        if any(v.name.lower() == col.name.lower() for v in lam.expressions) and not col.table:
            return True
        lam = lam.find_ancestor(exp.Lambda)
    return False


def _field(columns: Schema | None, name: str) -> Field | None:
    if columns is None:
        return None
    found = [f for f in columns if f.name.lower() == name]
    return found[0] if len(found) == 1 else None


def _struct_field(dtype: exp.DataType, name: str) -> Field | None:
    if not dtype.is_type(exp.DType.STRUCT):
        return None
    for member in dtype.expressions:
        if isinstance(member, exp.ColumnDef) and member.name.lower() == name:
            kind = member.args.get("kind")
            return Field(member.name, kind if isinstance(kind, exp.DataType) else None)
    return None
