"""Rules for Snowflake.

No Snowflake runs offline, so these rules keep to what its documentation states: a rewrite
where the counterpart is documented to answer as DuckDB does (independently of session
parameters such as WEEK_START), a refusal where it is not certain. The SQL they write is
checked by the golden files of ``tests/test_golden_sql.py``.
"""

from __future__ import annotations

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
)

DIALECT = "snowflake"


def _ntz(node: exp.Expr) -> exp.Expr:
    return cast(node, "TIMESTAMP_NTZ", DIALECT)


PARTS: Parts = {
    "year": lambda x: call("YEAR", x),
    "quarter": lambda x: call("QUARTER", x),
    "month": lambda x: call("MONTH", x),
    "day": lambda x: call("DAY", x),
    "hour": lambda x: call("HOUR", x),
    "minute": lambda x: call("MINUTE", x),
    "second": lambda x: call("SECOND", x),
    # DAYOFWEEK and WEEK follow the WEEK_START and WEEK_OF_YEAR_POLICY parameters; the ISO
    # functions do not.
    "dow": lambda x: paren(exp.Mod(this=call("DAYOFWEEKISO", x), expression=number(7))),
    "isodow": lambda x: call("DAYOFWEEKISO", x),
    "week": lambda x: call("WEEKISO", x),
    "doy": lambda x: call("DAYOFYEAR", x),
    "isoyear": lambda x: call("YEAROFWEEKISO", x),
}

# DATEDIFF counts the unit boundaries crossed, as DuckDB's date_diff does.
ARITHMETIC = DateArithmetic(
    days=lambda start, end: call("DATEDIFF", exp.var("DAY"), start, end),
    sub_day=lambda unit, start, end, ctx: call("DATEDIFF", exp.var(unit.upper()), start, end),
)


# -- lists -----------------------------------------------------------------------------------


def _count(items: exp.Expr) -> exp.Expr:
    return call("ARRAY_SIZE", items)


def _element(items: exp.Expr, index: exp.Expr, ctx: Context) -> exp.Expr:
    """GET is 0-based and answers NULL beyond the array; its elements are VARIANTs, so the
    element is cast back to the list's element type, which must be known."""
    element = common.element_type(items, ctx)
    if element is None:
        ctx.refuse(
            items,
            "needs the type of the list's elements to be read in {dialect}",
            construct="list index",
        )
    value = int_value(index)
    if value is not None:
        if value > 0:
            position: exp.Expr = number(value - 1)
        elif value < 0:
            position = exp.Add(this=_count(items.copy()), expression=number(value))
        else:
            return cast(exp.null(), element.sql("duckdb"), "duckdb")
    else:
        position = exp.Case(
            ifs=[
                exp.If(
                    this=exp.GT(this=index.copy(), expression=number(0)),
                    true=exp.Sub(this=index.copy(), expression=number(1)),
                ),
                exp.If(
                    this=exp.LT(this=index.copy(), expression=number(0)),
                    true=exp.Add(this=_count(items.copy()), expression=index.copy()),
                ),
            ]
        )
    return exp.Cast(this=call("GET", items.copy(), position), to=element.copy())


def _slice(items: exp.Expr, bounds: Slice, ctx: Context) -> exp.Expr:
    """ARRAY_SLICE is 0-based with its end excluded; only non-negative literal bounds are
    carried over."""
    found = common.slice_bounds(_count(items.copy()), bounds)
    if found is None or not isinstance(found[0], int) or not isinstance(found[1], int):
        ctx.refuse(
            items,
            "is only written in {dialect} with non-negative literal bounds",
            construct="list slice",
        )
    first, last = found
    return call("ARRAY_SLICE", items.copy(), number(first - 1), number(max(last, first - 1)))


# -- dates -----------------------------------------------------------------------------------

UNITS = {"year", "quarter", "month", "day", "hour", "minute", "second"}


def _date_trunc(node: exp.Expr, ctx: Context) -> exp.Expr:
    """DATE_TRUNC keeps a DATE a DATE (DuckDB answers a TIMESTAMP); weeks follow the
    WEEK_START parameter, so they are refused."""
    unit = common.unit_of(node.args.get("unit"))
    value = node.this
    if unit not in UNITS:
        ctx.refuse(
            node, "to this unit has no counterpart in {dialect} that ignores session parameters"
        )
    if not ctx.is_type(value, exp.DType.DATE, *common.WALL_CLOCK):
        ctx.refuse(node, "needs a DATE or TIMESTAMP of known type to be written in {dialect}")
    return _ntz(call("DATE_TRUNC", exp.var(unit.upper()), value))


def _time_bucket(node: exp.Expr, ctx: Context) -> exp.Expr:
    unit = common.whole_unit(node, ctx)
    value = node.args["expression"]
    if unit not in UNITS:
        ctx.refuse(
            node, "to this unit has no counterpart in {dialect} that ignores session parameters"
        )
    if ctx.is_type(value, exp.DType.DATE, *common.WALL_CLOCK):
        return call("DATE_TRUNC", exp.var(unit.upper()), value)
    ctx.refuse(node, "needs a DATE or TIMESTAMP of known type to be written in {dialect}")


# -- regular expressions (POSIX) --------------------------------------------------------------


def _regexp_replace(node: exp.Expr, ctx: Context) -> exp.Expr:
    """REGEXP_REPLACE(subject, pattern, replacement, position, occurrence, parameters):
    occurrence 1 replaces the first match, 0 every match."""
    pattern = common.pattern_of(node, "expression", ctx, regex.POSIX)
    replacement = string_value(node.args.get("replacement") or exp.Literal.string(""))
    if replacement is None:
        ctx.refuse(node, "needs a literal replacement to be carried over to {dialect}")
    every, insensitive = common.replaces_all(node, ctx)
    try:
        written = regex.write_replacement(
            replacement, lambda n: f"\\{n}" if n else "", {"\\": "\\\\"}
        )
    except regex.Untranslatable as exc:
        ctx.refuse(node, f"replacement cannot be carried over to {{dialect}}: {exc}")
    if "\\0" in replacement:
        ctx.refuse(node, "replacement \\0 has no counterpart in {dialect}")
    return call(
        "REGEXP_REPLACE",
        node.this,
        exp.Literal.string(pattern),
        exp.Literal.string(written),
        number(1),
        number(0 if every else 1),
        exp.Literal.string("i" if insensitive else "c"),
    )


def _regexp_like(node: exp.Expr, ctx: Context) -> exp.Expr:
    """REGEXP_LIKE matches the whole subject; DuckDB's regexp_matches finds a match
    anywhere in it."""
    pattern = common.pattern_of(node, "expression", ctx, regex.POSIX)
    _, insensitive = common.options_of(node, "flag", ctx)
    return exp.GT(
        this=call(
            "REGEXP_INSTR",
            node.this,
            exp.Literal.string(pattern),
            number(1),
            number(1),
            number(0),
            exp.Literal.string("i" if insensitive else "c"),
        ),
        expression=number(0),
    )


def _table(node: exp.Expr, ctx: Context) -> exp.Expr:
    if isinstance(node.this, exp.GenerateSeries):
        ctx.refuse(
            node.this, "as a table has no counterpart in {dialect}; generate the rows in a Source"
        )
    return node


def _list_in_snowflake(node: exp.Expr, ctx: Context) -> exp.Expr:
    ctx.refuse(node, "has no counterpart in {dialect}")


def _percentile(node: exp.Expr, ctx: Context) -> exp.Expr:
    """PERCENTILE_CONT/DISC … WITHIN GROUP and MEDIAN are exact, as in DuckDB, for one
    fraction at a time."""
    fraction = (
        node.expression if isinstance(node, (exp.PercentileCont, exp.PercentileDisc)) else None
    )
    if isinstance(fraction, exp.Array):
        ctx.refuse(node, "of several fractions at once has no counterpart in {dialect}")
    return node


# -- the table ------------------------------------------------------------------------------

DATE_PART = common.date_part(PARTS)
LIST_ACCESS = common.list_access(_element, _slice)

FUNCTIONS: dict[str, Rule] = {
    "date_part": DATE_PART,
    "datepart": DATE_PART,
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
    exp.Add: common.interval_arithmetic(_ntz, None),
    exp.Sub: common.interval_arithmetic(_ntz, None),
    exp.Length: common.list_length(_count),
    exp.ArraySize: common.list_length(_count),
    exp.Bracket: LIST_ACCESS,
    exp.ArraySlice: LIST_ACCESS,
    exp.Table: _table,
    exp.GenerateSeries: _list_in_snowflake,
    exp.PercentileCont: _percentile,
    exp.PercentileDisc: _percentile,
    exp.RegexpReplace: _regexp_replace,
    exp.RegexpLike: _regexp_like,
    **common.WAREHOUSE_RULES,
    exp.Interval: common.interval("refused"),
    exp.Log: common.log_base_ten(lambda x: call("LOG", number(10), x)),
    exp.Round: common.double_round(lambda x: call("TRUNC", x), native_whole=False),
    exp.Select: chain(common.expand_group_by_all, common.expand_order_by_all),
}

FAMILY = Family("snowflake", frozenset({"snowflake"}), RULES)
