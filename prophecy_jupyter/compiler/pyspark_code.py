"""A pipeline as PySpark DataFrame code, for the code view and for handing a pipeline to a
Spark project as plain Python.

Each gem becomes one DataFrame named after it, built from its inputs' DataFrames. The code
is read off the statement the compiler built for the gem (so parameters are bound and column
references resolved exactly as in the SQL): a SELECT made of the parts the DataFrame API
has a method for (joins, a filter, a projection, DISTINCT, ordering, a limit, set
operations) is written with those methods, each expression passed to ``F.expr`` in Spark SQL
(through the same dialect rules as the engine's SQL); any other statement is written as
``spark.sql`` over its inputs registered as temporary views, which always says the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlglot import exp

from prophecy_jupyter.compiler.compile import CompiledPipeline
from prophecy_jupyter.compiler.dialects import render

DIALECT = "spark"

JOIN_KINDS = {
    ("", ""): "inner",
    ("", "INNER"): "inner",
    ("LEFT", ""): "left",
    ("LEFT", "OUTER"): "left",
    ("RIGHT", ""): "right",
    ("RIGHT", "OUTER"): "right",
    ("FULL", ""): "full",
    ("FULL", "OUTER"): "full",
    ("", "CROSS"): "cross",
    ("LEFT", "SEMI"): "left_semi",
    ("", "SEMI"): "left_semi",
    ("LEFT", "ANTI"): "left_anti",
    ("", "ANTI"): "left_anti",
}
"""(side, kind) of a sqlglot Join → the ``how`` of ``DataFrame.join``."""

WRITE_MODES = {"overwrite": "overwrite", "append": "append", "error_if_exists": "errorifexists"}


def _spark(node: exp.Expr) -> str:
    return render(node, DIALECT)


def _string(text: str) -> str:
    """A Python string literal of ``text`` (repr, so quotes and backslashes are escaped)."""
    return repr(text)


def _block(text: str) -> str:
    """A readable Python literal of multi-line SQL: a raw triple-quoted string (backslashes
    in SQL string literals stay as they are), or repr when the text cannot be one."""
    if '"""' in text or text.endswith("\\"):
        return _string(text)
    return f'r"""\n{text}\n"""'


SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _expr(node: exp.Expr) -> str:
    """A column expression: ``F.col`` for a plain column, else ``F.expr`` of Spark SQL."""
    if isinstance(node, exp.Column) and all(SIMPLE_NAME.match(part.name) for part in node.parts):
        return f"F.col({_string('.'.join(part.name for part in node.parts))})"
    return f"F.expr({_string(_spark(node))})"


def _relation(node: exp.Expr, inputs: set[str]) -> str | None:
    """The DataFrame a FROM or JOIN names, aliased as the SQL aliases it, if it is an input."""
    if not isinstance(node, exp.Table) or node.args.get("db") or node.name not in inputs:
        return None
    alias = node.alias or node.name
    return f"{node.name}.alias({_string(alias)})"


def _projection(select: exp.Select) -> str | None:
    expressions = select.expressions
    if len(expressions) == 1 and isinstance(expressions[0], exp.Star):
        return ""
    parts = []
    for item in expressions:
        if isinstance(item, exp.Star) or item.find(exp.Star) is not None:
            return None
        if isinstance(item, exp.Alias):
            parts.append(f"{_expr(item.this)}.alias({_string(item.alias)})")
        elif isinstance(item, exp.Column):
            parts.append(f"{_expr(item)}.alias({_string(item.name)})")
        else:
            return None
    return ".select(" + ", ".join(parts) + ")"


def _ordering(select: exp.Select) -> str:
    order = select.args.get("order")
    if order is None:
        return ""
    keys = []
    for key in order.expressions:
        column = _expr(key.this)
        nulls_first = key.args.get("nulls_first")
        if key.args.get("desc"):
            keys.append(f"{column}.{'desc_nulls_first' if nulls_first else 'desc_nulls_last'}()")
        else:
            keys.append(f"{column}.{'asc_nulls_first' if nulls_first else 'asc_nulls_last'}()")
    return ".orderBy(" + ", ".join(keys) + ")"


SIMPLE_ARGS = frozenset(
    {"expressions", "from_", "joins", "where", "distinct", "order", "limit", "offset", "kind"}
)


def _select_code(select: exp.Select, inputs: set[str]) -> str | None:
    """DataFrame method calls for a SELECT, or None when it needs more than they offer."""
    used = {k for k, v in select.args.items() if v not in (None, [], False)}
    distinct = select.args.get("distinct")
    if used - SIMPLE_ARGS or (distinct is not None and distinct.args.get("on")):
        return None
    source = select.args.get("from_")
    if source is None:
        return None
    code = _relation(source.this, inputs)
    if code is None:
        return None
    for join in select.args.get("joins") or []:
        other = _relation(join.this, inputs)
        how = JOIN_KINDS.get((join.side or "", join.kind or ""))
        if other is None or how is None or join.args.get("using"):
            return None
        on = join.args.get("on")
        if on is None and how != "cross":
            return None
        code += (
            f".crossJoin({other})" if how == "cross" else f".join({other}, {_expr(on)}, {how!r})"
        )
    where = select.args.get("where")
    if where is not None:
        code += f".where({_expr(where.this)})"
    projection = _projection(select)
    if projection is None:
        return None
    code += projection
    if select.args.get("distinct"):
        code += ".distinct()"
    code += _ordering(select)
    offset = select.args.get("offset")
    limit = select.args.get("limit")
    for clause, method in ((offset, "offset"), (limit, "limit")):
        if clause is not None:
            value = clause.expression
            if not (isinstance(value, exp.Literal) and value.is_int):
                return None
            code += f".{method}({value.name})"
    return code


SET_METHODS = {
    (exp.Union, True): "union",
    (exp.Union, False): "union",
    (exp.Intersect, True): "intersect",
    (exp.Except, True): "subtract",
}


def _star_over_input(query: exp.Expr, inputs: set[str]) -> str | None:
    """The input a bare ``SELECT * FROM input`` reads, else None."""
    if not isinstance(query, exp.Select) or not query.is_star:
        return None
    extra = {k for k, v in query.args.items() if v not in (None, [], False)}
    source = query.args.get("from_")
    if extra - {"expressions", "from_"} or source is None:
        return None
    table = source.this
    return table.name if isinstance(table, exp.Table) and table.name in inputs else None


def _set_code(query: exp.SetOperation, inputs: set[str]) -> str | None:
    """``a.union(b)`` and friends for a set operation of plain ``SELECT *`` over inputs."""
    parts: list[str] = []
    distinct = bool(query.args.get("distinct"))
    method = SET_METHODS.get((type(query), distinct))
    if method is None:
        return None
    for side in (query.this, query.expression):
        name = _star_over_input(side, inputs)
        if name is None:
            return None
        parts.append(name)
    code = f"{parts[0]}.{method}({parts[1]})"
    if isinstance(query, exp.Union) and distinct:
        code += ".distinct()"
    return code


def _sql_code(gem_id: str, query: exp.Query, inputs: Iterable[str]) -> list[str]:
    lines = [f"{name}.createOrReplaceTempView({_string(name)})" for name in inputs]
    lines.append(f"{gem_id} = spark.sql({_block(render(query, DIALECT, pretty=True))})")
    return lines


def _located(path: str, root: Path | None) -> str:
    """A file path as the code names it: under ``root`` when one is given (Spark resolves
    relative paths against its own working folder, not the project's)."""
    return path if root is None or "://" in path else str((root / path).resolve())


def _source_code(gem_id: str, props: Any, query: exp.Query, root: Path | None) -> list[str]:
    if props.format in {"csv", "parquet", "json"}:
        reader = f"spark.read.format({props.format!r})"
        if props.format == "csv":
            reader += (
                f".option('header', {props.header!r}).option('sep', {_string(props.delimiter)})"
                ".option('inferSchema', True)"
            )
        return [f"{gem_id} = {reader}.load({_string(_located(props.path, root))})"]
    if props.format == "table":
        return [f"{gem_id} = spark.table({_string(props.table)})"]
    return _sql_code(gem_id, query, [])


def _target_code(gem_id: str, source: str, props: Any, root: Path | None) -> list[str]:
    if props.mode == "merge":
        keys = ", ".join(_string(k) for k in props.keys)
        old = f"spark.table({_string(props.table)})" if props.format == "table" else None
        if old is None:
            return [f"# {gem_id}: merge into a file is done by the Spark engine, not shown here"]
        return [
            f"# {gem_id}: merge on ({keys}): old rows whose keys are not new, then the new rows",
            f"{gem_id} = {old}.join({source}, [{keys}], 'left_anti').unionByName({source})",
            f"{gem_id}.write.mode('overwrite').saveAsTable({_string(props.table)})",
        ]
    writer = f"{source}.write.mode({WRITE_MODES[props.mode]!r})"
    if props.format == "table":
        return [f"{writer}.saveAsTable({_string(props.table)})"]
    header = f".option('header', {props.header!r})" if props.format == "csv" else ""
    location = _string(_located(props.path, root))
    return [f"{writer}.format({props.format!r}){header}.save({location})"]


def pyspark_code(
    compiled: CompiledPipeline, gem_id: str | None = None, root: Path | None = None
) -> str:
    """Python code building every gem's DataFrame (those ``gem_id`` needs, when given) and
    writing every Target among them; ``spark`` is the session it expects. File paths stay
    relative to the project unless ``root`` (the project's folder) is given."""
    compiled.raise_for_issues()
    wanted = [*compiled.ancestors(gem_id), gem_id] if gem_id is not None else list(compiled.order)
    lines = [
        f"# Pipeline {compiled.pipeline.name}, as PySpark DataFrame code",
        "from pyspark.sql import functions as F",
        "",
    ]
    for current in wanted:
        built = compiled.gems[current]
        assert built.output is not None and built.kind is not None
        query = built.output.query
        inputs = list(dict.fromkeys(built.inputs))
        if built.kind.kind == "Source":
            lines += _source_code(current, built.props, query, root)
        elif built.kind.kind == "Target":
            lines += _target_code(current, inputs[0], built.props, root)
        else:
            code: str | None = None
            if isinstance(query, exp.Select):
                code = _select_code(query, set(inputs))
            elif isinstance(query, exp.SetOperation):
                code = _set_code(query, set(inputs))
            lines += [f"{current} = {code}"] if code else _sql_code(current, query, inputs)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
