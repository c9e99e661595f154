"""Running pipelines: fused and staged modes, target order, failures, the project database."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp

from prophecy_jupyter.automate.runner import GemRun, RunMode, run_pipeline
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.errors import EngineError, ValidationError
from prophecy_jupyter.gems.sources import TargetProps, written_relation
from prophecy_jupyter.model import Pipeline
from tests.conftest import chain, gem, make_pipeline, seed

MODES: list[RunMode] = ["fused", "staged"]

CUSTOMERS = seed(
    "customers",
    [("id", "INTEGER"), ("country", "VARCHAR")],
    [[1, "fr"], [2, "de"], [3, "fr"], [4, None]],
)
ORDERS = seed(
    "orders",
    [("order_id", "INTEGER"), ("customer_id", "INTEGER"), ("amount", "DECIMAL(8,2)")],
    [[10, 1, "5.00"], [11, 1, "7.50"], [12, 2, "1.25"], [13, 3, "2.00"], [14, 9, "4.00"]],
)


def sales_pipeline() -> Pipeline:
    """Orders joined to customers, totalled per country into a table and a parquet file."""
    return make_pipeline(
        [
            CUSTOMERS,
            ORDERS,
            gem("big", "Filter", condition="amount > 1.5"),
            gem("joined", "Join", joins=[{"condition": "big.customer_id = customers.id"}]),
            gem(
                "by_country",
                "Aggregate",
                group_by=[{"expression": "country"}],
                aggregates=[
                    {"name": "orders", "expression": "count(*)"},
                    {"name": "total", "expression": "sum(amount)"},
                ],
            ),
            gem("to_table", "Target", table="country_totals"),
            gem("to_file", "Target", format="parquet", path="out/orders.parquet"),
        ],
        [
            ("orders", "big"),
            ("big", "joined", "in0"),
            ("customers", "joined", "in1"),
            ("joined", "by_country"),
            ("by_country", "to_table"),
            ("big", "to_file"),
        ],
    )


def contents(engine: DuckDBEngine, **target: Any) -> list[tuple[Any, ...]]:
    _, rows = engine.query(written_relation(TargetProps.model_validate(target)))
    return sorted(rows, key=str)


def succeeded(pipeline: Pipeline, engine: DuckDBEngine, mode: RunMode = "fused") -> None:
    result = run_pipeline(pipeline, engine, mode=mode)
    assert result.status == "succeeded", result.error


def table_names(engine: DuckDBEngine, *, temporary: bool = False) -> list[str]:
    tables = exp.Table(this=exp.Anonymous(this="duckdb_tables"))
    query = exp.select("table_name").from_(tables).where(exp.column("temporary").is_(temporary))
    return sorted(r[0] for r in engine.query(query)[1])


# -- modes ----------------------------------------------------------------------------------


def test_fused_and_staged_runs_write_the_same_contents(tmp_path: Path) -> None:
    written: dict[str, tuple[list[Any], list[Any]]] = {}
    for mode in MODES:
        with DuckDBEngine(":memory:", root=tmp_path / mode) as engine:
            succeeded(sales_pipeline(), engine, mode)
            written[mode] = (
                contents(engine, table="country_totals"),
                contents(engine, format="parquet", path="out/orders.parquet"),
            )
    assert written["fused"] == written["staged"]
    assert written["fused"][0] == [("fr", 3, Decimal("14.50"))]


def test_run_writes_the_expected_rows(engine: DuckDBEngine) -> None:
    succeeded(sales_pipeline(), engine)
    assert contents(engine, table="country_totals") == [("fr", 3, Decimal("14.50"))]
    assert [r[0] for r in contents(engine, format="parquet", path="out/orders.parquet")] == [
        10,
        11,
        13,
        14,
    ]


def test_staged_run_reports_rows_of_every_gem(engine: DuckDBEngine) -> None:
    result = run_pipeline(sales_pipeline(), engine, mode="staged")
    assert {g.gem_id: g.rows for g in result.gems} == {
        "customers": 4,
        "orders": 5,
        "big": 4,
        "joined": 3,
        "by_country": 1,
        "to_table": 1,
        "to_file": 4,
    }
    assert all(g.status == "succeeded" and g.seconds is not None for g in result.gems)


def test_fused_run_reports_rows_of_every_target(engine: DuckDBEngine) -> None:
    result = run_pipeline(sales_pipeline(), engine)
    assert (result.gem("to_table").rows, result.gem("to_file").rows) == (1, 4)
    assert result.gem("to_table").seconds is not None
    assert {g.status for g in result.gems} == {"succeeded"}


def test_staged_run_leaves_no_temporary_tables(engine: DuckDBEngine) -> None:
    succeeded(sales_pipeline(), engine, "staged")
    assert table_names(engine, temporary=True) == []
    assert table_names(engine) == ["country_totals"]


def test_progress_is_reported_as_each_gem_runs(engine: DuckDBEngine) -> None:
    seen: list[tuple[str, str]] = []

    def record(run: GemRun) -> None:
        seen.append((run.gem_id, run.status))

    run_pipeline(sales_pipeline(), engine, mode="staged", on_progress=record)
    pairs = [(seen[i], seen[i + 1]) for i in range(0, len(seen), 2)]
    assert all(a == (b[0], "running") and b[1] == "succeeded" for a, b in pairs)
    assert sorted(done[0] for _, done in pairs) == sorted(g.id for g in sales_pipeline().gems)


@pytest.mark.parametrize("mode", MODES)
def test_gem_named_like_the_table_its_target_writes(engine: DuckDBEngine, mode: RunMode) -> None:
    engine.connection.execute("CREATE TABLE orders AS SELECT 1 AS order_id")
    succeeded(chain(ORDERS, gem("out", "Target", table="orders")), engine, mode)
    assert [r[0] for r in contents(engine, table="orders")] == [10, 11, 12, 13, 14]


@pytest.mark.parametrize("mode", MODES)
def test_parameters_reach_the_run(engine: DuckDBEngine, mode: RunMode) -> None:
    pipeline = make_pipeline(
        [ORDERS, gem("f", "Filter", condition="amount >= $min"), gem("out", "Target", table="t")],
        [("orders", "f"), ("f", "out")],
        parameters=[{"name": "min", "type": "double", "default": 0}],
    )
    result = run_pipeline(pipeline, engine, {"min": 4.5}, mode=mode)
    assert result.gem("out").rows == 2


def test_invalid_pipeline_raises_before_writing(engine: DuckDBEngine) -> None:
    pipeline = chain(
        ORDERS, gem("f", "Filter", condition="nope > 1"), gem("out", "Target", table="t")
    )
    with pytest.raises(ValidationError):
        run_pipeline(pipeline, engine)
    assert table_names(engine) == []


# -- target order ---------------------------------------------------------------------------


def reader_first_pipeline() -> Pipeline:
    """A Target copying table ``fresh`` listed before the Target that writes ``fresh``."""
    return make_pipeline(
        [
            gem("stored", "Source", format="table", table="fresh"),
            gem("copy", "Target", table="copied"),
            seed("new_rows", [("n", "INTEGER")], [[1], [2]]),
            gem("write", "Target", table="fresh"),
        ],
        [("stored", "copy"), ("new_rows", "write")],
    )


@pytest.mark.parametrize("mode", MODES)
def test_target_writing_a_table_runs_before_one_reading_it(
    engine: DuckDBEngine, mode: RunMode
) -> None:
    engine.connection.execute("CREATE TABLE fresh AS SELECT 99 AS n")
    started: list[str] = []
    result = run_pipeline(
        reader_first_pipeline(),
        engine,
        mode=mode,
        on_progress=lambda run: started.append(run.gem_id) if run.status == "running" else None,
    )
    assert result.status == "succeeded", result.error
    assert contents(engine, table="copied") == [(1,), (2,)]
    assert started.index("write") < started.index("copy")


@pytest.mark.parametrize("mode", MODES)
def test_table_written_earlier_in_the_run_may_not_exist_yet(
    engine: DuckDBEngine, mode: RunMode
) -> None:
    succeeded(reader_first_pipeline(), engine, mode)
    assert contents(engine, table="copied") == [(1,), (2,)]


def test_schema_qualified_reader_waits_for_the_writer(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [
            gem("stored", "Source", format="table", table="MAIN.Fresh"),
            gem("copy", "Target", table="copied"),
            seed("fresh", [("n", "INTEGER")], [[3]]),
            gem("write", "Target", table="fresh"),
        ],
        [("stored", "copy"), ("fresh", "write")],
    )
    succeeded(pipeline, engine, "staged")
    assert contents(engine, table="copied") == [(3,)]


def test_source_that_feeds_its_own_writer_reads_the_old_table(engine: DuckDBEngine) -> None:
    engine.connection.execute("CREATE TABLE counter AS SELECT 1 AS n")
    pipeline = chain(
        gem("current", "Source", format="table", table="counter"),
        gem("next", "Reformat", columns=[{"name": "n", "expression": "n + 1"}]),
        gem("out", "Target", table="counter"),
    )
    succeeded(pipeline, engine)
    succeeded(pipeline, engine, "staged")
    assert contents(engine, table="counter") == [(3,)]


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_failing_target_fails_the_run_and_skips_the_rest(
    engine: DuckDBEngine, mode: RunMode
) -> None:
    engine.connection.execute("CREATE TABLE taken AS SELECT 1 AS order_id")
    pipeline = make_pipeline(
        [
            ORDERS,
            gem("first", "Target", table="first_copy"),
            gem("clash", "Target", table="taken", mode="error_if_exists"),
            gem("picked", "Filter", condition="amount > 2"),
            gem("last", "Target", table="last_copy"),
        ],
        [("orders", "first"), ("orders", "clash"), ("orders", "picked"), ("picked", "last")],
    )
    result = run_pipeline(pipeline, engine, mode=mode)
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.startswith("gem 'clash': ")
    assert result.gem("clash").status == "failed"
    assert result.gem("clash").error == result.error.removeprefix("gem 'clash': ")
    assert (result.gem("first").status, result.gem("last").status) == ("succeeded", "skipped")
    assert table_names(engine) == ["first_copy", "taken"]
    assert (result.gem("orders").status, result.gem("picked").status) == ("succeeded", "skipped")


def test_file_target_that_cannot_be_written_fails_the_run(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    (tmp_path / "blocker").write_text("a file where the target wants a folder")
    pipeline = chain(ORDERS, gem("out", "Target", format="csv", path="blocker/orders.csv"))
    result = run_pipeline(pipeline, engine)
    assert (result.status, result.gem("out").status) == ("failed", "failed")
    assert result.error == "gem 'out': cannot write blocker/orders.csv: File exists"


# -- the project database -------------------------------------------------------------------


def test_database_file_keeps_targets_between_engines(tmp_path: Path) -> None:
    database = str(tmp_path / ".prophecy" / "warehouse.duckdb")
    with DuckDBEngine(database, root=tmp_path) as engine:
        succeeded(sales_pipeline(), engine)
    with DuckDBEngine(database, root=tmp_path) as engine:
        assert contents(engine, table="country_totals") == [("fr", 3, Decimal("14.50"))]
        reread = chain(
            gem("totals", "Source", format="table", table="country_totals"),
            gem("out", "Target", table="again"),
        )
        succeeded(reread, engine)
        assert contents(engine, table="again") == [("fr", 3, Decimal("14.50"))]


def test_database_locked_by_another_process_is_a_clear_engine_error(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            "print('ready', flush=True); sys.stdin.read()",
            str(database),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        waiting = DuckDBEngine(str(database), root=tmp_path, lock_wait=0.5)
        with pytest.raises(EngineError, match="in use by another process") as raised:
            table_names(waiting)
        assert str(database) in str(raised.value)
        assert f"(PID {holder.pid})" in str(raised.value)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    with DuckDBEngine(str(database), root=tmp_path) as engine:
        assert table_names(engine) == []
