"""SQLStatement: one SELECT written by hand, for what the visual gems cannot say.

The statement is held to the same rules as the rest of a pipeline: it is one query, it reads
only the gem's own inputs (by gem id, or ``in0``, ``in1``… by port), it calls no function that
reaches files or the environment, and its output schema comes from the engine binding it over
empty, typed stand-ins for the inputs, so no data is read to learn it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import Field
from sqlglot import exp
from sqlglot.lineage import lineage as column_lineage
from sqlglot.optimizer.qualify import qualify

from prophecy_jupyter.compiler.columns import UNKNOWN, Column, ColumnRef, find_column, union_lineage
from prophecy_jupyter.compiler.expressions import (
    ROW_GENERATORS,
    ExpressionRejected,
    node_position,
    parse_query,
    prepend_ctes,
    visible_ctes,
)
from prophecy_jupyter.errors import ProphecyError
from prophecy_jupyter.gems.base import (
    GemContext,
    GemKind,
    GemOutput,
    InputRelation,
    Properties,
    quoted,
)
from prophecy_jupyter.gems.reshape import TYPE_DIALECT

PORT_ALIAS = re.compile(r"^in(0|[1-9][0-9]*)$", re.IGNORECASE)

STAND_IN = "__prophecy_input_{}"


class SQLStatementProps(Properties):
    query: str = Field(
        min_length=1,
        description="One SELECT (or UNION …) over this gem's inputs, named by their gem ids "
        "or by port as in0, in1, …; $name reads a pipeline parameter",
    )


@dataclass
class _Problem:
    """Why the statement is refused, and where: a node of it, or a line and column."""

    code: str
    message: str
    node: exp.Expr | None = None
    line: int | None = None
    column: int | None = None

    def position(self) -> tuple[int | None, int | None]:
        return node_position(self.node) if self.node is not None else (self.line, self.column)


class SQLStatement(GemKind):
    kind = "SQLStatement"
    category = "Custom"
    summary = "A SELECT written in SQL over this gem's inputs"
    Props = SQLStatementProps
    min_inputs = 0
    max_inputs = None

    def build(self, props: SQLStatementProps, ctx: GemContext) -> GemOutput | None:
        try:
            tree = parse_query(props.query, ctx.dialect)
        except ExpressionRejected as exc:
            rejected = exc.problem
            ctx.issue(
                rejected.code, rejected.message, "query", line=rejected.line, column=rejected.column
            )
            return None
        problem = self._bind_parameters(tree, ctx)
        if problem is None:
            problem = self._resolve_tables(tree, ctx)
        if problem is not None:
            line, col = problem.position()
            ctx.issue(problem.code, problem.message, "query", line=line, column=col)
            return None
        described = self._describe(tree, ctx)
        if described is None:
            return None
        lineages = _lineages(tree, ctx, len(described))
        columns = [
            Column(name, UNKNOWN if dtype.strip('"').upper() == "NULL" else dtype, refs)
            for (name, dtype), refs in zip(described, lineages, strict=True)
        ]
        return GemOutput(tree, columns)

    # -- checks ----------------------------------------------------------------------------
    def _bind_parameters(self, tree: exp.Query, ctx: GemContext) -> _Problem | None:
        for node in list(tree.find_all(exp.Placeholder, exp.Parameter)):
            literal = ctx.parameters.get(str(node.name).lower())
            if literal is None:
                known = ", ".join(sorted(ctx.parameters)) or "none declared"
                return _Problem(
                    "unknown_parameter", f"unknown parameter ${node.name} ({known})", node
                )
            node.replace(literal.copy())
        return None

    def _resolve_tables(self, tree: exp.Query, ctx: GemContext) -> _Problem | None:
        """Point every table reference at an input (by gem id, or by port alias).

        Port aliases become the gem id with the alias kept as the table's alias, so
        ``in0.amount`` still resolves; the statement reads nothing else.
        """
        by_id = {rel.alias.lower(): rel for rel in ctx.inputs}
        by_port = {f"in{i}": rel for i, rel in enumerate(ctx.inputs)}
        for cte in tree.find_all(exp.CTE):
            if cte.alias.lower() in by_id:
                return _Problem(
                    "shadowed_input",
                    f"the CTE '{cte.alias}' has the name of an input; give it another name",
                    cte.args.get("alias"),
                )
        for table in list(tree.find_all(exp.Table)):
            target = table.this
            if isinstance(target, ROW_GENERATORS):
                continue
            if not isinstance(target, exp.Identifier) or table.args.get("db") or table.catalog:
                return _Problem(
                    "unknown_table",
                    f"{table.sql(ctx.dialect)} is not an input of this gem; {_inputs_hint(ctx)}",
                    table,
                )
            name = target.name.lower()
            if name in visible_ctes(table):
                continue
            own = by_id.get(name)
            port = by_port.get(name) if PORT_ALIAS.match(name) else None
            if own is not None and port is not None and own is not port:
                return _Problem(
                    "ambiguous_input",
                    f"'{target.name}' is both the gem id of one input and the port of another",
                    table,
                )
            rel = own or port
            if rel is None:
                return _Problem(
                    "unknown_table",
                    f"'{target.name}' is not an input of this gem; {_inputs_hint(ctx)}",
                    table,
                )
            table.set("this", quoted(rel.alias))
            if own is None and not table.alias:
                table.set("alias", exp.TableAlias(this=quoted(target.name)))
        return None

    # -- schema ----------------------------------------------------------------------------
    def _describe(self, tree: exp.Query, ctx: GemContext) -> list[tuple[str, str]] | None:
        try:
            described = ctx.catalog.describe(_over_stand_ins(tree, ctx.inputs))
        except ProphecyError as exc:
            line, col = _locate(str(exc), tree)
            ctx.issue(
                "invalid_sql",
                f"the engine cannot run this statement: {exc}",
                "query",
                line=line,
                column=col,
            )
            return None
        seen: set[str] = set()
        for name, _ in described:
            if name.lower() in seen:
                ctx.issue(
                    "duplicate_column",
                    f"output column '{name}' appears twice; give one of them an alias",
                    "query",
                )
                return None
            seen.add(name.lower())
        return described


MISSING_COLUMN = re.compile(r'column "([^"]+)" not found', re.IGNORECASE)


def _locate(message: str, tree: exp.Query) -> tuple[int | None, int | None]:
    """Where in the statement the engine's complaint points, when it names a column."""
    match = MISSING_COLUMN.search(message)
    if match is None:
        return None, None
    wanted = match.group(1).lower()
    for col in tree.find_all(exp.Column):
        if col.name.lower() == wanted:
            return node_position(col)
    return None, None


def _inputs_hint(ctx: GemContext) -> str:
    if not ctx.inputs:
        return "this gem has no inputs"
    names = ", ".join(f"{rel.alias} (in{i})" for i, rel in enumerate(ctx.inputs))
    return f"its inputs are {names}"


def _stand_in(rel: InputRelation) -> exp.Query:
    """An empty relation with the input's column names and types (NULL where unknown)."""
    projections: list[exp.Expr] = []
    for col in rel.columns:
        value: exp.Expr = exp.null()
        if col.type != UNKNOWN:
            try:
                value = exp.cast(value, exp.DataType.build(col.type, dialect=TYPE_DIALECT))
            except Exception:  # an unparsable type binds as NULL, i.e. loosely
                value = exp.null()
        projections.append(exp.alias_(value, quoted(col.name)))
    if not projections:
        projections.append(exp.alias_(exp.null(), quoted("__empty")))
    return exp.select(*projections).where(exp.false())


def _over_stand_ins(tree: exp.Query, inputs: list[InputRelation]) -> exp.Query:
    """``tree`` reading empty typed stand-ins, bound where its own CTEs cannot shadow them."""
    query = tree.copy()
    names = {rel.alias: STAND_IN.format(i) for i, rel in enumerate(inputs)}
    for table in query.find_all(exp.Table):
        if isinstance(table.this, exp.Identifier) and table.this.quoted:
            stand_in = names.get(table.this.name)
            if stand_in is not None and table.name.lower() not in visible_ctes(table):
                if not table.alias:
                    table.set("alias", exp.TableAlias(this=quoted(table.this.name)))
                table.set("this", quoted(stand_in))
    ctes = [
        exp.CTE(this=_stand_in(rel), alias=exp.TableAlias(this=quoted(names[rel.alias])))
        for rel in inputs
    ]
    prepend_ctes(query, ctes)
    return query


def _lineages(tree: exp.Query, ctx: GemContext, count: int) -> list[frozenset[ColumnRef]]:
    """Per output column, the source columns it is computed from.

    Traced through the statement by sqlglot; where it cannot be traced (an unusual construct,
    a star the engine expands differently), every input column is assumed to contribute.
    """
    everything = union_lineage(ctx.all_columns())
    schema: dict[str, object] = {
        rel.alias: {c.name: (c.type if c.type != UNKNOWN else "NULL") for c in rel.columns}
        for rel in ctx.inputs
    }
    try:
        qualified = qualify(
            tree.copy(),
            schema=schema,
            dialect=ctx.dialect,
            quote_identifiers=True,
            validate_qualify_columns=False,
        )
        assert isinstance(qualified, exp.Query)
        names = qualified.named_selects
        if len(names) != count:
            return [everything] * count
        out = []
        for name in names:
            refs = []
            root = column_lineage(name, qualified, schema=schema, dialect=ctx.dialect)
            for node in root.walk():
                if not isinstance(node.expression, exp.Table):
                    continue
                rel = next(
                    (r for r in ctx.inputs if r.alias.lower() == node.expression.name.lower()),
                    None,
                )
                column = exp.to_column(node.name, dialect=ctx.dialect).name
                found = find_column(rel.columns, column) if rel is not None else None
                if found is not None:
                    refs.append(found)
            out.append(union_lineage(refs))
        return out
    except Exception:  # tracing is best effort; the schema itself came from the engine
        return [everything] * count


GEMS: list[type[GemKind]] = [SQLStatement]
