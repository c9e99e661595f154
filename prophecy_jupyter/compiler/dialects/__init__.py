"""SQL text for each engine's dialect: sqlglot's transpilation plus this project's rules.

sqlglot writes most of DuckDB's SQL correctly in other dialects, but not all of it: some
functions have no counterpart, some have one that answers differently. Each engine family
has a module of rules (`spark`, `postgres`, …) keyed on sqlglot expression types: a rule
rewrites a node into what gives the same answer in that dialect, or refuses it with an error
that names the gem, so that a pipeline never silently answers differently on another engine.
"""

from __future__ import annotations

from sqlglot import exp


def render(query: exp.Expr, dialect: str, pretty: bool = False) -> str:
    """SQL text of ``query`` (built by the compiler, DuckDB-flavoured) in ``dialect``."""
    return query.sql(dialect=dialect, pretty=pretty)
