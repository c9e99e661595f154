"""Row- and column-level transforms over one input: Filter, Reformat, OrderBy, Limit,
Deduplicate."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from prophecy_jupyter.compiler.columns import Column
from prophecy_jupyter.compiler.expressions import ExpressionRejected, parse_expression
from prophecy_jupyter.gems.base import (
    GemContext,
    GemKind,
    GemOutput,
    Properties,
    column_ref,
    quoted,
    star_select,
)


class FilterProps(Properties):
    condition: str = Field(min_length=1, description="Keep rows where this is true")


class Filter(GemKind):
    kind = "Filter"
    category = "Transform"
    summary = "Keep the rows that match a condition"
    Props = FilterProps
    row_wise = True

    def build(self, props: FilterProps, ctx: GemContext) -> GemOutput | None:
        condition = ctx.expression(props.condition, "condition")
        if condition is None:
            return None
        query = star_select(ctx.input).where(condition, copy=False)
        return GemOutput(query, list(ctx.input.columns))


class NamedExpression(Properties):
    name: str = Field(min_length=1, max_length=256, description="Output column name")
    expression: str = Field(
        default="", description="SQL expression; empty means the input column of the same name"
    )


class ReformatProps(Properties):
    columns: list[NamedExpression] = Field(
        default_factory=list, description="Output columns: select, compute or rename"
    )
    include_remaining: bool = Field(
        default=False, description="Also pass through every input column not listed"
    )
    drop: list[str] = Field(
        default_factory=list, description="Input columns to leave out (with include_remaining)"
    )


def project(
    ctx: GemContext, items: list[NamedExpression], path: str
) -> list[tuple[exp.Expr, Column]] | None:
    """Check ``name = expression`` items; each becomes a projection and its output column."""
    out: list[tuple[exp.Expr, Column]] = []
    ok = True
    for i, item in enumerate(items):
        text = item.expression.strip() or exp.to_identifier(item.name, quoted=True).sql(ctx.dialect)
        tree = ctx.expression(text, path, i, "expression")
        if tree is None:
            ok = False
            continue
        out.append((exp.alias_(tree, quoted(item.name)), ctx.computed(item.name, tree)))
    return out if ok else None


def check_unique(ctx: GemContext, columns: list[Column], *path: str | int) -> bool:
    seen: set[str] = set()
    for column in columns:
        if column.name.lower() in seen:
            ctx.issue("duplicate_column", f"output column '{column.name}' appears twice", *path)
            return False
        seen.add(column.name.lower())
    return True


class Reformat(GemKind):
    kind = "Reformat"
    category = "Transform"
    summary = "Select, compute, rename and drop columns"
    Props = ReformatProps

    def subset_inputs(self, props: ReformatProps, inputs: int) -> frozenset[int]:
        texts = [c.expression for c in props.columns if c.expression.strip()]
        return frozenset() if any(_spans_rows(t) for t in texts) else frozenset({0})

    def build(self, props: ReformatProps, ctx: GemContext) -> GemOutput | None:
        computed = project(ctx, props.columns, "columns")
        ok = computed is not None
        for i, name in enumerate(props.drop):
            if ctx.column(name, "drop", i) is None:
                ok = False
        if computed is None or not ok:
            return None
        if not props.include_remaining and not computed:
            ctx.issue("no_columns", "select at least one column", "columns")
            return None
        # Checked before merging with the input: two listed columns of one name that also
        # names an input column would otherwise collapse silently into the last of them.
        if not check_unique(ctx, [c for _, c in computed], "columns"):
            return None
        by_name = {col.name.lower(): (proj, col) for proj, col in computed}
        pairs: list[tuple[exp.Expr, Column]] = []
        if props.include_remaining:
            dropped = {d.lower() for d in props.drop}
            for col in ctx.input.columns:
                key = col.name.lower()
                if key in dropped:
                    continue
                pairs.append(by_name.pop(key, (column_ref(col.name), col)))
        pairs.extend(p for p in computed if p[1].name.lower() in by_name)
        columns = [c for _, c in pairs]
        if not check_unique(ctx, columns, "columns"):
            return None
        query = exp.select(*(p for p, _ in pairs), copy=False).from_(ctx.input.table, copy=False)
        return GemOutput(query, columns)


class SortKey(Properties):
    expression: str = Field(min_length=1, description="Column or expression to sort by")
    direction: Literal["asc", "desc"] = "asc"
    nulls: Literal["first", "last", "default"] = Field(
        default="default",
        description="Where NULLs go; default is where the pipeline's SQL dialect puts them",
    )


def _nulls_first_by_default(dialect: str, desc: bool) -> bool:
    """Where ``ORDER BY x [DESC]`` puts NULLs in ``dialect`` (DuckDB: last either way), so
    that a sort key without a NULLS choice means what the same ORDER BY means in SQL."""
    placement = Dialect.get_or_raise(dialect).NULL_ORDERING
    return {"nulls_are_small": not desc, "nulls_are_large": desc}.get(placement, False)


def ordering(ctx: GemContext, keys: list[SortKey], path: str) -> list[exp.Ordered] | None:
    out: list[exp.Ordered] = []
    ok = True
    for i, key in enumerate(keys):
        tree = ctx.expression(key.expression, path, i, "expression")
        if tree is None:
            ok = False
            continue
        desc = key.direction == "desc"
        default = _nulls_first_by_default(ctx.dialect, desc)
        nulls_first = {"first": True, "last": False, "default": default}[key.nulls]
        out.append(exp.Ordered(this=tree, desc=desc, nulls_first=nulls_first))
    return out if ok else None


def _spans_rows(text: str) -> bool:
    """Whether an expression aggregates or looks at other rows (a window)."""
    try:
        tree = parse_expression(text)
    except ExpressionRejected:
        return True
    return tree.find(exp.AggFunc, exp.Window) is not None


class OrderByProps(Properties):
    keys: list[SortKey] = Field(min_length=1, description="Sort keys, most significant first")


class OrderBy(GemKind):
    kind = "OrderBy"
    category = "Transform"
    summary = "Sort rows"
    Props = OrderByProps

    def build(self, props: OrderByProps, ctx: GemContext) -> GemOutput | None:
        keys = ordering(ctx, props.keys, "keys")
        if keys is None:
            return None
        query = star_select(ctx.input).order_by(*keys, copy=False)
        return GemOutput(query, list(ctx.input.columns))


class LimitProps(Properties):
    count: int = Field(ge=0, description="Number of rows to keep")
    offset: int = Field(default=0, ge=0, description="Rows to skip first")


class Limit(GemKind):
    kind = "Limit"
    category = "Transform"
    summary = "Keep the first N rows"
    Props = LimitProps

    def build(self, props: LimitProps, ctx: GemContext) -> GemOutput | None:
        query = star_select(ctx.input).limit(props.count)
        if props.offset:
            query = query.offset(props.offset)
        return GemOutput(query, list(ctx.input.columns))


class DeduplicateProps(Properties):
    mode: Literal["distinct", "first", "last"] = Field(
        default="distinct",
        description="distinct drops repeated rows; first/last keep one row per key, by order",
    )
    keys: list[str] = Field(default_factory=list, description="first/last: key columns")
    order_by: list[SortKey] = Field(default_factory=list, description="first/last: row order")

    @model_validator(mode="after")
    def _keyed(self) -> DeduplicateProps:
        if self.mode != "distinct" and not self.keys:
            raise ValueError(f"mode '{self.mode}' needs key columns")
        if self.mode != "distinct" and not self.order_by:
            raise ValueError(f"mode '{self.mode}' needs an order to tell first from last")
        return self


ROW_NUMBER = "__prophecy_row_number"


class Deduplicate(GemKind):
    kind = "Deduplicate"
    category = "Transform"
    summary = "Remove duplicate rows, or keep the first/last row per key"
    Props = DeduplicateProps

    def subset_inputs(self, props: DeduplicateProps, inputs: int) -> frozenset[int]:
        return frozenset({0}) if props.mode == "distinct" else frozenset()

    def build(self, props: DeduplicateProps, ctx: GemContext) -> GemOutput | None:
        columns = list(ctx.input.columns)
        if props.mode == "distinct":
            return GemOutput(star_select(ctx.input).distinct(), columns)
        keys = [ctx.column(k, "keys", i) for i, k in enumerate(props.keys)]
        order = ordering(ctx, props.order_by, "order_by")
        if order is None or any(k is None for k in keys):
            return None
        if props.mode == "last":
            order = [
                exp.Ordered(
                    this=o.this,
                    desc=not o.args.get("desc"),
                    nulls_first=not o.args.get("nulls_first"),
                )
                for o in order
            ]
        window = exp.Window(
            this=exp.RowNumber(),
            partition_by=[column_ref(k.name) for k in keys if k is not None],
            order=exp.Order(expressions=order),
        )
        numbered = exp.select(exp.Star(), exp.alias_(window, quoted(ROW_NUMBER))).from_(
            ctx.input.table
        )
        query = (
            exp.select(*(column_ref(c.name) for c in columns))
            .from_(numbered.subquery("numbered"))
            .where(exp.EQ(this=column_ref(ROW_NUMBER), expression=exp.Literal.number(1)))
        )
        return GemOutput(query, columns)


GEMS: list[type[GemKind]] = [Filter, Reformat, OrderBy, Limit, Deduplicate]
