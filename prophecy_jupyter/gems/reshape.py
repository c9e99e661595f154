"""Changing the shape of a table: Pivot, Unpivot, FlattenSchema and TextToColumns.

Each gem's output columns are decided from its properties and its input's schema alone (the
pivot values are listed, struct and list types are read from the type strings), so the
canvas can show downstream schemas without running anything.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, FiniteFloat, StringConstraints
from sqlglot import exp

from prophecy_jupyter.compiler.columns import UNKNOWN, Column, union_lineage
from prophecy_jupyter.gems.base import (
    GemContext,
    GemKind,
    GemOutput,
    Properties,
    column_ref,
    quoted,
)
from prophecy_jupyter.gems.transform import NamedExpression, check_unique
from prophecy_jupyter.model.pipeline import json_number

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=256)]

TYPE_DIALECT = "duckdb"
"""Column types are spelled as DuckDB spells them, whatever dialect a pipeline compiles to."""

TEXT_TYPE = exp.DataType.build("VARCHAR").sql(TYPE_DIALECT)


def parse_type(column: Column) -> exp.DataType | None:
    """The column's type as a sqlglot tree, or ``None`` when it is unknown or unparsable."""
    if column.type == UNKNOWN:
        return None
    # Spark (and its kin) spell nested types with angle brackets, which DuckDB's parser
    # reads as something else: such a type is read as Spark writes it.
    dialect = "spark" if "<" in column.type else TYPE_DIALECT
    try:
        return exp.DataType.build(column.type, dialect=dialect)
    except Exception:  # an exotic engine type is opaque to us, not an error
        return None


def is_text(dtype: exp.DataType | None) -> bool:
    return dtype is not None and dtype.is_type(*exp.DataType.TEXT_TYPES)


def is_number(dtype: exp.DataType | None) -> bool:
    return dtype is not None and dtype.is_type(*exp.DataType.NUMERIC_TYPES)


def type_name(dtype: exp.DataType) -> str:
    return dtype.sql(TYPE_DIALECT)


def trim_whitespace(tree: exp.Expr) -> exp.Expr:
    """Leading and trailing whitespace of every kind removed (SQL's TRIM only strips spaces)."""
    return exp.RegexpReplace(
        this=tree,
        expression=exp.Literal.string(r"^\s+|\s+$"),
        replacement=exp.Literal.string(""),
    )


# -- Pivot ------------------------------------------------------------------------------------

PivotValue = bool | int | FiniteFloat | str


class PivotProps(Properties):
    group_by: list[ColumnName] = Field(
        default_factory=list, description="Columns that identify an output row"
    )
    pivot_column: str = Field(min_length=1, description="Column whose values become output columns")
    values: list[PivotValue] = Field(
        min_length=1,
        description="Values of the pivot column to turn into columns, in output order; "
        "listing them keeps the output schema known without reading data",
    )
    aggregates: list[NamedExpression] = Field(
        min_length=1,
        description="Aggregates computed per group and value, e.g. total = sum(amount); "
        "columns are named <value>_<name>, or <value> when there is one aggregate",
    )


def value_label(value: PivotValue) -> str:
    """How a pivot value appears in an output column name."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return json_number(value)  # as the saved document spells it: 2.0 is saved as 2
    return str(value)


def _outermost_aggregates(tree: exp.Expr) -> list[exp.AggFunc]:
    found = []
    for node in tree.find_all(exp.AggFunc):
        parent = node.parent
        while parent is not None and not isinstance(parent, exp.AggFunc):
            parent = parent.parent
        if parent is None:
            found.append(node)
    return found


def _loose_columns(tree: exp.Expr) -> list[exp.Column]:
    """Columns of ``tree`` outside every aggregate (and its FILTER clause)."""
    loose = []
    for col in tree.find_all(exp.Column):
        parent = col.parent
        while parent is not None and not isinstance(parent, (exp.AggFunc, exp.Filter)):
            parent = parent.parent
        if parent is None:
            loose.append(col)
    return loose


def _restrict(tree: exp.Expr, condition: exp.Expr) -> exp.Expr:
    """``tree`` with every outermost aggregate limited to rows where ``condition`` holds."""
    out = tree.copy()
    for agg in _outermost_aggregates(out):
        holder = agg.parent
        if isinstance(holder, exp.Filter):
            where = holder.args["expression"]
            where.set("this", exp.and_(where.this, condition.copy()))
            continue
        filtered = exp.Filter(this=agg.copy(), expression=exp.Where(this=condition.copy()))
        if agg is out:
            return filtered
        agg.replace(filtered)
    return out


class Pivot(GemKind):
    kind = "Pivot"
    category = "Transform"
    summary = "Turn the values of one column into columns, aggregating per group"
    Props = PivotProps

    def build(self, props: PivotProps, ctx: GemContext) -> GemOutput | None:
        ok = True
        keys: list[Column] = []
        for i, name in enumerate(props.group_by):
            found = ctx.column(name, "group_by", i)
            if found is None:
                ok = False
            else:
                keys.append(found)
        pivot = ctx.column(props.pivot_column, "pivot_column")
        if pivot is not None and any(k.name.lower() == pivot.name.lower() for k in keys):
            ctx.issue(
                "pivot_in_group_by",
                f"'{pivot.name}' cannot be both the pivot column and a grouping column",
                "pivot_column",
            )
            ok = False
        literals = self._literals(props, ctx, pivot)
        aggregates = self._aggregates(props, ctx, keys)
        if pivot is None or literals is None or aggregates is None or not ok:
            return None
        projections: list[exp.Expr] = [column_ref(k.name) for k in keys]
        columns = list(keys)
        single = len(aggregates) == 1
        for value, literal in zip(props.values, literals, strict=True):
            condition = column_ref(pivot.name).eq(literal)
            for tree, column in aggregates:
                name = value_label(value) if single else f"{value_label(value)}_{column.name}"
                projections.append(exp.alias_(_restrict(tree, condition), quoted(name)))
                columns.append(Column(name, column.type, column.lineage | pivot.lineage))
        if not check_unique(ctx, columns, "values"):
            return None
        query = exp.select(*projections).from_(ctx.input.table)
        if keys:
            query = query.group_by(*(column_ref(k.name) for k in keys))
        return GemOutput(query, columns)

    def _literals(
        self, props: PivotProps, ctx: GemContext, pivot: Column | None
    ) -> list[exp.Expr] | None:
        """Each pivot value as a literal of the pivot column's type."""
        dtype = parse_type(pivot) if pivot is not None else None
        literals: list[exp.Expr] = []
        seen: set[str] = set()
        ok = True
        for i, value in enumerate(props.values):
            label = value_label(value)
            if not label:
                ctx.issue("bad_pivot_value", "an empty value cannot name a column", "values", i)
                ok = False
                continue
            if label.lower() in seen:
                ctx.issue(
                    "duplicate_value",
                    f"pivot value '{label}' is listed twice (column names ignore case)",
                    "values",
                    i,
                )
                ok = False
                continue
            seen.add(label.lower())
            is_numeric_value = isinstance(value, (int, float)) and not isinstance(value, bool)
            if dtype is None:
                literals.append(exp.convert(value))
            elif is_text(dtype):
                literals.append(exp.Literal.string(label))
            elif is_number(dtype):
                if not is_numeric_value and not _is_number_text(value):
                    ctx.issue(
                        "bad_pivot_value",
                        f"pivot column '{props.pivot_column}' is {type_name(dtype)}; "
                        f"'{label}' is not a number",
                        "values",
                        i,
                    )
                    ok = False
                    continue
                literal = exp.convert(value) if is_numeric_value else exp.Literal.string(label)
                literals.append(exp.cast(literal, dtype.copy()))
            elif dtype.is_type(exp.DataType.Type.BOOLEAN) and isinstance(value, bool):
                literals.append(exp.convert(value))
            else:
                literals.append(exp.cast(exp.Literal.string(label), dtype.copy()))
        return literals if ok else None

    def _aggregates(
        self, props: PivotProps, ctx: GemContext, keys: list[Column]
    ) -> list[tuple[exp.Expr, Column]] | None:
        key_names = {k.name.lower() for k in keys}
        out: list[tuple[exp.Expr, Column]] = []
        names: set[str] = set()
        ok = True
        for i, item in enumerate(props.aggregates):
            path = ("aggregates", i, "expression")
            tree = ctx.expression(item.expression or item.name, *path)
            if tree is None:
                ok = False
                continue
            if item.name.lower() in names:
                ctx.issue(
                    "duplicate_column", f"aggregate '{item.name}' appears twice", "aggregates", i
                )
                ok = False
                continue
            names.add(item.name.lower())
            if tree.find(exp.Window) is not None:
                ctx.issue(
                    "window_not_allowed",
                    "window functions cannot be pivoted; use an aggregate",
                    *path,
                )
                ok = False
                continue
            if not _outermost_aggregates(tree):
                ctx.issue(
                    "not_aggregated",
                    "a pivot aggregate needs an aggregate function, e.g. sum(amount)",
                    *path,
                )
                ok = False
                continue
            loose = [c for c in _loose_columns(tree) if _head(c, ctx.input.alias) not in key_names]
            if loose:
                ctx.issue(
                    "not_aggregated",
                    f"column '{loose[0].name}' must be grouped or used inside an aggregate",
                    *path,
                )
                ok = False
                continue
            out.append((tree, ctx.computed(item.name, tree)))
        return out if ok else None


def _head(col: exp.Column, alias: str) -> str:
    """The input column a reference starts from: ``a`` for ``a``, ``in.a`` and ``a.field``."""
    if not col.table or col.table.lower() == alias.lower():
        return col.name.lower()
    return col.table.lower()


def _is_number_text(value: PivotValue) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return not isinstance(value, bool)


# -- Unpivot ----------------------------------------------------------------------------------

UNPIVOT_ALIAS = "__prophecy_unpivot"
UNPIVOT_NAME = "name"


class UnpivotProps(Properties):
    id_columns: list[ColumnName] = Field(
        default_factory=list, description="Columns kept as they are on every output row"
    )
    value_columns: list[ColumnName] = Field(
        default_factory=list,
        description="Columns turned into (name, value) rows; empty means every column "
        "that is not an id column",
    )
    name_column: str = Field(
        default="name",
        min_length=1,
        max_length=256,
        description="Output column holding the name of the unpivoted column",
    )
    value_column: str = Field(
        default="value",
        min_length=1,
        max_length=256,
        description="Output column holding the value",
    )
    value_type: str | None = Field(
        default=None,
        min_length=1,
        description="Cast every value to this type, e.g. VARCHAR; needed when the value "
        "columns' types differ and are not all numbers",
    )
    drop_nulls: bool = Field(default=False, description="Leave out rows whose value is NULL")


class Unpivot(GemKind):
    kind = "Unpivot"
    category = "Transform"
    summary = "Turn columns into (name, value) rows"
    Props = UnpivotProps
    row_wise = True

    def build(self, props: UnpivotProps, ctx: GemContext) -> GemOutput | None:
        ok = True
        ids: list[Column] = []
        for i, name in enumerate(props.id_columns):
            found = ctx.column(name, "id_columns", i)
            if found is None:
                ok = False
            else:
                ids.append(found)
        id_names = {c.name.lower() for c in ids}
        values: list[Column] = []
        for i, name in enumerate(props.value_columns):
            found = ctx.column(name, "value_columns", i)
            if found is None:
                ok = False
            elif found.name.lower() in id_names:
                ctx.issue(
                    "id_and_value",
                    f"'{found.name}' is an id column; it cannot also be a value column",
                    "value_columns",
                    i,
                )
                ok = False
            else:
                values.append(found)
        if not ok:
            return None
        if not props.value_columns:
            values = [c for c in ctx.input.columns if c.name.lower() not in id_names]
        if not values:
            ctx.issue("no_columns", "there is no column left to unpivot", "value_columns")
            return None
        taken = {c.name.lower() for c in ids}
        for field in ("name_column", "value_column"):
            name = getattr(props, field)
            if name.lower() in taken:
                ctx.issue(
                    "duplicate_column",
                    f"output column '{name}' is already an id column or the other output",
                    field,
                )
                return None
            taken.add(name.lower())
        target = self._value_type(props, ctx, values)
        if target is None:
            return None
        rel = ctx.input
        name_ref = column_ref(UNPIVOT_NAME, UNPIVOT_ALIAS)
        value = exp.Case(
            ifs=[
                exp.If(
                    this=name_ref.eq(exp.Literal.string(c.name)),
                    true=_cast_to(column_ref(c.name, rel.alias), c, target),
                )
                for c in values
            ]
        )
        names = exp.values(
            [(exp.Literal.string(c.name),) for c in values],
            alias=UNPIVOT_ALIAS,
            columns=[UNPIVOT_NAME],
        )
        query = (
            exp.select(
                *(column_ref(c.name, rel.alias) for c in ids),
                exp.alias_(name_ref.copy(), quoted(props.name_column)),
                exp.alias_(value.copy(), quoted(props.value_column)),
            )
            .from_(rel.table)
            .join(names, join_type="CROSS")
        )
        if props.drop_nulls:
            query = query.where(exp.Not(this=exp.Is(this=value, expression=exp.null())))
        type_text = UNKNOWN if isinstance(target, str) else type_name(target)
        columns = [
            *ids,
            Column(props.name_column, TEXT_TYPE),
            Column(props.value_column, type_text, union_lineage(values)),
        ]
        return GemOutput(query, columns)

    def _value_type(
        self, props: UnpivotProps, ctx: GemContext, values: list[Column]
    ) -> exp.DataType | str | None:
        """The value column's type: the given one, the shared one, or the numbers' supertype.

        ``UNKNOWN`` (a string) when every value column's type is unknown; ``None`` after an
        issue.
        """
        if props.value_type is not None:
            try:
                return exp.DataType.build(props.value_type, dialect=TYPE_DIALECT)
            except Exception:
                ctx.issue("bad_type", f"unknown type '{props.value_type}'", "value_type")
                return None
        types = [parse_type(c) for c in values]
        if all(t is None for t in types):
            return UNKNOWN
        distinct: list[exp.DataType] = []
        for t in types:
            if t is not None and all(t != d for d in distinct):
                distinct.append(t)
        if len(distinct) == 1 and all(t is not None for t in types):
            return distinct[0]
        if all(is_number(t) for t in types):
            return self._supertype(ctx, distinct)
        listed = ", ".join(f"{c.name} {c.type}" for c in values)
        ctx.issue(
            "mixed_types",
            f"value columns have different types ({listed}); set value_type to cast them "
            "to one, e.g. VARCHAR",
            "value_type",
        )
        return None

    def _supertype(self, ctx: GemContext, types: list[exp.DataType]) -> exp.DataType | None:
        """The engine's common type of several numeric types, as a UNION ALL would pick it."""
        query: exp.Query = exp.select(exp.alias_(exp.cast(exp.null(), types[0]), "v"))
        for t in types[1:]:
            query = exp.union(query, exp.select(exp.alias_(exp.cast(exp.null(), t), "v")))
        try:
            described = ctx.catalog.describe(query)
            return exp.DataType.build(described[0][1], dialect=TYPE_DIALECT)
        except Exception:  # the engine refused, or named a type sqlglot cannot read
            ctx.issue(
                "mixed_types",
                "cannot find a common type for the value columns; set value_type",
                "value_type",
            )
            return None


def _cast_to(ref: exp.Expr, column: Column, target: exp.DataType | str) -> exp.Expr:
    if isinstance(target, str) or parse_type(column) == target:
        return ref
    return exp.cast(ref, target.copy())


# -- FlattenSchema ----------------------------------------------------------------------------

EXPLODE_ALIAS = "__prophecy_explode_{}"
EXPLODE_ELEMENT = "element"


class FlattenSchemaProps(Properties):
    explode: list[ColumnName] = Field(
        default_factory=list,
        description="List columns to turn into one row per element, by flattened name: "
        "items, or order_items for the list items inside struct column order",
    )
    separator: str = Field(
        default="_",
        min_length=1,
        max_length=8,
        description="Joins a struct column's name to its fields' names",
    )
    keep_empty: bool = Field(
        default=False,
        description="Keep rows whose exploded list is empty or NULL, with NULLs for it",
    )


class _Leaf:
    """One column on its way out: a name, how to compute it and its type if known."""

    def __init__(
        self,
        name: str,
        expr: exp.Expr,
        dtype: exp.DataType | None,
        source: Column,
        top: bool,
    ) -> None:
        self.name = name
        self.expr = expr
        self.dtype = dtype
        self.source = source
        self.top = top

    def column(self) -> Column:
        if self.top:
            return self.source.renamed(self.name)
        dtype = UNKNOWN if self.dtype is None else type_name(self.dtype)
        return Column(self.name, dtype, self.source.lineage)


class FlattenSchema(GemKind):
    kind = "FlattenSchema"
    category = "Transform"
    summary = "Flatten struct columns into parent_child columns and explode lists into rows"
    Props = FlattenSchemaProps
    row_wise = True

    def build(self, props: FlattenSchemaProps, ctx: GemContext) -> GemOutput | None:
        rel = ctx.input
        wanted = {name.lower(): i for i, name in enumerate(props.explode)}
        exploded: set[str] = set()
        seen: dict[str, _Leaf] = {}
        joins: list[exp.Unnest] = []
        out: list[_Leaf] = []

        def expand(leaf: _Leaf) -> None:
            seen.setdefault(leaf.name.lower(), leaf)
            dtype = leaf.dtype
            if dtype is not None and dtype.is_type(exp.DataType.Type.STRUCT):
                for field in dtype.expressions:
                    child = field.this.name
                    expand(
                        _Leaf(
                            f"{leaf.name}{props.separator}{child}",
                            exp.Dot(this=leaf.expr.copy(), expression=quoted(child)),
                            field.args.get("kind"),
                            leaf.source,
                            False,
                        )
                    )
                return
            key = leaf.name.lower()
            if (
                dtype is not None
                and dtype.is_type(exp.DataType.Type.ARRAY)
                and key in wanted
                and key not in exploded
            ):
                exploded.add(key)
                alias = EXPLODE_ALIAS.format(len(joins))
                joins.append(self._unnest(leaf.expr, alias, props.keep_empty))
                element = dtype.expressions[0] if dtype.expressions else None
                expand(
                    _Leaf(
                        leaf.name,
                        column_ref(EXPLODE_ELEMENT, alias),
                        element if isinstance(element, exp.DataType) else None,
                        leaf.source,
                        False,
                    )
                )
                return
            out.append(leaf)

        for col in rel.columns:
            expand(_Leaf(col.name, column_ref(col.name, rel.alias), parse_type(col), col, True))

        ok = True
        for name, i in wanted.items():
            if name in exploded:
                continue
            found = seen.get(name)
            if found is None:
                available = ", ".join(sorted(leaf.name for leaf in seen.values()))
                ctx.issue(
                    "unknown_column",
                    f"no column '{props.explode[i]}' to explode; available: {available}",
                    "explode",
                    i,
                )
            else:
                ctx.issue(
                    "not_a_list",
                    f"column '{found.name}' is {found.column().type}, not a list",
                    "explode",
                    i,
                )
            ok = False
        if not ok:
            return None
        columns = [leaf.column() for leaf in out]
        if not check_unique(ctx, columns, "separator"):
            return None
        query = exp.select(
            *(leaf.expr if leaf.top else exp.alias_(leaf.expr, quoted(leaf.name)) for leaf in out)
        ).from_(rel.table)
        for unnest in joins:
            query = query.join(unnest, join_type="CROSS")
        return GemOutput(query, columns)

    def _unnest(self, expr: exp.Expr, alias: str, keep_empty: bool) -> exp.Unnest:
        source = expr.copy()
        if keep_empty:
            source = exp.Case(
                ifs=[exp.If(this=exp.ArraySize(this=expr.copy()) > 0, true=expr.copy())],
                default=exp.Array(expressions=[exp.null()]),
            )
        return exp.Unnest(
            expressions=[source],
            alias=exp.TableAlias(this=quoted(alias), columns=[quoted(EXPLODE_ELEMENT)]),
        )


# -- TextToColumns ----------------------------------------------------------------------------

SPLIT_ALIAS = "__prophecy_split"
SPLIT_PIECE = "piece"


class TextToColumnsProps(Properties):
    column: str = Field(min_length=1, description="Text column to split")
    delimiter: str = Field(
        min_length=1, description="Text between pieces, matched literally (not a pattern)"
    )
    mode: Literal["columns", "rows"] = Field(
        default="columns",
        description="columns: one new column per piece; rows: one row per piece",
    )
    names: list[ColumnName] = Field(
        default_factory=list,
        description="columns mode: names of the new columns, one per piece in order; "
        "missing pieces are NULL",
    )
    remainder: Literal["drop", "last"] = Field(
        default="drop",
        description="columns mode: pieces beyond the last name are dropped, or kept with "
        "their delimiters in the last column",
    )
    row_column: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="rows mode: column holding each piece; defaults to the source column's name",
    )
    keep_source: bool = Field(default=False, description="Also keep the original column")
    trim: bool = Field(default=False, description="Trim whitespace around each piece")


class TextToColumns(GemKind):
    kind = "TextToColumns"
    category = "Transform"
    summary = "Split a text column by a delimiter into columns or rows"
    Props = TextToColumnsProps
    row_wise = True

    def build(self, props: TextToColumnsProps, ctx: GemContext) -> GemOutput | None:
        source = ctx.column(props.column, "column")
        if source is None:
            return None
        dtype = parse_type(source)
        if dtype is not None and not is_text(dtype):
            ctx.issue(
                "not_text",
                f"column '{source.name}' is {source.type}; only text can be split",
                "column",
            )
            return None
        rel = ctx.input
        ref = column_ref(source.name, rel.alias)
        split = exp.Split(this=ref, expression=exp.Literal.string(props.delimiter))
        if props.mode == "columns":
            if not props.names:
                ctx.issue("no_columns", "name at least one output column", "names")
                return None
            pieces = self._pieces(props, ref, split)
            new = [Column(n, TEXT_TYPE, source.lineage) for n in props.names]
            path = "names"
        else:
            piece: exp.Expr = column_ref(SPLIT_PIECE, SPLIT_ALIAS)
            if props.trim:
                piece = trim_whitespace(piece)
            name = props.row_column or source.name
            pieces = [piece]
            new = [Column(name, TEXT_TYPE, source.lineage)]
            path = "row_column"
        projections: list[exp.Expr] = []
        columns: list[Column] = []
        for col in rel.columns:
            if col.name != source.name:
                projections.append(column_ref(col.name, rel.alias))
                columns.append(col)
                continue
            if props.keep_source:
                projections.append(ref.copy())
                columns.append(col)
            projections.extend(
                exp.alias_(p, quoted(c.name)) for p, c in zip(pieces, new, strict=True)
            )
            columns.extend(new)
        if not check_unique(ctx, columns, path):
            return None
        query = exp.select(*projections).from_(rel.table)
        if props.mode == "rows":
            # A NULL text still yields its row, with a NULL piece, rather than vanishing.
            items = exp.Coalesce(this=split, expressions=[exp.Array(expressions=[exp.null()])])
            unnest = exp.Unnest(
                expressions=[items],
                alias=exp.TableAlias(this=quoted(SPLIT_ALIAS), columns=[quoted(SPLIT_PIECE)]),
            )
            query = query.join(unnest, join_type="CROSS")
        return GemOutput(query, columns)

    def _pieces(self, props: TextToColumnsProps, ref: exp.Expr, split: exp.Expr) -> list[exp.Expr]:
        def nth(n: int) -> exp.Expr:
            return exp.Bracket(
                this=split.copy(), expressions=[exp.Literal.number(n)], offset=1, safe=True
            )

        count = len(props.names)
        pieces = [nth(n) for n in range(1, count + 1)]
        if props.remainder == "last":
            # The rest of the text starts after the first count-1 pieces and their delimiters.
            start: exp.Expr = exp.Literal.number((count - 1) * len(props.delimiter) + 1)
            for n in range(1, count):
                start = exp.Add(this=start, expression=exp.Length(this=nth(n)))
            rest = exp.Substring(this=ref.copy(), start=start)
            pieces[-1] = exp.Case(
                ifs=[
                    exp.If(
                        this=exp.Not(this=exp.Is(this=nth(count), expression=exp.null())), true=rest
                    )
                ]
            )
        if props.trim:
            pieces = [trim_whitespace(p) for p in pieces]
        return pieces


GEMS: list[type[GemKind]] = [Pivot, Unpivot, FlattenSchema, TextToColumns]
