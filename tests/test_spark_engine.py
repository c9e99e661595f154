"""The Spark engine on real Spark: the shop's pipelines answer as on DuckDB; previews,
schemas without running, every write mode, failures that leave targets intact, cancelling,
data frames; a Spark Connect server and a standalone cluster reached through fabrics."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import sqlglot
import yaml
from sqlglot import exp

from prophecy_jupyter.automate.runner import run_pipeline
from prophecy_jupyter.compiler import compile_pipeline
from prophecy_jupyter.compiler.preview import preview_gem
from prophecy_jupyter.engines import DuckDBEngine, WriteSpec
from prophecy_jupyter.engines import spark as spark_engine_module
from prophecy_jupyter.engines.spark import (
    SparkEngine,
    SparkSQLEngine,
    open_spark,
    spark_session,
    spark_settings,
)
from prophecy_jupyter.errors import Conflict, EngineError
from prophecy_jupyter.fabrics import Fabric, open_engine
from prophecy_jupyter.gems.sources import TargetProps, file_reader, written_relation
from prophecy_jupyter.model import Project
from tests.spark_support import JVM_OPTIONS, free_port

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"
Result = tuple[list[str], list[tuple[Any, ...]]]

PIPELINES = ["customer_totals", "clean_contacts", "top_products", "channel_report"]
LIMITED = {"orphan_orders": "orphans", "units_long": "long_form"}
"""Targets that keep the first N rows of an unordered relation (any N rows of the gem
named are a right answer), by the gem whose full output they are a part of."""


def copy_shop(folder: Path) -> Project:
    shutil.copytree(
        SHOP,
        folder,
        ignore=shutil.ignore_patterns(".prophecy", "output", ".ipynb_checkpoints"),
        dirs_exist_ok=True,
    )
    return Project.open(folder)


def sql(text: str) -> exp.Query:
    """A query as the compiler builds them: DuckDB's SQL."""
    query = sqlglot.parse_one(text, read="duckdb")
    assert isinstance(query, exp.Query)
    return query


def huge_join(root: Path, select: str, where: str = "TRUE") -> exp.Query:
    """``select`` over 10¹⁵ rows: a Parquet file of 100,000 numbers joined to itself three
    times (quick to plan, endless to run)."""
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": pa.array(range(100_000), pa.int64())}), root / "n.parquet")
    joined = " CROSS JOIN ".join(f"read_parquet('n.parquet') AS {a}" for a in "abc")
    return sql(f"{select} FROM {joined} WHERE {where}")


# -- comparing results ---------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """A value both engines agree on: numbers as floats, dates as midnight timestamps,
    structs as sorted pairs, lists as tuples."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, dict):
        return tuple(sorted((str(k), canonical(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(canonical(v) for v in value)
    return value


def sort_key(row: tuple[Any, ...]) -> str:
    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return "nan" if math.isnan(value) else f"{value:.6g}"
        if isinstance(value, tuple):
            return tuple(rounded(v) for v in value)
        return value

    return repr(tuple(rounded(v) for v in row))


def close(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9) or (
            math.isnan(left) and math.isnan(right)
        )
    if isinstance(left, tuple) and isinstance(right, tuple):
        pairs = zip(left, right, strict=True)
        return len(left) == len(right) and all(close(a, b) for a, b in pairs)
    return bool(left == right)


def assert_same_rows(expected: Result, actual: Result, ordered: bool = False) -> None:
    """Same columns (by name; Spark orders JSON fields alphabetically) and the same rows,
    in any order unless ``ordered``, floats to 1e-9."""
    names, rows = expected
    other_names, other_rows = actual
    lowered = [n.lower() for n in other_names]
    assert sorted(lowered) == sorted(n.lower() for n in names)
    order = [lowered.index(n.lower()) for n in names]
    mine = [tuple(canonical(row[i]) for i in order) for row in other_rows]
    theirs = [tuple(canonical(v) for v in row) for row in rows]
    if not ordered:
        mine, theirs = sorted(mine, key=sort_key), sorted(theirs, key=sort_key)
    assert len(mine) == len(theirs), (len(mine), len(theirs))
    for got, want in zip(mine, theirs, strict=True):
        assert close(got, want), (got, want)


def assert_rows_among(some: Result, whole: Result) -> None:
    """Each row of ``some`` is one of ``whole``'s (columns matched by name)."""
    names, rows = whole
    lowered = [n.lower() for n in some[0]]
    order = [lowered.index(n.lower()) for n in names]
    candidates = [tuple(canonical(v) for v in row) for row in rows]
    for row in some[1]:
        mine = tuple(canonical(row[i]) for i in order)
        assert any(close(mine, other) for other in candidates), mine


def table_rows(engine: SparkSQLEngine, table: str) -> list[tuple[Any, ...]]:
    return sorted(engine.query(sql(f"SELECT * FROM {table}"))[1], key=repr)


def private_tables(engine: SparkEngine) -> list[str]:
    rows = engine.spark.sql("SHOW TABLES").collect()
    return [r.tableName for r in rows if r.tableName.startswith("__prophecy") and not r.isTemporary]


def run_on_both(
    project: Project, duckdb_project: Project, engine: SparkSQLEngine, name: str
) -> None:
    """Run a pipeline on Spark and on DuckDB, and compare what every Target wrote."""
    result = run_pipeline(project.load_pipeline(name), engine)
    assert result.status == "succeeded", result.error
    with DuckDBEngine(":memory:", root=duckdb_project.root) as duck:
        expected = run_pipeline(duckdb_project.load_pipeline(name), duck)
        assert expected.status == "succeeded", expected.error
        compiled = compile_pipeline(project.load_pipeline(name), duck)
        for target in compiled.targets():
            props: TargetProps = compiled.gems[target].props
            read_back = written_relation(props)
            names, rows = engine.query(read_back)
            if target in LIMITED:
                whole = duck.query(compiled.query(LIMITED[target]))
                assert len(rows) == len(duck.query(read_back)[1])
                assert_rows_among((names, rows), whole)
            else:
                assert_same_rows(duck.query(read_back), (names, rows))
            if props.format != "table":
                assert props.path is not None
                folder = project.root / props.path
                assert folder.is_dir(), f"{props.path} is a directory of part files on Spark"
                assert list(folder.glob(f"part-*.{props.format}")), list(folder.iterdir())


# -- the example project ---------------------------------------------------------------------


@pytest.mark.parametrize("name", PIPELINES)
def test_example_pipeline_matches_duckdb(
    name: str, spark_engine: SparkEngine, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project = copy_shop(tmp_path)
    reference = copy_shop(tmp_path_factory.mktemp("duckdb") / "shop")
    run_on_both(project, reference, spark_engine, name)
    assert private_tables(spark_engine) == []
    leftovers = (
        [p.name for p in (tmp_path / "output").glob(".*")] if (tmp_path / "output").exists() else []
    )
    assert leftovers == []


def test_staged_run_counts_every_gem(spark_engine: SparkEngine, tmp_path: Path) -> None:
    project = copy_shop(tmp_path)
    pipeline = project.load_pipeline("customer_totals")
    result = run_pipeline(pipeline, spark_engine, mode="staged")
    assert result.status == "succeeded", result.error
    with DuckDBEngine(":memory:", root=project.root) as duck:
        expected = run_pipeline(pipeline, duck, mode="staged")
    assert {g.gem_id: g.rows for g in result.gems} == {g.gem_id: g.rows for g in expected.gems}
    views = [t.name for t in spark_engine.spark.catalog.listTables() if t.isTemporary]
    assert not [v for v in views if v.startswith("__prophecy_gem")]


def test_compile_types_columns_with_spark_types(spark_engine: SparkEngine, tmp_path: Path) -> None:
    project = copy_shop(tmp_path)
    compiled = compile_pipeline(project.load_pipeline("top_products"), spark_engine)
    assert compiled.issues == []
    assert [(c.name, c.type) for c in compiled.columns("orders")] == [
        ("order_id", "int"),
        ("customer_id", "int"),
        ("product_id", "int"),
        ("quantity", "int"),
        ("channel", "string"),
        ("order_date", "date"),
        ("status", "string"),
    ]
    assert [(c.name, c.type) for c in compiled.columns("rank_in_category")] == [
        ("category", "string"),
        ("product", "string"),
        ("units", "bigint"),
        ("revenue", "double"),
        ("rank", "int"),
    ]


def test_preview_of_a_gem(spark_engine: SparkEngine, tmp_path: Path) -> None:
    project = copy_shop(tmp_path)
    pipeline = project.load_pipeline("customer_totals")
    compiled = compile_pipeline(pipeline, spark_engine)
    assert compiled.issues == []
    preview = preview_gem(compiled, spark_engine, "ranked", 5)
    assert preview.truncated
    assert preview.columns == [
        ("customer_id", "int"),
        ("name", "string"),
        ("region", "string"),
        ("orders", "bigint"),
        ("total", "double"),
    ]
    json.dumps(preview.to_dict(), allow_nan=False)
    with DuckDBEngine(":memory:", root=project.root) as duck:
        expected = preview_gem(compile_pipeline(pipeline, duck), duck, "ranked", 5)
    names = [n for n, _ in preview.columns]
    assert_same_rows((names, expected.rows), (names, preview.rows), ordered=True)
    # A join's preview first runs over a sample of its sources.
    joined = preview_gem(compiled, spark_engine, "with_customer", 3)
    assert len(joined.rows) == 3 and joined.columns[0][0] == "customer_id"


def test_describe_reads_no_data(
    spark_engine: SparkEngine, spark: SparkSession, tmp_path: Path
) -> None:
    huge = huge_join(tmp_path, "SELECT count(*) AS n, sum(a.x * b.x) AS s, max(c.x) AS m")
    # Making the file's view reads its footer (a Spark job); describing a query over it not.
    spark_engine.describe(sql("SELECT * FROM read_parquet('n.parquet')"))
    tracker = spark.sparkContext.statusTracker()
    jobs = len(tracker.getJobIdsForGroup(None))
    started = time.perf_counter()
    assert spark_engine.describe(huge) == [("n", "bigint"), ("s", "bigint"), ("m", "bigint")]
    assert time.perf_counter() - started < 5
    assert len(tracker.getJobIdsForGroup(None)) == jobs


def test_describe_of_a_file_source(spark_engine: SparkEngine, tmp_path: Path) -> None:
    copy_shop(tmp_path)
    query = exp.select(exp.Star()).from_(file_reader("csv", "data/customers.csv"))
    described = spark_engine.describe(query)
    assert described == [
        ("customer_id", "int"),
        ("name", "string"),
        ("email", "string"),
        ("region", "string"),
        ("signup_date", "date"),
    ]
    # The file changes: the schema is read again.
    (tmp_path / "data" / "customers.csv").write_text("customer_id,name\n1,Ann\n")
    assert spark_engine.describe(query) == [("customer_id", "int"), ("name", "string")]
    assert spark_engine.query(query)[1] == [(1, "Ann")]


# -- writing tables --------------------------------------------------------------------------


def values(*rows: tuple[int, str]) -> exp.Query:
    listed = ", ".join(f"({k}, '{v}')" for k, v in rows)
    return sql(f"SELECT * FROM (VALUES {listed}) AS t(id, v)")


def table_spec(mode: str) -> WriteSpec:
    return WriteSpec(format="table", mode=mode, table="items", keys=["id"])  # type: ignore[arg-type]


def test_table_write_modes(spark_engine: SparkEngine) -> None:
    engine = spark_engine
    assert not engine.table_exists("items")
    assert engine.write(values((1, "a"), (2, "b")), table_spec("error_if_exists")) == 2
    assert engine.table_exists("items") and engine.table_exists("ITEMS")
    assert engine.table_exists(f"{engine.database}.items")
    with pytest.raises(Conflict):
        engine.write(values((9, "z")), table_spec("error_if_exists"))

    assert engine.write(values((2, "B"), (3, "c")), table_spec("append")) == 2
    assert table_rows(engine, "items") == [(1, "a"), (2, "B"), (2, "b"), (3, "c")]

    assert engine.write(values((2, "B"), (3, "c")), table_spec("overwrite")) == 2
    assert table_rows(engine, "items") == [(2, "B"), (3, "c")]

    assert engine.write(values((3, "C"), (4, "d")), table_spec("merge")) == 2
    assert table_rows(engine, "items") == [(2, "B"), (3, "C"), (4, "d")]

    with pytest.raises(EngineError, match="not unique"):
        engine.write(values((4, "x"), (4, "y")), table_spec("merge"))
    assert table_rows(engine, "items") == [(2, "B"), (3, "C"), (4, "d")]

    fresh = WriteSpec(format="table", mode="merge", table="fresh", keys=["id"])
    assert engine.write(values((1, "a")), fresh) == 1
    assert table_rows(engine, "fresh") == [(1, "a")]
    assert private_tables(engine) == []


def test_a_failing_write_leaves_the_old_table(spark_engine: SparkEngine) -> None:
    engine = spark_engine
    engine.write(values((1, "a"), (2, "b")), table_spec("overwrite"))
    engine.write(
        values((1, "1"), (2, "x")), WriteSpec(format="table", mode="overwrite", table="raw")
    )
    failing = sql("SELECT CAST(v AS INT) AS id, v FROM raw")  # 'x' is not an INT
    for mode in ("overwrite", "append", "merge"):
        with pytest.raises(EngineError) as caught:
            engine.write(failing, table_spec(mode))
        assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)
        assert "CAST_INVALID_INPUT" in str(caught.value)
        assert table_rows(engine, "items") == [(1, "a"), (2, "b")]
    assert private_tables(engine) == []


# -- writing files ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_file_target_is_a_directory_written_whole(
    fmt: str, spark_engine: SparkEngine, tmp_path: Path
) -> None:
    engine = spark_engine
    path = f"out/items.{fmt}"

    def spec(mode: str) -> WriteSpec:
        return WriteSpec(format=fmt, mode=mode, path=path, keys=["id"])  # type: ignore[arg-type]

    def written() -> list[tuple[Any, ...]]:
        read_back = written_relation(TargetProps(format=fmt, path=path))
        return sorted(engine.query(read_back)[1], key=repr)

    assert engine.write(values((1, "a"), (2, "b")), spec("error_if_exists")) == 2
    folder = tmp_path / "out" / f"items.{fmt}"
    assert folder.is_dir() and list(folder.glob(f"part-*.{fmt}"))
    assert written() == [(1, "a"), (2, "b")]
    with pytest.raises(Conflict):
        engine.write(values((3, "c")), spec("error_if_exists"))

    assert engine.write(values((2, "B"), (3, "c")), spec("append")) == 2
    assert written() == [(1, "a"), (2, "B"), (2, "b"), (3, "c")]
    assert engine.write(values((1, "A")), spec("overwrite")) == 1
    assert written() == [(1, "A")]
    assert engine.write(values((1, "a"), (5, "e")), spec("merge")) == 2
    assert written() == [(1, "a"), (5, "e")]

    with pytest.raises(EngineError):
        engine.write(
            sql("SELECT CAST(v AS INT) AS id, v FROM (VALUES ('x')) AS t(v)"), spec("overwrite")
        )
    assert written() == [(1, "a"), (5, "e")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"items.{fmt}"]
    assert private_tables(engine) == []


def test_a_single_file_is_replaced_by_a_directory(
    spark_engine: SparkEngine, tmp_path: Path
) -> None:
    """A file DuckDB wrote is read by Spark, and an append turns it into a directory."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "items.csv").write_text('id,v\n1,"say ""hi"", please"\n')
    spec = WriteSpec(format="csv", mode="append", path="out/items.csv")
    assert spark_engine.write(values((2, "b")), spec) == 1
    assert (tmp_path / "out" / "items.csv").is_dir()
    read_back = written_relation(TargetProps(format="csv", path="out/items.csv"))
    assert sorted(spark_engine.query(read_back)[1]) == [(1, 'say "hi", please'), (2, "b")]
    with DuckDBEngine(":memory:", root=tmp_path) as duck:
        folder = exp.select(exp.Star()).from_(file_reader("csv", "out/items.csv/part-*.csv"))
        assert sorted(duck.query(folder)[1]) == [(1, 'say "hi", please'), (2, "b")]


# -- session-private relations, frames -------------------------------------------------------


def test_materialize_frames_and_fetch(spark_engine: SparkEngine) -> None:
    engine = spark_engine
    assert engine.materialize("__prophecy_gem_t_0", values((1, "a"), (2, "b"))) == 2
    stored = sql('SELECT * FROM "__prophecy_gem_t_0"')
    assert table_rows(engine, '"__prophecy_gem_t_0"') == [(1, "a"), (2, "b")]
    engine.drop_materialized("__prophecy_gem_t_0")
    with pytest.raises(EngineError, match="TABLE_OR_VIEW_NOT_FOUND"):
        engine.query(stored)

    frame = pd.DataFrame({"id": [1, 2], "target": [10.5, None]})
    joined = sql(
        "SELECT t.id, t.v, f.target FROM (VALUES (1, 'a'), (2, 'b')) AS t(id, v) JOIN f USING (id)"
    )
    for given in (frame, pl.from_pandas(frame), pa.Table.from_pandas(frame)):
        engine.register_frame("f", given)
        assert sorted(engine.query(joined)[1]) == [(1, "a", 10.5), (2, "b", None)]
        engine.unregister_frame("f")

    arrow = engine.fetch(values((1, "a")), "arrow")
    assert isinstance(arrow, pa.Table) and arrow.to_pylist() == [{"id": 1, "v": "a"}]
    assert engine.fetch(values((1, "a")), "pandas").to_dict("records") == [{"id": 1, "v": "a"}]
    assert engine.fetch(values((1, "a")), "polars").to_dicts() == [{"id": 1, "v": "a"}]


def test_frames_and_fetch_through_sql_text_only(spark_engine: SparkEngine) -> None:
    """The base class's frames (inlined VALUES) and fetch (rows to Arrow), used by engines
    that reach Spark only through SQL text."""
    frame = pa.table(
        {
            "n": pa.array([1, None], pa.int64()),
            "x": [1.5, float("nan")],
            "s": ["it's", None],
            "b": [True, False],
            "d": [date(2024, 1, 2), None],
            "ts": pa.array([datetime(2024, 1, 2, 3, 4, 5), None], pa.timestamp("us")),
            "money": pa.array([Decimal("12.34"), Decimal("-0.01")], pa.decimal128(10, 2)),
        }
    )
    SparkSQLEngine.register_frame(spark_engine, "inline", frame)
    query = sql('SELECT * FROM "inline"')
    assert spark_engine.describe(query) == [
        ("n", "bigint"),
        ("x", "double"),
        ("s", "string"),
        ("b", "boolean"),
        ("d", "date"),
        ("ts", "timestamp_ntz"),
        ("money", "decimal(10,2)"),
    ]
    fetched = SparkSQLEngine.fetch(spark_engine, query, "arrow")
    assert fetched.schema == frame.schema
    rows = fetched.to_pylist()
    assert math.isnan(rows[1].pop("x")) and rows[0] == frame.to_pylist()[0]
    assert rows[1] == {k: v for k, v in frame.to_pylist()[1].items() if k != "x"}
    spark_engine.unregister_frame("inline")
    SparkSQLEngine.register_frame(spark_engine, "empty", frame.slice(0, 0))
    assert spark_engine.query(sql('SELECT * FROM "empty"')) == (frame.column_names, [])


# -- errors, sessions, cancelling ------------------------------------------------------------


def test_errors_are_one_line(spark_engine: SparkEngine, capfd: pytest.CaptureFixture[str]) -> None:
    for bad, code in [
        ("SELECT nosuch FROM (VALUES (1)) AS t(x)", "UNRESOLVED_COLUMN"),
        ("SELECT * FROM missing_table", "TABLE_OR_VIEW_NOT_FOUND"),
        ("SELECT CAST(x AS INT) FROM (VALUES ('1'), ('one')) AS t(x)", "CAST_INVALID_INPUT"),
    ]:
        with pytest.raises(EngineError) as caught:
            spark_engine.query(sql(bad))
        message = str(caught.value)
        assert message.startswith(f"[{code}") and "\n" not in message
        assert "SQLSTATE" not in message and "Traceback" not in message
    with pytest.raises(EngineError, match="PATH_NOT_FOUND"):
        spark_engine.describe(exp.select(exp.Star()).from_(file_reader("csv", "nowhere.csv")))
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "QueryContextLogger" not in captured.err


def test_cancel_stops_only_its_session(spark_engine: SparkEngine, tmp_path: Path) -> None:
    session = spark_engine.session()
    assert session is not spark_engine
    endless = huge_join(tmp_path, "SELECT count(*) AS n", "a.x + b.x + c.x = 17")
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            session.query(endless)
            outcome.append(None)
        except EngineError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(1.0)
    started = time.perf_counter()
    session.cancel()
    thread.join(30)
    if thread.is_alive():  # not cancelled: stop it, so that the test process can end
        spark_engine.spark.sparkContext.cancelAllJobs()
        thread.join(30)
        pytest.fail("the statement was not cancelled")
    assert time.perf_counter() - started < 15
    assert [str(e) for e in outcome] == ["cancelled"]
    with pytest.raises(EngineError, match="cancelled"):
        session.query(sql("SELECT 1"))
    session.close()
    assert spark_engine.query(sql("SELECT 1 AS one")) == (["one"], [(1,)])


def test_sessions_share_views_and_close_leaves_the_spark_session(
    spark: SparkSession, tmp_path: Path
) -> None:
    engine = SparkEngine(spark, root=tmp_path)
    engine.materialize("__prophecy_gem_s_0", values((1, "a")))
    with engine.session() as session:
        assert table_rows(session, '"__prophecy_gem_s_0"') == [(1, "a")]
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.query(sql("SELECT 1"))
    assert spark.sql("SELECT 1 AS x").collect()[0].x == 1
    assert "__prophecy_gem_s_0" not in [t.name for t in engine.spark.catalog.listTables()]


# -- fabrics ---------------------------------------------------------------------------------


def test_local_fabric_opens_one_shared_session(spark: SparkSession, tmp_path: Path) -> None:
    project = copy_shop(tmp_path)
    fabric = Fabric(
        name="local",
        kind="spark",
        options={"master": "local[2]", "database": "fabric_db", "spark.sql.shuffle.partitions": 3},
    )
    engine = open_engine(fabric, project)
    other = open_engine(fabric, project)
    try:
        assert isinstance(engine, SparkEngine) and engine.root == project.root
        assert engine.dialect == "spark" and engine.database == "fabric_db"
        settings = spark_settings(fabric, {}, project)
        assert spark_session(settings) is spark_session(settings)
        assert isinstance(other, SparkEngine)
        assert other.spark is not engine.spark  # its own views and settings…
        assert other.spark.sparkContext is spark.sparkContext  # …on the process's Spark
        assert engine.query(sql("SELECT current_database() AS db"))[1] == [("fabric_db",)]
        # The fabric's settings apply to the engine's session, not to the running one's.
        assert engine.spark.conf.get("spark.sql.shuffle.partitions") == "3"
        assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
        conf = dict(settings.conf)
        assert conf["spark.ui.enabled"] == "false"
        assert conf["spark.sql.catalogImplementation"] == "hive"
        assert conf["spark.sql.warehouse.dir"] == str(project.root / ".prophecy/spark/warehouse")
        assert spark_engine_module.JVM_OPTIONS in conf["spark.driver.extraJavaOptions"]
    finally:
        engine.close()
        other.close()


@pytest.mark.parametrize(
    ("options", "secrets", "message"),
    [
        ({"master": "local[1]", "colour": "blue"}, {}, "unknown option 'colour'"),
        ({"master": "local[1]", "remote": "sc://h:1"}, {}, "either master or remote"),
        ({"remote": "http://h:1"}, {}, "sc://host:port"),
        ({"master": "nowhere"}, {}, "unknown master URL"),
        ({"catalog": "glue"}, {}, "hive or in-memory"),
        ({}, {"password": "x"}, "unknown secret 'password'"),
    ],
)
def test_fabric_options_are_checked(
    options: dict[str, Any], secrets: dict[str, str], message: str
) -> None:
    fabric = Fabric(name="bad", kind="spark", options=options)
    with pytest.raises(EngineError, match=message):
        open_spark(fabric, secrets, None)


@pytest.fixture
def connect_server(spark: SparkSession) -> Iterator[int]:
    """A Spark Connect server in the test process's own JVM (it starts in milliseconds),
    requiring the token ``s3cret-token``; its port."""
    port = free_port()
    context: Any = spark.sparkContext._jsc.sc()
    conf = context.conf()
    conf.set("spark.connect.grpc.binding.address", "127.0.0.1")
    conf.set("spark.connect.grpc.binding.port", str(port))
    conf.set("spark.connect.authenticate.token", "s3cret-token")
    service = spark.sparkContext._jvm.org.apache.spark.sql.connect.service.SparkConnectService  # type: ignore[union-attr]
    service.start(context)
    try:
        yield port
    finally:
        none = spark.sparkContext._jvm.scala.Option.empty()  # type: ignore[union-attr]
        service.stop(none, none)


def test_spark_connect_fabric(
    connect_server: int, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    project = copy_shop(tmp_path)
    reference = copy_shop(tmp_path_factory.mktemp("duckdb") / "shop")
    fabric = Fabric(
        name="connect",
        kind="spark",
        options={"remote": f"sc://localhost:{connect_server}", "database": "connect_db"},
        secrets=["token"],
    )
    with pytest.raises(EngineError) as caught:
        open_spark(fabric, {"token": "not-the-token"}, project)
    assert "not-the-token" not in str(caught.value) and "\n" not in str(caught.value)
    engine = open_spark(fabric, {"token": "s3cret-token"}, project)
    try:
        assert engine.remote
        run_on_both(project, reference, engine, "top_products")
        preview = engine.preview(sql("SELECT 1 AS one"), 10)
        assert preview.rows == [(1,)] and not preview.truncated
    finally:
        engine.close()


def test_unreachable_connect_server_fails_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spark_engine_module, "CONNECT_RETRIES", 1)
    fabric = Fabric(name="gone", kind="spark", options={"remote": f"sc://127.0.0.1:{free_port()}"})
    started = time.perf_counter()
    with pytest.raises(EngineError, match="unavailable"):
        open_spark(fabric, {}, None)
    assert time.perf_counter() - started < 10


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@pytest.fixture
def standalone_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A standalone Spark master with one worker (one core) on 127.0.0.1; its URL."""
    folder = tmp_path_factory.mktemp("cluster")
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_DAEMON_JAVA_OPTS": JVM_OPTIONS,
        "SPARK_LOG_DIR": str(folder),
    }
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    spark_class = str(spark_home() / "bin" / "spark-class")
    logs = [open(folder / f"{n}.log", "w") for n in ("master", "worker")]  # noqa: SIM115
    master = subprocess.Popen(
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
         "--port", str(port), "--webui-port", str(free_port())],
        env=env, stdout=logs[0], stderr=subprocess.STDOUT,
    )  # fmt: skip
    worker = subprocess.Popen(
        [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
         "--cores", "1", "--memory", "1g", "--webui-port", str(free_port()),
         "--work-dir", str(folder / "work")],
        env=env, stdout=logs[1], stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "Successfully registered with master" not in (folder / "worker.log").read_text():
            assert time.monotonic() < deadline, (folder / "worker.log").read_text()[-2000:]
            assert worker.poll() is None and master.poll() is None
            time.sleep(0.2)
        yield url
    finally:
        for process in (worker, master):
            process.terminate()
        for process in (worker, master):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def test_standalone_cluster_fabric(
    standalone_cluster: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A pipeline run on the project's default fabric, a standalone cluster, in a process of
    its own (a process has one SparkContext); its table goes to the project's own Hive
    metastore and warehouse under ``.prophecy/spark``."""
    copy_shop(tmp_path)
    reference = copy_shop(tmp_path_factory.mktemp("duckdb") / "shop")
    (tmp_path / "fabrics").mkdir()
    fabric = {
        "kind": "spark",
        "options": {
            "master": standalone_cluster,
            "spark.executor.memory": "512m",
            "spark.cores.max": 1,
            "spark.sql.shuffle.partitions": 2,
            "spark.driver.extraJavaOptions": JVM_OPTIONS,
            "spark.executor.extraJavaOptions": JVM_OPTIONS,
        },
    }
    (tmp_path / "fabrics" / "cluster.yml").write_text(yaml.safe_dump(fabric))
    config = yaml.safe_load((tmp_path / "prophecy_project.yml").read_text())
    (tmp_path / "prophecy_project.yml").write_text(
        yaml.safe_dump({**config, "default_fabric": "cluster"})
    )
    script = (
        "import json, sys\n"
        "from prophecy_jupyter.automate.runner import run_pipeline\n"
        "from prophecy_jupyter.fabrics import FabricStore\n"
        "from prophecy_jupyter.model import Project\n"
        "project = Project.open(sys.argv[1])\n"
        "with FabricStore(project).engine() as engine:\n"
        "    result = run_pipeline(project.load_pipeline('customer_totals'), engine)\n"
        "    names, rows = engine.query(__import__('sqlglot').parse_one("
        "'SELECT * FROM customer_totals'))\n"
        "    print(json.dumps({'status': result.status, 'error': result.error,"
        " 'master': engine.spark.sparkContext.master, 'names': names,"
        " 'rows': [list(r) for r in rows]}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == "succeeded", answer["error"]
    assert answer["master"] == standalone_cluster
    assert (tmp_path / ".prophecy" / "spark" / "metastore_db").is_dir()
    with DuckDBEngine(":memory:", root=reference.root) as duck:
        run_pipeline(reference.load_pipeline("customer_totals"), duck)
        expected = duck.query(sql("SELECT * FROM customer_totals"))
    assert_same_rows(expected, (answer["names"], [tuple(r) for r in answer["rows"]]))
