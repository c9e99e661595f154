"""Applying a family's rules to a compiled statement, and writing the result with sqlglot."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from prophecy_jupyter.compiler.dialects.base import Context, Family, UnsupportedInDialect
from prophecy_jupyter.errors import Issue, ValidationError

_ORIGINAL = "prophecy_original"
"""Marks the nodes of the tree being rewritten (and copies of them) as opposed to the nodes
rules create, which are already written for the dialect and get no rule applied."""


def rewrite(
    query: exp.Expr,
    family: Family,
    ctx: Context,
    refused: list[UnsupportedInDialect] | None = None,
    gem_id: str | None = None,
) -> exp.Expr:
    """A copy of ``query`` with the family's rules applied, top down.

    A refusal raises `ValidationError`, or, when ``refused`` is given, is appended to it and
    the refused node is left as it is (to find every refusal at once).
    """
    tree = query.copy()
    for node in tree.walk():
        node.meta[_ORIGINAL] = True
    root = tree
    stack: list[exp.Expr] = [tree]
    while stack:
        node = stack.pop()
        rule = family.rule_for(node) if node.meta.get(_ORIGINAL) else None
        if rule is not None:
            # Where the node sits, taken first: a rule may wrap the node itself.
            parent, key, index = node.parent, node.arg_key, node.index
            try:
                replacement = rule(node, ctx)
            except UnsupportedInDialect as refusal:
                if refused is None:
                    raise ValidationError([_issue(refusal, gem_id)]) from None
                refused.append(refusal)
                continue
            if replacement is not node:
                ctx.relations.carry(node, replacement)
                if parent is None or key is None:
                    root = replacement
                else:
                    parent.set(key, replacement, index)
                if replacement.meta.get(_ORIGINAL):
                    stack.append(replacement)
                else:
                    stack.extend(reversed(list(replacement.iter_expressions())))
                continue
        stack.extend(reversed(list(node.iter_expressions())))
    return root


def write(tree: exp.Expr, dialect: str, pretty: bool, gem_id: str | None) -> str:
    """sqlglot's text of a rewritten tree; what sqlglot itself knows it cannot write in the
    dialect is refused like a rule's refusal."""
    try:
        return tree.sql(dialect=dialect, pretty=pretty, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        holder = _unwritable_part(tree, dialect)
        message = f"cannot be written in {dialect}: {exc}"
        gem = gem_id
        if holder is not None:
            gem = holder_gem(holder, gem_id)
        raise ValidationError([Issue("dialect", message, gem_id=gem)]) from None


def _unwritable_part(tree: exp.Expr, dialect: str) -> exp.Expr | None:
    """The CTE of the statement that sqlglot cannot write, to name its gem."""
    with_ = tree.args.get("with_")
    for cte in with_.expressions if isinstance(with_, exp.With) else []:
        try:
            cte.this.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)
        except UnsupportedError:
            body: exp.Expr = cte.this
            return body
    return None


def holder_gem(node: exp.Expr, default: str | None) -> str | None:
    """The gem a node of a compiled statement belongs to: the CTE of the pipeline's chain
    (the outermost WITH) it sits in, else the gem whose statement it is."""
    current: exp.Expr | None = node
    while current is not None:
        parent = current.parent
        if (
            isinstance(current, exp.CTE)
            and isinstance(parent, exp.With)
            and parent.find_ancestor(exp.With) is None
        ):
            return current.alias
        current = parent
    return default


def _issue(refusal: UnsupportedInDialect, gem_id: str | None) -> Issue:
    return Issue("dialect", str(refusal), gem_id=holder_gem(refusal.node, gem_id))
