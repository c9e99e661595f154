"""What a dialect family is: a table of rules keyed on sqlglot expression types.

A rule receives a node of the compiled, DuckDB-flavoured tree and returns what to write in
its place for the family's engines (the node itself when nothing needs to change), or raises
`UnsupportedInDialect` when no expression of the dialect gives the same answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from sqlglot import exp

if TYPE_CHECKING:
    from prophecy_jupyter.compiler.dialects.relations import Relations


class UnsupportedInDialect(Exception):
    """``node`` has no counterpart in the dialect that gives the same answer."""

    def __init__(self, node: exp.Expr, reason: str, construct: str | None = None) -> None:
        self.node = node
        self.reason = reason
        self.construct = construct or construct_name(node)
        super().__init__(f"`{self.construct}` {reason}")


@dataclass
class Context:
    """What a rule may consult: the dialect it writes and the types of the tree's nodes."""

    dialect: str
    relations: Relations

    def refuse(self, node: exp.Expr, reason: str, construct: str | None = None) -> NoReturn:
        """Raise `UnsupportedInDialect`; ``{dialect}`` in ``reason`` names the dialect."""
        raise UnsupportedInDialect(node, reason.replace("{dialect}", self.dialect), construct)

    def type_of(self, node: exp.Expr) -> exp.DataType | None:
        return self.relations.type_of(node)

    def is_type(self, node: exp.Expr, *types: exp.DType) -> bool | None:
        """Whether ``node`` is of one of ``types``; ``None`` when its type is unknown."""
        dtype = self.type_of(node)
        return None if dtype is None else dtype.is_type(*types)


Rule = Callable[[exp.Expr, Context], exp.Expr]
Rules = Mapping[type[exp.Expr], Rule]


@dataclass(frozen=True)
class Family:
    """Engines that share rules: one module per family holds its table."""

    name: str
    dialects: frozenset[str]
    rules: Rules
    functions: Mapping[str, Rule] = field(default_factory=dict)
    """DuckDB functions sqlglot does not model (parsed as `exp.Anonymous`), by lower-case
    name: those the family can write. Any other such function is refused."""

    def rule_for(self, node: exp.Expr) -> Rule | None:
        for cls in type(node).__mro__:
            rule = self.rules.get(cls)
            if rule is not None:
                return rule
            if cls is exp.Expr:
                break
        return None


def chain(*rules: Rule) -> Rule:
    """One rule applying ``rules`` in turn, each to what the previous one returned."""

    def apply(node: exp.Expr, ctx: Context) -> exp.Expr:
        for rule in rules:
            node = rule(node, ctx)
        return node

    return apply


_FIRST_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*")


def construct_name(node: exp.Expr) -> str:
    """How a user would name the construct: the function as DuckDB spells it, else the SQL."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Func):
        match = _FIRST_WORD.match(node.sql("duckdb"))
        if match is not None:
            return match.group(0).lower()
    text = node.sql("duckdb")
    return text if len(text) <= 60 else text[:57] + "..."
