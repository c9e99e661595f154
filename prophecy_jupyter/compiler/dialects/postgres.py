"""Rules for PostgreSQL (12+): what sqlglot's transpilation alone writes with another answer,
or not at all.

Each row is checked against a throwaway PostgreSQL server and DuckDB on the same rows by
``tests/test_dialects.py``.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from prophecy_jupyter.compiler.dialects import common, regex
from prophecy_jupyter.compiler.dialects.base import Context, Family, Rule, Rules, chain
from prophecy_jupyter.compiler.dialects.common import (
    DateArithmetic,
    Parts,
    Slice,
    call,
    cast,
    int_value,
    number,
    paren,
    string_value,
    template,
)

DIALECT = "postgres"


def _part(name: str) -> Callable[[exp.Expr], exp.Expr]:
    """EXTRACT answers a NUMERIC (with fractions of seconds); DuckDB's parts are BIGINT."""
    return lambda x: cast(exp.Extract(this=exp.var(name), expression=x), "BIGINT", DIALECT)


PARTS: Parts = {
    "year": _part("YEAR"),
    "quarter": _part("QUARTER"),
    "month": _part("MONTH"),
    "day": _part("DAY"),
    "hour": _part("HOUR"),
    "minute": _part("MINUTE"),
    "second": lambda x: cast(
        call("FLOOR", exp.Extract(this=exp.var("SECOND"), expression=x)), "BIGINT", DIALECT
    ),
    "dow": _part("DOW"),
    "isodow": _part("ISODOW"),
    "week": _part("WEEK"),
    "doy": _part("DOY"),
    "isoyear": _part("ISOYEAR"),
    "yearweek": lambda x: paren(
        exp.Add(
            this=exp.Mul(this=_part("ISOYEAR")(x), expression=number(100)),
            expression=_part("WEEK")(x.copy()),
        )
    ),
    "epoch": lambda x: exp.Extract(this=exp.var("EPOCH"), expression=x),
}


def _sub_day(unit: str, start: exp.Expr, end: exp.Expr, ctx: Context) -> exp.Expr:
    """Whole units between the two instants truncated to the unit: the boundaries crossed."""
    name = {"millisecond": "MILLISECONDS", "microsecond": "MICROSECONDS"}.get(unit, unit.upper())
    per_second = {
        "hour": "/ 3600",
        "minute": "/ 60",
        "second": "",
        "millisecond": "* 1000",
        "microsecond": "* 1000000",
    }[unit]

    def truncated(value: exp.Expr) -> exp.Expr:
        return call(
            "DATE_TRUNC", exp.Literal.string(name), cast(value.copy(), "TIMESTAMP", DIALECT)
        )

    return template(
        f"CAST(EXTRACT(EPOCH FROM later - earlier) {per_second} AS BIGINT)",
        DIALECT,
        later=truncated(end),
        earlier=truncated(start),
    )


ARITHMETIC = DateArithmetic(
    days=lambda start, end: paren(exp.Sub(this=end, expression=start)), sub_day=_sub_day
)


# -- lists -----------------------------------------------------------------------------------


def _count(items: exp.Expr) -> exp.Expr:
    """CARDINALITY answers 0 for an empty array (ARRAY_LENGTH answers NULL)."""
    return call("CARDINALITY", items)


def _at(items: exp.Expr, index: exp.Expr) -> exp.Bracket:
    """``items[index]``; anything but a column is parenthesised, as PostgreSQL requires."""
    return exp.Bracket(this=_subscriptable(items), expressions=[index], offset=1)


def _subscriptable(items: exp.Expr) -> exp.Expr:
    return items if isinstance(items, (exp.Column, exp.Paren)) else paren(items)


def _element(items: exp.Expr, index: exp.Expr, ctx: Context) -> exp.Expr:
    """Arrays are 1-based and answer NULL beyond their bounds, as in DuckDB; a negative index
    counts from the end in DuckDB only."""
    value = int_value(index)
    if value is not None:
        if value >= 0:
            return _at(items.copy(), index.copy())
        return _at(items.copy(), common.from_end(_count(items.copy()), index))
    return exp.Case(
        ifs=[
            exp.If(
                this=exp.LT(this=index.copy(), expression=number(0)),
                true=_at(items.copy(), common.from_end(_count(items.copy()), index.copy())),
            )
        ],
        default=_at(items.copy(), index.copy()),
    )


def _slice(items: exp.Expr, bounds: Slice, ctx: Context) -> exp.Expr:
    found = common.slice_bounds(_count(items.copy()), bounds)
    if found is None:
        ctx.refuse(items, "cannot be sliced in {dialect}")
    first, last = found
    if isinstance(first, int) and isinstance(last, int):
        first, last = number(first), number(last)
    assert isinstance(first, exp.Expr) and isinstance(last, exp.Expr)
    return exp.Bracket(
        this=_subscriptable(items.copy()),
        expressions=[exp.Slice(this=first, expression=last)],
        offset=1,
    )


def _list_sum(node: exp.Expr, ctx: Context) -> exp.Expr:
    """SUM over the unnested list: NULLs skipped, NULL for an empty or NULL list."""
    items = node.expressions[0]
    return template("(SELECT SUM(x) FROM UNNEST(items) AS x)", DIALECT, items=items)


def _split(node: exp.Expr, ctx: Context) -> exp.Expr:
    """DuckDB splits '' into one empty piece (STRING_TO_ARRAY into none), and splits at a
    literal text, which must not be empty (STRING_TO_ARRAY would not split at all)."""
    delimiter = string_value(node.expression)
    if not delimiter:
        ctx.refuse(node, "needs a literal, non-empty delimiter to be written in {dialect}")
    empty = exp.EQ(this=node.this.copy(), expression=exp.Literal.string(""))
    return exp.Case(
        ifs=[exp.If(this=empty, true=exp.Array(expressions=[exp.Literal.string("")]))],
        default=call("STRING_TO_ARRAY", node.this, node.expression),
    )


def _empty_array(node: exp.Expr, ctx: Context) -> exp.Expr:
    """An empty ARRAY[] has no type in PostgreSQL: in the rows of a VALUES list (a seed) it
    takes the type the query casts its column to."""
    if node.expressions or isinstance(node.parent, exp.Cast):
        return node
    row = node.parent
    values = row.parent if isinstance(row, exp.Tuple) else None
    if isinstance(values, exp.Values) and isinstance(row, exp.Tuple):
        position = next(i for i, e in enumerate(row.expressions) if e is node)
        alias = values.args.get("alias")
        names = [c.name for c in alias.columns] if isinstance(alias, exp.TableAlias) else []
        select = values.find_ancestor(exp.Select)
        for projection in select.expressions if select is not None and names else []:
            inner = projection.this if isinstance(projection, exp.Alias) else projection
            if (
                isinstance(inner, exp.Cast)
                and isinstance(inner.this, exp.Column)
                and position < len(names)
                and inner.this.name == names[position]
            ):
                return exp.Cast(this=node, to=inner.args["to"].copy())
    ctx.refuse(node, "has no type in {dialect}; cast it, e.g. CAST([] AS INTEGER[])", "[]")


# -- dates -----------------------------------------------------------------------------------

UNITS = {"year", "quarter", "month", "week", "day", "hour", "minute", "second"}


def _date_trunc(node: exp.Expr, ctx: Context) -> exp.Expr:
    """DATE_TRUNC of a DATE answers a TIMESTAMP WITH TIME ZONE at the session's midnight;
    DuckDB's answers a TIMESTAMP."""
    unit = common.unit_of(node.args.get("unit"))
    if unit not in UNITS:
        ctx.refuse(node, "to this unit has no counterpart in {dialect}")
    value = node.this
    if ctx.is_type(value, exp.DType.DATE):
        value = cast(value, "TIMESTAMP", DIALECT)
    return call("DATE_TRUNC", exp.Literal.string(unit.upper()), value)


def _time_bucket(node: exp.Expr, ctx: Context) -> exp.Expr:
    unit = common.whole_unit(node, ctx)
    value = node.args["expression"]
    if ctx.is_type(value, exp.DType.DATE):
        truncated = call(
            "DATE_TRUNC", exp.Literal.string(unit.upper()), cast(value, "TIMESTAMP", DIALECT)
        )
        return cast(truncated, "DATE", DIALECT)
    if ctx.is_type(value, *common.WALL_CLOCK):
        return call("DATE_TRUNC", exp.Literal.string(unit.upper()), value)
    ctx.refuse(node, "needs a DATE or TIMESTAMP of known type to be written in {dialect}")


# -- regular expressions ---------------------------------------------------------------------


def _regexp_replace(node: exp.Expr, ctx: Context) -> exp.Expr:
    """REGEXP_REPLACE replaces the first match unless given 'g', as DuckDB's does."""
    pattern = common.pattern_of(node, "expression", ctx, regex.POSTGRES)
    replacement = string_value(node.args.get("replacement") or exp.Literal.string(""))
    if replacement is None:
        ctx.refuse(node, "needs a literal replacement to be carried over to {dialect}")
    every, insensitive = common.replaces_all(node, ctx)
    try:
        written = regex.write_replacement(
            replacement, lambda n: f"\\{n}" if n else "\\&", {"\\": "\\\\"}
        )
    except regex.Untranslatable as exc:
        ctx.refuse(node, f"replacement cannot be carried over to {{dialect}}: {exc}")
    flags = ("g" if every else "") + ("i" if insensitive else "")
    args = [node.this, exp.Literal.string(pattern), exp.Literal.string(written)]
    if flags:
        args.append(exp.Literal.string(flags))
    return call("REGEXP_REPLACE", *args)


def _regexp_like(node: exp.Expr, ctx: Context) -> exp.Expr:
    pattern = common.pattern_of(node, "expression", ctx, regex.POSTGRES)
    _, insensitive = common.options_of(node, "flag", ctx)
    operator = exp.RegexpILike if insensitive else exp.RegexpLike
    return operator(this=node.this, expression=exp.Literal.string(pattern))


# -- title case ------------------------------------------------------------------------------

DELIMITERS = common.delimiter_class("\\v")

TITLE_CASE = (
    "COALESCE((SELECT STRING_AGG(CASE WHEN m[1] ~ delimiter THEN m[1] ELSE UPPER(LEFT(m[1], 1))"
    " || LOWER(SUBSTRING(m[1] FROM 2)) END, '' ORDER BY n) FROM REGEXP_MATCHES(subject, segments,"
    " 'g') WITH ORDINALITY AS r(m, n)), subject)"
)


def _initcap(node: exp.Expr, ctx: Context) -> exp.Expr:
    """PostgreSQL's INITCAP splits words at every non-alphanumeric character (also non-ASCII
    ones); DuckDB's title case splits at whitespace and ASCII punctuation only."""
    if node.args.get("expression") is not None:
        ctx.refuse(node, "with custom delimiters has no counterpart in {dialect}")
    return template(
        TITLE_CASE,
        DIALECT,
        subject=node.this,
        segments=exp.Literal.string(f"({DELIMITERS}+|{DELIMITERS.replace('[', '[^', 1)}+)"),
        delimiter=exp.Literal.string("^" + DELIMITERS),
    )


# -- row generators --------------------------------------------------------------------------


def _series(
    start: exp.Expr, last: exp.Expr, step: int, column: str, table: exp.Table, ctx: Context
) -> exp.Expr:
    """GENERATE_SERIES includes its end; its values are BIGINT like DuckDB's when its start
    is one."""
    begin = cast(start, "BIGINT", DIALECT)
    return exp.Table(
        this=exp.Anonymous(this="GENERATE_SERIES", expressions=[begin, last, number(step)]),
        alias=common.table_alias(table, column),
    )


def _table(node: exp.Expr, ctx: Context) -> exp.Expr:
    if isinstance(node.this, exp.GenerateSeries):
        return SERIES(node.this, ctx)
    return node


SERIES = common.series(_series)

# -- percentiles -----------------------------------------------------------------------------


def _percentile(node: exp.Expr, ctx: Context) -> exp.Expr:
    """Exact in PostgreSQL as in DuckDB, but only as aggregates, not as window functions."""
    if isinstance(node.parent, exp.Window):
        ctx.refuse(node, "as a window function has no counterpart in {dialect}")
    return node


# -- the table ------------------------------------------------------------------------------

DATE_PART = common.date_part(PARTS)
LIST_ACCESS = common.list_access(_element, _slice)

FUNCTIONS: dict[str, Rule] = {
    "date_part": DATE_PART,
    "datepart": DATE_PART,
    "list_sum": _list_sum,
    "list_extract": LIST_ACCESS,
    "list_element": LIST_ACCESS,
    "array_extract": LIST_ACCESS,
}

RULES: Rules = {
    exp.Anonymous: common.functions(FUNCTIONS),
    **dict.fromkeys(common.PART_NODES, DATE_PART),
    exp.Extract: DATE_PART,
    exp.DateDiff: common.date_diff(PARTS, ARITHMETIC),
    exp.DateTrunc: _date_trunc,
    exp.TimestampTrunc: _date_trunc,
    exp.DateBin: _time_bucket,
    exp.Length: common.list_length(_count),
    exp.ArraySize: common.list_length(_count),
    exp.Bracket: LIST_ACCESS,
    exp.ArraySlice: LIST_ACCESS,
    exp.Table: _table,
    exp.GenerateSeries: SERIES,
    exp.PercentileCont: _percentile,
    exp.PercentileDisc: _percentile,
    exp.Median: _percentile,
    exp.RegexpReplace: _regexp_replace,
    exp.RegexpLike: _regexp_like,
    exp.RegexpExtract: common.refuse(
        "has no counterpart in {dialect} answering '' when nothing matches"
    ),
    exp.SimilarTo: common.refuse(
        "uses DuckDB's regular expressions; {dialect}'s SIMILAR TO does not"
    ),
    exp.Initcap: _initcap,
    exp.Split: _split,
    exp.Array: _empty_array,
    exp.Lambda: common.refuse_lambda,
    exp.Interval: common.interval("multiplied"),
    exp.Div: common.double_division,
    exp.IntDiv: common.double_division,
    exp.Substring: common.substring(negative=False, zero=True),
    exp.Monthname: lambda node, ctx: call("TO_CHAR", node.this, exp.Literal.string("FMMonth")),
    exp.Dayname: lambda node, ctx: call("TO_CHAR", node.this, exp.Literal.string("FMDay")),
    exp.TimeToStr: common.time_format,
    # TO_TIMESTAMP answers a TIMESTAMP WITH TIME ZONE; DuckDB's strptime a TIMESTAMP
    exp.StrToTime: chain(
        common.time_format, lambda node, ctx: cast(common.shallow(node), "TIMESTAMP", DIALECT)
    ),
    exp.Round: common.double_round(lambda x: call("TRUNC", x), native_whole=False),
    exp.Select: chain(
        common.expand_stars(),
        common.expand_group_by_all,
        common.expand_order_by_all,
        common.eliminate_qualify,
    ),
}

FAMILY = Family("postgres", frozenset({"postgres"}), RULES)
