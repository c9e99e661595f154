"""Combining inputs: Join (two or more inputs) and SetOperation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sqlglot import exp

from prophecy_jupyter.compiler.columns import UNKNOWN, Column, find_column
from prophecy_jupyter.gems.base import (
    GemContext,
    GemKind,
    GemOutput,
    InputRelation,
    Properties,
    column_ref,
    quoted,
)
from prophecy_jupyter.gems.transform import NamedExpression, check_unique, project

JoinType = Literal["inner", "left", "right", "full", "cross", "semi", "anti"]


class JoinClause(Properties):
    how: JoinType = Field(default="inner", description="Join type with this input")
    condition: str = Field(
        default="",
        description="Join condition naming inputs by gem id, e.g. orders.id = items.order_id",
    )


class JoinProps(Properties):
    joins: list[JoinClause] = Field(
        min_length=1, description="One clause per input after the first (in1, in2, …)"
    )
    columns: list[NamedExpression] = Field(
        default_factory=list,
        description="Output columns; empty keeps every column of every input",
    )


def _aliased(rel: InputRelation) -> exp.Table:
    return exp.Table(this=quoted(rel.alias), alias=exp.TableAlias(this=quoted(rel.alias)))


class Join(GemKind):
    kind = "Join"
    category = "Join/Split"
    summary = "Join two or more inputs (inner, left, right, full, cross, semi, anti)"
    Props = JoinProps
    min_inputs = 2
    max_inputs = None

    def subset_inputs(self, props: JoinProps, inputs: int) -> frozenset[int]:
        # Port 0 and each later port join the rows accumulated so far; a port is monotone if
        # its own clause keeps its rows only when matched (or all, for cross) and every later
        # clause keeps the accumulated side the same way.
        keeps_left = {"inner", "left", "cross", "semi", "anti"}
        keeps_right = {"inner", "cross", "right"}
        ports = set()
        for port in range(len(props.joins) + 1):
            own = port == 0 or props.joins[port - 1].how in keeps_right
            later = all(clause.how in keeps_left for clause in props.joins[port:])
            if own and later:
                ports.add(port)
        return frozenset(ports)

    def build(self, props: JoinProps, ctx: GemContext) -> GemOutput | None:
        if len(props.joins) != len(ctx.inputs) - 1:
            ctx.issue(
                "join_clauses",
                f"{len(ctx.inputs)} inputs need {len(ctx.inputs) - 1} join clause(s), "
                f"found {len(props.joins)}",
                "joins",
            )
            return None
        aliases = [rel.alias.lower() for rel in ctx.inputs]
        repeated = next((a for i, a in enumerate(aliases) if a in aliases[:i]), None)
        if repeated is not None:
            ctx.issue(
                "self_join",
                f"'{repeated}' feeds more than one input, so a condition could not tell them "
                "apart; pass one branch through its own gem (e.g. a Reformat) to join a "
                "relation with itself",
                "joins",
            )
            return None
        ok = True
        query = exp.select().from_(_aliased(ctx.inputs[0]))
        visible = [ctx.inputs[0]]  # semi/anti joins hide their right side from the output
        redundant: set[tuple[str, str]] = set()
        for i, (clause, rel) in enumerate(zip(props.joins, ctx.inputs[1:], strict=True)):
            condition = None
            if clause.how == "cross":
                if clause.condition.strip():
                    ctx.issue(
                        "cross_condition",
                        "a cross join takes no condition",
                        "joins",
                        i,
                        "condition",
                    )
                    ok = False
            else:
                # The inputs joined so far minus those a semi/anti join consumed (SQL cannot
                # see them any more), and the input being joined.
                scope = GemContext(
                    ctx.gem,
                    ctx.index,
                    [*visible, rel],
                    ctx.parameters,
                    ctx.catalog,
                    ctx.dialect,
                    ctx.issues,
                )
                if not clause.condition.strip():
                    ctx.issue(
                        "missing_condition",
                        f"a {clause.how} join needs a condition",
                        "joins",
                        i,
                        "condition",
                    )
                    ok = False
                else:
                    condition = scope.expression(clause.condition, "joins", i, "condition")
                    ok = ok and condition is not None
            if clause.how not in {"semi", "anti"}:
                visible.append(rel)
            if condition is not None and clause.how in {"inner", "left"}:
                redundant |= {(rel.alias, name) for name in _equated_keys(condition, rel.alias)}
            if condition is None and clause.how != "cross":
                continue  # already reported
            query.append(
                "joins",
                exp.Join(
                    this=_aliased(rel),
                    on=condition,
                    side={"left": "LEFT", "right": "RIGHT", "full": "FULL"}.get(clause.how),
                    kind={"semi": "SEMI", "anti": "ANTI", "cross": "CROSS"}.get(clause.how),
                ),
            )
        if not ok:
            return None
        scope = GemContext(
            ctx.gem, ctx.index, visible, ctx.parameters, ctx.catalog, ctx.dialect, ctx.issues
        )
        if props.columns:
            items = project(scope, props.columns, "columns")
            if items is None:
                return None
            projections = [p for p, _ in items]
            columns = [c for _, c in items]
        else:
            kept = [
                (rel.alias, c)
                for rel in visible
                for c in rel.columns
                if (rel.alias, c.name.lower()) not in redundant
            ]
            projections = [column_ref(c.name, alias) for alias, c in kept]
            columns = [c for _, c in kept]
        if not check_unique(ctx, columns, "columns"):
            return None
        return GemOutput(query.select(*projections, copy=False), columns)


def _equated_keys(condition: exp.Expr, alias: str) -> set[str]:
    """Names of ``alias``'s columns that the condition equates to a same-named column of an
    earlier input (``a.id = b.id``). In an inner or left join such a column repeats the left
    one, so the default output keeps only the left copy instead of failing on a duplicate."""
    names = set()
    for eq in condition.find_all(exp.EQ):
        left, right = eq.this, eq.expression
        if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
            continue
        if left.name.lower() != right.name.lower():
            continue
        tables = {left.table.lower(), right.table.lower()}
        if alias.lower() in tables and len(tables) == 2 and "" not in tables:
            names.add(left.name.lower())
    return names


class SetOperationProps(Properties):
    operation: Literal[
        "union_all", "union", "intersect", "intersect_all", "except", "except_all"
    ] = Field(default="union_all", description="union keeps distinct rows; union_all keeps all")
    by: Literal["position", "name"] = Field(
        default="position",
        description="Match columns by position, or by name (missing columns become NULL)",
    )


class SetOperation(GemKind):
    kind = "SetOperation"
    category = "Join/Split"
    summary = "Union, intersect or subtract inputs, matching columns by position or name"
    Props = SetOperationProps
    min_inputs = 2
    max_inputs = None

    def subset_inputs(self, props: SetOperationProps, inputs: int) -> frozenset[int]:
        if props.operation.startswith("except"):
            return frozenset({0})
        return frozenset(range(inputs))

    def build(self, props: SetOperationProps, ctx: GemContext) -> GemOutput | None:
        first = ctx.inputs[0]
        if props.by == "position":
            for i, rel in enumerate(ctx.inputs[1:], start=1):
                if len(rel.columns) != len(first.columns):
                    ctx.issue(
                        "column_count",
                        f"input in{i} ('{rel.alias}') has {len(rel.columns)} columns, "
                        f"in0 ('{first.alias}') has {len(first.columns)}",
                        "by",
                    )
                    return None
            names = [c.name for c in first.columns]
            selects = [
                exp.select(
                    *(
                        exp.alias_(column_ref(c.name), quoted(n)) if c.name != n else column_ref(n)
                        for c, n in zip(rel.columns, names, strict=True)
                    )
                ).from_(rel.table)
                for rel in ctx.inputs
            ]
            per_input = [rel.columns for rel in ctx.inputs]
        else:
            names = []
            for rel in ctx.inputs:
                for c in rel.columns:
                    if find_column([Column(n, UNKNOWN) for n in names], c.name) is None:
                        names.append(c.name)
            selects = []
            per_input = []
            for rel in ctx.inputs:
                row: list[exp.Expr] = []
                cols: list[Column] = []
                for name in names:
                    found = find_column(rel.columns, name)
                    if found is None:
                        row.append(exp.alias_(exp.null(), quoted(name)))
                        cols.append(Column(name, UNKNOWN))
                    else:
                        row.append(exp.alias_(column_ref(found.name), quoted(name)))
                        cols.append(found.renamed(name))
                selects.append(exp.select(*row).from_(rel.table))
                per_input.append(cols)
        columns = []
        for position, name in enumerate(names):
            candidates = [cols[position] for cols in per_input]
            known = {c.type for c in candidates if c.type != UNKNOWN}
            dtype = known.pop() if len(known) == 1 else UNKNOWN
            lineage = frozenset().union(*(c.lineage for c in candidates))
            columns.append(Column(name, dtype, lineage))
        op, distinct = {
            "union_all": (exp.Union, False),
            "union": (exp.Union, True),
            "intersect": (exp.Intersect, True),
            "intersect_all": (exp.Intersect, False),
            "except": (exp.Except, True),
            "except_all": (exp.Except, False),
        }[props.operation]
        query: exp.Query = selects[0]
        for select in selects[1:]:
            query = op(this=query, expression=select, distinct=distinct)
        return GemOutput(query, columns)


GEMS: list[type[GemKind]] = [Join, SetOperation]
