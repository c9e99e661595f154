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
from prophecy_jupyter.errors import ProphecyError

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
PANDAS_FORMATS = frozenset({"excel", "xml"})
"""File formats Spark has no built-in reader or writer for: the code uses pandas."""


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


def _connection_url(
    compiled: CompiledPipeline, props: Any, root: Path | None, *, spark: bool
) -> str | None:
    """Where a file behind a connection is, for code that reads it with the cluster's own
    credentials (the connection's stay in the secret store)."""
    from prophecy_jupyter.connectors.files import connection_url

    if compiled.connections is None:
        return None
    try:
        return connection_url(compiled.connections(props.connection), props.path, root, spark=spark)
    except ProphecyError:
        return None


def _source_code(
    compiled: CompiledPipeline, gem_id: str, props: Any, query: exp.Query, root: Path | None
) -> list[str]:
    location: str | None = _located(props.path, root) if props.path else None
    if props.connection is not None:
        location = _connection_url(compiled, props, root, spark=props.format not in PANDAS_FORMATS)
        comment = f"# {gem_id}: {props.path} of connection {props.connection!r}"
        if location is None:
            message = f"{gem_id}: read {props.path} of connection {props.connection!r} here"
            return [comment, f"raise NotImplementedError({_string(message)})"]
        return [
            f"{comment}, read with the cluster's credentials",
            *_file_source(gem_id, props, location),
        ]
    if props.format in PANDAS_FORMATS or props.format in {"csv", "parquet", "json"}:
        assert location is not None
        return _file_source(gem_id, props, location)
    if props.format == "table":
        return [f"{gem_id} = spark.table({_string(props.table)})"]
    return _sql_code(gem_id, query, [])


def _file_source(gem_id: str, props: Any, path: str) -> list[str]:
    location = _string(path)
    if props.format in PANDAS_FORMATS:
        if props.format == "excel":
            reader = (
                f"pd.read_excel({location}, sheet_name={_string(props.sheet) if props.sheet else 0}"
                f", header={0 if props.header else None})"
            )
        else:
            xpath = _string(props.row_path or "/*/*")
            reader = f"pd.read_xml({location}, xpath={xpath}, parser='lxml')"
        return [f"{gem_id} = spark.createDataFrame({reader})"]
    reader = f"spark.read.format({props.format!r})"
    if props.format == "csv":
        reader += (
            f".option('header', {props.header!r}).option('sep', {_string(props.delimiter)})"
            ".option('inferSchema', True)"
        )
    return [f"{gem_id} = {reader}.load({location})"]


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
    if props.format != "table" and props.connection is not None:
        return [
            f"# {gem_id}: written to {props.path} through connection {props.connection!r} "
            "by the engine, not shown here (its credentials stay in the secret store)"
        ]
    if props.format in PANDAS_FORMATS:
        return _pandas_target_code(gem_id, source, props, _located(props.path, root))
    writer = f"{source}.write.mode({WRITE_MODES[props.mode]!r})"
    if props.format == "table":
        return [f"{writer}.saveAsTable({_string(props.table)})"]
    header = f".option('header', {props.header!r})" if props.format == "csv" else ""
    location = _string(_located(props.path, root))
    return [f"{writer}.format({props.format!r}){header}.save({location})"]


def _pandas_target_code(gem_id: str, source: str, props: Any, path: str) -> list[str]:
    """Excel and XML have no Spark writer: the rows are collected to the driver and written
    with pandas, as the engine's file connector writes them (one file, old rows first on
    append)."""
    location = _string(path)
    if props.format == "excel":
        sheet = _string(props.sheet or "Sheet1")
        read = f"pd.read_excel({location}, sheet_name={sheet})"
        write = f"to_excel({location}, sheet_name={sheet}, index=False, header={props.header!r})"
    else:
        xpath = _string(f"/{props.root_tag}/{props.row_tag}")
        read = f"pd.read_xml({location}, xpath={xpath}, parser='lxml')"
        write = (
            f"to_xml({location}, root_name={_string(props.root_tag)}, "
            f"row_name={_string(props.row_tag)}, index=False, parser='lxml')"
        )
    lines = [f"{gem_id} = {source}.toPandas()"]
    if props.mode == "error_if_exists":
        lines.append(
            f"if os.path.exists({location}):\n"
            f"    raise FileExistsError({_string(f'{path} already exists (mode error_if_exists)')})"
        )
    elif props.mode == "append":
        lines.append(
            f"if os.path.exists({location}):\n    {gem_id} = pd.concat([{read}, {gem_id}])"
        )
    lines += [
        f"os.makedirs(os.path.dirname({location}) or '.', exist_ok=True)",
        f"{gem_id}.{write}",
    ]
    return lines


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
    ]
    if any(_uses_pandas(compiled, current) for current in wanted):
        lines += ["import os", "import pandas as pd"]
    lines.append("")
    for current in wanted:
        built = compiled.gems[current]
        assert built.output is not None and built.kind is not None
        query = built.output.query
        inputs = list(dict.fromkeys(built.inputs))
        if built.kind.kind == "Source":
            lines += _source_code(compiled, current, built.props, query, root)
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


def _uses_pandas(compiled: CompiledPipeline, gem_id: str) -> bool:
    """Whether the gem's code calls pandas: an Excel or XML Source (local or behind a
    connection), or an Excel or XML Target the code writes itself."""
    built = compiled.gems[gem_id]
    kind = built.kind.kind if built.kind is not None else None
    props = built.props
    if getattr(props, "format", None) not in PANDAS_FORMATS:
        return False
    if kind == "Source":
        return True
    return kind == "Target" and props.connection is None and props.mode != "merge"
