"""Rules for BigQuery (GoogleSQL).

No BigQuery runs offline, so these rules keep to what its documentation states: a rewrite
where the counterpart is documented to answer as DuckDB does, a refusal where it is not
certain. The SQL they write is checked by the golden files of ``tests/test_golden_sql.py``.
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
)

DIALECT = "bigquery"


def _part(name: str) -> Callable[[exp.Expr], exp.Expr]:
    return lambda x: exp.Extract(this=exp.var(name), expression=x)


PARTS: Parts = {
    "year": _part("YEAR"),
    "quarter": _part("QUARTER"),
    "month": _part("MONTH"),
    "day": _part("DAY"),
    "hour": _part("HOUR"),
    "minute": _part("MINUTE"),
    "second": _part("SECOND"),
    # DAYOFWEEK counts Sunday as 1; DuckDB's dow counts it as 0
    "dow": lambda x: paren(exp.Sub(this=_part("DAYOFWEEK")(x), expression=number(1))),
    "isodow": lambda x: paren(
        exp.Add(
            this=call("MOD", exp.Add(this=_part("DAYOFWEEK")(x), expression=number(5)), number(7)),
            expression=number(1),
        )
    ),
    "week": _part("ISOWEEK"),
    "doy": _part("DAYOFYEAR"),
    "isoyear": _part("ISOYEAR"),
}


def _date_diff_function(value: exp.Expr, ctx: Context) -> str | None:
    """DATETIME_DIFF for DuckDB's TIMESTAMP (BigQuery's DATETIME), TIMESTAMP_DIFF for
    TIMESTAMPTZ: both count the unit boundaries crossed, as DuckDB does."""
    if ctx.is_type(value, *common.WALL_CLOCK):
        return "DATETIME_DIFF"
    if ctx.is_type(value, exp.DType.TIMESTAMPTZ):
        return "TIMESTAMP_DIFF"
    return None


def _sub_day(unit: str, start: exp.Expr, end: exp.Expr, ctx: Context) -> exp.Expr:
    function = _date_diff_function(start, ctx)
    if function is None or function != _date_diff_function(end, ctx):
        ctx.refuse(
            start,
            "needs two timestamps of one known type to count in {dialect}",
            construct="date_diff",
        )
    return call(function, end, start, exp.var(unit.upper()))


ARITHMETIC = DateArithmetic(
    days=lambda start, end: call("DATE_DIFF", end, start, exp.var("DAY")), sub_day=_sub_day
)


# -- lists -----------------------------------------------------------------------------------


def _count(items: exp.Expr) -> exp.Expr:
    return call("ARRAY_LENGTH", items)


def _element(items: exp.Expr, index: exp.Expr, ctx: Context) -> exp.Expr:
    """SAFE_ORDINAL is 1-based and answers NULL beyond the array (0 included); a negative
    index counts from the end in DuckDB only."""
    value = int_value(index)
    if value is not None and value >= 0:
        position: exp.Expr = index.copy()
    elif value is not None:
        position = common.from_end(_count(items.copy()), index)
    else:
        position = exp.Case(
            ifs=[
                exp.If(
                    this=exp.LT(this=index.copy(), expression=number(0)),
                    true=common.from_end(_count(items.copy()), index.copy()),
                )
            ],
            default=index.copy(),
        )
    return exp.Bracket(this=items.copy(), expressions=[call("SAFE_ORDINAL", position)], offset=1)


def _slice(items: exp.Expr, bounds: Slice, ctx: Context) -> exp.Expr:
    ctx.refuse(
        items, "cannot be sliced in {dialect}: it has no array slicing", construct="list slice"
    )


# -- dates -----------------------------------------------------------------------------------

TRUNC_UNITS = {
    "year": "YEAR",
    "quarter": "QUARTER",
    "month": "MONTH",
    "week": "ISOWEEK",
    "day": "DAY",
}
TIME_UNITS = {**TRUNC_UNITS, "hour": "HOUR", "minute": "MINUTE", "second": "SECOND"}


def _date_trunc(node: exp.Expr, ctx: Context) -> exp.Expr:
    """DuckDB's date_trunc answers a TIMESTAMP (BigQuery's DATETIME) for a DATE or a
    TIMESTAMP; weeks start on Monday (ISOWEEK)."""
    unit = common.unit_of(node.args.get("unit"))
    value = node.this
    if unit not in TIME_UNITS:
        ctx.refuse(node, "to this unit has no counterpart in {dialect}")
    if not ctx.is_type(value, exp.DType.DATE, *common.WALL_CLOCK):
        ctx.refuse(node, "needs a DATE or TIMESTAMP of known type to be written in {dialect}")
    return call("DATETIME_TRUNC", cast(value, "DATETIME", DIALECT), exp.var(TIME_UNITS[unit]))


def _time_bucket(node: exp.Expr, ctx: Context) -> exp.Expr:
    unit = common.whole_unit(node, ctx)
    value: exp.Expr = node.args["expression"]
    if ctx.is_type(value, exp.DType.DATE) and unit in TRUNC_UNITS:
        return call("DATE_TRUNC", value, exp.var(TRUNC_UNITS[unit]))
    if ctx.is_type(value, exp.DType.DATE):
        return value
    if ctx.is_type(value, *common.WALL_CLOCK):
        return call("DATETIME_TRUNC", value, exp.var(TIME_UNITS[unit]))
    ctx.refuse(node, "needs a DATE or TIMESTAMP of known type to be written in {dialect}")


# -- regular expressions (RE2, as in DuckDB) ---------------------------------------------------


def _regexp_replace(node: exp.Expr, ctx: Context) -> exp.Expr:
    """REGEXP_REPLACE replaces every match; DuckDB's replaces the first unless given 'g'."""
    pattern = common.pattern_of(node, "expression", ctx, regex.RE2)
    replacement = string_value(node.args.get("replacement") or exp.Literal.string(""))
    if replacement is None:
        ctx.refuse(node, "needs a literal replacement to be carried over to {dialect}")
    every, insensitive = common.replaces_all(node, ctx)
    try:
        if every:
            written = regex.write_replacement(replacement, lambda n: f"\\{n}", {"\\": "\\\\"})
        else:
            pattern = common.FIRST_MATCH.format(pattern)
            written = "\\1" + regex.write_replacement(
                replacement, lambda n: f"\\{n + 2}" if n else "\\2", {"\\": "\\\\"}
            )
    except regex.Untranslatable as exc:
        ctx.refuse(node, f"replacement cannot be carried over to {{dialect}}: {exc}")
    if insensitive:
        pattern = "(?i)" + pattern
    return call(
        "REGEXP_REPLACE", node.this, exp.Literal.string(pattern), exp.Literal.string(written)
    )


def _regexp_like(node: exp.Expr, ctx: Context) -> exp.Expr:
    pattern = common.pattern_of(node, "expression", ctx, regex.RE2)
    _, insensitive = common.options_of(node, "flag", ctx)
    return call(
        "REGEXP_CONTAINS", node.this, exp.Literal.string(("(?i)" if insensitive else "") + pattern)
    )


# -- row generators --------------------------------------------------------------------------


def _series(
    start: exp.Expr, last: exp.Expr, step: int, column: str, table: exp.Table, ctx: Context
) -> exp.Expr:
    """GENERATE_ARRAY includes its end, and is empty when the step points away from it."""
    alias = common.table_alias(table, column)
    return exp.Unnest(
        expressions=[call("GENERATE_ARRAY", start, last, number(step))],
        alias=exp.TableAlias(this=alias.columns[0]),
    )


def _table(node: exp.Expr, ctx: Context) -> exp.Expr:
    if isinstance(node.this, exp.GenerateSeries):
        return SERIES(node.this, ctx)
    return node


SERIES = common.series(_series)


def _percentile(node: exp.Expr, ctx: Context) -> exp.Expr:
    ctx.refuse(
        node,
        "has no exact aggregate in {dialect}: PERCENTILE_CONT is only a window function there "
        "and APPROX_QUANTILES is approximate",
    )


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
    exp.Sub: common.interval_arithmetic(
        None, lambda later, earlier: call("DATE_DIFF", later, earlier, exp.var("DAY"))
    ),
    exp.Length: common.list_length(_count),
    exp.ArraySize: common.list_length(_count),
    exp.Bracket: LIST_ACCESS,
    exp.ArraySlice: LIST_ACCESS,
    exp.Table: _table,
    exp.GenerateSeries: SERIES,
    exp.PercentileCont: _percentile,
    exp.PercentileDisc: _percentile,
    exp.Median: _percentile,
    exp.Quantile: _percentile,
    exp.WithinGroup: _percentile,
    exp.RegexpReplace: _regexp_replace,
    exp.RegexpLike: _regexp_like,
    **common.WAREHOUSE_RULES,
    exp.Interval: common.interval("native"),
    exp.Log: common.log_base_ten(lambda x: call("LOG10", x)),
    exp.Round: common.double_round(lambda x: call("TRUNC", x), native_whole=False),
    exp.Select: chain(
        common.expand_stars(keep=frozenset({"except_", "replace"})),
        common.expand_group_by_all,
        common.expand_order_by_all,
        common.eliminate_qualify,
    ),
}

FAMILY = Family("bigquery", frozenset({"bigquery"}), RULES)
