"""Interim previews: sampled tries must only ever show true output rows."""

from __future__ import annotations

from typing import Any

import pytest
from sqlglot import exp

from prophecy_jupyter.compiler import compile_pipeline
from prophecy_jupyter.compiler import preview as preview_module
from prophecy_jupyter.compiler.preview import preview_gem
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.gems.registry import gem_kinds
from tests.conftest import chain, compiled_ok, gem, make_pipeline, seed


@pytest.fixture
def tiny_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Samples of a few rows, so small tables exercise both the sampled and the exact path."""
    monkeypatch.setattr(preview_module, "SAMPLE_ROWS", (4, 8))


def orders_and_lines(n_orders: int, lines_per_order: int) -> list[dict[str, Any]]:
    return [
        seed(
            "orders",
            [("o_id", "INTEGER"), ("o_year", "INTEGER")],
            [[i, 2000 + i % 3] for i in range(n_orders)],
        ),
        seed(  # lines of the first half of the orders only: anti and outer joins see both
            "lines",
            [("l_order", "INTEGER"), ("l_qty", "INTEGER")],
            [[i % (n_orders // 2), i] for i in range(n_orders * lines_per_order)],
        ),
    ]


def joined(how: str, n_orders: int = 40, lines_per_order: int = 3) -> list[dict[str, Any]]:
    return [
        *orders_and_lines(n_orders, lines_per_order),
        gem("j", "Join", joins=[{"how": how, "condition": "orders.o_id = lines.l_order"}]),
    ]


def test_join_ports_that_may_be_sampled() -> None:
    join = gem_kinds()["Join"]
    props = join.Props.model_validate(
        {
            "joins": [
                {"how": "inner", "condition": "a.x = b.x"},
                {"how": "left", "condition": "a.x = c.x"},
            ]
        }
    )
    assert join.subset_inputs(props, 3) == {0, 1}
    props = join.Props.model_validate({"joins": [{"how": "full", "condition": "a.x = b.x"}]})
    assert join.subset_inputs(props, 2) == set()
    props = join.Props.model_validate({"joins": [{"how": "anti", "condition": "a.x = b.x"}]})
    assert join.subset_inputs(props, 2) == {0}


def test_no_sample_without_a_join(engine: DuckDBEngine) -> None:
    pipeline = chain(*orders_and_lines(10, 1)[:1], gem("f", "Filter", condition="o_year > 0"))
    assert compiled_ok(pipeline, engine).sampled_query("f", 5) is None


def test_no_sample_above_an_aggregate(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [
            *joined("inner"),
            gem(
                "agg",
                "Aggregate",
                group_by=[{"expression": "o_year"}],
                aggregates=[{"name": "n", "expression": "count(*)"}],
            ),
        ],
        [("orders", "j", "in0"), ("lines", "j", "in1"), ("j", "agg")],
    )
    assert compiled_ok(pipeline, engine).sampled_query("agg", 5) is None


def test_left_join_samples_only_its_left_side(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(joined("left"), [("orders", "j", "in0"), ("lines", "j", "in1")])
    sql = compiled_ok(pipeline, engine).sampled_query("j", 5)
    assert sql is not None
    limited = [cte.alias for cte in sql.find_all(exp.CTE) if cte.this.args.get("limit")]
    assert limited == ["orders"]


@pytest.mark.usefixtures("tiny_samples")
@pytest.mark.parametrize("how", ["inner", "left", "semi", "anti", "right", "full"])
def test_preview_rows_are_true_output_rows(engine: DuckDBEngine, how: str) -> None:
    pipeline = make_pipeline(joined(how), [("orders", "j", "in0"), ("lines", "j", "in1")])
    compiled = compile_pipeline(pipeline, engine)
    _, everything = engine.query(compiled.query("j"))
    result = preview_gem(compiled, engine, "j", limit=3)
    assert len(result.rows) == 3
    assert result.truncated
    assert set(result.rows) <= set(everything)


@pytest.mark.usefixtures("tiny_samples")
def test_sample_without_enough_matches_falls_back_to_the_exact_query(
    engine: DuckDBEngine,
) -> None:
    # Lines match only the last orders: a sample of the first rows finds none.
    gems = [
        seed("orders", [("o_id", "INTEGER")], [[i] for i in range(30)]),
        seed("lines", [("l_order", "INTEGER")], [[29 - i % 2] for i in range(30)]),
        gem("j", "Join", joins=[{"how": "inner", "condition": "orders.o_id = lines.l_order"}]),
    ]
    pipeline = make_pipeline(gems, [("orders", "j", "in0"), ("lines", "j", "in1")])
    compiled = compile_pipeline(pipeline, engine)
    result = preview_gem(compiled, engine, "j", limit=100)
    assert sorted(result.rows) == sorted(engine.query(compiled.query("j"))[1])
    assert len(result.rows) == 30
    assert not result.truncated


def test_preview_has_the_engine_types(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(joined("inner"), [("orders", "j", "in0"), ("lines", "j", "in1")])
    result = preview_gem(compile_pipeline(pipeline, engine), engine, "j", limit=5)
    assert result.columns == [
        ("o_id", "INTEGER"),
        ("o_year", "INTEGER"),
        ("l_order", "INTEGER"),
        ("l_qty", "INTEGER"),
    ]
