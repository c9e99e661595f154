"""Rules and building blocks that several dialect families share.

Each family module (`spark`, `postgres`, `bigquery`, `snowflake`) composes its table from
these and from its own spellings; nothing here is chosen by asking which dialect is meant.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.expressions.builders import apply_index_offset

from prophecy_jupyter.compiler.dialects import regex
from prophecy_jupyter.compiler.dialects.base import Context, Rule, Rules
from prophecy_jupyter.compiler.dialects.rewriting import holder_gem
from prophecy_jupyter.gems.aggregate import ENGINE_AGGREGATES

# -- small builders ------------------------------------------------------------------------


def call(name: str, *args: exp.Expr) -> exp.Anonymous:
    """``NAME(args)`` written as it is in every dialect."""
    return exp.Anonymous(this=name, expressions=list(args))


def number(value: int) -> exp.Expr:
    literal = exp.Literal.number(abs(value))
    return exp.Neg(this=literal) if value < 0 else literal


def paren(node: exp.Expr) -> exp.Paren:
    return exp.Paren(this=node)


def cast(node: exp.Expr, to: str, dialect: str) -> exp.Cast:
    """``CAST(node AS to)``, ``to`` spelled in ``dialect``."""
    return exp.Cast(this=node, to=exp.DataType.build(to, dialect=dialect))


def int_value(node: exp.Expr | None) -> int | None:
    """The value of an integer literal (``-2`` included), else ``None``."""
    if isinstance(node, exp.Paren):
        return int_value(node.this)
    if isinstance(node, exp.Neg):
        inner = int_value(node.this)
        return None if inner is None else -inner
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return int(node.this)
        except ValueError:
            return None
    return None


def string_value(node: exp.Expr | None) -> str | None:
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this)
    return None


# -- units and date parts ---------------------------------------------------------------------

UNITS = {
    **dict.fromkeys(("year", "years", "y", "yr", "yrs"), "year"),
    **dict.fromkeys(("quarter", "quarters"), "quarter"),
    **dict.fromkeys(("month", "months", "mon", "mons"), "month"),
    **dict.fromkeys(("week", "weeks", "w", "weekofyear"), "week"),
    **dict.fromkeys(("day", "days", "d", "dayofmonth"), "day"),
    **dict.fromkeys(("hour", "hours", "h", "hr", "hrs"), "hour"),
    **dict.fromkeys(("minute", "minutes", "m", "min", "mins"), "minute"),
    **dict.fromkeys(("second", "seconds", "s", "sec", "secs"), "second"),
    **dict.fromkeys(("millisecond", "milliseconds", "ms", "msec", "msecs"), "millisecond"),
    **dict.fromkeys(("microsecond", "microseconds", "us", "usec", "usecs"), "microsecond"),
    **dict.fromkeys(("dow", "dayofweek", "weekday"), "dow"),
    "isodow": "isodow",
    **dict.fromkeys(("doy", "dayofyear"), "doy"),
    "isoyear": "isoyear",
    "yearweek": "yearweek",
    "epoch": "epoch",
    **dict.fromkeys(("decade", "decades"), "decade"),
    **dict.fromkeys(("century", "centuries"), "century"),
    **dict.fromkeys(("millennium", "millennia"), "millennium"),
}
"""DuckDB's names of units and date parts (and their aliases) → one canonical name."""


def unit_of(node: exp.Expr | None) -> str | None:
    text = node.name if isinstance(node, (exp.Var, exp.Literal, exp.Identifier)) else None
    return UNITS.get(text.lower()) if text else None


PART_NODES: dict[type[exp.Expr], str] = {
    exp.Year: "year",
    exp.Quarter: "quarter",
    exp.Month: "month",
    exp.Week: "week",
    exp.WeekOfYear: "week",
    exp.Day: "day",
    exp.DayOfMonth: "day",
    exp.DayOfWeek: "dow",
    exp.DayOfWeekIso: "isodow",
    exp.DayOfYear: "doy",
    exp.Hour: "hour",
    exp.Minute: "minute",
    exp.Second: "second",
}
"""sqlglot's nodes for DuckDB's date part functions (``year(d)``, ``dayofweek(d)``…)."""

Parts = Mapping[str, Callable[[exp.Expr], exp.Expr]]
"""How a family extracts each date part it can, as DuckDB numbers it (``dow``: Sunday 0)."""


def date_part(parts: Parts) -> Rule:
    """``extract(part FROM x)``, ``date_part('part', x)`` and the part functions, written with
    the family's ``parts``; a part the family cannot number as DuckDB does is refused."""

    def rule(node: exp.Expr, ctx: Context) -> exp.Expr:
        if isinstance(node, exp.Extract):
            part, source = unit_of(node.this), node.expression
        elif isinstance(node, exp.Anonymous):
            args = node.expressions
            part, source = unit_of(args[0]) if len(args) == 2 else None, args[-1]
        else:
            part, source = PART_NODES[type(node)], node.this
        build = parts.get(part) if part else None
        if build is None:
            ctx.refuse(node, "has no counterpart in {dialect} that numbers it as DuckDB does")
        return build(source)

    return rule


@dataclass(frozen=True)
class DateArithmetic:
    """How a family counts days between dates and boundaries of sub-day units."""

    days: Callable[[exp.Expr, exp.Expr], exp.Expr]
    """Whole days from the first DATE to the second."""
    sub_day: Callable[[str, exp.Expr, exp.Expr, Context], exp.Expr] | None
    """Boundaries of ``unit`` (hour…microsecond) crossed from the first to the second."""


def as_date(node: exp.Expr, ctx: Context) -> exp.Expr:
    if ctx.is_type(node, exp.DType.DATE):
        return node
    return exp.Cast(this=node, to=exp.DataType.build("DATE"))


SUB_DAY = frozenset({"hour", "minute", "second", "millisecond", "microsecond"})


def date_diff(parts: Parts, arithmetic: DateArithmetic) -> Rule:
    """DuckDB's ``date_diff(unit, start, end)`` counts unit boundaries crossed (two dates a day
    apart across a month end differ by one month), except for weeks, which are whole 7-day
    spans of the days between. Engines' own DATEDIFF mostly count elapsed units, so it is
    rewritten into calendar arithmetic that says the same everywhere."""

    def rule(node: exp.Expr, ctx: Context) -> exp.Expr:
        unit = unit_of(node.args.get("unit")) or "day"
        end, start = node.this, node.expression

        def diff(part: str, factor: int | None = None) -> exp.Expr:
            """``part(end) - part(start)``, counted from year 0 in ``factor`` parts a year."""

            def count(value: exp.Expr) -> exp.Expr:
                own = parts[part](value.copy())
                if factor is None:
                    return own
                years = exp.Mul(this=parts["year"](value.copy()), expression=number(factor))
                return paren(exp.Add(this=years, expression=own))

            return paren(exp.Sub(this=count(end), expression=count(start)))

        if unit == "year":
            return diff("year")
        if unit == "quarter":
            return diff("quarter", 4)
        if unit == "month":
            return diff("month", 12)
        if unit in {"day", "week"}:
            days = arithmetic.days(as_date(start, ctx), as_date(end, ctx))
            return days if unit == "day" else exp.IntDiv(this=days, expression=number(7))
        if unit in SUB_DAY and arithmetic.sub_day is not None:
            return arithmetic.sub_day(unit, start, end, ctx)
        ctx.refuse(node, f"in {unit}s has no counterpart in {{dialect}} counting as DuckDB does")

    return rule


# -- lists ------------------------------------------------------------------------------------


def is_list(node: exp.Expr, ctx: Context) -> bool | None:
    """Whether ``node`` is a list; ``None`` when its type is unknown."""
    return ctx.is_type(node, exp.DType.ARRAY)


def element_type(node: exp.Expr, ctx: Context) -> exp.DataType | None:
    dtype = ctx.type_of(node)
    if dtype is None or not dtype.is_type(exp.DType.ARRAY) or not dtype.expressions:
        return None
    element = dtype.expressions[0]
    return element if isinstance(element, exp.DataType) else None


def list_length(count: Callable[[exp.Expr], exp.Expr]) -> Rule:
    """``len(list)``/``length(list)``/``array_length(list)``: the family's element count
    (which must answer NULL for a NULL list and 0 for an empty one); ``len`` of text is
    left as it is."""

    def rule(node: exp.Expr, ctx: Context) -> exp.Expr:
        if isinstance(node, exp.Length) and not is_list(node.this, ctx):
            return node
        if isinstance(node, exp.ArraySize) and int_value(node.expression) not in {None, 1}:
            ctx.refuse(node, "of a dimension other than the first has no counterpart in {dialect}")
        return count(node.this)

    return rule


@dataclass(frozen=True)
class Slice:
    """DuckDB's ``list[begin:end]`` bounds: 1-based, inclusive, negative counting from the end,
    clamped to the list; ``None`` for an omitted bound."""

    begin: exp.Expr | None
    end: exp.Expr | None


def index_of(node: exp.Expr) -> exp.Expr | Slice | None:
    """The index (or slice) a list-reading node takes, as DuckDB numbers it: ``l[i]``,
    ``l[a:b]``, ``list_extract(l, i)``, ``array_slice(l, a, b)``."""
    if isinstance(node, exp.Bracket):
        if node.args.get("json_access") or len(node.expressions) != 1:
            return None
        bounds = node.expressions[0]
        if isinstance(bounds, exp.Slice):
            if bounds.args.get("step") is not None:
                return None
            return Slice(bounds.this, bounds.expression)
        return duckdb_index(node)
    if isinstance(node, exp.ArraySlice):
        if node.args.get("is_length") or node.args.get("step") is not None:
            return None
        return Slice(node.args.get("start"), node.args.get("end"))
    if isinstance(node, exp.Anonymous) and len(node.expressions) == 2:
        position: exp.Expr = node.expressions[1]
        return position
    return None


def duckdb_index(node: exp.Bracket) -> exp.Expr:
    """The index of ``l[i]`` as DuckDB receives it (1-based). sqlglot keeps an index it can
    type as an integer 0-based (``l[1]`` holds 0) and any other as written, and adds the
    dialect's offset back when writing; this is what it writes for DuckDB."""
    offset = 1 - (node.args.get("offset") or 0)
    written = apply_index_offset(node.this.copy(), [node.expressions[0].copy()], offset, "duckdb")
    index: exp.Expr = written[0]
    return index


def list_of(node: exp.Expr) -> exp.Expr:
    items: exp.Expr = node.expressions[0] if isinstance(node, exp.Anonymous) else node.this
    return items


def reads_list(node: exp.Expr, ctx: Context) -> bool:
    """Whether a bracket reads a list by position (not a map by key, a struct by name or
    text by character): the container is a list, or of unknown type with an index that is
    not text."""
    if not isinstance(node, exp.Bracket):
        return True
    container = ctx.type_of(node.this)
    if container is not None:
        return container.is_type(exp.DType.ARRAY)
    index: exp.Expr = node.expressions[0]
    if isinstance(index, exp.Slice):
        return True
    return string_value(index) is None and not ctx.is_type(index, *exp.DataType.TEXT_TYPES)


def list_access(
    at: Callable[[exp.Expr, exp.Expr, Context], exp.Expr],
    sliced: Callable[[exp.Expr, Slice, Context], exp.Expr],
) -> Rule:
    """Reading a list by position, with the family's ``at`` (element) and ``sliced``."""

    def rule(node: exp.Expr, ctx: Context) -> exp.Expr:
        index = index_of(node)
        if index is None or not reads_list(node, ctx):
            if isinstance(node, exp.Bracket) and ctx.is_type(node.this, *exp.DataType.TEXT_TYPES):
                ctx.refuse(node, "reading text by character has no counterpart in {dialect}")
            return node
        container = list_of(node)
        if isinstance(index, Slice):
            return sliced(container, index, ctx)
        return at(container, index, ctx)

    return rule


def from_end(count: exp.Expr, index: exp.Expr) -> exp.Expr:
    """The 1-based position of a negative DuckDB index: ``count + 1 + index``."""
    value = int_value(index)
    if value is None:
        return exp.Add(this=exp.Add(this=count, expression=number(1)), expression=index)
    if value == -1:
        return count
    return exp.Sub(this=count, expression=number(-(value + 1)))


def slice_bounds(
    count: exp.Expr, bounds: Slice
) -> tuple[exp.Expr, exp.Expr] | tuple[int, int] | None:
    """1-based inclusive positions of a DuckDB slice, clamped below to 1: as numbers when
    both bounds are non-negative literals (an omitted end is ``None`` → the list's end is
    only needed then), else as expressions over ``count``."""
    begin = 1 if bounds.begin is None else int_value(bounds.begin)
    end = None if bounds.end is None else int_value(bounds.end)
    if begin is not None and begin >= 0 and end is not None and end >= 0:
        return max(begin, 1), end

    def position(bound: exp.Expr | None, default: exp.Expr) -> exp.Expr:
        if bound is None:
            return default
        value = int_value(bound)
        if value is not None:
            return from_end(count.copy(), bound) if value < 0 else number(value)
        return exp.Case(
            ifs=[
                exp.If(
                    this=exp.LT(this=bound.copy(), expression=number(0)),
                    true=from_end(count.copy(), bound.copy()),
                )
            ],
            default=bound.copy(),
        )

    first = exp.Greatest(this=position(bounds.begin, number(1)), expressions=[number(1)])
    return first, position(bounds.end, count.copy())


# -- row generators -------------------------------------------------------------------------


def series(
    generate: Callable[[exp.Expr, exp.Expr, int, str, exp.Table, Context], exp.Expr],
) -> Rule:
    """``FROM range(a, b[, step])`` (end excluded) and ``FROM generate_series(a, b[, step])``
    (end included) as a table: ``generate`` gets the start, the last value the series may
    reach (inclusive), the step, the column's name (DuckDB names it after the function unless
    the alias names it) and the table. The step must be a literal, so that its sign is known;
    a series used as a value (a list) is refused."""

    def rule(node: exp.Expr, ctx: Context) -> exp.Expr:
        assert isinstance(node, exp.GenerateSeries)
        table = node.parent
        if not isinstance(table, exp.Table):
            ctx.refuse(node, "as a list value has no counterpart in {dialect}; use it as a table")
        step = 1 if node.args.get("step") is None else int_value(node.args.get("step"))
        if not step:
            ctx.refuse(node, "needs a literal, non-zero whole step to be written in {dialect}")
        for bound in (node.args["start"], node.args["end"]):
            if int_value(bound) is None and not ctx.is_type(bound, *exp.DataType.INTEGER_TYPES):
                ctx.refuse(node, "of anything but whole numbers has no counterpart in {dialect}")
        end = node.args["end"].copy()
        if node.args.get("is_end_exclusive"):
            end = fold(exp.Sub(this=end, expression=number(1 if step > 0 else -1)))
        alias = table.args.get("alias")
        default = "range" if node.args.get("is_end_exclusive") else "generate_series"
        column = (
            alias.columns[0].name
            if isinstance(alias, exp.TableAlias) and alias.columns
            else default
        )
        return generate(node.args["start"].copy(), end, step, column, table, ctx)

    return rule


def fold(node: exp.Expr) -> exp.Expr:
    """``literal ± literal`` computed, so that written SQL keeps plain numbers."""
    if isinstance(node, (exp.Add, exp.Sub)):
        left, right = int_value(node.this), int_value(node.expression)
        if left is not None and right is not None:
            return number(left + right if isinstance(node, exp.Add) else left - right)
    return node


def table_alias(table: exp.Table, column: str) -> exp.TableAlias:
    """The table's alias naming its one column ``column`` (DuckDB's name by default)."""
    alias = table.args.get("alias")
    name = alias.name if isinstance(alias, exp.TableAlias) and alias.name else column
    return exp.TableAlias(
        this=exp.to_identifier(name, quoted=True),
        columns=[exp.to_identifier(column, quoted=True)],
    )


# -- SELECT clauses ----------------------------------------------------------------------------


def aggregates(node: exp.Expr) -> bool:
    """Whether an expression aggregates rows (outside a window, which does not)."""
    return any(
        (
            isinstance(inner, exp.AggFunc)
            or (isinstance(inner, exp.Anonymous) and str(inner.name).lower() in ENGINE_AGGREGATES)
        )
        and not _in_window(inner, node)
        for inner in node.walk()
    )


def _in_window(inner: exp.Expr, top: exp.Expr) -> bool:
    current = inner.parent
    while current is not None and current is not top.parent:
        if isinstance(current, exp.Window):
            return True
        current = current.parent
    return False


def _star_modifiers(star: exp.Expr) -> exp.Star:
    return star.this if isinstance(star, exp.Column) else star  # type: ignore[return-value]


def has_star(select: exp.Select) -> bool:
    return any(
        isinstance(p, exp.Star) or (isinstance(p, exp.Column) and p.is_star)
        for p in select.expressions
    )


def expand_stars(keep: frozenset[str] = frozenset()) -> Rule:
    """``*`` and ``t.*`` with modifiers the family cannot write (``keep`` are those it can:
    ``except_``, ``replace``, ``rename``) expanded into the columns they stand for, as the
    compiler knows them; refused when it does not."""

    def rule(node: exp.Expr, ctx: Context) -> exp.Expr:
        assert isinstance(node, exp.Select)
        for projection in list(node.expressions):
            if not (
                isinstance(projection, exp.Star)
                or (isinstance(projection, exp.Column) and projection.is_star)
            ):
                continue
            modifiers = {
                k
                for k in ("except_", "replace", "rename")
                if _star_modifiers(projection).args.get(k)
            }
            if not modifiers - keep:
                continue
            expanded = expand_star(node, projection, ctx)
            if expanded is None:
                ctx.refuse(
                    projection,
                    "cannot be expanded for {dialect}: the columns it stands for are not known",
                    construct=_star_name(modifiers),
                )
            index = next(i for i, p in enumerate(node.expressions) if p is projection)
            node.set(
                "expressions",
                [*node.expressions[:index], *expanded, *node.expressions[index + 1 :]],
            )
        return node

    return rule


def _star_name(modifiers: set[str]) -> str:
    words = {"except_": "EXCLUDE", "replace": "REPLACE", "rename": "RENAME"}
    return "* " + " ".join(words[m] for m in ("except_", "replace", "rename") if m in modifiers)


def expand_star(select: exp.Select, star: exp.Expr, ctx: Context) -> list[exp.Expr] | None:
    """The projections a star of ``select`` stands for, after EXCLUDE, REPLACE and RENAME."""
    columns = ctx.relations.star_columns(select, star)
    if columns is None:
        return None
    options = _star_modifiers(star)
    replaced = {a.alias.lower(): a.this for a in options.args.get("replace") or []}
    renamed = {
        a.this.name.lower(): a.alias
        for a in options.args.get("rename") or []
        if isinstance(a, exp.Alias)
    }
    out: list[exp.Expr] = []
    for source, name, _ in columns:
        key = name.lower()
        target = exp.to_identifier(renamed.get(key, name), quoted=True)
        if key in replaced:
            out.append(exp.alias_(replaced[key].copy(), target))
            continue
        ref = exp.column(
            exp.to_identifier(name, quoted=True), table=exp.to_identifier(source, quoted=True)
        )
        out.append(exp.alias_(ref, target) if key in renamed else ref)
    return out


def expand_group_by_all(node: exp.Expr, ctx: Context) -> exp.Expr:
    """``GROUP BY ALL`` as DuckDB reads it: by every projection that does not aggregate,
    written as their positions (which every dialect reads, constants included)."""
    assert isinstance(node, exp.Select)
    group = node.args.get("group")
    if not isinstance(group, exp.Group) or not group.args.get("all"):
        return node
    if has_star(node):
        ctx.refuse(
            group,
            "with `*` among the columns cannot be expanded for {dialect}",
            construct="GROUP BY ALL",
        )
    keys = [number(i) for i, p in enumerate(node.expressions, start=1) if not aggregates(p)]
    node.set("group", exp.Group(expressions=keys) if keys else None)
    return node


def expand_order_by_all(node: exp.Expr, ctx: Context) -> exp.Expr:
    """``ORDER BY ALL``: every projection, left to right, by position."""
    assert isinstance(node, exp.Select)
    order = node.args.get("order")
    if not isinstance(order, exp.Order):
        return node
    keys = order.expressions
    if len(keys) != 1 or not (
        isinstance(keys[0].this, exp.Var) and keys[0].this.name.upper() == "ALL"
    ):
        return node
    if has_star(node):
        ctx.refuse(
            order,
            "with `*` among the columns cannot be expanded for {dialect}",
            construct="ORDER BY ALL",
        )
    all_ = keys[0]
    node.set(
        "order",
        exp.Order(
            expressions=[
                exp.Ordered(
                    this=number(i),
                    desc=all_.args.get("desc"),
                    nulls_first=all_.args.get("nulls_first"),
                )
                for i in range(1, len(node.expressions) + 1)
            ]
        ),
    )
    return node


QUALIFIED = "__prophecy_qualified"


def eliminate_qualify(node: exp.Expr, ctx: Context) -> exp.Expr:
    """``QUALIFY`` for a dialect without it: the statement without QUALIFY, DISTINCT, ORDER
    BY and LIMIT becomes a subquery that also computes what QUALIFY and ORDER BY need, and the
    outer query filters, deduplicates, orders and limits, in DuckDB's order of evaluation.
    (sqlglot's own elimination leaves ORDER BY inside the subquery, where it orders nothing.)"""
    assert isinstance(node, exp.Select)
    qualify = node.args.get("qualify")
    if qualify is None:
        return node
    if has_star(node):
        ctx.refuse(
            qualify,
            "with `*` among the columns cannot be rewritten for {dialect}; list the columns",
            construct="QUALIFY",
        )
    names = [p.alias_or_name for p in node.expressions]
    if any(not n for n in names) or len({n.lower() for n in names}) != len(names):
        ctx.refuse(
            qualify,
            "needs every column to have a distinct name to be rewritten for {dialect}",
            construct="QUALIFY",
        )
    by_name = {n.lower() for n in names}
    inner = node.copy()
    for key in ("qualify", "order", "limit", "offset", "distinct"):
        inner.set(key, None)
    hidden: list[exp.Expr] = []

    def carried(expression: exp.Expr) -> exp.Expr:
        """A reference, in the outer query, to ``expression`` computed by the inner one."""
        if (
            isinstance(expression, exp.Column)
            and not expression.table
            and expression.name.lower() in by_name
        ):
            return exp.column(exp.to_identifier(expression.name, quoted=True))
        position = int_value(expression)
        if position is not None and 1 <= position <= len(names):
            return exp.column(exp.to_identifier(names[position - 1], quoted=True))
        name = f"{QUALIFIED}_{len(hidden)}"
        hidden.append(exp.alias_(expression.copy(), exp.to_identifier(name, quoted=True)))
        return exp.column(exp.to_identifier(name, quoted=True))

    condition = qualify.this.copy()
    for window in list(condition.find_all(exp.Window)):
        if window.find_ancestor(exp.Window) is None:
            reference = carried(window)
            if window is condition:
                condition = reference
            else:
                window.replace(reference)
    for col in list(condition.find_all(exp.Column)):
        if not col.name.startswith(QUALIFIED):
            reference = carried(col)
            if col is condition:
                condition = reference
            else:
                col.replace(reference)
    order = node.args.get("order")
    ordered = [
        exp.Ordered(
            this=carried(o.this), desc=o.args.get("desc"), nulls_first=o.args.get("nulls_first")
        )
        for o in (order.expressions if isinstance(order, exp.Order) else [])
    ]
    inner.set("expressions", [*inner.expressions, *hidden])
    outer = exp.select(*(exp.column(exp.to_identifier(n, quoted=True)) for n in names)).from_(
        exp.Subquery(
            this=inner, alias=exp.TableAlias(this=exp.to_identifier(QUALIFIED, quoted=True))
        )
    )
    outer.set("where", exp.Where(this=condition))
    if node.args.get("distinct"):
        outer.set("distinct", node.args["distinct"].copy())
    if ordered:
        outer.set("order", exp.Order(expressions=ordered))
    for key in ("limit", "offset"):
        if node.args.get(key) is not None:
            outer.set(key, node.args[key].copy())
    if node.args.get("with_") is not None:
        outer.set("with_", node.args["with_"].copy())
        inner.set("with_", None)
    return outer


def rename_nested_ctes(node: exp.Expr, ctx: Context) -> exp.Expr:
    """CTEs of a statement written inside a gem, for a dialect whose SQL sqlglot writes with
    every CTE at the top: one whose name another CTE or a table of the statement also has is
    renamed (and read under its old name as alias), so that it cannot clash or shadow."""
    assert isinstance(node, exp.With)
    if node.find_ancestor(exp.With) is None:
        return node
    root = node.root()
    taken = {cte.alias.lower() for cte in root.find_all(exp.CTE) if cte.parent is not node}
    taken |= {
        t.name.lower() for t in root.find_all(exp.Table) if isinstance(t.this, exp.Identifier)
    }
    owner = node.parent
    assert owner is not None
    for cte in node.expressions:
        old = cte.alias
        if old.lower() not in taken:
            continue
        new = _unused(f"{old}_{holder_name(node)}", taken)
        taken.add(new.lower())
        cte.set("alias", exp.TableAlias(this=exp.to_identifier(new, quoted=True)))
        for table in owner.find_all(exp.Table):
            if (
                isinstance(table.this, exp.Identifier)
                and table.name.lower() == old.lower()
                and not table.args.get("db")
            ):
                if not table.alias:
                    table.set("alias", exp.TableAlias(this=exp.to_identifier(old, quoted=True)))
                table.set("this", exp.to_identifier(new, quoted=True))
    return node


def holder_name(node: exp.Expr) -> str:
    return holder_gem(node, None) or "statement"


def _unused(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate


# -- refusals --------------------------------------------------------------------------------


def refuse(reason: str) -> Rule:
    def rule(node: exp.Expr, ctx: Context) -> exp.Expr:
        ctx.refuse(node, reason)

    return rule


def refuse_lambda(node: exp.Expr, ctx: Context) -> exp.Expr:
    """A lambda (``list_filter(l, lambda x: …)``) where the dialect has none."""
    holder = node.parent if isinstance(node.parent, exp.Func) else node
    ctx.refuse(holder, "takes a lambda, which {dialect} has no counterpart for")


def functions(table: Mapping[str, Rule]) -> Rule:
    """DuckDB functions sqlglot does not model (``exp.Anonymous``): those in ``table`` are
    rewritten by their rule, file readers are left for the engine to replace, any other is
    refused, since the engine has it under another meaning or not at all."""
    # Imported here: importing the engines package imports the compiler.
    from prophecy_jupyter.engines.files import READERS

    def rule(node: exp.Expr, ctx: Context) -> exp.Expr:
        assert isinstance(node, exp.Anonymous)
        name = str(node.name).lower()
        handler = table.get(name)
        if handler is not None:
            return handler(node, ctx)
        if name in READERS and isinstance(node.parent, exp.Table):
            return node
        ctx.refuse(node, "is a DuckDB function with no known counterpart in {dialect}")

    return rule


# -- templates -----------------------------------------------------------------------------


def template(sql: str, dialect: str, **parts: exp.Expr) -> exp.Expr:
    """``sql`` (read in ``dialect``) with each column named after a keyword (``subject``)
    replaced by a copy of that node: a rewrite too long to build node by node."""
    tree = _parsed(sql, dialect).copy()
    for col in list(tree.find_all(exp.Column)):
        part = parts.get(col.name) if not col.table else None
        if part is not None:
            replacement = part.copy()
            if col is tree:
                return replacement
            col.replace(replacement)
    return tree


@lru_cache(maxsize=256)
def _parsed(sql: str, dialect: str) -> exp.Expr:
    return sqlglot.parse_one(sql, read=dialect)


def shallow(node: exp.Expr) -> exp.Expr:
    """A new node of the same kind holding the same children: what a rule wraps when it keeps
    the node (the node itself would be rewritten again)."""
    return type(node)(**{k: v for k, v in node.args.items() if v is not None})


# -- date arithmetic and buckets -------------------------------------------------------------

WALL_CLOCK = (exp.DType.TIMESTAMPNTZ, exp.DType.TIMESTAMP, exp.DType.DATETIME)
"""DuckDB's TIMESTAMP: a date and time of day without a time zone (sqlglot reads it as
TIMESTAMPNTZ)."""


def interval_arithmetic(
    to_timestamp: Callable[[exp.Expr], exp.Expr] | None,
    days: Callable[[exp.Expr, exp.Expr], exp.Expr] | None,
) -> Rule:
    """DuckDB answers a TIMESTAMP for DATE ± INTERVAL (``to_timestamp`` casts the family's
    answer when it is a DATE) and a number of days for DATE - DATE (``days`` counts them
    where the family answers an INTERVAL)."""

    def rule(node: exp.Expr, ctx: Context) -> exp.Expr:
        left, right = node.this, node.expression
        intervals = [isinstance(left, exp.Interval), isinstance(right, exp.Interval)]
        if any(intervals):
            moved = right if intervals[0] else left
            if to_timestamp is not None and ctx.is_type(moved, exp.DType.DATE):
                return to_timestamp(shallow(node))
            return node
        if (
            days is not None
            and isinstance(node, exp.Sub)
            and ctx.is_type(left, exp.DType.DATE)
            and ctx.is_type(right, exp.DType.DATE)
        ):
            return days(left, right)
        return node

    return rule


def whole_unit(node: exp.Expr, ctx: Context) -> str:
    """The unit of a ``time_bucket`` one unit wide: DuckDB's buckets (from 2000-01-03, a
    Monday, or for months from 2000-01-01) are then the calendar's; other widths, origins
    and offsets are refused."""
    width = node.this
    if node.args.get("origin") is not None or node.args.get("zone") is not None:
        ctx.refuse(node, "with an origin or offset has no counterpart in {dialect}")
    if not isinstance(width, exp.Interval) or int_value(_interval_count(width)) != 1:
        ctx.refuse(node, "is only written in {dialect} for buckets one unit wide (INTERVAL 1 DAY…)")
    unit = unit_of(width.args.get("unit"))
    if unit not in {"year", "quarter", "month", "week", "day", "hour", "minute", "second"}:
        ctx.refuse(node, "to this unit has no counterpart in {dialect}")
    assert unit is not None
    return unit


def _interval_count(interval: exp.Interval) -> exp.Expr | None:
    this: exp.Expr | None = interval.this
    if isinstance(this, exp.Literal) and this.is_string:
        return exp.Literal.number(this.name) if this.name.strip().lstrip("-").isdigit() else None
    return this


# -- regular expressions ---------------------------------------------------------------------


def pattern_of(node: exp.Expr, arg: str, ctx: Context, flavour: regex.Flavour) -> str:
    text = string_value(node.args.get(arg))
    if text is None:
        ctx.refuse(node, "needs a literal pattern to be carried over to {dialect}")
    try:
        return flavour.translate(text)
    except regex.Untranslatable as exc:
        ctx.refuse(node, f"pattern cannot be carried over to {{dialect}}: {exc}")


def options_of(node: exp.Expr, arg: str, ctx: Context) -> tuple[bool, bool]:
    """(global, case-insensitive) from DuckDB's options string; others are refused."""
    text = string_value(node.args.get(arg)) if node.args.get(arg) is not None else ""
    if text is None:
        ctx.refuse(node, "needs literal options to be carried over to {dialect}")
    insensitive = False
    for flag in text:
        if flag not in "gic":
            ctx.refuse(node, f"option '{flag}' has no counterpart in {{dialect}}")
        if flag in "ic":
            insensitive = flag == "i"
    return "g" in text, insensitive


def replaces_all(node: exp.Expr, ctx: Context) -> tuple[bool, bool]:
    """(every match, case-insensitive): DuckDB replaces only the first match unless 'g' is
    given; a node the compiler built (no ``single_replace``) replaces every match."""
    every, insensitive = options_of(node, "modifiers", ctx)
    return every or not node.args.get("single_replace"), insensitive


FIRST_MATCH = "^([\\s\\S]*?)({})"
"""A pattern matching from the start of the text through the first match of a pattern
(anchored, so that replacing every match replaces only that one); group 1 is what comes
before it, group 2 the match."""


# -- rounding ----------------------------------------------------------------------------------

SPLITTER = 134217729.0
"""2**27 + 1: Veltkamp's constant, splitting a double into two halves whose products are
exact."""


def double_round(trunc: Callable[[exp.Expr], exp.Expr], native_whole: bool) -> Rule:
    """DuckDB rounds a DOUBLE to ``n`` decimals exactly, half away from zero, on its binary
    value (2.675 is 2.67499999…, so 2.67); Spark rounds its shortest decimal text (2.68),
    PostgreSQL rounds half to even and has no ``round(double, n)``. Written out: ``p = x·10ⁿ``,
    and where ``p`` lands on a tie the exact product's error (Dekker's product, with ``x``
    split by Veltkamp's constant) says which side the exact value is on. ``native_whole``:
    the family's own ROUND(x) already rounds a DOUBLE to a whole number as DuckDB does."""

    def rule(node: exp.Expr, ctx: Context) -> exp.Expr:
        value = node.this
        if not ctx.is_type(value, exp.DType.DOUBLE, exp.DType.FLOAT):
            return node
        decimals = node.args.get("decimals")
        places = 0 if decimals is None else int_value(decimals)
        if places is None or not 0 <= places <= 7:
            ctx.refuse(node, "of a DOUBLE is only written in {dialect} to 0 to 7 literal decimals")
        if places == 0 and native_whole:
            return node
        scale = float(10**places)

        def v() -> exp.Expr:
            atomic = isinstance(value, (exp.Column, exp.Paren, exp.Func, exp.Literal))
            return value.copy() if atomic else paren(value.copy())

        product = (
            paren(exp.Mul(this=v(), expression=exp.Literal.number(repr(scale)))) if places else v()
        )
        whole = trunc(product.copy())
        fraction = call("ABS", exp.Sub(this=product.copy(), expression=whole.copy()))
        sign = call("SIGN", product.copy())
        half = exp.Literal.number("0.5")
        away = exp.Add(this=whole.copy(), expression=sign.copy())
        tie: exp.Expr = exp.EQ(this=fraction.copy(), expression=half.copy())
        if places:
            spread = paren(exp.Mul(this=exp.Literal.number(repr(SPLITTER)), expression=v()))
            high = paren(
                exp.Sub(this=spread, expression=paren(exp.Sub(this=spread.copy(), expression=v())))
            )
            error = exp.Add(
                this=paren(
                    exp.Sub(
                        this=exp.Mul(this=high, expression=exp.Literal.number(repr(scale))),
                        expression=product.copy(),
                    )
                ),
                expression=exp.Mul(
                    this=paren(exp.Sub(this=v(), expression=high.copy())),
                    expression=exp.Literal.number(repr(scale)),
                ),
            )
            tie = exp.and_(
                tie, exp.NEQ(this=call("SIGN", error), expression=exp.Neg(this=sign.copy()))
            )
        rounds_away = exp.or_(exp.GT(this=fraction, expression=half), tie)
        rounded = exp.Case(ifs=[exp.If(this=rounds_away, true=away)], default=whole)
        if not places:
            return rounded
        return paren(exp.Div(this=rounded, expression=exp.Literal.number(repr(scale))))

    return rule


def rounded_whole(
    trunc: Callable[[exp.Expr], exp.Expr], even: bool
) -> Callable[[exp.Expr, Context], exp.Expr]:
    """A number rounded to a whole one with the family's TRUNC, exactly: ties half to even
    or half away from zero."""

    def build(value: exp.Expr, ctx: Context) -> exp.Expr:
        atomic = isinstance(value, (exp.Column, exp.Paren, exp.Func, exp.Literal))
        v = value if atomic else paren(value)
        whole = trunc(v.copy())
        fraction = call("ABS", exp.Sub(this=v.copy(), expression=whole.copy()))
        half = exp.Literal.number("0.5")
        tie: exp.Expr = exp.EQ(this=fraction.copy(), expression=half.copy())
        if even:
            odd = exp.NEQ(this=call("MOD", whole.copy(), number(2)), expression=number(0))
            tie = exp.and_(tie, odd)
        up = exp.or_(exp.GT(this=fraction, expression=half), tie)
        away = exp.Add(this=whole.copy(), expression=call("SIGN", v.copy()))
        return exp.Case(ifs=[exp.If(this=up, true=away)], default=whole)

    return build


def interval(computed: Literal["native", "multiplied", "refused"]) -> Rule:
    """``INTERVAL (90) DAY`` (a parameter bound in ``INTERVAL ($days) DAY``) as the literal
    ``INTERVAL '90' DAY``, which every dialect reads. A count computed at run time is kept
    where the dialect's INTERVAL takes an expression (``native``), multiplies one unit where
    it takes only literals (``multiplied``), and is refused where intervals cannot be
    multiplied either (sqlglot would drop the count)."""

    def rule(node: exp.Expr, ctx: Context) -> exp.Expr:
        assert isinstance(node, exp.Interval)
        count = node.this.this if isinstance(node.this, exp.Paren) else node.this
        unit = node.args.get("unit")
        if isinstance(count, exp.Literal):
            if count is node.this:
                return node
            return exp.Interval(this=exp.Literal.string(count.name), unit=unit)
        if count is None or unit is None or computed == "native":
            return node
        if computed == "refused":
            ctx.refuse(node, "with a count computed at run time has no counterpart in {dialect}")
        one = exp.Interval(this=exp.Literal.string("1"), unit=unit.copy())
        return paren(exp.Mul(this=paren(count), expression=one))

    return rule


# -- title case ------------------------------------------------------------------------------

TITLE_DELIMITERS = " \t\n\r\f\v" + string.punctuation
"""Where DuckDB's title case (sqlglot's ``initcap`` for DuckDB) starts a new word: after
whitespace or ASCII punctuation."""


def delimiter_class(vertical_tab: str) -> str:
    """`TITLE_DELIMITERS` as a regex character class, the vertical tab spelled as given."""
    spelled = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\v": vertical_tab}
    body = "".join(spelled.get(c, "\\" + c if c in "\\-[]^" else c) for c in TITLE_DELIMITERS)
    return f"[{body}]"


def initcap_delimiters(node: exp.Expr, ctx: Context) -> exp.Expr:
    """INITCAP with DuckDB's delimiters spelled out: the family's defaults differ (Snowflake's
    leave out the apostrophe: O'neil)."""
    if node.args.get("expression") is not None:
        return node
    return exp.Initcap(this=node.this, expression=exp.Literal.string(TITLE_DELIMITERS))


# -- arithmetic and text functions -----------------------------------------------------------

FRACTIONAL = (exp.DType.DOUBLE, exp.DType.FLOAT, exp.DType.DECIMAL)


def fractional(node: exp.Expr, ctx: Context) -> bool:
    """Whether a number has a fraction: of a known non-integer type, or a literal like 1.5
    (DuckDB and Spark read it as a DECIMAL)."""
    if isinstance(node, exp.Literal) and not node.is_string:
        return "." in node.name or "e" in node.name.lower()
    return bool(ctx.is_type(node, *FRACTIONAL))


def double_division(node: exp.Expr, ctx: Context) -> exp.Expr:
    """DuckDB divides DECIMALs (and, with ``//``, any number that is not a whole one) as
    DOUBLEs; engines keep a DECIMAL to a few decimals (Spark to 6) or divide whole."""
    left, right = node.this, node.expression
    if isinstance(node, exp.Div) and not (
        ctx.is_type(left, exp.DType.DECIMAL)
        or ctx.is_type(right, exp.DType.DECIMAL)
        or (fractional(left, ctx) and not ctx.is_type(left, exp.DType.DOUBLE, exp.DType.FLOAT))
        or (fractional(right, ctx) and not ctx.is_type(right, exp.DType.DOUBLE, exp.DType.FLOAT))
    ):
        return node
    if isinstance(node, exp.IntDiv) and not (fractional(left, ctx) or fractional(right, ctx)):
        return node
    double = exp.DataType.build("DOUBLE")
    return exp.Div(this=exp.Cast(this=left, to=double), expression=right, typed=False, safe=False)


def log_base_ten(ten: Callable[[exp.Expr], exp.Expr]) -> Rule:
    """DuckDB's one-argument ``log`` is the base-10 logarithm (Spark's and BigQuery's are
    natural)."""

    def rule(node: exp.Expr, ctx: Context) -> exp.Expr:
        if node.args.get("expression") is not None:
            return node
        return ten(node.this)

    return rule


def whole_cast(
    half_even: Callable[[exp.Expr, Context], exp.Expr] | None,
    half_away: Callable[[exp.Expr, Context], exp.Expr] | None,
) -> Rule:
    """A cast of a fractional number to a whole type rounds in DuckDB: a DOUBLE half to even
    (2.5 → 2), a DECIMAL half away from zero (2.5 → 3); engines may truncate (Spark) or round
    the other way. ``half_even``/``half_away`` round the value first where the family's cast
    would not do it so (``None``: it does)."""

    def rule(node: exp.Expr, ctx: Context) -> exp.Expr:
        target = node.args.get("to")
        value = node.this
        if not isinstance(target, exp.DataType) or not target.is_type(*exp.DataType.INTEGER_TYPES):
            return node
        rounding = None
        if ctx.is_type(value, exp.DType.DOUBLE, exp.DType.FLOAT):
            rounding = half_even
        elif ctx.is_type(value, exp.DType.DECIMAL) or fractional(value, ctx):
            rounding = half_away
        if rounding is None:
            return node
        return type(node)(this=rounding(value, ctx), to=target)

    return rule


def substring(negative: bool, zero: bool) -> Rule:
    """DuckDB's ``substring(s, start, length)`` counts a negative start from the end and reads
    a start of 0 as the position before the first character (``substring('abcd', 0, 2)`` is
    'a'). ``negative``/``zero``: the family's SUBSTRING reads such a start the same way;
    where it does not, the start is moved (by a CASE when it is computed at run time)."""

    def rule(node: exp.Expr, ctx: Context) -> exp.Expr:
        text, start, length = node.this, node.args.get("start"), node.args.get("length")
        value = int_value(start)
        if start is None or (value is not None and value > 0):
            return node

        def part(begin: exp.Expr, count: exp.Expr | None) -> exp.Expr:
            return exp.Substring(this=text.copy(), start=begin, length=count)

        from_end = part(
            exp.Add(
                this=exp.Add(this=call("LENGTH", text.copy()), expression=number(1)),
                expression=start.copy(),
            ),
            length.copy() if length is not None else None,
        )
        shorter = None
        if length is not None:
            shorter = exp.Greatest(
                this=exp.Sub(this=length.copy(), expression=number(1)), expressions=[number(0)]
            )
        from_first = part(number(1), shorter)
        if value is not None:
            if value < 0 and not negative:
                return from_end
            if value == 0 and not zero:
                return from_first
            return node
        ifs = []
        if not negative:
            ifs.append(exp.If(this=exp.LT(this=start.copy(), expression=number(0)), true=from_end))
        if not zero:
            ifs.append(
                exp.If(this=exp.EQ(this=start.copy(), expression=number(0)), true=from_first)
            )
        if not ifs:
            return node
        return exp.Case(
            ifs=ifs, default=part(start.copy(), length.copy() if length is not None else None)
        )

    return rule


TIME_FORMATS = frozenset({"%Y", "%m", "%d", "%H", "%M", "%S", "%y", "%%"})
"""strftime/strptime specifiers every family writes as DuckDB reads them."""


def time_format(node: exp.Expr, ctx: Context) -> exp.Expr:
    """A format of ``strftime``/``strptime`` is carried over only with specifiers that every
    family spells alike (sqlglot maps names, week numbers and fractions differently)."""
    text = string_value(node.args.get("format"))
    if text is None:
        ctx.refuse(node, "needs a literal format to be written in {dialect}")
    index = 0
    while index < len(text):
        if text[index] == "%":
            specifier = text[index : index + 2]
            if specifier not in TIME_FORMATS:
                ctx.refuse(
                    node,
                    f"format {specifier} has no counterpart in {{dialect}}; use "
                    + ", ".join(sorted(TIME_FORMATS)),
                )
            index += 2
        else:
            index += 1
    return node


WAREHOUSE_RULES: Rules = {
    exp.RegexpExtract: refuse("has no counterpart in {dialect} answering '' when nothing matches"),
    exp.SimilarTo: refuse(
        "uses DuckDB's regular expressions, which {dialect} has no SIMILAR TO for"
    ),
    exp.Lambda: refuse_lambda,
    exp.Initcap: initcap_delimiters,
    exp.Div: double_division,
    exp.IntDiv: double_division,
    exp.Cast: whole_cast(
        rounded_whole(lambda x: call("TRUNC", x), even=True),
        rounded_whole(lambda x: call("TRUNC", x), even=False),
    ),
    exp.TryCast: whole_cast(
        rounded_whole(lambda x: call("TRUNC", x), even=True),
        rounded_whole(lambda x: call("TRUNC", x), even=False),
    ),
    exp.Substring: substring(negative=False, zero=False),
    exp.Monthname: refuse("has no counterpart in {dialect} giving the full name"),
    exp.Dayname: refuse("has no counterpart in {dialect} giving the full name"),
    exp.TimeToUnix: refuse("has no counterpart in {dialect} keeping fractions of seconds"),
    exp.TimeToStr: time_format,
    exp.StrToTime: time_format,
}
"""Rules BigQuery and Snowflake share: what they refuse alike, DuckDB's division, whole-number
casts rounded as DuckDB rounds (both truncate with TRUNC), substrings, names of months and
days, and time formats."""
