"""Grouping and windows: Aggregate and WindowFunction."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sqlglot import exp

from prophecy_jupyter.compiler.columns import Column, find_column
from prophecy_jupyter.gems.base import (
    GemContext,
    GemKind,
    GemOutput,
    Properties,
    column_ref,
    quoted,
)
from prophecy_jupyter.gems.transform import NamedExpression, SortKey, check_unique, ordering


class GroupKey(Properties):
    expression: str = Field(min_length=1, description="Column or expression to group by")
    name: str | None = Field(
        default=None, description="Output name; defaults to the column's own name"
    )


class AggregateProps(Properties):
    group_by: list[GroupKey] = Field(default_factory=list, description="Grouping keys")
    aggregates: list[NamedExpression] = Field(
        default_factory=list, description="Aggregates, e.g. total = sum(amount)"
    )
    having: str = Field(default="", description="Keep groups where this is true")


# DuckDB aggregates that sqlglot parses as plain (anonymous) function calls, so nothing in
# the tree says they aggregate.
ENGINE_AGGREGATES = frozenset(
    {
        "arbitrary",
        "arg_max_null",
        "arg_max_nulls_last",
        "arg_min_null",
        "arg_min_nulls_last",
        "bitstring_agg",
        "count_star",
        "entropy",
        "favg",
        "fsum",
        "geomean",
        "geometric_mean",
        "histogram",
        "histogram_exact",
        "kahan_sum",
        "kurtosis_pop",
        "mad",
        "mean",
        "product",
        "reservoir_quantile",
        "sem",
        "sum_no_overflow",
        "sumkahan",
        "weighted_avg",
        "wavg",
    }
)


def _aggregates(node: exp.Expr) -> bool:
    """Whether ``node`` computes over a group: an aggregate, a window, or an aggregate's
    ``FILTER (WHERE …)`` clause."""
    if isinstance(node, (exp.AggFunc, exp.Window, exp.Filter)):
        return True
    return isinstance(node, exp.Anonymous) and str(node.name).lower() in ENGINE_AGGREGATES


def _outside_aggregates(tree: exp.Expr) -> list[exp.Column]:
    """Columns of ``tree`` that are not inside an aggregate or window function."""
    found = []
    for col in tree.find_all(exp.Column):
        parent = col.parent
        inside = False
        while parent is not None:
            if _aggregates(parent):
                inside = True
                break
            parent = parent.parent
        if not inside:
            found.append(col)
    return found


class Aggregate(GemKind):
    kind = "Aggregate"
    category = "Transform"
    summary = "Group rows and compute aggregates, with an optional HAVING condition"
    Props = AggregateProps
    min_inputs = 1
    max_inputs = 1

    def build(self, props: AggregateProps, ctx: GemContext) -> GemOutput | None:
        if not props.group_by and not props.aggregates:
            ctx.issue("no_columns", "add a grouping key or an aggregate", "aggregates")
            return None
        ok = True
        keys: list[tuple[exp.Expr, Column]] = []
        for i, key in enumerate(props.group_by):
            tree = ctx.expression(key.expression, "group_by", i, "expression")
            if tree is None:
                ok = False
                continue
            name = key.name or (tree.name if isinstance(tree, exp.Column) else None)
            if not name:
                ctx.issue("missing_name", "name this grouping expression", "group_by", i, "name")
                ok = False
                continue
            keys.append((tree, ctx.computed(name, tree)))
        key_sql = {k.sql(ctx.dialect).lower() for k, _ in keys}
        key_names = {c.name.lower() for _, c in keys}
        aggregates: list[tuple[exp.Expr, Column]] = []
        for i, item in enumerate(props.aggregates):
            tree = ctx.expression(item.expression or item.name, "aggregates", i, "expression")
            if tree is None:
                ok = False
                continue
            loose = [
                c
                for c in _outside_aggregates(tree)
                if c.sql(ctx.dialect).lower() not in key_sql and c.name.lower() not in key_names
            ]
            if loose:
                ctx.issue(
                    "not_aggregated",
                    f"column '{loose[0].name}' must be grouped or used inside an aggregate",
                    "aggregates",
                    i,
                    "expression",
                )
                ok = False
                continue
            aggregates.append((tree, ctx.computed(item.name, tree)))
        if not ok:
            return None
        columns = [c for _, c in keys] + [c for _, c in aggregates]
        if not check_unique(ctx, columns, "aggregates"):
            return None
        projections = [
            exp.alias_(t, quoted(c.name)) if not _is_column_named(t, c.name) else t
            for t, c in keys + aggregates
        ]
        query = exp.select(*projections, copy=False).from_(ctx.input.table, copy=False)
        if keys:
            query = query.group_by(*(t.copy() for t, _ in keys))
        if props.having.strip():
            having = self._having(props.having, ctx, columns, aggregates)
            if having is None:
                return None
            query = query.having(having)
        return GemOutput(query, columns)

    def _having(
        self,
        text: str,
        ctx: GemContext,
        columns: list[Column],
        aggregates: list[tuple[exp.Expr, Column]],
    ) -> exp.Expr | None:
        tree = ctx.expression(text, "having", extra_columns=columns)
        if tree is None:
            return None
        # Aggregate names in HAVING stand for their expressions: portable across engines.
        by_name = {c.name.lower(): t for t, c in aggregates}
        for col in list(tree.find_all(exp.Column)):
            replacement = by_name.get(col.name.lower()) if not col.table else None
            if replacement is not None and find_column(ctx.input.columns, col.name) is None:
                if col is tree:
                    return replacement.copy()
                col.replace(replacement.copy())
        return tree


def _is_column_named(tree: exp.Expr, name: str) -> bool:
    return isinstance(tree, exp.Column) and tree.name == name


class Frame(Properties):
    type: Literal["rows", "range"] = "rows"
    start: str = Field(
        default="unbounded preceding",
        pattern=r"(?i)^\s*(unbounded preceding|current row|\d+ (preceding|following))\s*$",
        description="unbounded preceding, N preceding, current row or N following",
    )
    end: str = Field(
        default="current row",
        pattern=r"(?i)^\s*(unbounded following|current row|\d+ (preceding|following))\s*$",
        description="current row, N preceding, N following or unbounded following",
    )


class WindowFunctionProps(Properties):
    partition_by: list[str] = Field(default_factory=list, description="Partition columns")
    order_by: list[SortKey] = Field(default_factory=list, description="Order within a partition")
    frame: Frame | None = Field(default=None, description="Frame; default is the engine's")
    columns: list[NamedExpression] = Field(
        min_length=1,
        description="New columns, e.g. rank = row_number() or running = sum(amount)",
    )


def _bound(text: str) -> tuple[exp.Expr | str, str]:
    words = text.strip().lower().split()
    if words[0] == "unbounded":
        return "UNBOUNDED", words[1].upper()
    if words[0] == "current":
        return "CURRENT ROW", ""
    return exp.Literal.number(words[0]), words[1].upper()


class WindowFunction(GemKind):
    kind = "WindowFunction"
    category = "Transform"
    summary = "Add columns computed over a window: rankings, running totals, lags"
    Props = WindowFunctionProps

    def build(self, props: WindowFunctionProps, ctx: GemContext) -> GemOutput | None:
        ok = True
        partition = []
        for i, name in enumerate(props.partition_by):
            found = ctx.column(name, "partition_by", i)
            if found is None:
                ok = False
            else:
                partition.append(column_ref(found.name))
        order = ordering(ctx, props.order_by, "order_by")
        ok = ok and order is not None
        spec = None
        if props.frame is not None:
            start, start_side = _bound(props.frame.start)
            end, end_side = _bound(props.frame.end)
            spec = exp.WindowSpec(
                kind=props.frame.type.upper(),
                start=start,
                start_side=start_side or None,
                end=end,
                end_side=end_side or None,
            )
        new: list[tuple[exp.Expr, Column]] = []
        for i, item in enumerate(props.columns):
            tree = ctx.expression(item.expression or item.name, "columns", i, "expression")
            if tree is None:
                ok = False
                continue
            if isinstance(tree, exp.Window):
                ctx.issue(
                    "window_in_window",
                    "give the function only; the window comes from "
                    "the partition and order settings",
                    "columns",
                    i,
                    "expression",
                )
                ok = False
                continue
            window = exp.Window(
                this=tree,
                partition_by=[p.copy() for p in partition] or None,
                order=exp.Order(expressions=[o.copy() for o in order]) if order else None,
                spec=spec.copy() if spec is not None else None,
            )
            new.append((exp.alias_(window, quoted(item.name)), ctx.computed(item.name, tree)))
        if not ok:
            return None
        replaced = {c.name.lower() for _, c in new}
        kept = [c for c in ctx.input.columns if c.name.lower() not in replaced]
        columns = kept + [c for _, c in new]
        query = exp.select(*(column_ref(c.name) for c in kept), *(p for p, _ in new)).from_(
            ctx.input.table
        )
        return GemOutput(query, columns)


GEMS: list[type[GemKind]] = [Aggregate, WindowFunction]
