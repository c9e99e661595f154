"""A compiled pipeline checked against a dialect family's rules, gem by gem.

Each gem's statement is rewritten with the rules, collecting every refusal instead of
stopping at the first. What a user typed is also checked on its own: every expression
property (by the gems' convention, fields named ``expression``, ``condition`` and
``having``) and a SQLStatement's ``query`` is parsed with the project's parser and rewritten
over the gem's inputs, so that a refusal found there points at the field and at the line and
column in it. A refusal of something the gem wrote itself (title case, a split) points at
the gem.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from prophecy_jupyter.compiler.columns import Column
from prophecy_jupyter.compiler.dialects.base import Context, Family, UnsupportedInDialect
from prophecy_jupyter.compiler.dialects.relations import SOURCE_DIALECT, Relations
from prophecy_jupyter.compiler.dialects.rewriting import rewrite
from prophecy_jupyter.compiler.expressions import (
    ExpressionRejected,
    node_position,
    parse_expression,
    parse_query,
)
from prophecy_jupyter.errors import Issue
from prophecy_jupyter.model.pipeline import pointer

if TYPE_CHECKING:
    from prophecy_jupyter.compiler.compile import CompiledGem, CompiledPipeline

EXPRESSION_FIELDS = frozenset({"expression", "condition", "having"})
"""Property names that hold one SQL expression, in every gem kind."""

QUERY_FIELDS = frozenset({"query"})
"""Property names that hold a whole SELECT (the SQLStatement gem)."""

CODE = "dialect"

Path = tuple[str | int, ...]


def pipeline_issues(compiled: CompiledPipeline, family: Family, dialect: str) -> list[Issue]:
    issues: list[Issue] = []
    for gem_id in compiled.order:
        built = compiled.gems[gem_id]
        if built.output is None:
            continue
        relations = {
            upstream: compiled.gems[upstream].output.columns  # type: ignore[union-attr]
            for upstream in built.inputs
        }
        in_fields = _field_refusals(built, relations, family, dialect)
        issues.extend(issue for issue, _ in in_fields)
        # The same refusals again, found in the gem's statement; those not found in a field
        # are of what the gem wrote itself.
        unplaced = Counter(key for _, key in in_fields)
        refused: list[UnsupportedInDialect] = []
        tree = rewrite(built.output.query, family, Context(dialect, Relations(relations)), refused)
        for refusal in refused:
            if unplaced[_key(refusal)] > 0:
                unplaced[_key(refusal)] -= 1
            else:
                issues.append(Issue(CODE, str(refusal), gem_id, pointer("gems", built.index)))
        if not refused:
            try:
                tree.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)
            except UnsupportedError as exc:
                message = f"cannot be written in {dialect}: {exc}"
                issues.append(Issue(CODE, message, gem_id, pointer("gems", built.index)))
    return issues


def _key(refusal: UnsupportedInDialect) -> tuple[type[exp.Expr], str]:
    """What a refusal is of, whether the node was read from a field or built by the gem
    (which spells its column references differently)."""
    return type(refusal.node), refusal.reason


def _field_refusals(
    built: CompiledGem, relations: Mapping[str, Sequence[Column]], family: Family, dialect: str
) -> list[tuple[Issue, tuple[type[exp.Expr], str]]]:
    found: list[tuple[Issue, tuple[type[exp.Expr], str]]] = []
    inputs = list(relations)
    for path, text in _code_fields(built.gem.properties):
        if path[-1] in QUERY_FIELDS:
            parsed = _parsed_query(text)
            known = {**relations, **{f"in{i}": relations[u] for i, u in enumerate(inputs)}}
        else:
            parsed = _parsed_expression(text, inputs)
            known = dict(relations)
        if parsed is None:
            continue  # the gem reported it already
        refused: list[UnsupportedInDialect] = []
        rewrite(parsed, family, Context(dialect, Relations(known)), refused)
        for refusal in refused:
            line, column = node_position(refusal.node)
            where = pointer("gems", built.index, "properties", *path)
            issue = Issue(CODE, str(refusal), built.gem.id, where, line, column)
            found.append((issue, _key(refusal)))
    return found


def _code_fields(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """(path, text) of every expression and query property, however deep."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and item.strip() and key in EXPRESSION_FIELDS | QUERY_FIELDS:
                yield (*path, key), item
            else:
                yield from _code_fields(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _code_fields(item, (*path, index))


def _parsed_expression(text: str, inputs: Sequence[str]) -> exp.Expr | None:
    """The expression as the only column of a SELECT over the gem's inputs, so that its
    columns resolve to their types."""
    try:
        tree = parse_expression(text, SOURCE_DIALECT)
    except ExpressionRejected:
        return None
    select = exp.select(tree)
    for index, name in enumerate(inputs):
        table = exp.Table(this=exp.to_identifier(name, quoted=True))
        select = select.from_(table) if index == 0 else select.join(table, join_type="CROSS")
    return select


def _parsed_query(text: str) -> exp.Expr | None:
    try:
        return parse_query(text, SOURCE_DIALECT)
    except ExpressionRejected:
        return None
