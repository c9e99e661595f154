"""A pipeline drawn once answers alike on DuckDB, Spark and PostgreSQL, or fails to compile
with an issue naming the gem, the field and the dialect.

Each trap of sqlglot's transpilation is one test: the SQL the rule writes, and the answers of
the three engines to the same pipeline over a few inline rows (Spark: a local session;
PostgreSQL: a throwaway server), or the refusal as `dialect_issues` reports it.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
import sqlglot
from sqlglot import exp

from prophecy_jupyter.compiler import CompiledPipeline, compile_pipeline
from prophecy_jupyter.compiler.dialects import dialect_issues, render
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.errors import Issue, ValidationError
from prophecy_jupyter.model import Pipeline
from tests.conftest import chain, compiled_ok, gem, make_pipeline, seed
from tests.pg_support import PostgresServer

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Rows = list[tuple[Any, ...]]

DATES = seed(
    "dates",
    [("d", "DATE")],
    [
        ["2024-01-07"],  # a Sunday
        ["2024-01-08"],
        ["2024-01-13"],
        ["2020-12-31"],  # ISO week 53 of 2020
        ["2021-01-01"],
        [None],
    ],
)


@pytest.fixture(scope="module")
def pg(postgres: PostgresServer) -> Iterator[psycopg.Connection[Any]]:
    with postgres.admin(postgres.dbname) as connection:
        yield connection


def normal(value: Any) -> Any:
    """A value as all three drivers can agree on: exact numbers as floats, timestamps without
    a time zone, lists and rows as tuples."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, Decimal)):
        number = float(value)
        return number if math.isnan(number) else round(number, 9)
    if isinstance(value, dt.datetime):
        return ("timestamp", value.replace(tzinfo=None).isoformat())
    if isinstance(value, dt.date):
        return ("date", value.isoformat())
    if isinstance(value, (list, tuple)):
        return tuple(normal(v) for v in value)
    return value


def on_duckdb(compiled: CompiledPipeline, gem_id: str, engine: DuckDBEngine) -> Rows:
    _, rows = engine.query(compiled.query(gem_id))
    return [tuple(normal(v) for v in row) for row in rows]


def on_spark(compiled: CompiledPipeline, gem_id: str, spark: SparkSession) -> Rows:
    rows = spark.sql(compiled.sql(gem_id, "spark", pretty=False)).collect()
    return [tuple(normal(v) for v in row) for row in rows]


def on_postgres(compiled: CompiledPipeline, gem_id: str, pg: psycopg.Connection[Any]) -> Rows:
    rows = pg.execute(compiled.sql(gem_id, "postgres", pretty=False)).fetchall()
    return [tuple(normal(v) for v in row) for row in rows]


def assert_same_answers(
    pipeline: Pipeline,
    gem_id: str,
    engine: DuckDBEngine,
    spark: SparkSession | None,
    pg: psycopg.Connection[Any] | None,
    ordered: bool = False,
) -> Rows:
    """The gem's rows on DuckDB, checked equal to Spark's and PostgreSQL's (as given)."""
    compiled = compiled_ok(pipeline, engine)
    expected = on_duckdb(compiled, gem_id, engine)
    others = {}
    if spark is not None:
        others["spark"] = on_spark(compiled, gem_id, spark)
    if pg is not None:
        others["postgres"] = on_postgres(compiled, gem_id, pg)
    for name, rows in others.items():
        if ordered:
            assert rows == expected, name
        else:
            assert sorted(rows, key=repr) == sorted(expected, key=repr), name
    return expected


def sql(pipeline: Pipeline, gem_id: str, engine: DuckDBEngine, dialect: str) -> str:
    return compiled_ok(pipeline, engine).sql(gem_id, dialect, pretty=False)


def reformat(source: dict[str, Any], **columns: str) -> Pipeline:
    """``source`` → a Reformat computing ``columns`` (name = expression) → out."""
    items = [{"name": n, "expression": e} for n, e in columns.items()]
    return chain(source, gem("calc", "Reformat", columns=items))


def issues_in(pipeline: Pipeline, engine: DuckDBEngine, dialect: str) -> list[Issue]:
    return dialect_issues(compiled_ok(pipeline, engine), dialect)


# -- lists ---------------------------------------------------------------------------------

LISTS = seed(
    "lists",
    [("items", "INTEGER[]"), ("i", "INTEGER"), ("name", "VARCHAR")],
    [[[1, 2, 3], 1, "abc"], [[], -1, ""], [[None, 4], 0, "x"], [None, 3, None], [[7], -2, "yz"]],
)


def test_len_of_a_list_counts_its_elements_and_len_of_text_its_characters(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    pipeline = reformat(
        LISTS, n="len(items)", m="length(items)", a="array_length(items)", c="len(name)"
    )
    assert "ARRAY_SIZE(`items`) AS `n`" in sql(pipeline, "calc", engine, "spark")
    assert 'CARDINALITY("items") AS "n"' in sql(pipeline, "calc", engine, "postgres")
    assert 'LENGTH("name") AS "c"' in sql(pipeline, "calc", engine, "postgres")
    rows = assert_same_answers(pipeline, "calc", engine, spark, pg)
    assert (0.0, 0.0, 0.0, 0.0) in rows  # the empty list and the empty text


def test_list_index_counts_from_one_and_negative_from_the_end(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    pipeline = reformat(
        LISTS,
        first="items[1]",
        last="items[-1]",
        zero="items[0]",
        beyond="items[5]",
        at="items[i]",
        extracted="list_extract(items, 2)",
    )
    assert "TRY_ELEMENT_AT(`items`, 1)" in sql(pipeline, "calc", engine, "spark")
    assert 'CASE WHEN "i" < 0 THEN "items"[CARDINALITY("items") + 1 + "i"]' in sql(
        pipeline, "calc", engine, "postgres"
    )
    assert_same_answers(pipeline, "calc", engine, spark, pg)


def test_list_slices_keep_duckdb_bounds(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    pipeline = reformat(
        LISTS,
        middle="items[2:3]",
        tail="items[-2:]",
        head="items[:2]",
        from_zero="items[0:2]",
        all_but_last="items[:-2]",
        past_the_end="items[2:10]",
        sliced="array_slice(items, 1, 1)",
    )
    assert "SLICE(`items`, 2, 2) AS `middle`" in sql(pipeline, "calc", engine, "spark")
    assert '"items"[2:3] AS "middle"' in sql(pipeline, "calc", engine, "postgres")
    assert_same_answers(pipeline, "calc", engine, spark, pg)
    refused = issues_in(pipeline, engine, "bigquery")
    assert {i.field for i in refused} == {
        f"/gems/1/properties/columns/{n}/expression" for n in range(7)
    }
    assert "cannot be sliced in bigquery" in refused[0].message


def test_list_sum_skips_nulls_and_is_null_for_an_empty_list(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    doubles = seed("doubles", [("xs", "DOUBLE[]")], [[[1.5, None, 2.25]], [[]], [None]])
    for source, column in ((LISTS, "items"), (doubles, "xs")):
        pipeline = reformat(source, total=f"list_sum({column})")
        assert "AGGREGATE(" in sql(pipeline, "calc", engine, "spark")
        assert "(SELECT SUM(x) FROM UNNEST(" in sql(pipeline, "calc", engine, "postgres")
        rows = assert_same_answers(pipeline, "calc", engine, spark, pg)
        assert (None,) in rows
    [issue] = issues_in(reformat(LISTS, total="list_sum(items)"), engine, "snowflake")
    assert (issue.gem_id, issue.field) == ("calc", "/gems/1/properties/columns/0/expression")
    assert issue.message == (
        "`list_sum` is a DuckDB function with no known counterpart in snowflake"
    )


def test_lambdas_keep_duckdb_positions_on_spark_and_are_refused_elsewhere(
    engine: DuckDBEngine, spark: SparkSession
) -> None:
    pipeline = reformat(
        LISTS,
        numbered="list_transform(items, lambda x, i: x * 10 + i)",
        kept="list_filter(items, lambda x: x > 1)",
    )
    assert "(x, i) -> x * 10 + (i + 1)" in sql(pipeline, "calc", engine, "spark")
    assert_same_answers(pipeline, "calc", engine, spark, None)
    for dialect in ("postgres", "bigquery", "snowflake"):
        issues = issues_in(pipeline, engine, dialect)
        assert [(i.code, i.gem_id, i.field, i.line, i.column) for i in issues] == [
            ("dialect", "calc", "/gems/1/properties/columns/0/expression", 1, 1),
            ("dialect", "calc", "/gems/1/properties/columns/1/expression", 1, 1),
        ]
        assert issues[0].message == (
            f"`list_transform` takes a lambda, which {dialect} has no counterpart for"
        )


def test_row_generators_as_tables_keep_their_end_and_column_name(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    query = (
        "SELECT 'range' AS f, range AS n FROM range(0, 10, 3) "
        "UNION ALL SELECT 'down', r.range FROM range(5, 0, -2) AS r "
        "UNION ALL SELECT 'series', generate_series FROM generate_series(1, 7, 2) "
        "UNION ALL SELECT 'empty', n FROM range(3, 1) AS e(n)"
    )
    pipeline = make_pipeline([gem("gen", "SQLStatement", query=query)], [])
    assert "FROM RANGE(0, 10, 3) AS `range`(`range`)" in sql(pipeline, "gen", engine, "spark")
    assert (
        'GENERATE_SERIES(CAST(1 AS BIGINT), 7, 2) AS "generate_series"("generate_series")'
        in sql(pipeline, "gen", engine, "postgres")
    )
    rows = assert_same_answers(pipeline, "gen", engine, spark, pg)
    assert sorted(n for f, n in rows if f == "down") == [1.0, 3.0, 5.0]
    issues = issues_in(pipeline, engine, "snowflake")
    assert [(i.gem_id, i.field, i.line, i.column) for i in issues] == [
        ("gen", "/gems/0/properties/query", 1, 38),
        ("gen", "/gems/0/properties/query", 1, 92),
        ("gen", "/gems/0/properties/query", 1, 161),
        ("gen", "/gems/0/properties/query", 1, 219),
    ]
    assert issues[0].message == (
        "`range` as a table has no counterpart in snowflake; generate the rows in a Source"
    )


# -- aggregates ----------------------------------------------------------------------------

NUMBERS = seed(
    "numbers",
    [("g", "VARCHAR"), ("x", "DOUBLE")],
    [["a", 1], ["a", 2], ["a", 3], ["a", 10], ["b", 5]],
)


def test_quantiles_stay_exact(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    aggregates = {
        "q3": "quantile_cont(x, 0.3)",
        "q7": "quantile_cont(x, 0.7)",
        "med": "median(x)",
        "disc": "quantile_disc(x, 0.3)",
    }
    pipeline = chain(
        NUMBERS,
        gem(
            "stats",
            "Aggregate",
            group_by=[{"expression": "g"}],
            aggregates=[{"name": n, "expression": e} for n, e in aggregates.items()],
        ),
    )
    spark_sql = sql(pipeline, "stats", engine, "spark")
    assert "PERCENTILE(`x`, 0.3) AS `q3`" in spark_sql
    assert "PERCENTILE_APPROX" not in spark_sql
    rows = assert_same_answers(pipeline, "stats", engine, spark, pg)
    assert ("a", 1.9, 3.7, 2.5, 2.0) in rows
    issues = issues_in(pipeline, engine, "bigquery")
    assert [i.field for i in issues] == [
        f"/gems/1/properties/aggregates/{n}/expression" for n in range(4)
    ]
    assert issues[0].message.startswith(
        "`quantile_cont` has no exact aggregate in bigquery: PERCENTILE_CONT is only a window"
    )


def test_within_group_percentiles_stay_exact_whichever_way_they_order(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    pipeline = chain(
        NUMBERS,
        gem(
            "stats",
            "SQLStatement",
            query="SELECT g, percentile_cont(0.3) WITHIN GROUP (ORDER BY x) AS up, "
            "percentile_cont(0.3) WITHIN GROUP (ORDER BY x DESC) AS down, "
            "percentile_disc(0.3) WITHIN GROUP (ORDER BY x) AS disc FROM in0 GROUP BY g",
        ),
    )
    assert "PERCENTILE(x, 1 - (0.3)) AS down" in sql(pipeline, "stats", engine, "spark")
    rows = assert_same_answers(pipeline, "stats", engine, spark, pg)
    assert ("a", 1.9, 3.7, 2.0) in rows


# -- dates ---------------------------------------------------------------------------------


def test_day_of_week_counts_sunday_as_zero_and_isodow_monday_as_one(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    pipeline = reformat(
        DATES,
        dow="dayofweek(d)",
        iso="isodow(d)",
        extracted="extract(dow FROM d)",
        part="date_part('dow', d)",
        iso_part="date_part('isodow', d)",
    )
    assert "(DAYOFWEEK(`d`) - 1) AS `dow`" in sql(pipeline, "calc", engine, "spark")
    assert 'CAST(EXTRACT(DOW FROM "d") AS BIGINT) AS "dow"' in sql(
        pipeline, "calc", engine, "postgres"
    )
    rows = assert_same_answers(pipeline, "calc", engine, spark, pg)
    assert (0.0, 7.0, 0.0, 0.0, 7.0) in rows  # Sunday 2024-01-07


def test_week_is_the_iso_week(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    pipeline = reformat(DATES, week="week(d)", iso="weekofyear(d)", part="extract(week FROM d)")
    assert "WEEKOFYEAR(`d`) AS `week`" in sql(pipeline, "calc", engine, "spark")
    rows = assert_same_answers(pipeline, "calc", engine, spark, pg)
    assert (53.0, 53.0, 53.0) in rows


SPANS = seed(
    "spans",
    [("a", "TIMESTAMP"), ("b", "TIMESTAMP")],
    [
        ["2024-01-31 10:00:00", "2024-02-01 09:00:00"],
        ["2023-12-31 23:59:59", "2024-01-01 00:00:01"],
        ["2024-03-15 08:30:00", "2024-01-20 23:00:00"],
        ["2024-01-06 23:00:00", "2024-01-08 01:00:00"],
        ["1969-12-31 23:59:59.5", "1970-01-01 00:00:00.25"],
        [None, "2024-01-01 00:00:00"],
    ],
)


def test_date_diff_counts_unit_boundaries_as_duckdb_does(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    units = ["year", "quarter", "month", "week", "day", "hour", "minute", "second", "millisecond"]
    columns = {u: f"date_diff('{u}', a, b)" for u in units}
    dates = {
        f"{u}_of_dates": f"datediff('{u}', CAST(a AS DATE), CAST(b AS DATE))" for u in units[:5]
    }
    pipeline = reformat(SPANS, **columns, **dates)
    assert "((YEAR(`b`) * 12 + MONTH(`b`)) - (YEAR(`a`) * 12 + MONTH(`a`))) AS `month`" in sql(
        pipeline, "calc", engine, "spark"
    )
    rows = assert_same_answers(pipeline, "calc", engine, spark, pg)
    # 10:00 on Jan 31 → 09:00 on Feb 1: a month and a day boundary, no whole month or day
    assert rows[0][:9] == (0.0, 0.0, 1.0, 0.0, 1.0, 23.0, 1380.0, 82800.0, 82800000.0)
    # Saturday 23:00 → Monday 01:00 crosses a Monday, but weeks are whole 7-day spans
    assert rows[3][3] == 0.0


def test_date_plus_interval_and_date_trunc_are_timestamps(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    pipeline = reformat(
        DATES,
        next_month="d + INTERVAL 1 MONTH",
        last_year="d - INTERVAL 1 YEAR",
        later="INTERVAL 36 HOUR + d",
        days="d + 3",
        elapsed="d - DATE '2020-01-01'",
        month="date_trunc('month', d)",
        week="date_trunc('week', d)",
    )
    compiled = compiled_ok(pipeline, engine)
    spark_sql = compiled.sql("calc", "spark", pretty=False)
    assert "CAST(`d` + INTERVAL '1' MONTH AS TIMESTAMP_NTZ) AS `next_month`" in spark_sql
    assert "DATE_TRUNC('MONTH', CAST(\"d\" AS TIMESTAMP))" in compiled.sql(
        "calc", "postgres", pretty=False
    )
    schema = {f.name: f.dataType.simpleString() for f in spark.sql(spark_sql).schema.fields}
    assert schema == {
        "next_month": "timestamp_ntz",
        "last_year": "timestamp_ntz",
        "later": "timestamp_ntz",
        "days": "date",
        "elapsed": "int",
        "month": "timestamp_ntz",
        "week": "timestamp_ntz",
    }
    assert_same_answers(pipeline, "calc", engine, spark, pg)


def test_an_interval_counted_at_run_time_keeps_its_count(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    pipeline = reformat(
        seed("due", [("d", "DATE"), ("n", "INTEGER")], [["2024-01-31", 1], ["2024-01-31", 13]]),
        later="d + INTERVAL (n) MONTH",
        sooner="d - INTERVAL (n * 2) DAY",
    )
    assert "`d` + ((`n`) * INTERVAL '1' MONTH)" in sql(pipeline, "calc", engine, "spark")
    assert_same_answers(pipeline, "calc", engine, spark, pg)
    [issue, _] = issues_in(pipeline, engine, "snowflake")
    assert issue.message == (
        "`INTERVAL (n) MONTH` with a count computed at run time has no counterpart in snowflake"
    )


def test_time_bucket_of_one_whole_unit_is_a_truncation_and_other_widths_are_refused(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    moments = seed(
        "moments",
        [("ts", "TIMESTAMP"), ("d", "DATE")],
        [["2024-01-31 10:37:12", "2024-01-31"], ["2024-03-03 23:59:59", "2024-03-03"]],
    )
    pipeline = reformat(
        moments,
        hour="time_bucket(INTERVAL 1 HOUR, ts)",
        week="time_bucket(INTERVAL 1 WEEK, ts)",
        month="time_bucket(INTERVAL 1 MONTH, d)",
        day="time_bucket(INTERVAL 1 DAY, d)",
    )
    assert "TRUNC(`d`, 'MONTH') AS `month`" in sql(pipeline, "calc", engine, "spark")
    assert_same_answers(pipeline, "calc", engine, spark, pg)
    quarter_hours = reformat(moments, slot="time_bucket(INTERVAL 15 MINUTE, ts)")
    for dialect in ("spark", "postgres"):
        [issue] = issues_in(quarter_hours, engine, dialect)
        assert issue == Issue(
            "dialect",
            f"`time_bucket` is only written in {dialect} for buckets one unit wide "
            "(INTERVAL 1 DAY…)",
            "calc",
            "/gems/1/properties/columns/0/expression",
            1,
            1,
        )


def test_round_of_a_double_rounds_its_binary_value_half_away_from_zero(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    draw = random.Random(7)
    values = [2.675, 1.005, 12345.125, 2.5, -2.5, 0.5, -0.125, 0.49999999999999994, None]
    values += [round(draw.uniform(-1000, 1000), 3) for _ in range(150)]
    values += [draw.uniform(-1e6, 1e6) for _ in range(50)]
    doubles = seed("doubles", [("x", "DOUBLE")], [[v] for v in values])
    pipeline = reformat(doubles, x="x", r2="round(x, 2)", r3="round(x, 3)", r0="round(x)")
    assert "ROUND(`x`) AS `r0`" in sql(pipeline, "calc", engine, "spark")
    rows = assert_same_answers(pipeline, "calc", engine, spark, pg)
    assert (2.675, 2.67, 2.675, 3.0) in rows  # 2.675 is 2.67499999… in binary
    decimals = seed("decimals", [("x", "DECIMAL(10,3)")], [[2.675], [-2.5]])
    assert_same_answers(reformat(decimals, r="round(x, 2)"), "calc", engine, spark, pg)


def test_functions_sqlglot_writes_with_another_meaning_answer_alike(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    values = seed(
        "values",
        [
            ("x", "DOUBLE"),
            ("p", "DECIMAL(10,2)"),
            ("s", "VARCHAR"),
            ("n", "INTEGER"),
            ("d", "DATE"),
        ],
        [
            [2.5, 2.5, "abcd", 0, "2024-03-15"],
            [-2.5, -1.25, "xy", -3, "2023-12-31"],
            [3.7, 0.5, "", 2, "2024-01-01"],
        ],
    )
    pipeline = reformat(
        values,
        log="log(x * x)",  # base 10 in DuckDB
        double_to_int="x::INTEGER",  # half to even
        decimal_to_int="p::BIGINT",  # half away from zero
        literal_to_int="(-2.5)::INTEGER",
        third="p / 3",  # a DOUBLE, not a DECIMAL to 6 places
        halves="x // 2",  # a plain division, for numbers with a fraction
        before_first="substring(s, 0, 2)",
        from_end="substring(s, -3, 2)",
        at="substring(s, n, 2)",
        month="monthname(d)",
        day="dayname(d)",
        text="strftime(d, '%d/%m/%Y')",
        parsed="strptime('2024-03-0' || (n + 4), '%Y-%m-%d')",
    )
    written = sql(pipeline, "calc", engine, "spark")
    assert "LOG10(`x` * `x`) AS `log`" in written
    assert "CAST(BROUND(`x`) AS INT) AS `double_to_int`" in written
    assert "CAST(`p` AS DOUBLE) / 3 AS `third`" in written
    rows = assert_same_answers(pipeline, "calc", engine, spark, pg)
    assert rows[0][:8] == (0.795880017, 2.0, 3.0, -3.0, 0.833333333, 1.25, "a", "bc")
    issues = issues_in(reformat(values, week="strftime(d, '%U')"), engine, "spark")
    assert [i.message for i in issues] == [
        "`strftime` format %U has no counterpart in spark; use %%, %H, %M, %S, %Y, %d, %m, %y"
    ]


# -- text ----------------------------------------------------------------------------------

TEXTS = seed(
    "texts",
    [("s", "VARCHAR")],
    [["banana"], ["a.b\nc.d"], ["x$y end\n"], ["tab\there\vvt"], [""], [None], ["AbBa"]],
)


def test_regexp_replace_replaces_the_first_match_unless_told_every(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    pipeline = reformat(
        TEXTS,
        first="regexp_replace(s, 'a', 'X')",
        every="regexp_replace(s, 'a', 'X', 'g')",
        insensitive="regexp_replace(s, 'b', '_', 'gi')",
        groups=r"regexp_replace(s, '(a)(n)', '<\2\1\0>')",
        dollar="regexp_replace(s, 'y', '$1')",
        dot="regexp_replace(s, 'b.c', '#', 'g')",
        space=r"regexp_replace(s, '\s', '_', 'g')",
        end="regexp_replace(s, 'end$', 'END')",
        matches="regexp_matches(s, '^a.b$')",
    )
    assert "REGEXP_REPLACE(`s`, '^([\\\\s\\\\S]*?)(a)', '$1X') AS `first`" in sql(
        pipeline, "calc", engine, "spark"
    )
    assert "REGEXP_REPLACE(\"s\", 'a', 'X') AS \"first\"" in sql(
        pipeline, "calc", engine, "postgres"
    )
    rows = assert_same_answers(pipeline, "calc", engine, spark, pg)
    assert ("bXnana", "bXnXnX") in [r[:2] for r in rows]


def test_a_pattern_the_dialect_reads_otherwise_is_refused(engine: DuckDBEngine) -> None:
    pipeline = reformat(TEXTS, named="regexp_replace(s, '(?P<first>a)', 'X')")
    [issue] = issues_in(pipeline, engine, "spark")
    assert issue.field == "/gems/1/properties/columns/0/expression"
    assert issue.message == (
        "`regexp_replace` pattern cannot be carried over to spark: (?P< (inline flags and "
        "named groups) is not carried over"
    )


def test_title_case_splits_words_at_punctuation_as_duckdb_does(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    names = seed(
        "names",
        [("name", "VARCHAR")],
        [["o'neil smith-JONES"], ["x_y 3rd\tTAB"], ["  lead [a]b\\c"], [""], [None]],
    )
    pipeline = chain(
        names,
        gem("tidy", "DataCleansing", columns=["name"], case="title"),
    )
    assert "REGEXP_EXTRACT_ALL(" in sql(pipeline, "tidy", engine, "spark")
    assert "INITCAP" not in sql(pipeline, "tidy", engine, "postgres")
    rows = assert_same_answers(pipeline, "tidy", engine, spark, pg)
    assert ("O'Neil Smith-Jones",) in rows


def test_splitting_empty_text_gives_one_empty_piece(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    pipeline = chain(
        seed("texts", [("s", "VARCHAR")], [["a.b.c"], [""], [None], ["a."]]),
        gem("split", "TextToColumns", column="s", delimiter=".", names=["one", "two"]),
    )
    rows = assert_same_answers(pipeline, "split", engine, spark, pg)
    assert ("", None) in rows


# -- statements ------------------------------------------------------------------------------

SALES = seed(
    "sales",
    [("k", "INTEGER"), ("v", "INTEGER"), ("w", "VARCHAR")],
    [[1, 10, "a"], [1, 20, "b"], [2, 5, "c"], [2, 7, "d"], [3, 1, "e"], [None, 4, "f"]],
)


def statement(query: str) -> Pipeline:
    return chain(SALES, gem("stmt", "SQLStatement", query=query))


def test_qualify_filters_before_ordering_and_limiting(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    pipeline = statement(
        "SELECT k, w, row_number() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM sales "
        "QUALIFY rn = 1 AND v > 4 ORDER BY v DESC, k LIMIT 2"
    )
    for dialect in ("spark", "postgres"):
        written = sql(pipeline, "stmt", engine, dialect)
        assert "QUALIFY" not in written
        assert written.endswith("LIMIT 2")
    rows = assert_same_answers(pipeline, "stmt", engine, spark, pg, ordered=True)
    assert rows == [(1.0, "b", 1.0), (2.0, "d", 1.0)]


def test_star_exclude_and_replace_are_expanded_where_the_dialect_has_none(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    pipeline = statement("SELECT * EXCLUDE (v) REPLACE (upper(w) AS w) FROM sales")
    assert sql(pipeline, "stmt", engine, "postgres").endswith(
        'SELECT "sales"."k", UPPER(w) AS "w" FROM "sales"'
    )
    assert_same_answers(pipeline, "stmt", engine, spark, pg)


def test_group_by_all_groups_by_the_columns_that_do_not_aggregate(
    engine: DuckDBEngine, spark: SparkSession, pg: psycopg.Connection[Any]
) -> None:
    pipeline = statement(
        "SELECT k, 'x' AS tag, sum(v) AS total, count(*) AS n FROM sales GROUP BY ALL ORDER BY ALL"
    )
    assert "GROUP BY 1, 2 ORDER BY 1, 2, 3, 4" in sql(pipeline, "stmt", engine, "postgres")
    rows = assert_same_answers(pipeline, "stmt", engine, spark, pg, ordered=True)
    assert rows[-1] == (None, "x", 4.0, 1.0)


def test_a_ctes_name_cannot_clash_with_a_gem_when_spark_hoists_it(
    engine: DuckDBEngine, spark: SparkSession
) -> None:
    pipeline = make_pipeline(
        [
            SALES,
            gem("orders", "Filter", condition="v > 5"),
            gem(
                "stmt",
                "SQLStatement",
                query="WITH orders AS (SELECT 1 AS one) SELECT * FROM orders, in0",
            ),
        ],
        [("sales", "orders"), ("sales", "stmt")],
    )
    written = sql(pipeline, "stmt", engine, "spark")
    assert "`orders_stmt` AS (SELECT 1 AS one)" in written
    assert "FROM `orders_stmt` AS `orders`" in written
    assert len(assert_same_answers(pipeline, "stmt", engine, spark, None)) == 6


# -- how refusals surface ------------------------------------------------------------------


def test_render_names_the_gem_whose_statement_holds_the_refused_node(
    engine: DuckDBEngine,
) -> None:
    pipeline = chain(
        SALES,
        gem("calc", "Reformat", columns=[{"name": "m", "expression": "median(v)"}]),
        gem("after", "Filter", condition="m > 0"),
    )
    compiled = compiled_ok(pipeline, engine)
    with pytest.raises(ValidationError) as refused:
        compiled.sql("after", "bigquery")
    [issue] = refused.value.issues
    assert (issue.code, issue.gem_id) == ("dialect", "calc")
    assert "median" in issue.message and "bigquery" in issue.message


def test_an_engine_rendering_a_compiled_statement_gets_the_rules_that_need_types(
    engine: DuckDBEngine,
) -> None:
    compiled = compiled_ok(reformat(LISTS, n="len(items)"), engine)
    query = compiled.query("calc")
    wrapped = exp.Create(this=exp.to_table("t"), kind="TABLE", expression=query.copy())
    assert "ARRAY_SIZE(`items`)" in render(wrapped, "spark")
    assert render(query, "spark") == compiled.sql("calc", "spark", pretty=False)


class SparkCatalog:
    """A catalog answering like the DuckDB engine, for an engine whose dialect is Spark's."""

    dialect = "spark"

    def __init__(self, engine: DuckDBEngine) -> None:
        self.engine = engine

    def describe(self, query: exp.Query) -> list[tuple[str, str]]:
        return self.engine.describe(query)


def test_compiling_for_an_engine_reports_what_it_would_answer_differently(
    engine: DuckDBEngine,
) -> None:
    pipeline = reformat(LISTS, size="strlen(name)", slot="time_bucket(INTERVAL 15 MINUTE, i)")
    issues = compile_pipeline(pipeline, SparkCatalog(engine)).issues
    assert [(i.code, i.gem_id, i.field) for i in issues] == [
        ("dialect", "calc", "/gems/1/properties/columns/0/expression"),
        ("dialect", "calc", "/gems/1/properties/columns/1/expression"),
    ]
    assert issues[0].message == "`strlen` is a DuckDB function with no known counterpart in spark"
    assert compile_pipeline(pipeline, engine).issues == []


def test_duckdb_has_no_rules() -> None:
    query = sqlglot.parse_one("SELECT dayofweek(d), l[1] FROM t", read="duckdb")
    assert render(query, "duckdb") == query.sql("duckdb")


def test_a_column_no_relation_types_does_not_send_typing_in_circles() -> None:
    """An engine describes a query by wrapping it: an unknown column of the inner query must
    not be looked for in the subquery that holds it."""
    inner = sqlglot.parse_one("SELECT 1 // (x - x) AS boom, len(x) AS n FROM ones", read="duckdb")
    assert isinstance(inner, exp.Select)
    probe = exp.select(exp.Star()).from_(inner.subquery("described")).limit(0)
    assert render(probe, "postgres") == (
        "SELECT * FROM (SELECT DIV(1, (x - x)) AS boom, LENGTH(x) AS n FROM ones) AS described "
        "LIMIT 0"
    )
