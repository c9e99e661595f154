"""Output columns (names, types) and column lineage, inferred without reading data."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlglot import exp

from prophecy_jupyter.compiler import CompiledPipeline, compile_pipeline
from prophecy_jupyter.compiler.columns import UNKNOWN
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.model import Pipeline
from tests.conftest import chain, compiled_ok, gem, make_pipeline, seed

ORDER_LINES = """
SELECT * FROM (VALUES
    (1, 10, 2, 3.5, DATE '2024-01-05', 'web'),
    (2, 11, 1, 0.25, DATE '2024-02-11', 'shop'),
    (3, 10, 5, 1.0, DATE '2024-02-12', 'web')
) AS t(order_id, product_id, quantity, weight, ordered_on, channel)
"""


@pytest.fixture
def lines(engine: DuckDBEngine, tmp_path: Path) -> Path:
    """A parquet file of order lines: INTEGER, DECIMAL(2,1) weights, DATE, VARCHAR."""
    path = tmp_path / "lines.parquet"
    copy = exp.Copy(
        this=exp.maybe_parse(ORDER_LINES, dialect="duckdb").subquery(),
        kind=False,
        files=[exp.Literal.string(str(path))],
        params=[exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var("parquet"))],
    )
    engine.connection.execute(copy.sql("duckdb"))
    return path


def shop_pipeline() -> Pipeline:
    """Order lines joined to a product seed, through most gem kinds, into a Target."""
    products = seed(
        "products",
        [("id", "INTEGER"), ("name", "VARCHAR"), ("price", "DECIMAL(10,2)"), ("rating", "DOUBLE")],
        [[10, "pen", "1.50", 4.5], [11, "ink", "7.25", 3.0]],
    )
    gems = [
        gem("lines", "Source", format="parquet", path="lines.parquet"),
        products,
        gem("recent", "Filter", condition="ordered_on >= DATE '2024-01-01'"),
        gem(
            "joined",
            "Join",
            joins=[{"how": "left", "condition": "recent.product_id = products.id"}],
        ),
        gem(
            "priced",
            "Reformat",
            include_remaining=True,
            drop=["id"],
            columns=[
                {"name": "revenue", "expression": "price * quantity"},
                {"name": "heavy", "expression": "weight * quantity + 1.5"},
                {"name": "score", "expression": "rating / 2 + price"},
                {"name": "label", "expression": "upper(name) || ' ' || channel"},
                {"name": "due", "expression": "ordered_on + 30"},
                {"name": "month", "expression": "date_trunc('month', ordered_on)"},
                {"name": "bucket", "expression": "case when quantity > 1 then price else 0 end"},
                {"name": "big", "expression": "quantity::BIGINT * 1000"},
            ],
        ),
        gem(
            "by_product",
            "Aggregate",
            group_by=[{"expression": "name"}, {"expression": "year(ordered_on)", "name": "year"}],
            aggregates=[
                {"name": "units", "expression": "sum(quantity)"},
                {"name": "revenue", "expression": "sum(revenue)"},
                {"name": "avg_price", "expression": "avg(price)"},
                {"name": "avg_weight", "expression": "avg(weight)"},
                {"name": "lines", "expression": "count(*)"},
                {"name": "first_day", "expression": "min(ordered_on)"},
                {"name": "best", "expression": "max(rating)"},
                {"name": "big", "expression": "sum(big)"},
            ],
        ),
        gem(
            "ranked",
            "WindowFunction",
            partition_by=["year"],
            order_by=[{"expression": "revenue", "direction": "desc"}],
            columns=[
                {"name": "rank", "expression": "row_number()"},
                {"name": "running", "expression": "sum(revenue)"},
                {"name": "previous", "expression": "lag(units)"},
            ],
        ),
        gem("top", "Limit", count=10),
        gem("out", "Target", table="product_sales"),
    ]
    return make_pipeline(
        gems,
        [
            ("lines", "recent"),
            ("recent", "joined", "in0"),
            ("products", "joined", "in1"),
            ("joined", "priced"),
            ("priced", "by_product"),
            ("by_product", "ranked"),
            ("ranked", "top"),
            ("top", "out"),
        ],
    )


def engine_columns(
    compiled: CompiledPipeline, engine: DuckDBEngine, gem_id: str
) -> list[tuple[str, str]]:
    return engine.describe(compiled.query(gem_id))


def inferred(compiled: CompiledPipeline, gem_id: str) -> list[tuple[str, str]]:
    return [(c.name, c.type) for c in compiled.columns(gem_id)]


GEMS = ["lines", "products", "recent", "joined", "priced", "by_product", "ranked", "top", "out"]


@pytest.mark.parametrize("gem_id", GEMS)
def test_inferred_columns_match_what_duckdb_reports(
    engine: DuckDBEngine, lines: Path, gem_id: str
) -> None:
    compiled = compiled_ok(shop_pipeline(), engine)
    assert inferred(compiled, gem_id) == engine_columns(compiled, engine, gem_id)


def test_typical_types_are_spelled_as_duckdb_spells_them(engine: DuckDBEngine, lines: Path) -> None:
    compiled = compiled_ok(shop_pipeline(), engine)
    types = dict(inferred(compiled, "priced")) | {
        f"agg.{name}": dtype for name, dtype in inferred(compiled, "by_product")
    }
    assert {name: types[name] for name in ("quantity", "weight", "price", "label", "due")} == {
        "quantity": "INTEGER",
        "weight": "DECIMAL(3,2)",
        "price": "DECIMAL(10,2)",
        "label": "VARCHAR",
        "due": "DATE",
    }
    assert {
        name: types[f"agg.{name}"]
        for name in ("units", "revenue", "avg_price", "lines", "first_day", "best", "big")
    } == {
        "units": "HUGEINT",
        "revenue": "DECIMAL(38,2)",
        "avg_price": "DOUBLE",
        "lines": "BIGINT",
        "first_day": "DATE",
        "best": "DOUBLE",
        "big": "HUGEINT",
    }


def test_types_sqlglot_cannot_tell_are_still_inferred(engine: DuckDBEngine) -> None:
    pipeline = chain(
        seed("nums", [("k", "INTEGER"), ("v", "DOUBLE")], [[1, 2.0]]),
        gem(
            "a",
            "Aggregate",
            aggregates=[
                {"name": "mid", "expression": "median(v)"},
                {"name": "all_keys", "expression": "list(k)"},
                {"name": "spread", "expression": "quantile_cont(v, 0.9)"},
            ],
        ),
    )
    compiled = compiled_ok(pipeline, engine)
    assert inferred(compiled, "a") == [
        ("mid", "DOUBLE"),
        ("all_keys", "INTEGER[]"),
        ("spread", "DOUBLE"),
    ]


def test_columns_are_inferred_without_reading_the_source_files(
    engine: DuckDBEngine, lines: Path
) -> None:
    compiled = compiled_ok(shop_pipeline(), engine)
    lines.unlink()
    assert [name for name, _ in inferred(compiled, "ranked")][-3:] == [
        "rank",
        "running",
        "previous",
    ]
    assert dict(inferred(compiled, "ranked"))["running"] == "DECIMAL(38,2)"


def test_a_statement_the_engine_cannot_bind_keeps_the_compilers_types(
    engine: DuckDBEngine,
) -> None:
    pipeline = chain(
        seed("nums", [("k", "INTEGER")], [[1]]),
        gem("r", "Reformat", columns=[{"name": "shout", "expression": "upper(k)"}, {"name": "k"}]),
    )
    compiled = compiled_ok(pipeline, engine)
    assert [c.name for c in compiled.columns("r")] == ["shout", "k"]
    assert compiled.columns("r")[1].type == "INTEGER"


def test_without_a_catalog_answer_types_fall_back_to_inference(engine: DuckDBEngine) -> None:
    pipeline = chain(
        seed("nums", [("k", "INTEGER"), ("v", "DOUBLE")], [[1, 2.0]]),
        gem("r", "Reformat", columns=[{"name": "half", "expression": "v / 2"}]),
    )
    compiled = compile_pipeline(pipeline, engine)
    compiled.catalog = None
    assert [(c.name, c.type) for c in compiled.columns("r")] == [("half", "DOUBLE")]
    assert all(c.type != UNKNOWN for c in compiled.columns("nums"))


# -- lineage --------------------------------------------------------------------------------


def test_source_columns_are_their_own_lineage(engine: DuckDBEngine, lines: Path) -> None:
    compiled = compiled_ok(shop_pipeline(), engine)
    assert compiled.lineage("lines")["quantity"] == [["lines", "quantity"]]
    assert compiled.lineage("products")["price"] == [["products", "price"]]


def test_lineage_passes_through_filter_and_join_unchanged(
    engine: DuckDBEngine, lines: Path
) -> None:
    compiled = compiled_ok(shop_pipeline(), engine)
    joined = compiled.lineage("joined")
    assert joined["channel"] == [["lines", "channel"]]
    assert joined["name"] == [["products", "name"]]
    assert list(joined) == [
        "order_id",
        "product_id",
        "quantity",
        "weight",
        "ordered_on",
        "channel",
        "id",
        "name",
        "price",
        "rating",
    ]


def test_lineage_of_computed_columns_names_every_source_column_used(
    engine: DuckDBEngine, lines: Path
) -> None:
    priced = compiled_ok(shop_pipeline(), engine).lineage("priced")
    assert priced["revenue"] == [["lines", "quantity"], ["products", "price"]]
    assert priced["label"] == [["lines", "channel"], ["products", "name"]]
    assert priced["due"] == [["lines", "ordered_on"]]
    assert "id" not in priced


def test_lineage_through_aggregates(engine: DuckDBEngine, lines: Path) -> None:
    by_product = compiled_ok(shop_pipeline(), engine).lineage("by_product")
    assert by_product["year"] == [["lines", "ordered_on"]]
    assert by_product["revenue"] == [["lines", "quantity"], ["products", "price"]]
    assert by_product["lines"] == []


def test_lineage_through_window_and_limit(engine: DuckDBEngine, lines: Path) -> None:
    top = compiled_ok(shop_pipeline(), engine).lineage("top")
    assert top["running"] == [["lines", "quantity"], ["products", "price"]]
    assert top["previous"] == [["lines", "quantity"]]
    assert top["rank"] == []


def test_lineage_of_a_rename_follows_the_source_column(engine: DuckDBEngine) -> None:
    pipeline = chain(
        seed("people", [("id", "INTEGER"), ("name", "VARCHAR")], [[1, "ann"]]),
        gem("renamed", "Reformat", columns=[{"name": "who", "expression": "name"}]),
        gem("again", "Reformat", columns=[{"name": "label", "expression": "who || '!'"}]),
    )
    compiled = compiled_ok(pipeline, engine)
    assert compiled.lineage("again") == {"label": [["people", "name"]]}
    assert inferred(compiled, "again") == [("label", "VARCHAR")]
