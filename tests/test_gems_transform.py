"""Single-input gems on small seeds: Filter, Reformat, OrderBy, Limit, Deduplicate,
WindowFunction and Aggregate."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.model import Pipeline
from tests.conftest import chain, compiled_ok, gem, issues_of, make_pipeline, rows_of, seed

SALES_COLUMNS = [
    ("id", "INTEGER"),
    ("region", "VARCHAR"),
    ("day", "DATE"),
    ("amount", "DECIMAL(10,2)"),
]
SALES_ROWS: list[list[Any]] = [
    [1, "eu", "2023-12-30", "10.00"],
    [2, "eu", "2024-01-02", "5.50"],
    [3, "us", "2024-01-02", "7.25"],
    [4, "us", "2024-02-10", None],
    [5, None, "2024-03-01", "1.00"],
]


def sales(*gems: dict[str, Any]) -> Pipeline:
    """The sales seed feeding the given gems in a line."""
    return chain(seed("sales", SALES_COLUMNS, SALES_ROWS), *gems)


def numbers(values: list[Any], *gems: dict[str, Any]) -> Pipeline:
    """A seed of (k, v) rows, k counting from 1, feeding the given gems."""
    rows = [[i, v] for i, v in enumerate(values, start=1)]
    return chain(seed("nums", [("k", "INTEGER"), ("v", "INTEGER")], rows), *gems)


def issue_codes(pipeline: Pipeline, engine: DuckDBEngine) -> list[tuple[str, str | None]]:
    return [(i.code, i.field) for i in issues_of(pipeline, engine)]


# -- Filter ---------------------------------------------------------------------------------


def test_filter_keeps_rows_where_condition_is_true(engine: DuckDBEngine) -> None:
    pipeline = sales(gem("f", "Filter", condition="region = 'us' and amount > 5"))
    assert rows_of(pipeline, engine, "f") == [(3, "us", dt.date(2024, 1, 2), Decimal("7.25"))]


def test_filter_drops_rows_where_condition_is_null(engine: DuckDBEngine) -> None:
    pipeline = sales(gem("f", "Filter", condition="amount < 100"))
    assert [r[0] for r in rows_of(pipeline, engine, "f")] == [1, 2, 3, 5]


def test_filter_binds_a_parameter_as_a_literal(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [
            seed("nums", [("k", "INTEGER")], [[1], [2], [3]]),
            gem("f", "Filter", condition="k >= $low"),
        ],
        [("nums", "f")],
        parameters=[{"name": "low", "type": "integer", "default": 2}],
    )
    assert rows_of(pipeline, engine, "f") == [(2,), (3,)]
    assert rows_of(pipeline, engine, "f", low=3) == [(3,)]


def test_filter_on_unknown_column_is_an_issue(engine: DuckDBEngine) -> None:
    pipeline = sales(gem("f", "Filter", condition="colour = 'red'"))
    assert issue_codes(pipeline, engine) == [("unknown_column", "/gems/1/properties/condition")]


# -- Reformat -------------------------------------------------------------------------------


def test_reformat_selects_listed_columns_in_listed_order(engine: DuckDBEngine) -> None:
    pipeline = sales(gem("r", "Reformat", columns=[{"name": "region"}, {"name": "id"}]))
    assert rows_of(pipeline, engine, "r")[:2] == [("eu", 1), ("eu", 2)]
    assert [c.name for c in compiled_ok(pipeline, engine).columns("r")] == ["region", "id"]


def test_reformat_computes_an_expression(engine: DuckDBEngine) -> None:
    pipeline = sales(
        gem(
            "r",
            "Reformat",
            columns=[
                {"name": "id"},
                {"name": "label", "expression": "upper(coalesce(region, 'none')) || '-' || id"},
            ],
        )
    )
    assert rows_of(pipeline, engine, "r") == [
        (1, "EU-1"),
        (2, "EU-2"),
        (3, "US-3"),
        (4, "US-4"),
        (5, "NONE-5"),
    ]


def test_reformat_renames_a_column(engine: DuckDBEngine) -> None:
    pipeline = sales(
        gem(
            "r",
            "Reformat",
            columns=[{"name": "sale_id", "expression": "id"}],
            include_remaining=True,
            drop=["id", "day", "amount"],
        )
    )
    assert [c.name for c in compiled_ok(pipeline, engine).columns("r")] == ["region", "sale_id"]
    assert rows_of(pipeline, engine, "r")[0] == ("eu", 1)


def test_reformat_include_remaining_with_drop(engine: DuckDBEngine) -> None:
    pipeline = sales(
        gem("r", "Reformat", include_remaining=True, drop=["day", "AMOUNT"]),
        gem("only_eu", "Filter", condition="region = 'eu'"),
    )
    assert rows_of(pipeline, engine, "only_eu") == [(1, "eu"), (2, "eu")]


def test_reformat_replaces_a_remaining_column_in_place_and_appends_new_ones(
    engine: DuckDBEngine,
) -> None:
    pipeline = sales(
        gem(
            "r",
            "Reformat",
            include_remaining=True,
            drop=["day"],
            columns=[
                {"name": "doubled", "expression": "amount * 2"},
                {"name": "region", "expression": "coalesce(region, '?')"},
            ],
        )
    )
    compiled = compiled_ok(pipeline, engine)
    assert [c.name for c in compiled.columns("r")] == ["id", "region", "amount", "doubled"]
    assert rows_of(pipeline, engine, "r")[4] == (5, "?", Decimal("1.00"), Decimal("2.00"))


def test_reformat_two_columns_of_one_name_is_an_issue(engine: DuckDBEngine) -> None:
    pipeline = sales(
        gem(
            "r",
            "Reformat",
            columns=[{"name": "x", "expression": "id"}, {"name": "X", "expression": "id + 1"}],
        )
    )
    assert issue_codes(pipeline, engine) == [("duplicate_column", "/gems/1/properties/columns")]


def test_reformat_two_columns_replacing_one_input_column_is_an_issue(
    engine: DuckDBEngine,
) -> None:
    pipeline = sales(
        gem(
            "r",
            "Reformat",
            include_remaining=True,
            columns=[
                {"name": "amount", "expression": "amount + 1"},
                {"name": "amount", "expression": "amount + 2"},
            ],
        )
    )
    assert issue_codes(pipeline, engine) == [("duplicate_column", "/gems/1/properties/columns")]


def test_reformat_dropping_an_unknown_column_is_an_issue(engine: DuckDBEngine) -> None:
    pipeline = sales(gem("r", "Reformat", include_remaining=True, drop=["colour"]))
    assert issue_codes(pipeline, engine) == [("unknown_column", "/gems/1/properties/drop/0")]


def test_reformat_with_no_columns_is_an_issue(engine: DuckDBEngine) -> None:
    pipeline = sales(gem("r", "Reformat"))
    assert issue_codes(pipeline, engine) == [("no_columns", "/gems/1/properties/columns")]


# -- OrderBy --------------------------------------------------------------------------------


def test_order_by_ascending(engine: DuckDBEngine) -> None:
    pipeline = numbers([3, 1, 2], gem("o", "OrderBy", keys=[{"expression": "v"}]))
    assert rows_of(pipeline, engine, "o") == [(2, 1), (3, 2), (1, 3)]


def test_order_by_descending(engine: DuckDBEngine) -> None:
    pipeline = numbers(
        [3, 1, 2], gem("o", "OrderBy", keys=[{"expression": "v", "direction": "desc"}])
    )
    assert rows_of(pipeline, engine, "o") == [(1, 3), (3, 2), (2, 1)]


def test_order_by_default_nulls_follow_duckdb_last_either_way(engine: DuckDBEngine) -> None:
    ascending = numbers([None, 2, 1], gem("o", "OrderBy", keys=[{"expression": "v"}]))
    descending = numbers(
        [None, 2, 1], gem("o", "OrderBy", keys=[{"expression": "v", "direction": "desc"}])
    )
    assert rows_of(ascending, engine, "o") == [(3, 1), (2, 2), (1, None)]
    assert rows_of(descending, engine, "o") == [(2, 2), (3, 1), (1, None)]


def test_order_by_nulls_first_and_last(engine: DuckDBEngine) -> None:
    first = numbers([2, None, 1], gem("o", "OrderBy", keys=[{"expression": "v", "nulls": "first"}]))
    last = numbers(
        [2, None, 1],
        gem("o", "OrderBy", keys=[{"expression": "v", "direction": "desc", "nulls": "last"}]),
    )
    assert rows_of(first, engine, "o") == [(2, None), (3, 1), (1, 2)]
    assert rows_of(last, engine, "o") == [(1, 2), (3, 1), (2, None)]


def test_order_by_several_keys_and_an_expression(engine: DuckDBEngine) -> None:
    pipeline = numbers(
        [1, 2, 3, 4],
        gem(
            "o",
            "OrderBy",
            keys=[{"expression": "v % 2"}, {"expression": "k", "direction": "desc"}],
        ),
    )
    assert rows_of(pipeline, engine, "o") == [(4, 4), (2, 2), (3, 3), (1, 1)]


# -- Limit ----------------------------------------------------------------------------------


def test_limit_keeps_the_first_rows_of_an_ordered_input(engine: DuckDBEngine) -> None:
    pipeline = numbers(
        [5, 3, 4, 1],
        gem("o", "OrderBy", keys=[{"expression": "v"}]),
        gem("top", "Limit", count=2),
    )
    assert rows_of(pipeline, engine, "top") == [(4, 1), (2, 3)]


def test_limit_with_offset_skips_rows_first(engine: DuckDBEngine) -> None:
    pipeline = numbers(
        [5, 3, 4, 1],
        gem("o", "OrderBy", keys=[{"expression": "v"}]),
        gem("page", "Limit", count=2, offset=1),
    )
    assert rows_of(pipeline, engine, "page") == [(2, 3), (3, 4)]


def test_limit_zero_keeps_no_rows(engine: DuckDBEngine) -> None:
    pipeline = numbers([1, 2], gem("none", "Limit", count=0))
    assert rows_of(pipeline, engine, "none") == []


# -- Deduplicate ----------------------------------------------------------------------------

EVENTS = [("user", "VARCHAR"), ("seq", "INTEGER"), ("tie", "INTEGER"), ("what", "VARCHAR")]
EVENT_ROWS = [
    ["a", 1, 1, "a-first"],
    ["a", 3, 1, "a-last-low-tie"],
    ["a", 3, 2, "a-last"],
    ["a", 2, 9, "a-middle"],
    ["b", 5, 1, "b-only"],
]


def events(**dedup: Any) -> Pipeline:
    return chain(seed("events", EVENTS, EVENT_ROWS), gem("d", "Deduplicate", **dedup))


def test_deduplicate_distinct_drops_repeated_rows(engine: DuckDBEngine) -> None:
    pipeline = numbers(
        [1, 1, 2], gem("r", "Reformat", columns=[{"name": "v"}]), gem("d", "Deduplicate")
    )
    assert sorted(rows_of(pipeline, engine, "d")) == [(1,), (2,)]


def test_deduplicate_first_keeps_earliest_row_per_key(engine: DuckDBEngine) -> None:
    pipeline = events(mode="first", keys=["user"], order_by=[{"expression": "seq"}])
    assert sorted(r[3] for r in rows_of(pipeline, engine, "d")) == ["a-first", "b-only"]


def test_deduplicate_last_keeps_latest_row_per_key_with_ties_broken_by_order(
    engine: DuckDBEngine,
) -> None:
    pipeline = events(
        mode="last", keys=["user"], order_by=[{"expression": "seq"}, {"expression": "tie"}]
    )
    assert sorted(rows_of(pipeline, engine, "d")) == [
        ("a", 3, 2, "a-last"),
        ("b", 5, 1, "b-only"),
    ]


def test_deduplicate_first_with_descending_order_keeps_the_largest(engine: DuckDBEngine) -> None:
    pipeline = events(
        mode="first",
        keys=["user"],
        order_by=[{"expression": "seq", "direction": "desc"}, {"expression": "tie"}],
    )
    assert sorted(r[3] for r in rows_of(pipeline, engine, "d")) == ["a-last-low-tie", "b-only"]


def test_deduplicate_keeps_the_input_columns(engine: DuckDBEngine) -> None:
    pipeline = events(mode="last", keys=["user"], order_by=[{"expression": "seq"}])
    assert [c.name for c in compiled_ok(pipeline, engine).columns("d")] == [
        "user",
        "seq",
        "tie",
        "what",
    ]


def test_deduplicate_by_unknown_key_is_an_issue(engine: DuckDBEngine) -> None:
    pipeline = events(mode="first", keys=["nobody"], order_by=[{"expression": "seq"}])
    assert issue_codes(pipeline, engine) == [("unknown_column", "/gems/1/properties/keys/0")]


# -- WindowFunction -------------------------------------------------------------------------


def test_window_row_number_per_partition(engine: DuckDBEngine) -> None:
    pipeline = sales(
        gem(
            "w",
            "WindowFunction",
            partition_by=["region"],
            order_by=[{"expression": "day", "direction": "desc"}, {"expression": "id"}],
            columns=[{"name": "rank", "expression": "row_number()"}],
        ),
        gem("r", "Reformat", columns=[{"name": "id"}, {"name": "rank"}]),
    )
    assert sorted(rows_of(pipeline, engine, "r")) == [(1, 2), (2, 1), (3, 2), (4, 1), (5, 1)]


def test_window_running_sum_with_frame(engine: DuckDBEngine) -> None:
    pipeline = numbers(
        [5, 3, 1, 10],
        gem(
            "w",
            "WindowFunction",
            order_by=[{"expression": "k"}],
            frame={"type": "rows", "start": "unbounded preceding", "end": "current row"},
            columns=[{"name": "running", "expression": "sum(v)"}],
        ),
    )
    assert sorted(rows_of(pipeline, engine, "w")) == [(1, 5, 5), (2, 3, 8), (3, 1, 9), (4, 10, 19)]


def test_window_sliding_frame_of_two_rows(engine: DuckDBEngine) -> None:
    pipeline = numbers(
        [5, 3, 1, 10],
        gem(
            "w",
            "WindowFunction",
            order_by=[{"expression": "k"}],
            frame={"start": "1 preceding", "end": "current row"},
            columns=[{"name": "pair", "expression": "sum(v)"}],
        ),
    )
    assert sorted(rows_of(pipeline, engine, "w")) == [(1, 5, 5), (2, 3, 8), (3, 1, 4), (4, 10, 11)]


def test_window_lag_reads_the_previous_row(engine: DuckDBEngine) -> None:
    pipeline = numbers(
        [5, 3, 1],
        gem(
            "w",
            "WindowFunction",
            order_by=[{"expression": "k"}],
            columns=[
                {"name": "previous", "expression": "lag(v)"},
                {"name": "change", "expression": "v - lag(v, 1, 0)"},
            ],
        ),
    )
    assert sorted(rows_of(pipeline, engine, "w")) == [(1, 5, None, 5), (2, 3, 5, -2), (3, 1, 3, -2)]


def test_window_with_its_own_over_clause_is_an_issue(engine: DuckDBEngine) -> None:
    pipeline = numbers(
        [1],
        gem(
            "w",
            "WindowFunction",
            columns=[{"name": "n", "expression": "row_number() over (order by k)"}],
        ),
    )
    assert issue_codes(pipeline, engine) == [
        ("window_in_window", "/gems/1/properties/columns/0/expression")
    ]


# -- Aggregate ------------------------------------------------------------------------------


def test_aggregate_groups_by_a_named_expression(engine: DuckDBEngine) -> None:
    pipeline = sales(
        gem(
            "a",
            "Aggregate",
            group_by=[{"expression": "year(day)", "name": "year"}],
            aggregates=[
                {"name": "orders", "expression": "count(*)"},
                {"name": "total", "expression": "sum(amount)"},
            ],
        )
    )
    assert sorted(rows_of(pipeline, engine, "a")) == [
        (2023, 1, Decimal("10.00")),
        (2024, 4, Decimal("13.75")),
    ]
    assert [c.name for c in compiled_ok(pipeline, engine).columns("a")] == [
        "year",
        "orders",
        "total",
    ]


def test_aggregate_group_by_column_keeps_its_name(engine: DuckDBEngine) -> None:
    pipeline = sales(
        gem(
            "a",
            "Aggregate",
            group_by=[{"expression": "region"}],
            aggregates=[{"name": "n", "expression": "count(amount)"}],
        )
    )
    assert sorted(rows_of(pipeline, engine, "a"), key=str) == [("eu", 2), ("us", 1), (None, 1)]


def test_aggregate_without_group_by_gives_one_row(engine: DuckDBEngine) -> None:
    pipeline = sales(
        gem(
            "a",
            "Aggregate",
            aggregates=[
                {"name": "n", "expression": "count(*)"},
                {"name": "biggest", "expression": "max(amount)"},
                {"name": "mean", "expression": "avg(amount)"},
            ],
        )
    )
    assert rows_of(pipeline, engine, "a") == [(5, Decimal("10.00"), 5.9375)]


def test_aggregate_having_on_an_aggregate_name(engine: DuckDBEngine) -> None:
    pipeline = sales(
        gem(
            "a",
            "Aggregate",
            group_by=[{"expression": "region"}],
            aggregates=[{"name": "total", "expression": "sum(amount)"}],
            having="total > 10",
        )
    )
    assert rows_of(pipeline, engine, "a") == [("eu", Decimal("15.50"))]


def test_aggregate_having_on_a_raw_aggregate(engine: DuckDBEngine) -> None:
    pipeline = sales(
        gem(
            "a",
            "Aggregate",
            group_by=[{"expression": "region"}],
            aggregates=[{"name": "total", "expression": "sum(amount)"}],
            having="count(*) = 2 and min(id) > 1",
        )
    )
    assert rows_of(pipeline, engine, "a") == [("us", Decimal("7.25"))]


def test_aggregate_non_aggregated_column_is_an_issue(engine: DuckDBEngine) -> None:
    pipeline = sales(
        gem(
            "a",
            "Aggregate",
            group_by=[{"expression": "region"}],
            aggregates=[{"name": "what", "expression": "amount + 1"}],
        )
    )
    (issue,) = issues_of(pipeline, engine)
    assert (issue.code, issue.field) == (
        "not_aggregated",
        "/gems/1/properties/aggregates/0/expression",
    )
    assert "amount" in issue.message


def test_aggregate_expression_over_a_group_key_is_allowed(engine: DuckDBEngine) -> None:
    pipeline = sales(
        gem(
            "a",
            "Aggregate",
            group_by=[{"expression": "id"}],
            aggregates=[{"name": "shifted", "expression": "id * 10 + count(*)"}],
        ),
        gem("o", "OrderBy", keys=[{"expression": "id"}]),
    )
    assert rows_of(pipeline, engine, "o")[:2] == [(1, 11), (2, 21)]


def test_aggregate_filter_clause_may_name_ungrouped_columns(engine: DuckDBEngine) -> None:
    pipeline = sales(
        gem(
            "a",
            "Aggregate",
            aggregates=[
                {"name": "eu_sales", "expression": "count(*) filter (where region = 'eu')"},
                {"name": "early", "expression": "sum(amount) filter (day < DATE '2024-01-15')"},
            ],
        )
    )
    assert rows_of(pipeline, engine, "a") == [(2, Decimal("22.75"))]


def test_aggregate_accepts_duckdb_aggregates_sqlglot_does_not_know(engine: DuckDBEngine) -> None:
    pipeline = numbers(
        [2, 3, 4],
        gem(
            "a",
            "Aggregate",
            aggregates=[
                {"name": "product", "expression": "product(v)"},
                {"name": "mean", "expression": "mean(v)"},
            ],
        ),
    )
    assert rows_of(pipeline, engine, "a") == [(24.0, 3.0)]


def test_aggregate_unnamed_group_expression_is_an_issue(engine: DuckDBEngine) -> None:
    pipeline = sales(
        gem(
            "a",
            "Aggregate",
            group_by=[{"expression": "year(day)"}],
            aggregates=[{"name": "n", "expression": "count(*)"}],
        )
    )
    assert issue_codes(pipeline, engine) == [("missing_name", "/gems/1/properties/group_by/0/name")]
