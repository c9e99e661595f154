"""SQL text for each engine's dialect: sqlglot's transpilation plus this project's rules.

sqlglot writes most of DuckDB's SQL correctly in other dialects, but not all of it: some
functions have no counterpart, some have one that answers differently. Each engine family
has a module of rules (`spark`, `postgres`, `bigquery`, `snowflake`) keyed on sqlglot
expression types: a rule rewrites a node into what gives the same answer in that dialect, or
refuses it with an error that names the gem, so that a pipeline never silently answers
differently on another engine. DuckDB, the dialect the compiler builds in, has no rules.

`render` writes one statement (refusing with a `ValidationError`); `dialect_issues` checks a
whole compiled pipeline and points each refusal at the gem's field and the position in it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from prophecy_jupyter.compiler.columns import Column
from prophecy_jupyter.compiler.dialects import bigquery, postgres, snowflake, spark
from prophecy_jupyter.compiler.dialects.base import Context, Family, UnsupportedInDialect
from prophecy_jupyter.compiler.dialects.issues import pipeline_issues
from prophecy_jupyter.compiler.dialects.relations import Relations
from prophecy_jupyter.compiler.dialects.rewriting import rewrite, write
from prophecy_jupyter.errors import Issue

if TYPE_CHECKING:
    from prophecy_jupyter.compiler.compile import CompiledPipeline

__all__ = [
    "Statement",
    "UnsupportedInDialect",
    "dialect_issues",
    "family_of",
    "mark_statement",
    "pipeline_relations",
    "render",
    "statement_of",
]

FAMILIES: tuple[Family, ...] = (spark.FAMILY, postgres.FAMILY, bigquery.FAMILY, snowflake.FAMILY)

_BY_DIALECT = {d: family for family in FAMILIES for d in family.dialects}


def family_of(dialect: str) -> Family | None:
    """The rules for ``dialect``; ``None`` for DuckDB and for dialects no engine uses."""
    return _BY_DIALECT.get(dialect.lower())


@dataclass(frozen=True)
class Statement:
    """What a compiled statement is, for whoever renders it: the gem it computes (its CTEs
    are named after the others) and the columns of the relations it reads, by name.

    `CompiledPipeline` marks each statement it hands out with one (`mark_statement`), so an
    engine that renders it, after swapping its file readers or wrapping it in a CREATE TABLE,
    gets the rewrites and refusals that validation found."""

    gem_id: str
    relations: Mapping[str, Sequence[Column]]

    def __deepcopy__(self, memo: object) -> Statement:
        return self  # immutable: copies of the tree share it


_STATEMENT = "prophecy_statement"


def mark_statement(
    query: exp.Query, gem_id: str, relations: Mapping[str, Sequence[Column]]
) -> exp.Query:
    query.meta[_STATEMENT] = Statement(gem_id, relations)
    return query


def statement_of(tree: exp.Expr) -> Statement | None:
    """The mark of the compiled statement in ``tree`` (itself or a statement wrapping it)."""
    for node in (tree, *tree.find_all(exp.Query)):
        found = node.meta.get(_STATEMENT) if node._meta is not None else None
        if isinstance(found, Statement):
            return found
    return None


def render(
    query: exp.Expr,
    dialect: str,
    pretty: bool = False,
    *,
    gem_id: str | None = None,
    relations: Mapping[str, Sequence[Column]] | None = None,
) -> str:
    """SQL text of ``query`` (built by the compiler, DuckDB-flavoured) in ``dialect``.

    ``gem_id`` is the gem whose statement ``query`` is and ``relations`` the columns of the
    relations it reads, by name (some rules need a type, or what a ``*`` stands for); both
    default to what `CompiledPipeline` marked the statement with. Raises `ValidationError`
    (code ``dialect``, naming the gem) when the statement uses something that would answer
    differently in ``dialect`` and cannot be rewritten.
    """
    family = family_of(dialect)
    if family is None:
        return query.sql(dialect=dialect, pretty=pretty)
    marked = statement_of(query)
    if marked is not None:
        gem_id = gem_id or marked.gem_id
        relations = marked.relations if relations is None else relations
    tree = rewrite(query, family, Context(dialect, Relations(relations)), gem_id=gem_id)
    return write(tree, dialect, pretty, gem_id)


def pipeline_relations(compiled: CompiledPipeline) -> dict[str, list[Column]]:
    """The output columns of every gem built, by gem id: what `render` needs to know of a
    compiled pipeline's statements."""
    return {
        gem_id: gem.output.columns
        for gem_id, gem in compiled.gems.items()
        if gem.output is not None
    }


def dialect_issues(compiled: CompiledPipeline, dialect: str) -> list[Issue]:
    """Every construct of the pipeline that would answer differently in ``dialect``, each as
    an issue on the gem, the field and the position in it (see `issues`)."""
    family = family_of(dialect)
    if family is None:
        return []
    return pipeline_issues(compiled, family, dialect)
