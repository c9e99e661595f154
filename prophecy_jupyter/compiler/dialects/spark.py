"""Rules for Spark SQL (Apache Spark 4 and Databricks): what sqlglot's transpilation alone
writes with another answer, or not at all.

Each row is checked against a local Spark session and DuckDB on the same rows by
``tests/test_dialects.py``.
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
    template,
)

DIALECT = "spark"


def _ntz(node: exp.Expr) -> exp.Expr:
    """DuckDB's TIMESTAMP has no time zone: Spark's is TIMESTAMP_NTZ."""
    return cast(node, "TIMESTAMP_NTZ", DIALECT)


PARTS: Parts = {
    "year": lambda x: call("YEAR", x),
    "quarter": lambda x: call("QUARTER", x),
    "month": lambda x: call("MONTH", x),
    "day": lambda x: call("DAYOFMONTH", x),
    "hour": lambda x: call("HOUR", x),
    "minute": lambda x: call("MINUTE", x),
    "second": lambda x: call("SECOND", x),
    # Spark's DAYOFWEEK counts Sunday as 1; DuckDB's dow counts it as 0
    "dow": lambda x: paren(exp.Sub(this=call("DAYOFWEEK", x), expression=number(1))),
    # WEEKDAY counts Monday as 0; isodow counts it as 1
    "isodow": lambda x: paren(exp.Add(this=call("WEEKDAY", x), expression=number(1))),
    "week": lambda x: call("WEEKOFYEAR", x),
    "doy": lambda x: call("DAYOFYEAR", x),
    "isoyear": lambda x: exp.Extract(this=exp.var("YEAROFWEEK"), expression=x),
    "yearweek": lambda x: paren(
        exp.Add(
            this=exp.Mul(
                this=exp.Extract(this=exp.var("YEAROFWEEK"), expression=x),
                expression=number(100),
            ),
            expression=call("WEEKOFYEAR", x.copy()),
        )
    ),
}

MICROSECONDS = {
    "hour": 3_600_000_000,
    "minute": 60_000_000,
    "second": 1_000_000,
    "millisecond": 1_000,
    "microsecond": 1,
}


def _micros(node: exp.Expr) -> exp.Expr:
    """Microseconds since 1970-01-01 00:00 of a timestamp read as wall-clock time."""
    origin = cast(exp.Literal.string("1970-01-01 00:00:00"), "TIMESTAMP_NTZ", DIALECT)
    return call("TIMESTAMPDIFF", exp.var("MICROSECOND"), origin, _ntz(node))


def _floor_div(node: exp.Expr, by: int) -> exp.Expr:
    """``floor(node / by)`` in whole numbers, also before 1970."""
    if by == 1:
        return node
    rest = call("PMOD", node.copy(), number(by))
    return exp.IntDiv(this=paren(exp.Sub(this=node, expression=rest)), expression=number(by))


def _sub_day(unit: str, start: exp.Expr, end: exp.Expr, ctx: Context) -> exp.Expr:
    by = MICROSECONDS[unit]
    return paren(
        exp.Sub(
            this=_floor_div(_micros(end.copy()), by),
            expression=_floor_div(_micros(start.copy()), by),
        )
    )


ARITHMETIC = DateArithmetic(days=lambda start, end: call("DATEDIFF", end, start), sub_day=_sub_day)


# -- lists -----------------------------------------------------------------------------------


def _element(items: exp.Expr, index: exp.Expr, ctx: Context) -> exp.Expr:
    """TRY_ELEMENT_AT is 1-based, counts negative positions from the end and answers NULL
    beyond the list, as DuckDB does; it fails on 0, where DuckDB answers NULL."""
    value = int_value(index)
    if value is None or value == 0:
        index = exp.Nullif(this=index.copy(), expression=number(0))
    return call("TRY_ELEMENT_AT", items.copy(), index.copy())


def _slice(items: exp.Expr, bounds: Slice, ctx: Context) -> exp.Expr:
    """SLICE takes a start (from 1) and a length."""
    found = common.slice_bounds(call("ARRAY_SIZE", items.copy()), bounds)
    if found is None:
        ctx.refuse(items, "cannot be sliced in {dialect}")
    first, last = found
    if isinstance(first, int) and isinstance(last, int):
        return call("SLICE", items.copy(), number(first), number(max(last - first + 1, 0)))
    assert isinstance(first, exp.Expr) and isinstance(last, exp.Expr)
    length = exp.Add(this=exp.Sub(this=last, expression=first.copy()), expression=number(1))
    return call("SLICE", items.copy(), first, exp.Greatest(this=length, expressions=[number(0)]))


def _list_sum(node: exp.Expr, ctx: Context) -> exp.Expr:
    """``list_sum`` skips NULLs and answers NULL for an empty list, like SUM: an AGGREGATE
    whose accumulator starts as NULL, typed as DuckDB types the sum."""
    items = node.expressions[0] if isinstance(node, exp.Anonymous) else node.this
    element = common.element_type(items, ctx)
    if element is None:
        ctx.refuse(node, "needs the type of the list's elements to be written in {dialect}")
    if element.is_type(*exp.DataType.INTEGER_TYPES):
        total = "BIGINT"
    elif element.is_type(*exp.DataType.REAL_TYPES) and not element.is_type(exp.DType.DECIMAL):
        total = "DOUBLE"
    elif element.is_type(exp.DType.DECIMAL):
        scale = element.expressions[1].name if len(element.expressions) > 1 else "0"
        total = f"DECIMAL(38, {scale})"
    else:
        ctx.refuse(node, "of a list of non-numbers has no counterpart in {dialect}")
    return template(
        f"AGGREGATE(items, CAST(NULL AS {total}), (acc, x) -> CAST(CASE WHEN x IS NULL THEN acc"
        f" WHEN acc IS NULL THEN x ELSE acc + x END AS {total}))",
        DIALECT,
        items=items,
    )


def _lambda_index(node: exp.Expr, ctx: Context) -> exp.Expr:
    """A lambda's second parameter is the element's position: from 1 in DuckDB, from 0 in
    Spark's TRANSFORM and FILTER."""
    lam = node.args.get("expression")
    if not isinstance(lam, exp.Lambda) or len(lam.expressions) != 2:
        return node
    position = lam.expressions[1].name.lower()
    for ref in list(lam.this.walk()):
        named = (isinstance(ref, exp.Column) and not ref.table) or (
            isinstance(ref, exp.Identifier) and not isinstance(ref.parent, exp.Column)
        )
        if named and ref.name.lower() == position:
            shifted = paren(exp.Add(this=ref.copy(), expression=number(1)))
            if ref is lam.this:
                lam.set("this", shifted)
            else:
                ref.replace(shifted)
    return node


# -- dates -----------------------------------------------------------------------------------

TRUNC_UNITS = {"year": "YEAR", "quarter": "QUARTER", "month": "MONTH", "week": "WEEK"}
TIME_UNITS = {"day": "DAY", "hour": "HOUR", "minute": "MINUTE", "second": "SECOND"}


def _truncated(unit: str, value: exp.Expr, ctx: Context, node: exp.Expr) -> tuple[exp.Expr, bool]:
    """``value`` truncated to ``unit`` keeping its type (DATE or TIMESTAMP): DATE_TRUNC
    answers a TIMESTAMP with the session's time zone, TRUNC a DATE."""
    if ctx.is_type(value, exp.DType.DATE):
        if unit in TRUNC_UNITS:
            return call("TRUNC", value.copy(), exp.Literal.string(TRUNC_UNITS[unit])), True
        return value.copy(), True
    if ctx.is_type(value, *common.WALL_CLOCK):
        name = TRUNC_UNITS.get(unit) or TIME_UNITS.get(unit)
        if name is not None:
            return _ntz(call("DATE_TRUNC", exp.Literal.string(name), value.copy())), True
    return node, False


def _date_trunc(node: exp.Expr, ctx: Context) -> exp.Expr:
    """DuckDB's date_trunc answers a TIMESTAMP (no time zone) for a DATE or a TIMESTAMP."""
    unit = common.unit_of(node.args.get("unit"))
    value = node.this
    if unit is None or (unit not in TRUNC_UNITS and unit not in TIME_UNITS):
        ctx.refuse(node, "to this unit has no counterpart in {dialect}")
    if ctx.is_type(value, exp.DType.DATE, *common.WALL_CLOCK):
        name = TRUNC_UNITS.get(unit) or TIME_UNITS[unit]
        return _ntz(call("DATE_TRUNC", exp.Literal.string(name), value.copy()))
    return node


def _time_bucket(node: exp.Expr, ctx: Context) -> exp.Expr:
    unit = common.whole_unit(node, ctx)
    bucketed, done = _truncated(unit, node.args["expression"], ctx, node)
    if not done:
        ctx.refuse(node, "needs a DATE or TIMESTAMP of known type to be written in {dialect}")
    return bucketed


# -- regular expressions ---------------------------------------------------------------------


def _regexp_replace(node: exp.Expr, ctx: Context) -> exp.Expr:
    pattern = common.pattern_of(node, "expression", ctx, regex.JAVA)
    replacement = string_value(node.args.get("replacement") or exp.Literal.string(""))
    if replacement is None:
        ctx.refuse(node, "needs a literal replacement to be carried over to {dialect}")
    every, insensitive = common.replaces_all(node, ctx)
    literal = {"$": "\\$", "\\": "\\\\"}
    try:
        if every:
            written = regex.write_replacement(replacement, lambda n: f"${n}", literal)
        else:
            pattern = common.FIRST_MATCH.format(pattern)
            written = "$1" + regex.write_replacement(
                replacement, lambda n: f"${n + 2}" if n else "$2", literal
            )
    except regex.Untranslatable as exc:
        ctx.refuse(node, f"replacement cannot be carried over to {{dialect}}: {exc}")
    if insensitive:
        pattern = "(?iu)" + pattern
    return call(
        "REGEXP_REPLACE", node.this, exp.Literal.string(pattern), exp.Literal.string(written)
    )


def _regexp_like(node: exp.Expr, ctx: Context) -> exp.Expr:
    pattern = common.pattern_of(node, "expression", ctx, regex.JAVA)
    _, insensitive = common.options_of(node, "flag", ctx)
    if insensitive:
        pattern = "(?iu)" + pattern
    return exp.RegexpLike(this=node.this, expression=exp.Literal.string(pattern))


def _regexp_extract(node: exp.Expr, ctx: Context) -> exp.Expr:
    """DuckDB's regexp_extract answers the whole match (group 0) unless told a group;
    Spark's answers group 1."""
    pattern = common.pattern_of(node, "expression", ctx, regex.JAVA)
    _, insensitive = common.options_of(node, "parameters", ctx)
    if insensitive:
        pattern = "(?iu)" + pattern
    group = node.args.get("group") or number(0)
    return call("REGEXP_EXTRACT", node.this, exp.Literal.string(pattern), group)


# -- title case ------------------------------------------------------------------------------

DELIMITERS = common.delimiter_class("\\x0B")  # Java's \v is any vertical whitespace


SEGMENTS = exp.Literal.string(f"({DELIMITERS}+|{DELIMITERS.replace('[', '[^', 1)}+)")
"""Runs of delimiters and the words between them, in order."""

TITLE_CASE = (
    "ARRAY_JOIN(TRANSFORM(REGEXP_EXTRACT_ALL(subject, segments, 1), seg -> CASE WHEN seg "
    "RLIKE delimiter THEN seg ELSE CONCAT(UPPER(LEFT(seg, 1)), LOWER(SUBSTRING(seg, 2))) END), '')"
)


def _initcap(node: exp.Expr, ctx: Context) -> exp.Expr:
    """Spark's INITCAP only splits words at spaces (O'neil, Smith-jones); DuckDB's title
    case also splits at punctuation (O'Neil, Smith-Jones)."""
    if node.args.get("expression") is not None:
        ctx.refuse(node, "with custom delimiters has no counterpart in {dialect}")
    return template(
        TITLE_CASE,
        DIALECT,
        subject=node.this,
        segments=SEGMENTS,
        delimiter=exp.Literal.string("^" + DELIMITERS),
    )


# -- percentiles -----------------------------------------------------------------------------


def _ordered(node: exp.WithinGroup, ctx: Context) -> tuple[exp.Expr, exp.Expr, bool]:
    order = node.expression
    keys = order.expressions if isinstance(order, exp.Order) else []
    if len(keys) != 1:
        ctx.refuse(node, "needs exactly one ORDER BY key to be written in {dialect}")
    return node.this.this, keys[0].this, bool(keys[0].args.get("desc"))


def _flipped(fraction: exp.Expr) -> exp.Expr:
    return exp.Sub(this=number(1), expression=paren(fraction.copy()))


def _percentile_cont(node: exp.Expr, ctx: Context) -> exp.Expr:
    """sqlglot writes ``percentile_cont(p) WITHIN GROUP`` as PERCENTILE_APPROX; PERCENTILE is
    Spark's exact, interpolating counterpart of DuckDB's quantile_cont."""
    if isinstance(node, exp.WithinGroup):
        fraction, value, desc = _ordered(node, ctx)
        if desc:
            fraction = _flipped(fraction)
    elif isinstance(node, exp.Median):
        fraction, value = exp.Literal.number("0.5"), node.this
    else:
        fraction, value = node.expression, node.this
    return call("PERCENTILE", value, fraction)


def _percentile_disc(node: exp.Expr, ctx: Context) -> exp.Expr:
    if isinstance(node, exp.WithinGroup):
        fraction, value, desc = _ordered(node, ctx)
        if desc:
            fraction = _flipped(fraction)
    else:
        fraction = node.args.get("quantile") or node.expression
        value = node.this
    if isinstance(fraction, exp.Array):
        ctx.refuse(node, "of several fractions at once has no counterpart in {dialect}")
    return exp.WithinGroup(
        this=call("PERCENTILE_DISC", fraction),
        expression=exp.Order(expressions=[exp.Ordered(this=value, nulls_first=False)]),
    )


def _within_group(node: exp.Expr, ctx: Context) -> exp.Expr:
    inner = node.this
    if isinstance(inner, exp.PercentileCont):
        return _percentile_cont(node, ctx)
    if isinstance(inner, exp.PercentileDisc):
        return _percentile_disc(node, ctx)
    return node


# -- row generators --------------------------------------------------------------------------


def _series(
    start: exp.Expr, last: exp.Expr, step: int, column: str, table: exp.Table, ctx: Context
) -> exp.Expr:
    """Spark's RANGE table function stops before its end, like DuckDB's range."""
    end = common.fold(exp.Add(this=last, expression=number(1 if step > 0 else -1)))
    return exp.Table(
        this=call("RANGE", start, end, number(step)), alias=common.table_alias(table, column)
    )


def _replace_table(rule: Rule) -> Rule:
    """A rule of a table function, applied to the table holding it."""

    def apply(node: exp.Expr, ctx: Context) -> exp.Expr:
        if isinstance(node.this, exp.GenerateSeries):
            return rule(node.this, ctx)
        return node

    return apply


# -- the table ------------------------------------------------------------------------------

DATE_PART = common.date_part(PARTS)
INTERVALS = common.interval_arithmetic(
    _ntz, lambda later, earlier: call("DATEDIFF", later, earlier)
)
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
    exp.Add: INTERVALS,
    exp.Sub: INTERVALS,
    exp.Length: common.list_length(lambda items: call("ARRAY_SIZE", items)),
    exp.ArraySize: common.list_length(lambda items: call("ARRAY_SIZE", items)),
    exp.Bracket: LIST_ACCESS,
    exp.ArraySlice: LIST_ACCESS,
    exp.Table: _replace_table(common.series(_series)),
    exp.GenerateSeries: common.series(_series),
    exp.PercentileCont: _percentile_cont,
    exp.Median: _percentile_cont,
    exp.PercentileDisc: _percentile_disc,
    exp.Quantile: _percentile_disc,
    exp.WithinGroup: _within_group,
    exp.RegexpReplace: _regexp_replace,
    exp.RegexpLike: _regexp_like,
    exp.RegexpExtract: _regexp_extract,
    exp.SimilarTo: common.refuse(
        "uses DuckDB's regular expressions, which {dialect} has no SIMILAR TO for"
    ),
    exp.Initcap: _initcap,
    exp.Transform: _lambda_index,
    exp.ArrayFilter: _lambda_index,
    exp.Select: chain(
        common.expand_stars(keep=frozenset({"except_"})),
        common.expand_group_by_all,
        common.expand_order_by_all,
        common.eliminate_qualify,
    ),
    exp.With: common.rename_nested_ctes,
    exp.Interval: common.interval("multiplied"),
    exp.Div: common.double_division,
    exp.IntDiv: common.double_division,
    exp.Log: common.log_base_ten(lambda x: call("LOG10", x)),
    # CAST truncates; BROUND rounds half to even, ROUND half away from zero
    exp.Cast: common.whole_cast(lambda x, ctx: call("BROUND", x), lambda x, ctx: call("ROUND", x)),
    exp.TryCast: common.whole_cast(
        lambda x, ctx: call("BROUND", x), lambda x, ctx: call("ROUND", x)
    ),
    exp.Substring: common.substring(negative=True, zero=False),
    exp.Monthname: lambda node, ctx: call("DATE_FORMAT", node.this, exp.Literal.string("MMMM")),
    exp.Dayname: lambda node, ctx: call("DATE_FORMAT", node.this, exp.Literal.string("EEEE")),
    exp.TimeToUnix: common.refuse("has no counterpart in {dialect} keeping fractions of seconds"),
    exp.TimeToStr: common.time_format,
    exp.StrToTime: common.time_format,
    exp.Round: common.double_round(lambda x: cast(x, "BIGINT", DIALECT), native_whole=True),
}

FAMILY = Family("spark", frozenset({"spark", "databricks"}), RULES)
