"""DataCleansing, run on DuckDB."""

from __future__ import annotations

from typing import Any

import sqlglot

from prophecy_jupyter.compiler import Column, compile_pipeline
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.model import Pipeline
from tests.conftest import chain, gem, issues_of, rows_of, seed

SCHEMA = [("name", "VARCHAR"), ("city", "VARCHAR"), ("visits", "INTEGER"), ("score", "DOUBLE")]


def raw(*rows: list[Any]) -> dict[str, Any]:
    return seed("raw", SCHEMA, rows)


def cleanse(*rows: list[Any], **properties: Any) -> Pipeline:
    return chain(raw(*rows), gem("c", "DataCleansing", **properties))


def schema(pipeline: Pipeline, engine: DuckDBEngine) -> list[tuple[str, str]]:
    return [(c.name, c.type) for c in compile_pipeline(pipeline, engine).columns("c")]


def problems(pipeline: Pipeline, engine: DuckDBEngine) -> list[tuple[str, str | None, str | None]]:
    return [(i.code, i.gem_id, i.field) for i in issues_of(pipeline, engine)]


def test_data_cleansing_trims_every_text_column_by_default(engine: DuckDBEngine) -> None:
    pipeline = cleanse(["  ann ", "\toslo\n", 3, 1.5], trim=True)
    assert rows_of(pipeline, engine, "c") == [("ann", "oslo", 3, 1.5)]
    assert compile_pipeline(pipeline, engine).columns("c") == [
        Column("name", "VARCHAR", frozenset({("raw", "name")})),
        Column("city", "VARCHAR", frozenset({("raw", "city")})),
        Column("visits", "INTEGER", frozenset({("raw", "visits")})),
        Column("score", "DOUBLE", frozenset({("raw", "score")})),
    ]


def test_data_cleansing_cleans_only_the_chosen_columns(engine: DuckDBEngine) -> None:
    pipeline = cleanse([" ann ", " oslo ", 3, 1.5], columns=["city"], trim=True)
    assert rows_of(pipeline, engine, "c") == [(" ann ", "oslo", 3, 1.5)]
    assert schema(pipeline, engine) == SCHEMA


def test_data_cleansing_changes_text_to_upper_case(engine: DuckDBEngine) -> None:
    pipeline = cleanse(["Ann", "oslo", 3, 1.5], case="upper")
    assert rows_of(pipeline, engine, "c") == [("ANN", "OSLO", 3, 1.5)]
    assert schema(pipeline, engine) == SCHEMA


def test_data_cleansing_changes_text_to_lower_case(engine: DuckDBEngine) -> None:
    pipeline = cleanse(["Ann", "OSLO", 3, 1.5], case="lower")
    assert rows_of(pipeline, engine, "c") == [("ann", "oslo", 3, 1.5)]
    assert schema(pipeline, engine) == SCHEMA


def test_data_cleansing_changes_text_to_title_case(engine: DuckDBEngine) -> None:
    pipeline = cleanse(["ann LEE", "new york", 3, 1.5], case="title")
    assert rows_of(pipeline, engine, "c") == [("Ann Lee", "New York", 3, 1.5)]
    assert schema(pipeline, engine) == SCHEMA


def test_data_cleansing_removes_punctuation(engine: DuckDBEngine) -> None:
    pipeline = cleanse(["o'neil, jr.", "a\\b [c]_d-e!", 3, 1.5], remove_punctuation=True)
    assert rows_of(pipeline, engine, "c") == [("oneil jr", "ab cde", 3, 1.5)]
    assert schema(pipeline, engine) == SCHEMA


def test_data_cleansing_collapses_runs_of_whitespace(engine: DuckDBEngine) -> None:
    pipeline = cleanse(["ann   lee", "new\t\n york", 3, 1.5], collapse_spaces=True)
    assert rows_of(pipeline, engine, "c") == [("ann lee", "new york", 3, 1.5)]
    assert schema(pipeline, engine) == SCHEMA


def test_data_cleansing_replaces_nulls_with_empty_text_and_zero(engine: DuckDBEngine) -> None:
    pipeline = cleanse(
        [None, "oslo", None, None],
        columns=["name", "visits", "score"],
        replace_nulls=True,
    )
    assert rows_of(pipeline, engine, "c") == [("", "oslo", 0, 0.0)]
    assert schema(pipeline, engine) == SCHEMA


def test_data_cleansing_replaces_nulls_with_the_given_defaults(engine: DuckDBEngine) -> None:
    pipeline = cleanse(
        [None, None, None, None],
        ["bob", "rome", 2, 0.5],
        columns=["name", "visits", "score"],
        replace_nulls=True,
        text_default="n/a",
        number_default=-1,
    )
    assert rows_of(pipeline, engine, "c") == [("n/a", None, -1, -1.0), ("bob", "rome", 2, 0.5)]
    assert schema(pipeline, engine) == SCHEMA


def test_data_cleansing_drops_rows_that_are_entirely_null(engine: DuckDBEngine) -> None:
    pipeline = cleanse(
        [None, None, None, None],
        [None, None, 1, None],
        drop_null_rows=True,
        replace_nulls=True,
    )
    assert rows_of(pipeline, engine, "c") == [("", "", 1, None)]
    assert schema(pipeline, engine) == SCHEMA


def test_data_cleansing_applies_every_text_operation_in_turn(engine: DuckDBEngine) -> None:
    pipeline = cleanse(
        ["  o'NEIL ,   ann!  ", None, 3, 1.5],
        remove_punctuation=True,
        collapse_spaces=True,
        trim=True,
        case="title",
        replace_nulls=True,
        text_default="unknown",
    )
    assert rows_of(pipeline, engine, "c") == [("Oneil Ann", "unknown", 3, 1.5)]
    assert schema(pipeline, engine) == SCHEMA


def test_data_cleansing_sql_transpiles_to_spark(engine: DuckDBEngine) -> None:
    pipeline = cleanse(
        ["a", "b", 1, 1.0],
        remove_punctuation=True,
        collapse_spaces=True,
        trim=True,
        case="title",
        replace_nulls=True,
        columns=["name", "score"],
    )
    compiled = compile_pipeline(pipeline, engine)
    spark_sql = compiled.sql("c", dialect="spark")
    # Spark's INITCAP capitalises O'Neil as O'neil: title case is written out as DuckDB does it.
    assert "INITCAP" not in spark_sql and "`name`" in spark_sql
    sqlglot.parse_one(spark_sql, read="spark")


def test_data_cleansing_rejects_an_unknown_column(engine: DuckDBEngine) -> None:
    pipeline = cleanse(columns=["name", "country"], trim=True)
    assert problems(pipeline, engine) == [("unknown_column", "c", "/gems/1/properties/columns/1")]


def test_data_cleansing_rejects_text_operations_on_a_number_column(engine: DuckDBEngine) -> None:
    pipeline = cleanse(columns=["visits"], trim=True)
    assert problems(pipeline, engine) == [("not_applicable", "c", "/gems/1/properties/columns/0")]


def test_data_cleansing_rejects_a_fractional_default_for_whole_numbers(
    engine: DuckDBEngine,
) -> None:
    pipeline = cleanse(columns=["visits"], replace_nulls=True, number_default=0.5)
    assert problems(pipeline, engine) == [("bad_default", "c", "/gems/1/properties/number_default")]


def test_data_cleansing_rejects_an_unknown_case(engine: DuckDBEngine) -> None:
    pipeline = cleanse(case="sentence")
    assert problems(pipeline, engine) == [("schema", "c", "/gems/1/properties/case")]
