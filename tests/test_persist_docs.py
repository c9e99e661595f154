"""The pipeline's documentation persisted in the warehouse: a table Target's table and
column comments, set with the write (in its transaction), on DuckDB, PostgreSQL and Spark."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from psycopg import sql as pg_sql
from sqlglot import exp

from prophecy_jupyter.automate.runner import RunMode, run_pipeline
from prophecy_jupyter.compiler import compile_pipeline
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.engines.base import TableDocs, comment_statements
from prophecy_jupyter.engines.warehouse import WarehouseEngine
from prophecy_jupyter.gems.sources import TargetProps, table_expression, write_spec
from prophecy_jupyter.model import Pipeline
from tests.conftest import chain, gem, seed
from tests.pg_support import PostgresServer

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from prophecy_jupyter.engines.spark import SparkEngine

MODES: list[RunMode] = ["fused", "staged"]
TABLE_DOC = "Orders it's worth keeping"


def orders(*rows: tuple[int, float, str | None], amount: str = "Amount") -> dict[str, Any]:
    return seed(
        "orders",
        [("id", "INTEGER"), (amount, "DOUBLE"), ("note", "VARCHAR")],
        [list(r) for r in rows],
    )


def documented(
    *,
    mode: str = "overwrite",
    rows: tuple[tuple[int, float, str | None], ...] = ((1, 5.0, "a"), (2, 7.5, None)),
    target_doc: str | None = TABLE_DOC,
    target_columns: dict[str, str] | None = None,
    input_doc: str | None = "Orders with a positive amount",
    input_columns: dict[str, str] | None = None,
    amount: str = "Amount",
) -> Pipeline:
    """Seed → Filter → Target ``orders_doc``, the Filter and the Target documented; the
    column ``amount`` is documented as ``AMOUNT``."""
    clean = gem("clean", "Filter", condition=f"{amount} > 0")
    if input_doc is not None:
        clean["description"] = input_doc
    columns = (
        {"AMOUNT": "Order total, it's in EUR", "id": "Id as the filter sees it"}
        if input_columns is None
        else input_columns
    )
    clean["columns"] = {n: {"description": d} for n, d in columns.items()}
    out = gem(
        "out", "Target", table="orders_doc", mode=mode, keys=["id"] if mode == "merge" else []
    )
    if target_doc is not None:
        out["description"] = target_doc
    own = {"ID": "Order id"} if target_columns is None else target_columns
    out["columns"] = {n: {"description": d} for n, d in own.items()}
    return chain(orders(*rows, amount=amount), clean, out)


def undocumented(mode: str = "overwrite", amount: str = "Amount") -> Pipeline:
    return chain(
        orders((1, 5.0, "a"), amount=amount),
        gem("clean", "Filter", condition=f"{amount} > 0"),
        gem("out", "Target", table="orders_doc", mode=mode, keys=["id"] if mode == "merge" else []),
    )


def run_ok(pipeline: Pipeline, engine: Any, mode: RunMode = "fused") -> None:
    result = run_pipeline(pipeline, engine, mode=mode)
    assert result.status == "succeeded", result.error


def run_fails(pipeline: Pipeline, engine: Any) -> str:
    result = run_pipeline(pipeline, engine)
    assert result.status == "failed"
    assert result.error is not None
    return result.error


def duck_query(engine: DuckDBEngine, text: str) -> list[tuple[Any, ...]]:
    query: exp.Expr = exp.maybe_parse(text, dialect="duckdb")
    assert isinstance(query, exp.Query)
    return engine.query(query)[1]


def duck_docs(engine: DuckDBEngine, name: str = "orders_doc") -> tuple[Any, dict[str, Any]]:
    """The table's comment and its columns' comments, as DuckDB's catalog holds them."""
    (table,) = duck_query(
        engine, f"SELECT comment FROM duckdb_tables() WHERE table_name = '{name}'"
    )
    columns = duck_query(
        engine,
        f"SELECT column_name, comment FROM duckdb_columns() WHERE table_name = '{name}' "
        "ORDER BY column_index",
    )
    return table[0], dict(columns)


def duck_rows(engine: DuckDBEngine) -> list[tuple[Any, ...]]:
    return sorted(duck_query(engine, "SELECT * FROM orders_doc"), key=str)


# -- which documentation a Target writes -----------------------------------------------------
def test_target_docs_prefer_the_targets_own_then_its_inputs() -> None:
    with DuckDBEngine() as engine:
        compiled = compile_pipeline(documented(), engine)
        assert compiled.target_docs("out") == TableDocs(
            TABLE_DOC, {"id": "Order id", "Amount": "Order total, it's in EUR"}
        )
        compiled = compile_pipeline(documented(target_doc=None, target_columns={}), engine)
        assert compiled.target_docs("out") == TableDocs(
            "Orders with a positive amount",
            {"id": "Id as the filter sees it", "Amount": "Order total, it's in EUR"},
        )
        # Nothing further upstream than the Target's input.
        pipeline = chain(
            orders((1, 5.0, "a"))
            | {"description": "raw", "columns": {"note": {"description": "n"}}},
            gem("clean", "Filter", condition="Amount > 0"),
            gem("out", "Target", table="orders_doc"),
        )
        assert compile_pipeline(pipeline, engine).target_docs("out") == TableDocs(None, {})


def test_an_undocumented_pipeline_writes_no_comment_statement() -> None:
    with DuckDBEngine() as engine:
        compiled = compile_pipeline(undocumented(), engine)
        docs = compiled.target_docs("out")
        assert docs == TableDocs(None, {})
        spec = write_spec(TargetProps.model_validate(compiled.target_properties("out")), docs)
        assert spec.table_comment is None and spec.column_comments == {}
        assert comment_statements(table_expression("orders_doc"), spec) == []


def test_file_targets_carry_no_comments() -> None:
    props = TargetProps(format="csv", path="out/orders.csv")
    spec = write_spec(props, TableDocs("doc", {"id": "x"}))
    assert spec.table_comment is None and spec.column_comments == {}


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_comment_statements_are_quoted(dialect: str) -> None:
    spec = write_spec(
        TargetProps(table="s.orders_doc"), TableDocs("it's", {"Amount": "the 'total'"})
    )
    statements = [
        s.sql(dialect) for s in comment_statements(table_expression("s.orders_doc"), spec)
    ]
    assert statements == [
        """COMMENT ON TABLE "s"."orders_doc" IS 'it''s'""",
        """COMMENT ON COLUMN "s"."orders_doc"."Amount" IS 'the ''total'''""",
    ]


# -- DuckDB ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_duckdb_table_and_column_comments(mode: RunMode) -> None:
    with DuckDBEngine() as engine:
        run_ok(documented(), engine, mode)
        assert duck_docs(engine) == (
            TABLE_DOC,
            {"id": "Order id", "Amount": "Order total, it's in EUR", "note": None},
        )
        assert duck_rows(engine) == [(1, 5.0, "a"), (2, 7.5, None)]


def test_duckdb_overwrite_replaces_the_comments() -> None:
    with DuckDBEngine() as engine:
        run_ok(documented(), engine)
        run_ok(documented(target_doc=None, target_columns={"note": "Free text"}), engine)
        assert duck_docs(engine) == (
            "Orders with a positive amount",
            {
                "id": "Id as the filter sees it",
                "Amount": "Order total, it's in EUR",
                "note": "Free text",
            },
        )


@pytest.mark.parametrize("write_mode", ["append", "merge"])
def test_duckdb_append_and_merge_update_the_comments(write_mode: str) -> None:
    with DuckDBEngine() as engine:
        run_ok(documented(mode=write_mode), engine)
        # A comment someone set on a column the pipeline does not describe stays.
        engine.connection.execute("COMMENT ON COLUMN orders_doc.note IS 'set by hand'")
        run_ok(
            documented(
                mode=write_mode,
                rows=((2, 8.0, "b"), (3, 1.0, "c")),
                target_doc="Second version",
                target_columns={"id": "Order id, again"},
            ),
            engine,
        )
        assert duck_docs(engine) == (
            "Second version",
            {"id": "Order id, again", "Amount": "Order total, it's in EUR", "note": "set by hand"},
        )
        if write_mode == "append":
            expected = [(1, 5.0, "a"), (2, 7.5, None), (2, 8.0, "b"), (3, 1.0, "c")]
        else:
            expected = [(1, 5.0, "a"), (2, 8.0, "b"), (3, 1.0, "c")]
        assert duck_rows(engine) == expected


def test_duckdb_failed_write_keeps_the_old_comments_and_rows() -> None:
    with DuckDBEngine() as engine:
        run_ok(documented(mode="merge"), engine)
        before = duck_docs(engine), duck_rows(engine)
        changed: dict[str, Any] = {
            "target_doc": "Never written",
            "target_columns": {"note": "never"},
        }
        error = run_fails(
            documented(mode="merge", rows=((4, 1.0, "x"), (4, 2.0, "y")), **changed), engine
        )
        assert "not unique" in error
        assert (duck_docs(engine), duck_rows(engine)) == before
        error = run_fails(documented(mode="error_if_exists", **changed), engine)
        assert "already exists" in error
        assert (duck_docs(engine), duck_rows(engine)) == before


def test_duckdb_undocumented_pipeline_leaves_comments_alone() -> None:
    with DuckDBEngine() as engine:
        run_ok(undocumented(), engine)
        assert duck_docs(engine) == (None, {"id": None, "Amount": None, "note": None})
        engine.connection.execute("COMMENT ON TABLE orders_doc IS 'by hand'")
        engine.connection.execute("COMMENT ON COLUMN orders_doc.id IS 'by hand too'")
        run_ok(undocumented("append"), engine)
        assert duck_docs(engine) == ("by hand", {"id": "by hand too", "Amount": None, "note": None})


# -- PostgreSQL ------------------------------------------------------------------------------
def pg_docs(server: PostgresServer, name: str = "orders_doc") -> tuple[Any, dict[str, Any]]:
    """``obj_description`` of the table and ``col_description`` of each of its columns."""
    with server.admin(server.dbname) as admin:
        oid = admin.execute(
            pg_sql.SQL("SELECT to_regclass({})::oid").format(pg_sql.Literal(f"public.{name}"))
        ).fetchone()
        assert oid is not None and oid[0] is not None
        table = admin.execute("SELECT obj_description(%s::oid, 'pg_class')", [oid[0]]).fetchone()
        columns = admin.execute(
            "SELECT attname, col_description(attrelid, attnum) FROM pg_attribute "
            "WHERE attrelid = %s::oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            [oid[0]],
        ).fetchall()
    assert table is not None
    return table[0], {str(n): d for n, d in columns}


def pg_rows(engine: WarehouseEngine) -> list[tuple[Any, ...]]:
    query = exp.select(exp.Star()).from_(table_expression("orders_doc"))
    return sorted(engine.query(query)[1], key=str)


def test_postgres_table_and_column_comments(
    postgres_engine: WarehouseEngine, postgres_database: PostgresServer
) -> None:
    # A mixed-case column keeps its spelling through the seed, the filter and the table.
    run_ok(documented(), postgres_engine)
    assert pg_docs(postgres_database) == (
        TABLE_DOC,
        {"id": "Order id", "Amount": "Order total, it's in EUR", "note": None},
    )
    run_ok(
        documented(mode="append", rows=((3, 1.0, "c"),), target_doc=None, target_columns={}),
        postgres_engine,
    )
    assert pg_docs(postgres_database) == (
        "Orders with a positive amount",
        {"id": "Id as the filter sees it", "Amount": "Order total, it's in EUR", "note": None},
    )
    assert len(pg_rows(postgres_engine)) == 3


def test_postgres_failed_write_keeps_the_old_comments_and_rows(
    postgres_engine: WarehouseEngine, postgres_database: PostgresServer
) -> None:
    run_ok(documented(mode="merge", amount="amount"), postgres_engine)
    before = pg_docs(postgres_database), pg_rows(postgres_engine)
    error = run_fails(
        documented(
            mode="merge",
            rows=((4, 1.0, "x"), (4, 2.0, "y")),
            target_doc="Never written",
            amount="amount",
        ),
        postgres_engine,
    )
    assert "not unique" in error
    assert (pg_docs(postgres_database), pg_rows(postgres_engine)) == before


def test_postgres_undocumented_pipeline_writes_no_comments(
    postgres_engine: WarehouseEngine, postgres_database: PostgresServer
) -> None:
    run_ok(undocumented(amount="amount"), postgres_engine)
    assert pg_docs(postgres_database) == (None, {"id": None, "amount": None, "note": None})


# -- Spark -----------------------------------------------------------------------------------
def spark_docs(spark: SparkSession, engine: SparkEngine) -> tuple[Any, dict[str, Any]]:
    """The table's comment and its columns' comments, from ``DESCRIBE TABLE EXTENDED``."""
    described = spark.sql(f"DESCRIBE TABLE EXTENDED `{engine.database}`.`orders_doc`").collect()
    columns: dict[str, Any] = {}
    table: Any = None
    for row in described:
        if not row.col_name:
            break
        columns[row.col_name] = row.comment
    for row in described:
        if row.col_name == "Comment":
            table = row.data_type
    return table, columns


def spark_rows(engine: SparkEngine) -> list[tuple[Any, ...]]:
    query = exp.select(exp.Star()).from_(table_expression("orders_doc"))
    return sorted(engine.query(query)[1], key=str)


def test_spark_table_and_column_comments(spark: SparkSession, spark_engine: SparkEngine) -> None:
    run_ok(documented(mode="merge"), spark_engine)
    first = (
        TABLE_DOC,
        {"id": "Order id", "Amount": "Order total, it's in EUR", "note": None},
    )
    assert spark_docs(spark, spark_engine) == first
    before = spark_rows(spark_engine)
    error = run_fails(
        documented(mode="merge", rows=((4, 1.0, "x"), (4, 2.0, "y")), target_doc="Never"),
        spark_engine,
    )
    assert "not unique" in error
    assert (spark_docs(spark, spark_engine), spark_rows(spark_engine)) == (first, before)
    for write_mode in ("merge", "append"):
        run_ok(
            documented(
                mode=write_mode,
                rows=((2, 8.0, "b"),),
                target_doc=f"After {write_mode}",
                target_columns={"note": "Free text"},
            ),
            spark_engine,
        )
        assert spark_docs(spark, spark_engine) == (
            f"After {write_mode}",
            {
                "id": "Id as the filter sees it",
                "Amount": "Order total, it's in EUR",
                "note": "Free text",
            },
        )
    assert spark_rows(spark_engine) == [(1, 5.0, "a"), (2, 8.0, "b"), (2, 8.0, "b")]
