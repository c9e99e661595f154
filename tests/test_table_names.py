"""A table Source must read the table, never a same-named gem's CTE."""

from __future__ import annotations

from prophecy_jupyter.engines import DuckDBEngine
from tests.conftest import gem, issues_of, make_pipeline, rows_of, seed


def test_table_named_like_another_gem_is_refused(engine: DuckDBEngine) -> None:
    engine.connection.execute("CREATE TABLE totals AS SELECT 1 AS a")
    pipeline = make_pipeline(
        [
            seed("totals", [("a", "INTEGER")], [[7]]),
            gem("stored", "Source", format="table", table="totals"),
            gem("both", "SetOperation", operation="union_all"),
        ],
        [("totals", "both", "in0"), ("stored", "both", "in1")],
    )
    (issue,) = issues_of(pipeline, engine)
    assert (issue.code, issue.gem_id, issue.field) == (
        "shadowed_table",
        "stored",
        "/gems/1/properties/table",
    )


def test_schema_qualified_table_reads_the_table(engine: DuckDBEngine) -> None:
    engine.connection.execute("CREATE TABLE totals AS SELECT 1 AS a")
    pipeline = make_pipeline(
        [
            seed("totals", [("a", "INTEGER")], [[7]]),
            gem("stored", "Source", format="table", table="main.totals"),
            gem("both", "SetOperation", operation="union_all"),
        ],
        [("totals", "both", "in0"), ("stored", "both", "in1")],
    )
    assert sorted(rows_of(pipeline, engine, "both")) == [(1,), (7,)]


def test_gem_may_share_the_name_of_the_table_it_reads(engine: DuckDBEngine) -> None:
    engine.connection.execute("CREATE TABLE orders AS SELECT 5 AS amount")
    pipeline = make_pipeline(
        [
            gem("orders", "Source", format="table", table="orders"),
            gem("big", "Filter", condition="amount > 1"),
        ],
        [("orders", "big")],
    )
    assert rows_of(pipeline, engine, "big") == [(5,)]
