"""User expressions: parse with sqlglot, refuse anything that is not a plain expression, bind
parameters as typed literals.

Expression slots (a Filter condition, an Aggregate's expression…) accept exactly one scalar or
aggregate expression. Statements, subqueries, DDL/DML and functions that read files or the
environment are refused here, so a pipeline can only read data through its Source gems.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from prophecy_jupyter.model.pipeline import Parameter

# Table functions and scalar functions that touch files, the network, the catalog or the
# process environment. Lower-case names as DuckDB and the other engines spell them.
FORBIDDEN_FUNCTIONS = frozenset(
    {
        "read_csv",
        "read_csv_auto",
        "read_parquet",
        "parquet_scan",
        "parquet_metadata",
        "parquet_schema",
        "parquet_file_metadata",
        "parquet_kv_metadata",
        "read_json",
        "read_json_auto",
        "read_json_objects",
        "read_ndjson",
        "read_ndjson_auto",
        "read_ndjson_objects",
        "read_text",
        "read_blob",
        "read_xlsx",
        "sniff_csv",
        "glob",
        "getenv",
        "query",
        "query_table",
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "load_file",
        "input_file_name",
        "current_setting",
        "set_config",
        "sleep",
        "pg_sleep",
        "read_files",
        "iceberg_scan",
        "delta_scan",
        "sqlite_scan",
        "postgres_scan",
        "mysql_scan",
    }
)

# Statements and clauses that change or reveal something beyond a gem's inputs: refused
# wherever they sit, in an expression slot or in a SQLStatement gem's query.
STATEMENT_NODES: tuple[type[exp.Expr], ...] = (
    exp.DDL,
    exp.DML,
    exp.Command,
    exp.Use,
    exp.Set,
    exp.Pragma,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Copy,
    exp.Into,
    exp.Describe,
    exp.Summarize,
    exp.Show,
    exp.Attach,
    exp.Detach,
    exp.Install,
    exp.Export,
    exp.Analyze,
    exp.Kill,
    exp.Refresh,
    exp.Cache,
    exp.Uncache,
    exp.LoadData,
)

# Table-valued functions that only generate rows from their arguments.
ROW_GENERATORS: tuple[type[exp.Expr], ...] = (exp.GenerateSeries, exp.Unnest)

# What makes an "expression" a statement or a query in disguise.
FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = (
    exp.Query,
    exp.Table,
    exp.From,
    exp.Values,
    *STATEMENT_NODES,
)


@dataclass(frozen=True)
class ExpressionProblem:
    """Why an expression was refused, with a 1-based position inside its text when known."""

    code: str
    message: str
    line: int | None = None
    column: int | None = None


class ExpressionRejected(Exception):
    def __init__(self, problem: ExpressionProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def node_position(node: exp.Expr) -> tuple[int | None, int | None]:
    """Start (line, column) of a node, from the token positions sqlglot records on identifiers
    (or, for a node without any, on the first of its parts that has one)."""
    for candidate in (node, *node.find_all(exp.Identifier), *node.walk()):
        meta = candidate.meta
        if "line" in meta and "col" in meta:
            width = meta.get("end", 0) - meta.get("start", 0)
            return int(meta["line"]), int(meta["col"]) - int(width)
    return None, None


def token_position(token: Token) -> tuple[int, int]:
    """1-based (line, column) where a token starts; sqlglot records where it ends."""
    return token.line, token.col - (token.end - token.start)


def true_positions(tokens: list[Token], text: str) -> list[Token]:
    """Recompute each token's line and column from its offset in ``text``.

    sqlglot's line count drifts after a ``$name`` (it looks ahead for a ``$tag$`` string) while
    its offsets stay right; parse errors and node positions are taken from these tokens.
    """
    breaks = [i for i, char in enumerate(text) if char == "\n"]
    for token in tokens:
        before = bisect_left(breaks, token.end)
        line_start = breaks[before - 1] + 1 if before else 0
        token.line, token.col = before + 1, token.end - line_start + 1
    return tokens


def _place_parameters(tree: exp.Expr, tokens: list[Token]) -> None:
    """Record where each ``$name`` first appears: sqlglot keeps no position on parameters."""
    places: dict[str, Token] = {}
    for dollar, name in pairwise(tokens):
        if dollar.token_type == TokenType.PARAMETER:
            places.setdefault(name.text.lower(), dollar)
    for node in tree.find_all(exp.Parameter, exp.Placeholder):
        token = places.get(str(node.name).lower())
        if token is not None:
            node.meta.update(line=token.line, col=token.col, start=token.start, end=token.end)


def _parse(text: str, dialect: str, what: str) -> tuple[list[Token], list[exp.Expr | None]]:
    """``text`` tokenized (at true positions) and parsed; a syntax error raised as
    `ExpressionRejected` where sqlglot found it."""
    reader = Dialect.get_or_raise(dialect)
    try:
        tokens = true_positions(reader.tokenize(text), text)
        return tokens, reader.parser().parse(tokens, text)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        raise ExpressionRejected(
            ExpressionProblem(
                "syntax",
                f"cannot parse {what}: {first.get('description', str(exc))}",
                first.get("line"),
                first.get("col"),
            )
        ) from None
    except (TokenError, RecursionError) as exc:
        raise ExpressionRejected(
            ExpressionProblem("syntax", f"cannot parse {what}: {exc}")
        ) from None
    except Exception as exc:  # sqlglot raises assorted errors on hostile input
        raise ExpressionRejected(
            ExpressionProblem("syntax", f"cannot parse {what}: {type(exc).__name__}")
        ) from None


def _separator_position(tokens: list[Token]) -> tuple[int | None, int | None]:
    """Where the first ``;`` is: what makes a text more than one statement."""
    separator = next((t for t in tokens if t.token_type == TokenType.SEMICOLON), None)
    return token_position(separator) if separator is not None else (None, None)


def _not_an_expression(line: int | None, column: int | None) -> ExpressionRejected:
    return ExpressionRejected(
        ExpressionProblem(
            "not_an_expression",
            "statements, subqueries and table references are not allowed in an "
            "expression; use Source, Join or SQLStatement gems instead",
            line,
            column,
        )
    )


@lru_cache(maxsize=8192)
def _parse_checked(text: str, dialect: str) -> exp.Expr:
    """Parse once per (text, dialect); callers get copies. Raises `ExpressionRejected`."""
    if not text.strip():
        raise ExpressionRejected(ExpressionProblem("empty_expression", "expression is empty"))
    tokens, statements = _parse(text, dialect, "expression")
    parsed = [s for s in statements if s is not None]
    if len(parsed) != 1:
        raise ExpressionRejected(
            ExpressionProblem(
                "multiple_statements",
                "exactly one expression is allowed here" if statements else "expression is empty",
                *_separator_position(tokens),
            )
        )
    # The parser reads a statement (ATTACH, SHOW, INSTALL…) wherever its keyword comes first;
    # several of those have no node type in common with DDL/DML to be caught below.
    opening = next(t for t in tokens if t.token_type != TokenType.SEMICOLON)
    if opening.token_type in Dialect.get_or_raise(dialect).parser_class.STATEMENT_PARSERS:
        raise _not_an_expression(*token_position(opening))
    tree = parsed[0]
    _place_parameters(tree, tokens)
    if isinstance(tree, exp.Alias):
        line, col = node_position(tree.args["alias"])
        raise ExpressionRejected(
            ExpressionProblem(
                "unexpected_alias",
                f"unexpected name '{tree.alias}' after the expression; "
                "set the output column name in its own field",
                line,
                col,
            )
        )
    for node in tree.walk():
        if isinstance(node, FORBIDDEN_NODES):
            raise _not_an_expression(*node_position(node))
        if isinstance(node, exp.Func) and function_name(node) in FORBIDDEN_FUNCTIONS:
            line, col = node_position(node)
            raise ExpressionRejected(
                ExpressionProblem(
                    "forbidden_function",
                    f"function {function_name(node)}() is not allowed in an expression; "
                    "read data with a Source gem",
                    line,
                    col,
                )
            )
    return tree


def parse_expression(text: str, dialect: str = "duckdb") -> exp.Expr:
    """A checked, private copy of the parsed expression."""
    return _parse_checked(text, dialect).copy()


def check_statement_functions(tree: exp.Expr) -> ExpressionProblem | None:
    """Forbidden functions anywhere in a whole SELECT (used by the SQLStatement gem)."""
    for node in tree.find_all(exp.Func):
        if function_name(node) in FORBIDDEN_FUNCTIONS:
            line, col = node_position(node)
            return ExpressionProblem(
                "forbidden_function",
                f"function {function_name(node)}() is not allowed; read data with a Source gem",
                line,
                col,
            )
    return None


def rejected_at(node: exp.Expr, code: str, message: str) -> ExpressionRejected:
    """A rejection pointing at where ``node`` starts in the text it was parsed from."""
    return ExpressionRejected(ExpressionProblem(code, message, *node_position(node)))


def check_read_only(tree: exp.Expr, dialect: str, table_function_hint: str) -> exp.Query:
    """``tree`` if it is one query that can only read (see `parse_query`), else an
    `ExpressionRejected` at what is wrong; ``table_function_hint`` says what to use instead of
    a table function."""
    if not isinstance(tree, exp.Query):
        raise rejected_at(
            tree, "not_a_query", f"only a SELECT query is allowed here, not {tree.key.upper()}"
        )
    for node in tree.walk():
        if isinstance(node, STATEMENT_NODES):
            raise rejected_at(
                node, "not_a_query", f"{node.key.upper()} is not allowed; the query may only read"
            )
    found = check_statement_functions(tree)
    if found is not None:
        raise ExpressionRejected(found)
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func) and not isinstance(table.this, ROW_GENERATORS):
            raise rejected_at(
                table,
                "table_function",
                f"table function {table.this.sql(dialect)} is not allowed; {table_function_hint}",
            )
    return tree


def parse_query(text: str, dialect: str = "duckdb") -> exp.Query:
    """One hand-written SELECT (or set operation) that can only read, parsed and checked.

    The SQLStatement gem and the notebook's ``%%prophecy`` cells hold hand-written SQL to the
    same rules: one query; no statement (DDL, DML, PRAGMA, COPY, ATTACH…) anywhere inside it;
    no function that reaches files or the environment; no table function but those that only
    generate rows. Which tables it may read is the caller's to decide. ``$name`` parameters
    are left in place, each with the position where it first appears. Raises
    `ExpressionRejected`.
    """
    tokens, parsed = _parse(text, dialect, "SQL")
    statements = [s for s in parsed if s is not None]
    if len(statements) != 1:
        raise ExpressionRejected(
            ExpressionProblem(
                "multiple_statements",
                "write exactly one SELECT statement",
                *_separator_position(tokens),
            )
            if statements
            else ExpressionProblem("empty_statement", "the statement is empty")
        )
    tree = check_read_only(statements[0], dialect, "read data with a Source gem")
    _place_parameters(tree, tokens)
    return tree


def prepend_ctes(query: exp.Query, ctes: list[exp.CTE]) -> None:
    """Put ``ctes`` first in the query's WITH, where the query's own CTEs cannot shadow them
    (a CTE sees only those before it)."""
    if not ctes:
        return
    own = query.args.get("with_")
    if own is None:
        query.set("with_", exp.With(expressions=ctes))
    else:
        own.set("expressions", [*ctes, *own.expressions])


def visible_ctes(table: exp.Table) -> set[str]:
    """Lower-cased names of the statement's own CTEs that ``table`` can see where it sits."""
    names: set[str] = set()
    node: exp.Expr = table
    while node.parent is not None:
        parent = node.parent
        if isinstance(node, exp.CTE) and isinstance(parent, exp.With):
            ctes = parent.expressions
            index = next(i for i, cte in enumerate(ctes) if cte is node)
            upto = index + 1 if parent.args.get("recursive") else index
            names |= {cte.alias.lower() for cte in ctes[:upto]}
        elif isinstance(parent, exp.Query):
            with_ = parent.args.get("with_")
            if with_ is not None and node is not with_:
                names |= {cte.alias.lower() for cte in with_.expressions}
        node = parent
    return names


def split_assignments(items: Sequence[str]) -> dict[str, str]:
    """``name=value`` strings (as ``--param`` takes them) as a mapping; the value may hold
    ``=`` itself. Raises `ValueError` naming the first item that is not an assignment."""
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected name=value, got {item!r}")
        values[name.strip()] = value
    return values


class ParameterError(ValueError):
    """A parameter value does not fit its declared type."""


def coerce_parameter(parameter: Parameter, value: Any) -> Any:
    """Convert a raw value (from JSON, or a ``--param`` string) to the parameter's type."""
    kind = parameter.type
    try:
        if value is None:
            return None
        if kind == "string":
            return str(value)
        if kind == "integer":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "double":
            number = float(value)
            # inf/nan have no SQL literal: rendered as numbers they would read as column names.
            if isinstance(value, bool) or not math.isfinite(number):
                raise ValueError
            return number
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"true", "1", "yes"}:
                return True
            if text in {"false", "0", "no"}:
                return False
            raise ValueError
        if kind == "date":
            return dt.date.fromisoformat(str(value)).isoformat()
        if kind == "timestamp":
            return dt.datetime.fromisoformat(str(value)).isoformat(sep=" ")
    except (ValueError, TypeError, OverflowError):
        pass
    raise ParameterError(f"parameter '{parameter.name}' expects a {kind}, got {value!r}")


def parameter_literal(parameter: Parameter, value: Any) -> exp.Expr:
    """The typed literal a ``$name`` reference is replaced by (never spliced as text)."""
    if value is None:
        return exp.cast(exp.null(), _SQL_TYPES[parameter.type])
    if parameter.type == "string":
        return exp.Literal.string(value)
    if parameter.type in {"integer", "double"}:
        literal = exp.Literal.number(repr(value))
        return -exp.Literal.number(repr(-value)) if value < 0 else literal
    if parameter.type == "boolean":
        return exp.Boolean(this=bool(value))
    return exp.cast(exp.Literal.string(value), _SQL_TYPES[parameter.type])


_SQL_TYPES = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
