"""Source and Target gems against real files and tables: every format, every write mode."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp

from prophecy_jupyter.automate.runner import run_pipeline
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.errors import Conflict, EngineError
from prophecy_jupyter.gems.sources import TargetProps, write_spec, written_relation
from prophecy_jupyter.model import Pipeline
from tests.conftest import chain, compiled_ok, gem, issues_of, make_pipeline, rows_of, seed

PEOPLE = [("id", "INTEGER"), ("name", "VARCHAR")]


def copy_to(engine: DuckDBEngine, sql_select: str, path: Path, fmt: str) -> None:
    """Write a file with DuckDB's own COPY, as another tool would have produced it."""
    copy = exp.Copy(
        this=exp.maybe_parse(sql_select, dialect="duckdb").subquery(),
        kind=False,
        files=[exp.Literal.string(str(path))],
        params=[exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var(fmt))],
    )
    engine.connection.execute(copy.sql("duckdb"))


def people(rows: list[list[Any]], **target: Any) -> Pipeline:
    """Seed rows of (id, name) written by a Target ``out`` with the given properties."""
    return chain(seed("new", PEOPLE, rows), gem("out", "Target", **target))


def run_ok(pipeline: Pipeline, engine: DuckDBEngine) -> None:
    result = run_pipeline(pipeline, engine)
    assert result.status == "succeeded", result.error


def written(engine: DuckDBEngine, **target: Any) -> list[tuple[Any, ...]]:
    """Everything a Target with these properties has written, sorted."""
    _, rows = engine.query(written_relation(TargetProps.model_validate(target)))
    return sorted(rows)


def write_directly(engine: DuckDBEngine, pipeline: Pipeline) -> int:
    """Run the Target ``out`` through the engine itself, so its typed error surfaces."""
    compiled = compiled_ok(pipeline, engine)
    return engine.write(compiled.query("out"), write_spec(compiled.target_properties("out")))


# -- sources ------------------------------------------------------------------------------


def test_csv_source_reads_header_row_as_column_names(engine: DuckDBEngine, tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("id,name\n1,ann\n2,bob\n")
    pipeline = chain(gem("src", "Source", format="csv", path="people.csv"))
    assert rows_of(pipeline, engine, "src") == [(1, "ann"), (2, "bob")]
    assert [c.name for c in compiled_ok(pipeline, engine).columns("src")] == ["id", "name"]


def test_csv_source_without_header_and_with_delimiter(engine: DuckDBEngine, tmp_path: Path) -> None:
    (tmp_path / "people.txt").write_text("1;ann\n2;bob\n")
    pipeline = chain(
        gem("src", "Source", format="csv", path="people.txt", header=False, delimiter=";")
    )
    assert rows_of(pipeline, engine, "src") == [(1, "ann"), (2, "bob")]
    assert [c.name for c in compiled_ok(pipeline, engine).columns("src")] == [
        "column0",
        "column1",
    ]


def test_parquet_source_keeps_the_file_types(engine: DuckDBEngine, tmp_path: Path) -> None:
    copy_to(
        engine,
        "SELECT 1 AS id, CAST(2.50 AS DECIMAL(9,2)) AS price, DATE '2024-03-01' AS day",
        tmp_path / "prices.parquet",
        "parquet",
    )
    pipeline = chain(gem("src", "Source", format="parquet", path="prices.parquet"))
    assert rows_of(pipeline, engine, "src") == [(1, Decimal("2.50"), dt.date(2024, 3, 1))]
    assert [(c.name, c.type) for c in compiled_ok(pipeline, engine).columns("src")] == [
        ("id", "INTEGER"),
        ("price", "DECIMAL(9,2)"),
        ("day", "DATE"),
    ]


def test_json_source_reads_newline_delimited_records(engine: DuckDBEngine, tmp_path: Path) -> None:
    copy_to(
        engine,
        "SELECT * FROM (VALUES (1, 'ann', [1, 2]), (2, 'bob', [])) AS t(id, name, tags)",
        tmp_path / "people.json",
        "json",
    )
    pipeline = chain(gem("src", "Source", format="json", path="people.json"))
    assert rows_of(pipeline, engine, "src") == [(1, "ann", [1, 2]), (2, "bob", [])]


def test_relative_source_path_resolves_in_project_not_working_directory(
    engine: DuckDBEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "people.csv").write_text("id,name\n1,project\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "people.csv").write_text("id,name\n1,working directory\n")
    monkeypatch.chdir(elsewhere)
    pipeline = chain(gem("src", "Source", format="csv", path="people.csv"))
    assert rows_of(pipeline, engine, "src") == [(1, "project")]


def test_source_glob_reads_every_matching_file(engine: DuckDBEngine, tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "a.csv").write_text("id,name\n1,ann\n")
    (tmp_path / "parts" / "b.csv").write_text("id,name\n2,bob\n")
    pipeline = chain(gem("src", "Source", format="csv", path="parts/*.csv"))
    assert sorted(rows_of(pipeline, engine, "src")) == [(1, "ann"), (2, "bob")]


def test_table_source_reads_the_table(engine: DuckDBEngine) -> None:
    engine.connection.execute("CREATE TABLE people AS SELECT 1 AS id, 'ann' AS name")
    pipeline = chain(gem("src", "Source", format="table", table="people"))
    assert rows_of(pipeline, engine, "src") == [(1, "ann")]


def test_seed_casts_values_to_declared_types(engine: DuckDBEngine) -> None:
    pipeline = chain(
        seed(
            "src",
            [("id", "INT"), ("price", "DECIMAL(10,2)"), ("day", "DATE"), ("ok", "BOOLEAN")],
            [[1, "2.5", "2024-01-31", True], [2, None, None, False]],
        )
    )
    assert rows_of(pipeline, engine, "src") == [
        (1, Decimal("2.50"), dt.date(2024, 1, 31), True),
        (2, None, None, False),
    ]


def test_seed_columns_are_typed_as_the_engine_spells_them(engine: DuckDBEngine) -> None:
    pipeline = chain(
        seed("src", [("id", "INT"), ("name", "TEXT"), ("price", "DECIMAL(10,2)")], [[1, "a", 2]])
    )
    compiled = compiled_ok(pipeline, engine)
    expected = engine.describe(compiled.query("src"))
    assert [(c.name, c.type) for c in compiled.columns("src")] == expected
    assert expected == [("id", "INTEGER"), ("name", "VARCHAR"), ("price", "DECIMAL(10,2)")]


def test_empty_seed_has_typed_columns_and_no_rows(engine: DuckDBEngine) -> None:
    pipeline = chain(seed("src", [("id", "BIGINT"), ("day", "DATE")], []))
    assert rows_of(pipeline, engine, "src") == []
    assert [(c.name, c.type) for c in compiled_ok(pipeline, engine).columns("src")] == [
        ("id", "BIGINT"),
        ("day", "DATE"),
    ]


@pytest.mark.parametrize("content", [None, "not a parquet file"], ids=["missing", "corrupt"])
def test_unreadable_file_is_an_issue_on_the_path_field(
    engine: DuckDBEngine, tmp_path: Path, content: str | None
) -> None:
    if content is not None:
        (tmp_path / "bad.parquet").write_text(content)
    pipeline = make_pipeline(
        [
            seed("first", PEOPLE, [[1, "ann"]]),
            gem("src", "Source", format="parquet", path="bad.parquet"),
        ],
        [],
    )
    (issue,) = issues_of(pipeline, engine)
    assert (issue.code, issue.gem_id, issue.field) == (
        "unreadable_source",
        "src",
        "/gems/1/properties/path",
    )


def test_missing_table_is_an_issue_on_the_table_field(engine: DuckDBEngine) -> None:
    pipeline = chain(gem("src", "Source", format="table", table="nowhere"))
    (issue,) = issues_of(pipeline, engine)
    assert (issue.code, issue.field) == ("unreadable_source", "/gems/0/properties/table")


# -- targets: formats -----------------------------------------------------------------------


def test_table_target_creates_the_table(engine: DuckDBEngine) -> None:
    run_ok(people([[1, "ann"], [2, "bob"]], table="people"), engine)
    assert written(engine, table="people") == [(1, "ann"), (2, "bob")]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_file_target_writes_the_format_under_the_project(
    engine: DuckDBEngine, tmp_path: Path, fmt: str
) -> None:
    run_ok(people([[1, "ann"], [2, "bob"]], format=fmt, path=f"out/people.{fmt}"), engine)
    assert (tmp_path / "out" / f"people.{fmt}").is_file()
    assert written(engine, format=fmt, path=f"out/people.{fmt}") == [(1, "ann"), (2, "bob")]


def test_file_target_leaves_no_temporary_file_beside_it(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    run_ok(people([[1, "ann"]], format="parquet", path="people.parquet"), engine)
    run_ok(people([[2, "bob"]], format="parquet", path="people.parquet"), engine)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people.parquet"]


def test_csv_target_without_header_writes_only_rows(engine: DuckDBEngine, tmp_path: Path) -> None:
    run_ok(people([[1, "ann"]], format="csv", path="people.csv", header=False), engine)
    assert (tmp_path / "people.csv").read_text() == "1,ann\n"


def test_table_target_in_another_schema_leaves_the_same_name_in_main(
    engine: DuckDBEngine,
) -> None:
    engine.connection.execute("CREATE SCHEMA analytics")
    engine.connection.execute("CREATE TABLE people AS SELECT 9 AS id, 'main' AS name")
    run_ok(people([[1, "ann"]], table="analytics.people"), engine)
    run_ok(people([[2, "bob"]], table="analytics.people", mode="append"), engine)
    assert written(engine, table="analytics.people") == [(1, "ann"), (2, "bob")]
    assert written(engine, table="people") == [(9, "main")]


def test_table_source_reads_another_schema(engine: DuckDBEngine) -> None:
    engine.connection.execute("CREATE SCHEMA analytics")
    engine.connection.execute("CREATE TABLE analytics.people AS SELECT 1 AS id, 'ann' AS name")
    source = chain(gem("src", "Source", format="table", table="analytics.people"))
    assert rows_of(source, engine, "src") == [(1, "ann")]


def test_target_reports_rows_written(engine: DuckDBEngine) -> None:
    result = run_pipeline(people([[1, "ann"], [2, "bob"], [3, "cy"]], table="people"), engine)
    assert result.gem("out").rows == 3


# -- targets: modes -------------------------------------------------------------------------


def test_overwrite_replaces_table_contents_and_columns(engine: DuckDBEngine) -> None:
    engine.connection.execute("CREATE TABLE people AS SELECT 7 AS id, 'old' AS name, 1 AS extra")
    run_ok(people([[1, "ann"]], table="people"), engine)
    assert written(engine, table="people") == [(1, "ann")]


def test_overwrite_matches_an_existing_table_whatever_the_case(engine: DuckDBEngine) -> None:
    engine.connection.execute("CREATE TABLE people AS SELECT 7 AS id, 'old' AS name")
    run_ok(people([[1, "ann"]], table="People"), engine)
    assert written(engine, table="people") == [(1, "ann")]


def test_overwrite_replaces_a_file(engine: DuckDBEngine) -> None:
    run_ok(people([[1, "ann"], [2, "bob"]], format="parquet", path="p.parquet"), engine)
    run_ok(people([[3, "cy"]], format="parquet", path="p.parquet"), engine)
    assert written(engine, format="parquet", path="p.parquet") == [(3, "cy")]


def test_append_adds_rows_to_a_table(engine: DuckDBEngine) -> None:
    run_ok(people([[1, "ann"]], table="people"), engine)
    run_ok(people([[2, "bob"], [1, "ann"]], table="people", mode="append"), engine)
    assert written(engine, table="people") == [(1, "ann"), (1, "ann"), (2, "bob")]


def test_append_creates_a_missing_table(engine: DuckDBEngine) -> None:
    run_ok(people([[1, "ann"]], table="people", mode="append"), engine)
    assert written(engine, table="people") == [(1, "ann")]


def test_append_adds_rows_to_a_csv_file(engine: DuckDBEngine) -> None:
    run_ok(people([[1, "ann"]], format="csv", path="people.csv"), engine)
    run_ok(people([[2, "bob"]], format="csv", path="people.csv", mode="append"), engine)
    assert written(engine, format="csv", path="people.csv") == [(1, "ann"), (2, "bob")]


def test_error_if_exists_raises_conflict_and_keeps_the_table(engine: DuckDBEngine) -> None:
    run_ok(people([[1, "ann"]], table="people"), engine)
    with pytest.raises(Conflict):
        write_directly(engine, people([[2, "bob"]], table="PEOPLE", mode="error_if_exists"))
    assert written(engine, table="people") == [(1, "ann")]


def test_error_if_exists_raises_conflict_and_keeps_the_file(engine: DuckDBEngine) -> None:
    run_ok(people([[1, "ann"]], format="json", path="people.json"), engine)
    with pytest.raises(Conflict):
        write_directly(
            engine, people([[2, "bob"]], format="json", path="people.json", mode="error_if_exists")
        )
    assert written(engine, format="json", path="people.json") == [(1, "ann")]


def test_error_if_exists_writes_a_new_table(engine: DuckDBEngine) -> None:
    run_ok(people([[1, "ann"]], table="people", mode="error_if_exists"), engine)
    assert written(engine, table="people") == [(1, "ann")]


def test_error_if_exists_fails_the_run_naming_the_target(engine: DuckDBEngine) -> None:
    run_ok(people([[1, "ann"]], table="people"), engine)
    result = run_pipeline(people([[2, "bob"]], table="people", mode="error_if_exists"), engine)
    assert (result.status, result.gem("out").status) == ("failed", "failed")
    assert result.error is not None
    assert "'out'" in result.error
    assert "already exists" in result.error


def test_merge_updates_matching_keys_and_inserts_new_ones(engine: DuckDBEngine) -> None:
    run_ok(people([[1, "ann"], [2, "bob"]], table="people"), engine)
    run_ok(people([[2, "BOB"], [3, "cy"]], table="people", mode="merge", keys=["id"]), engine)
    assert written(engine, table="people") == [(1, "ann"), (2, "BOB"), (3, "cy")]


def test_merge_on_multi_column_keys(engine: DuckDBEngine) -> None:
    columns = [("region", "VARCHAR"), ("day", "DATE"), ("amount", "INTEGER")]
    old = [["eu", "2024-01-01", 1], ["eu", "2024-01-02", 2], ["us", "2024-01-01", 3]]
    new = [["eu", "2024-01-02", 20], ["us", "2024-01-02", 40]]
    run_ok(chain(seed("new", columns, old), gem("out", "Target", table="sales")), engine)
    run_ok(
        chain(
            seed("new", columns, new),
            gem("out", "Target", table="sales", mode="merge", keys=["region", "day"]),
        ),
        engine,
    )
    assert written(engine, table="sales") == [
        ("eu", dt.date(2024, 1, 1), 1),
        ("eu", dt.date(2024, 1, 2), 20),
        ("us", dt.date(2024, 1, 1), 3),
        ("us", dt.date(2024, 1, 2), 40),
    ]


def test_merge_creates_a_missing_table(engine: DuckDBEngine) -> None:
    run_ok(people([[1, "ann"]], table="people", mode="merge", keys=["id"]), engine)
    assert written(engine, table="people") == [(1, "ann")]


def test_merge_with_duplicate_keys_in_new_data_fails_and_keeps_the_table(
    engine: DuckDBEngine,
) -> None:
    run_ok(people([[1, "ann"], [2, "bob"]], table="people"), engine)
    duplicated = people([[2, "x"], [2, "y"], [3, "cy"]], table="people", mode="merge", keys=["id"])
    with pytest.raises(EngineError, match="not unique"):
        write_directly(engine, duplicated)
    assert written(engine, table="people") == [(1, "ann"), (2, "bob")]


def test_merge_with_duplicate_keys_fails_even_without_a_table(engine: DuckDBEngine) -> None:
    duplicated = people([[2, "x"], [2, "y"]], table="people", mode="merge", keys=["id"])
    with pytest.raises(EngineError, match="not unique"):
        write_directly(engine, duplicated)
    assert not engine.table_exists("people")


def test_merge_upserts_into_a_parquet_file(engine: DuckDBEngine) -> None:
    run_ok(people([[1, "ann"], [2, "bob"]], format="parquet", path="p.parquet"), engine)
    run_ok(
        people(
            [[2, "BOB"], [3, "cy"]], format="parquet", path="p.parquet", mode="merge", keys=["id"]
        ),
        engine,
    )
    assert written(engine, format="parquet", path="p.parquet") == [
        (1, "ann"),
        (2, "BOB"),
        (3, "cy"),
    ]


def test_merge_key_must_be_an_input_column(engine: DuckDBEngine) -> None:
    pipeline = people([[1, "ann"]], table="people", mode="merge", keys=["missing"])
    (issue,) = issues_of(pipeline, engine)
    assert (issue.code, issue.field) == ("unknown_column", "/gems/1/properties/keys/0")


def test_failed_write_leaves_no_staging_table(engine: DuckDBEngine) -> None:
    run_ok(people([[1, "ann"]], table="people"), engine)
    with pytest.raises(EngineError):
        write_directly(
            engine, people([[1, "a"], [1, "b"]], table="people", mode="merge", keys=["id"])
        )
    _, tables = engine.query(
        exp.select("table_name").from_(exp.Table(this=exp.Anonymous(this="duckdb_tables")))
    )
    assert tables == [("people",)]


def test_seed_rows_hold_structs_and_lists(engine: DuckDBEngine) -> None:
    pipeline = chain(
        seed(
            "people",
            [
                ("id", "INTEGER"),
                ("who", "STRUCT(name VARCHAR, tags VARCHAR[])"),
                ("xs", "INTEGER[]"),
            ],
            [
                [1, {"name": "ann", "tags": ["a", "b"]}, [1, 2]],
                [2, {"name": "bob", "tags": []}, []],
            ],
        ),
        gem("all", "Filter", condition="true"),
    )
    assert rows_of(pipeline, engine, "all") == [
        (1, {"name": "ann", "tags": ["a", "b"]}, [1, 2]),
        (2, {"name": "bob", "tags": []}, []),
    ]
