"""Pivot, Unpivot, FlattenSchema and TextToColumns, run on DuckDB."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from prophecy_jupyter.compiler import Column, compile_pipeline
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.model import Pipeline
from tests.conftest import chain, gem, issues_of, rows_of, seed


def unordered(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=repr)


def schema(pipeline: Pipeline, engine: DuckDBEngine, gem_id: str) -> list[tuple[str, str]]:
    return [(c.name, c.type) for c in compile_pipeline(pipeline, engine).columns(gem_id)]


def columns(pipeline: Pipeline, engine: DuckDBEngine, gem_id: str) -> list[Column]:
    return compile_pipeline(pipeline, engine).columns(gem_id)


def problems(pipeline: Pipeline, engine: DuckDBEngine) -> list[tuple[str, str | None, str | None]]:
    return [(i.code, i.gem_id, i.field) for i in issues_of(pipeline, engine)]


def spark_sql(pipeline: Pipeline, engine: DuckDBEngine, gem_id: str) -> str:
    compiled = compile_pipeline(pipeline, engine)
    assert compiled.issues == []
    return compiled.sql(gem_id, dialect="spark")


# -- Pivot ------------------------------------------------------------------------------------


def sales() -> dict[str, Any]:
    return seed(
        "sales",
        [("region", "VARCHAR"), ("quarter", "VARCHAR"), ("year", "INTEGER"), ("amount", "INTEGER")],
        [
            ["east", "Q1", 2023, 10],
            ["east", "Q2", 2024, 5],
            ["east", "Q1", 2024, 7],
            ["west", "Q2", 2023, 3],
        ],
    )


def pivot(**properties: Any) -> Pipeline:
    return chain(sales(), gem("p", "Pivot", **properties))


def total(expression: str = "sum(amount)", name: str = "total") -> dict[str, str]:
    return {"name": name, "expression": expression}


def test_pivot_turns_listed_values_into_columns_per_group(engine: DuckDBEngine) -> None:
    pipeline = pivot(
        group_by=["region"], pivot_column="quarter", values=["Q1", "Q2"], aggregates=[total()]
    )
    assert unordered(rows_of(pipeline, engine, "p")) == [("east", 17, 5), ("west", None, 3)]
    assert columns(pipeline, engine, "p") == [
        Column("region", "VARCHAR", frozenset({("sales", "region")})),
        Column("Q1", "HUGEINT", frozenset({("sales", "amount"), ("sales", "quarter")})),
        Column("Q2", "HUGEINT", frozenset({("sales", "amount"), ("sales", "quarter")})),
    ]


def test_pivot_names_columns_value_then_aggregate_when_there_are_several(
    engine: DuckDBEngine,
) -> None:
    pipeline = pivot(
        group_by=["region"],
        pivot_column="quarter",
        values=["Q1", "Q2"],
        aggregates=[total(), total("count(*)", "n")],
    )
    assert unordered(rows_of(pipeline, engine, "p")) == [
        ("east", 17, 2, 5, 1),
        ("west", None, 0, 3, 1),
    ]
    assert schema(pipeline, engine, "p") == [
        ("region", "VARCHAR"),
        ("Q1_total", "HUGEINT"),
        ("Q1_n", "BIGINT"),
        ("Q2_total", "HUGEINT"),
        ("Q2_n", "BIGINT"),
    ]


def test_pivot_value_missing_from_the_data_still_gets_its_column(engine: DuckDBEngine) -> None:
    pipeline = pivot(
        group_by=["region"], pivot_column="quarter", values=["Q3"], aggregates=[total()]
    )
    assert unordered(rows_of(pipeline, engine, "p")) == [("east", None), ("west", None)]
    assert schema(pipeline, engine, "p") == [("region", "VARCHAR"), ("Q3", "HUGEINT")]


def test_pivot_without_group_by_yields_one_row(engine: DuckDBEngine) -> None:
    pipeline = pivot(pivot_column="region", values=["east", "west"], aggregates=[total()])
    assert rows_of(pipeline, engine, "p") == [(22, 3)]
    assert schema(pipeline, engine, "p") == [("east", "HUGEINT"), ("west", "HUGEINT")]


def test_pivot_on_a_number_column_matches_number_values(engine: DuckDBEngine) -> None:
    pipeline = pivot(
        group_by=["region"], pivot_column="year", values=[2023, "2024"], aggregates=[total()]
    )
    assert unordered(rows_of(pipeline, engine, "p")) == [("east", 10, 12), ("west", 3, None)]
    assert schema(pipeline, engine, "p") == [
        ("region", "VARCHAR"),
        ("2023", "HUGEINT"),
        ("2024", "HUGEINT"),
    ]


def test_pivot_keeps_the_aggregates_own_filter(engine: DuckDBEngine) -> None:
    pipeline = pivot(
        group_by=["region"],
        pivot_column="quarter",
        values=["Q1", "Q2"],
        aggregates=[total("sum(amount) filter (where amount > 6)", "big")],
    )
    assert unordered(rows_of(pipeline, engine, "p")) == [("east", 17, None), ("west", None, None)]
    assert schema(pipeline, engine, "p") == [
        ("region", "VARCHAR"),
        ("Q1", "HUGEINT"),
        ("Q2", "HUGEINT"),
    ]


def test_pivot_sql_transpiles_to_spark(engine: DuckDBEngine) -> None:
    pipeline = pivot(
        group_by=["region"], pivot_column="quarter", values=["Q1"], aggregates=[total()]
    )
    assert "SUM(`amount`) FILTER(WHERE" in spark_sql(pipeline, engine, "p")


def test_pivot_rejects_an_unknown_pivot_column(engine: DuckDBEngine) -> None:
    pipeline = pivot(pivot_column="month", values=["Q1"], aggregates=[total()])
    assert problems(pipeline, engine) == [
        ("unknown_column", "p", "/gems/1/properties/pivot_column")
    ]


def test_pivot_rejects_a_text_value_for_a_number_column(engine: DuckDBEngine) -> None:
    pipeline = pivot(pivot_column="year", values=[2023, "last"], aggregates=[total()])
    assert problems(pipeline, engine) == [("bad_pivot_value", "p", "/gems/1/properties/values/1")]


def test_pivot_rejects_a_repeated_value(engine: DuckDBEngine) -> None:
    pipeline = pivot(pivot_column="quarter", values=["Q1", "Q1"], aggregates=[total()])
    assert problems(pipeline, engine) == [("duplicate_value", "p", "/gems/1/properties/values/1")]


def test_pivot_requires_the_values_to_be_listed(engine: DuckDBEngine) -> None:
    pipeline = pivot(pivot_column="quarter", values=[], aggregates=[total()])
    assert problems(pipeline, engine) == [("schema", "p", "/gems/1/properties/values")]


def test_pivot_rejects_an_aggregate_without_an_aggregate_function(engine: DuckDBEngine) -> None:
    pipeline = pivot(pivot_column="quarter", values=["Q1"], aggregates=[total("amount + 1")])
    assert problems(pipeline, engine) == [
        ("not_aggregated", "p", "/gems/1/properties/aggregates/0/expression")
    ]


def test_pivot_rejects_a_column_outside_the_aggregate(engine: DuckDBEngine) -> None:
    pipeline = pivot(
        group_by=["region"],
        pivot_column="quarter",
        values=["Q1"],
        aggregates=[total("sum(amount) + year")],
    )
    assert problems(pipeline, engine) == [
        ("not_aggregated", "p", "/gems/1/properties/aggregates/0/expression")
    ]


def test_pivot_rejects_pivoting_on_a_grouping_column(engine: DuckDBEngine) -> None:
    pipeline = pivot(
        group_by=["quarter"], pivot_column="quarter", values=["Q1"], aggregates=[total()]
    )
    assert problems(pipeline, engine) == [
        ("pivot_in_group_by", "p", "/gems/1/properties/pivot_column")
    ]


def test_pivot_rejects_a_value_column_that_clashes_with_a_group_column(
    engine: DuckDBEngine,
) -> None:
    pipeline = pivot(
        group_by=["region"], pivot_column="quarter", values=["region"], aggregates=[total()]
    )
    assert problems(pipeline, engine) == [("duplicate_column", "p", "/gems/1/properties/values")]


# -- Unpivot ----------------------------------------------------------------------------------


def scores() -> dict[str, Any]:
    return seed(
        "scores",
        [("student", "VARCHAR"), ("math", "INTEGER"), ("art", "INTEGER"), ("grade", "DOUBLE")],
        [["ann", 90, None, 4.5], ["bob", 70, 80, 3.0]],
    )


def unpivot(**properties: Any) -> Pipeline:
    return chain(scores(), gem("u", "Unpivot", **properties))


def test_unpivot_turns_value_columns_into_name_value_rows(engine: DuckDBEngine) -> None:
    pipeline = unpivot(id_columns=["student"], value_columns=["math", "art"])
    assert unordered(rows_of(pipeline, engine, "u")) == [
        ("ann", "art", None),
        ("ann", "math", 90),
        ("bob", "art", 80),
        ("bob", "math", 70),
    ]
    assert columns(pipeline, engine, "u") == [
        Column("student", "VARCHAR", frozenset({("scores", "student")})),
        Column("name", "VARCHAR", frozenset()),
        Column("value", "INTEGER", frozenset({("scores", "math"), ("scores", "art")})),
    ]


def test_unpivot_without_value_columns_takes_every_other_column(engine: DuckDBEngine) -> None:
    pipeline = unpivot(id_columns=["student"], value_type="VARCHAR")
    assert unordered(rows_of(pipeline, engine, "u")) == [
        ("ann", "art", None),
        ("ann", "grade", "4.5"),
        ("ann", "math", "90"),
        ("bob", "art", "80"),
        ("bob", "grade", "3.0"),
        ("bob", "math", "70"),
    ]
    assert schema(pipeline, engine, "u") == [
        ("student", "VARCHAR"),
        ("name", "VARCHAR"),
        ("value", "VARCHAR"),
    ]


def test_unpivot_names_its_output_columns_as_asked(engine: DuckDBEngine) -> None:
    pipeline = unpivot(
        id_columns=["student"],
        value_columns=["math"],
        name_column="subject",
        value_column="score",
    )
    assert unordered(rows_of(pipeline, engine, "u")) == [("ann", "math", 90), ("bob", "math", 70)]
    assert schema(pipeline, engine, "u") == [
        ("student", "VARCHAR"),
        ("subject", "VARCHAR"),
        ("score", "INTEGER"),
    ]


def test_unpivot_widens_mixed_number_types_to_their_common_type(engine: DuckDBEngine) -> None:
    pipeline = unpivot(id_columns=["student"], value_columns=["math", "grade"])
    assert unordered(rows_of(pipeline, engine, "u")) == [
        ("ann", "grade", 4.5),
        ("ann", "math", 90.0),
        ("bob", "grade", 3.0),
        ("bob", "math", 70.0),
    ]
    assert schema(pipeline, engine, "u") == [
        ("student", "VARCHAR"),
        ("name", "VARCHAR"),
        ("value", "DOUBLE"),
    ]


def test_unpivot_drops_null_values_when_asked(engine: DuckDBEngine) -> None:
    pipeline = unpivot(id_columns=["student"], value_columns=["math", "art"], drop_nulls=True)
    assert unordered(rows_of(pipeline, engine, "u")) == [
        ("ann", "math", 90),
        ("bob", "art", 80),
        ("bob", "math", 70),
    ]
    assert schema(pipeline, engine, "u") == [
        ("student", "VARCHAR"),
        ("name", "VARCHAR"),
        ("value", "INTEGER"),
    ]


def test_unpivot_sql_transpiles_to_spark(engine: DuckDBEngine) -> None:
    pipeline = unpivot(id_columns=["student"], value_columns=["math", "art"])
    assert "CROSS JOIN VALUES" in spark_sql(pipeline, engine, "u")


def test_unpivot_rejects_text_and_numbers_without_a_value_type(engine: DuckDBEngine) -> None:
    pipeline = unpivot(value_columns=["student", "math"])
    assert problems(pipeline, engine) == [("mixed_types", "u", "/gems/1/properties/value_type")]


def test_unpivot_rejects_an_unknown_value_type(engine: DuckDBEngine) -> None:
    pipeline = unpivot(id_columns=["student"], value_type="NOT A TYPE(")
    assert problems(pipeline, engine) == [("bad_type", "u", "/gems/1/properties/value_type")]


def test_unpivot_rejects_an_id_column_listed_as_a_value_column(engine: DuckDBEngine) -> None:
    pipeline = unpivot(id_columns=["student"], value_columns=["math", "student"])
    assert problems(pipeline, engine) == [
        ("id_and_value", "u", "/gems/1/properties/value_columns/1")
    ]


def test_unpivot_rejects_an_unknown_value_column(engine: DuckDBEngine) -> None:
    pipeline = unpivot(id_columns=["student"], value_columns=["music"])
    assert problems(pipeline, engine) == [
        ("unknown_column", "u", "/gems/1/properties/value_columns/0")
    ]


def test_unpivot_rejects_a_name_column_that_clashes_with_an_id_column(
    engine: DuckDBEngine,
) -> None:
    pipeline = unpivot(id_columns=["student"], value_columns=["math"], name_column="Student")
    assert problems(pipeline, engine) == [
        ("duplicate_column", "u", "/gems/1/properties/name_column")
    ]


# -- FlattenSchema ----------------------------------------------------------------------------


ITEMS = [{"sku": "pen", "qty": [1, 2]}, {"sku": "ink", "qty": []}]
CUSTOMER_COLUMNS = [
    ("id", "INTEGER"),
    ("customer_name", "VARCHAR"),
    ("customer_address_city", "VARCHAR"),
    ("customer_address_zip", "INTEGER"),
]


@pytest.fixture
def orders(engine: DuckDBEngine) -> dict[str, Any]:
    """A Source over a table with nested structs and lists, as JSON or Parquet bring them."""
    engine.connection.execute(
        """
        CREATE TABLE orders AS
        SELECT 1 AS id,
               {'name': 'ann', 'address': {'city': 'Oslo', 'zip': 150}} AS customer,
               [{'sku': 'pen', 'qty': [1, 2]}, {'sku': 'ink', 'qty': []}] AS items,
               ['new', 'gift'] AS tags
        UNION ALL
        SELECT 2, NULL, [], NULL
        """
    )
    return gem("orders", "Source", format="table", table="orders")


def test_flatten_schema_flattens_nested_structs_into_parent_child_columns(
    engine: DuckDBEngine, orders: dict[str, Any]
) -> None:
    pipeline = chain(orders, gem("f", "FlattenSchema"))
    assert unordered(rows_of(pipeline, engine, "f")) == [
        (1, "ann", "Oslo", 150, ITEMS, ["new", "gift"]),
        (2, None, None, None, [], None),
    ]
    assert columns(pipeline, engine, "f") == [
        Column("id", "INTEGER", frozenset({("orders", "id")})),
        Column("customer_name", "VARCHAR", frozenset({("orders", "customer")})),
        Column("customer_address_city", "VARCHAR", frozenset({("orders", "customer")})),
        Column("customer_address_zip", "INTEGER", frozenset({("orders", "customer")})),
        Column("items", "STRUCT(sku VARCHAR, qty INTEGER[])[]", frozenset({("orders", "items")})),
        Column("tags", "VARCHAR[]", frozenset({("orders", "tags")})),
    ]


def test_flatten_schema_explodes_a_chosen_list_into_rows(
    engine: DuckDBEngine, orders: dict[str, Any]
) -> None:
    pipeline = chain(orders, gem("f", "FlattenSchema", explode=["tags"]))
    assert unordered(rows_of(pipeline, engine, "f")) == [
        (1, "ann", "Oslo", 150, ITEMS, "gift"),
        (1, "ann", "Oslo", 150, ITEMS, "new"),
    ]
    assert schema(pipeline, engine, "f") == [
        *CUSTOMER_COLUMNS,
        ("items", "STRUCT(sku VARCHAR, qty INTEGER[])[]"),
        ("tags", "VARCHAR"),
    ]


def test_flatten_schema_flattens_the_elements_of_an_exploded_list_of_structs(
    engine: DuckDBEngine, orders: dict[str, Any]
) -> None:
    pipeline = chain(orders, gem("f", "FlattenSchema", explode=["items"]))
    assert unordered(rows_of(pipeline, engine, "f")) == [
        (1, "ann", "Oslo", 150, "ink", [], ["new", "gift"]),
        (1, "ann", "Oslo", 150, "pen", [1, 2], ["new", "gift"]),
    ]
    assert columns(pipeline, engine, "f")[4:] == [
        Column("items_sku", "VARCHAR", frozenset({("orders", "items")})),
        Column("items_qty", "INTEGER[]", frozenset({("orders", "items")})),
        Column("tags", "VARCHAR[]", frozenset({("orders", "tags")})),
    ]


def test_flatten_schema_explodes_a_list_inside_an_exploded_list(
    engine: DuckDBEngine, orders: dict[str, Any]
) -> None:
    pipeline = chain(orders, gem("f", "FlattenSchema", explode=["items", "items_qty"]))
    assert unordered(rows_of(pipeline, engine, "f")) == [
        (1, "ann", "Oslo", 150, "pen", 1, ["new", "gift"]),
        (1, "ann", "Oslo", 150, "pen", 2, ["new", "gift"]),
    ]
    assert schema(pipeline, engine, "f") == [
        *CUSTOMER_COLUMNS,
        ("items_sku", "VARCHAR"),
        ("items_qty", "INTEGER"),
        ("tags", "VARCHAR[]"),
    ]


def test_flatten_schema_keeps_rows_with_empty_or_null_lists_when_asked(
    engine: DuckDBEngine, orders: dict[str, Any]
) -> None:
    pipeline = chain(orders, gem("f", "FlattenSchema", explode=["tags"], keep_empty=True))
    assert unordered(rows_of(pipeline, engine, "f")) == [
        (1, "ann", "Oslo", 150, ITEMS, "gift"),
        (1, "ann", "Oslo", 150, ITEMS, "new"),
        (2, None, None, None, [], None),
    ]
    assert schema(pipeline, engine, "f") == [
        *CUSTOMER_COLUMNS,
        ("items", "STRUCT(sku VARCHAR, qty INTEGER[])[]"),
        ("tags", "VARCHAR"),
    ]


def test_flatten_schema_joins_names_with_the_chosen_separator(
    engine: DuckDBEngine, orders: dict[str, Any]
) -> None:
    pipeline = chain(orders, gem("f", "FlattenSchema", separator="__"))
    assert unordered(rows_of(pipeline, engine, "f")) == [
        (1, "ann", "Oslo", 150, ITEMS, ["new", "gift"]),
        (2, None, None, None, [], None),
    ]
    assert schema(pipeline, engine, "f") == [
        ("id", "INTEGER"),
        ("customer__name", "VARCHAR"),
        ("customer__address__city", "VARCHAR"),
        ("customer__address__zip", "INTEGER"),
        ("items", "STRUCT(sku VARCHAR, qty INTEGER[])[]"),
        ("tags", "VARCHAR[]"),
    ]


def test_flatten_schema_sql_transpiles_to_spark(
    engine: DuckDBEngine, orders: dict[str, Any]
) -> None:
    pipeline = chain(orders, gem("f", "FlattenSchema", explode=["items"], keep_empty=True))
    assert "LATERAL VIEW" in spark_sql(pipeline, engine, "f")


def test_flatten_schema_rejects_exploding_a_column_that_is_not_a_list(
    engine: DuckDBEngine, orders: dict[str, Any]
) -> None:
    pipeline = chain(orders, gem("f", "FlattenSchema", explode=["customer_name"]))
    assert problems(pipeline, engine) == [("not_a_list", "f", "/gems/1/properties/explode/0")]


def test_flatten_schema_rejects_exploding_an_unknown_column(
    engine: DuckDBEngine, orders: dict[str, Any]
) -> None:
    pipeline = chain(orders, gem("f", "FlattenSchema", explode=["tags", "labels"]))
    assert problems(pipeline, engine) == [("unknown_column", "f", "/gems/1/properties/explode/1")]


def test_flatten_schema_rejects_flattened_names_that_collide(engine: DuckDBEngine) -> None:
    engine.connection.execute("CREATE TABLE t AS SELECT {'b': 1} AS a, 2 AS a_b")
    pipeline = chain(gem("t", "Source", format="table", table="t"), gem("f", "FlattenSchema"))
    assert problems(pipeline, engine) == [("duplicate_column", "f", "/gems/1/properties/separator")]


# -- TextToColumns ----------------------------------------------------------------------------


def people() -> dict[str, Any]:
    return seed(
        "people",
        [("id", "INTEGER"), ("name", "VARCHAR"), ("age", "INTEGER")],
        [[1, "Ann,Lee,Smith", 31], [2, "Bob", 40], [3, None, 50]],
    )


def split(**properties: Any) -> Pipeline:
    return chain(people(), gem("s", "TextToColumns", column="name", delimiter=",", **properties))


def test_text_to_columns_splits_into_named_columns_in_place_of_the_source(
    engine: DuckDBEngine,
) -> None:
    pipeline = split(names=["first", "middle"])
    assert unordered(rows_of(pipeline, engine, "s")) == [
        (1, "Ann", "Lee", 31),
        (2, "Bob", None, 40),
        (3, None, None, 50),
    ]
    assert columns(pipeline, engine, "s") == [
        Column("id", "INTEGER", frozenset({("people", "id")})),
        Column("first", "VARCHAR", frozenset({("people", "name")})),
        Column("middle", "VARCHAR", frozenset({("people", "name")})),
        Column("age", "INTEGER", frozenset({("people", "age")})),
    ]


def test_text_to_columns_keeps_the_remainder_in_the_last_column(engine: DuckDBEngine) -> None:
    pipeline = split(names=["first", "rest"], remainder="last")
    assert unordered(rows_of(pipeline, engine, "s")) == [
        (1, "Ann", "Lee,Smith", 31),
        (2, "Bob", None, 40),
        (3, None, None, 50),
    ]
    assert schema(pipeline, engine, "s") == [
        ("id", "INTEGER"),
        ("first", "VARCHAR"),
        ("rest", "VARCHAR"),
        ("age", "INTEGER"),
    ]


def test_text_to_columns_keeps_the_source_column_when_asked(engine: DuckDBEngine) -> None:
    pipeline = split(names=["first"], keep_source=True)
    assert unordered(rows_of(pipeline, engine, "s")) == [
        (1, "Ann,Lee,Smith", "Ann", 31),
        (2, "Bob", "Bob", 40),
        (3, None, None, 50),
    ]
    assert schema(pipeline, engine, "s") == [
        ("id", "INTEGER"),
        ("name", "VARCHAR"),
        ("first", "VARCHAR"),
        ("age", "INTEGER"),
    ]


def test_text_to_columns_trims_pieces_when_asked(engine: DuckDBEngine) -> None:
    pipeline = chain(
        seed("t", [("csv", "VARCHAR")], [[" a ;\tb\n"]]),
        gem("s", "TextToColumns", column="csv", delimiter=";", names=["x", "y"], trim=True),
    )
    assert rows_of(pipeline, engine, "s") == [("a", "b")]
    assert schema(pipeline, engine, "s") == [("x", "VARCHAR"), ("y", "VARCHAR")]


def test_text_to_columns_matches_the_delimiter_literally(engine: DuckDBEngine) -> None:
    pipeline = chain(
        seed("t", [("ip", "VARCHAR")], [["10.0.1.7"]]),
        gem("s", "TextToColumns", column="ip", delimiter=".", names=["a", "b", "c", "d"]),
    )
    assert rows_of(pipeline, engine, "s") == [("10", "0", "1", "7")]
    assert schema(pipeline, engine, "s") == [
        ("a", "VARCHAR"),
        ("b", "VARCHAR"),
        ("c", "VARCHAR"),
        ("d", "VARCHAR"),
    ]


def test_text_to_columns_splits_into_rows_keeping_null_text(engine: DuckDBEngine) -> None:
    pipeline = split(mode="rows")
    assert unordered(rows_of(pipeline, engine, "s")) == [
        (1, "Ann", 31),
        (1, "Lee", 31),
        (1, "Smith", 31),
        (2, "Bob", 40),
        (3, None, 50),
    ]
    assert columns(pipeline, engine, "s") == [
        Column("id", "INTEGER", frozenset({("people", "id")})),
        Column("name", "VARCHAR", frozenset({("people", "name")})),
        Column("age", "INTEGER", frozenset({("people", "age")})),
    ]


def test_text_to_columns_splits_into_a_named_row_column_beside_the_source(
    engine: DuckDBEngine,
) -> None:
    pipeline = split(mode="rows", row_column="part", keep_source=True)
    assert unordered(rows_of(pipeline, engine, "s")) == [
        (1, "Ann,Lee,Smith", "Ann", 31),
        (1, "Ann,Lee,Smith", "Lee", 31),
        (1, "Ann,Lee,Smith", "Smith", 31),
        (2, "Bob", "Bob", 40),
        (3, None, None, 50),
    ]
    assert schema(pipeline, engine, "s") == [
        ("id", "INTEGER"),
        ("name", "VARCHAR"),
        ("part", "VARCHAR"),
        ("age", "INTEGER"),
    ]


def test_text_to_columns_sql_transpiles_to_spark(engine: DuckDBEngine) -> None:
    pipeline = split(names=["first", "rest"], remainder="last")
    assert "TRY_ELEMENT_AT(SPLIT(" in spark_sql(pipeline, engine, "s")


def test_text_to_columns_rejects_a_column_that_is_not_text(engine: DuckDBEngine) -> None:
    pipeline = chain(people(), gem("s", "TextToColumns", column="age", delimiter=",", names=["a"]))
    assert problems(pipeline, engine) == [("not_text", "s", "/gems/1/properties/column")]


def test_text_to_columns_needs_names_to_split_into_columns(engine: DuckDBEngine) -> None:
    pipeline = split()
    assert problems(pipeline, engine) == [("no_columns", "s", "/gems/1/properties/names")]


def test_text_to_columns_rejects_a_name_taken_by_another_column(engine: DuckDBEngine) -> None:
    pipeline = split(names=["first", "age"])
    assert problems(pipeline, engine) == [("duplicate_column", "s", "/gems/1/properties/names")]


def test_text_to_columns_rejects_an_unknown_column(engine: DuckDBEngine) -> None:
    pipeline = chain(
        people(), gem("s", "TextToColumns", column="title", delimiter=",", names=["a"])
    )
    assert problems(pipeline, engine) == [("unknown_column", "s", "/gems/1/properties/column")]
