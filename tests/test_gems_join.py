"""Join and SetOperation on small seeds that include NULL keys."""

from __future__ import annotations

from typing import Any

import pytest

from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.model import Pipeline
from tests.conftest import compiled_ok, gem, issues_of, make_pipeline, rows_of, seed

LEFT = seed("l", [("id", "INTEGER"), ("lv", "VARCHAR")], [[1, "l1"], [2, "l2"], [None, "l-null"]])
RIGHT = seed("r", [("rid", "INTEGER"), ("rv", "VARCHAR")], [[2, "r2"], [3, "r3"], [None, "r-null"]])
THIRD = seed("t", [("tid", "INTEGER"), ("tv", "VARCHAR")], [[2, "t2"], [3, "t3"]])


def joined(*clauses: dict[str, Any], columns: list[dict[str, str]] | None = None) -> Pipeline:
    """l and r (and t when there are two clauses) joined by gem ``j``."""
    inputs = [LEFT, RIGHT, THIRD][: len(clauses) + 1]
    props: dict[str, Any] = {"joins": list(clauses)}
    if columns is not None:
        props["columns"] = columns
    return make_pipeline(
        [*inputs, gem("j", "Join", **props)],
        [(g["id"], "j", f"in{i}") for i, g in enumerate(inputs)],
    )


def join_rows(engine: DuckDBEngine, how: str, condition: str = "l.id = r.rid") -> list[Any]:
    return sorted(rows_of(joined({"how": how, "condition": condition}), engine, "j"), key=str)


def issue_codes(pipeline: Pipeline, engine: DuckDBEngine) -> list[tuple[str, str | None]]:
    return [(i.code, i.field) for i in issues_of(pipeline, engine)]


# -- Join types -----------------------------------------------------------------------------


def test_inner_join_keeps_matches_only(engine: DuckDBEngine) -> None:
    assert join_rows(engine, "inner") == [(2, "l2", 2, "r2")]


def test_left_join_keeps_every_left_row(engine: DuckDBEngine) -> None:
    assert join_rows(engine, "left") == [
        (1, "l1", None, None),
        (2, "l2", 2, "r2"),
        (None, "l-null", None, None),
    ]


def test_right_join_keeps_every_right_row(engine: DuckDBEngine) -> None:
    assert join_rows(engine, "right") == [
        (2, "l2", 2, "r2"),
        (None, None, 3, "r3"),
        (None, None, None, "r-null"),
    ]


def test_full_join_keeps_every_row_of_both(engine: DuckDBEngine) -> None:
    assert join_rows(engine, "full") == [
        (1, "l1", None, None),
        (2, "l2", 2, "r2"),
        (None, "l-null", None, None),
        (None, None, 3, "r3"),
        (None, None, None, "r-null"),
    ]


def test_cross_join_pairs_every_row(engine: DuckDBEngine) -> None:
    rows = join_rows(engine, "cross", condition="")
    assert len(rows) == 9
    assert {(r[1], r[3]) for r in rows} == {
        (lv, rv) for lv in ("l1", "l2", "l-null") for rv in ("r2", "r3", "r-null")
    }


def test_semi_join_keeps_left_rows_with_a_match_and_only_left_columns(
    engine: DuckDBEngine,
) -> None:
    assert join_rows(engine, "semi") == [(2, "l2")]
    pipeline = joined({"how": "semi", "condition": "l.id = r.rid"})
    assert [c.name for c in compiled_ok(pipeline, engine).columns("j")] == ["id", "lv"]


def test_anti_join_keeps_left_rows_without_a_match_including_null_keys(
    engine: DuckDBEngine,
) -> None:
    assert join_rows(engine, "anti") == [(1, "l1"), (None, "l-null")]


def test_join_condition_may_be_any_boolean_expression(engine: DuckDBEngine) -> None:
    assert join_rows(engine, "inner", condition="l.id < r.rid and r.rv <> 'r2'") == [
        (1, "l1", 3, "r3"),
        (2, "l2", 3, "r3"),
    ]


def test_three_input_join_chains_clauses_in_port_order(engine: DuckDBEngine) -> None:
    pipeline = joined(
        {"how": "inner", "condition": "l.id = r.rid"},
        {"how": "left", "condition": "r.rid = t.tid and l.lv = 'l2'"},
    )
    assert rows_of(pipeline, engine, "j") == [(2, "l2", 2, "r2", 2, "t2")]


def test_three_input_join_with_anti_then_left(engine: DuckDBEngine) -> None:
    pipeline = joined(
        {"how": "anti", "condition": "l.id = r.rid"},
        {"how": "left", "condition": "l.id + 2 = t.tid"},
    )
    assert sorted(rows_of(pipeline, engine, "j"), key=str) == [
        (1, "l1", 3, "t3"),
        (None, "l-null", None, None),
    ]


def test_join_with_custom_output_columns(engine: DuckDBEngine) -> None:
    pipeline = joined(
        {"how": "full", "condition": "l.id = r.rid"},
        columns=[
            {"name": "key", "expression": "coalesce(l.id, r.rid)"},
            {"name": "pair", "expression": "coalesce(lv, '-') || '/' || coalesce(rv, '-')"},
        ],
    )
    assert sorted(rows_of(pipeline, engine, "j"), key=str) == [
        (1, "l1/-"),
        (2, "l2/r2"),
        (3, "-/r3"),
        (None, "-/r-null"),
        (None, "l-null/-"),
    ]
    assert compiled_ok(pipeline, engine).lineage("j") == {
        "key": [["l", "id"], ["r", "rid"]],
        "pair": [["l", "lv"], ["r", "rv"]],
    }


def test_inner_join_on_same_named_keys_keeps_one_key_column(engine: DuckDBEngine) -> None:
    other = seed("o", [("id", "INTEGER"), ("ov", "VARCHAR")], [[2, "o2"]])
    pipeline = make_pipeline(
        [LEFT, other, gem("j", "Join", joins=[{"condition": "l.id = o.id"}])],
        [("l", "j", "in0"), ("o", "j", "in1")],
    )
    assert [c.name for c in compiled_ok(pipeline, engine).columns("j")] == ["id", "lv", "ov"]
    assert rows_of(pipeline, engine, "j") == [(2, "l2", "o2")]


def test_full_join_with_same_named_columns_is_a_duplicate_name_issue(
    engine: DuckDBEngine,
) -> None:
    other = seed("o", [("id", "INTEGER"), ("ov", "VARCHAR")], [[2, "o2"]])
    pipeline = make_pipeline(
        [LEFT, other, gem("j", "Join", joins=[{"how": "full", "condition": "l.id = o.id"}])],
        [("l", "j", "in0"), ("o", "j", "in1")],
    )
    assert issue_codes(pipeline, engine) == [("duplicate_column", "/gems/2/properties/columns")]


def test_custom_columns_with_one_name_twice_is_an_issue(engine: DuckDBEngine) -> None:
    pipeline = joined(
        {"how": "inner", "condition": "l.id = r.rid"},
        columns=[{"name": "v", "expression": "lv"}, {"name": "V", "expression": "rv"}],
    )
    assert issue_codes(pipeline, engine) == [("duplicate_column", "/gems/2/properties/columns")]


def test_unqualified_column_in_both_inputs_is_ambiguous(engine: DuckDBEngine) -> None:
    other = seed("o", [("id", "INTEGER")], [[2]])
    pipeline = make_pipeline(
        [LEFT, other, gem("j", "Join", joins=[{"condition": "id = 2"}])],
        [("l", "j", "in0"), ("o", "j", "in1")],
    )
    assert issue_codes(pipeline, engine) == [
        ("ambiguous_column", "/gems/2/properties/joins/0/condition")
    ]


def test_join_clause_count_must_match_inputs(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [LEFT, RIGHT, gem("j", "Join", joins=[{"condition": "l.id = r.rid"}] * 2)],
        [("l", "j", "in0"), ("r", "j", "in1")],
    )
    assert issue_codes(pipeline, engine) == [("join_clauses", "/gems/2/properties/joins")]


def test_cross_join_with_a_condition_is_an_issue(engine: DuckDBEngine) -> None:
    pipeline = joined({"how": "cross", "condition": "l.id = r.rid"})
    assert issue_codes(pipeline, engine) == [
        ("cross_condition", "/gems/2/properties/joins/0/condition")
    ]


def test_inner_join_without_a_condition_is_an_issue(engine: DuckDBEngine) -> None:
    pipeline = joined({"how": "inner"})
    assert issue_codes(pipeline, engine) == [
        ("missing_condition", "/gems/2/properties/joins/0/condition")
    ]


def test_join_condition_may_not_name_a_later_input(engine: DuckDBEngine) -> None:
    pipeline = joined(
        {"how": "inner", "condition": "l.id = t.tid"},
        {"how": "inner", "condition": "r.rid = t.tid"},
    )
    assert issue_codes(pipeline, engine)[0] == (
        "unknown_column",
        "/gems/3/properties/joins/0/condition",
    )


def test_join_condition_may_not_name_an_input_a_semi_join_consumed(engine: DuckDBEngine) -> None:
    pipeline = joined(
        {"how": "semi", "condition": "l.id = r.rid"},
        {"how": "left", "condition": "r.rid = t.tid"},
    )
    assert issue_codes(pipeline, engine) == [
        ("unknown_column", "/gems/3/properties/joins/1/condition")
    ]


# -- SetOperation ---------------------------------------------------------------------------

A = seed("a", [("x", "INTEGER"), ("y", "VARCHAR")], [[1, "one"], [2, "two"], [2, "two"]])
B = seed("b", [("p", "INTEGER"), ("q", "VARCHAR")], [[2, "two"], [3, "three"]])


def set_op(operation: str, *inputs: dict[str, Any], by: str = "position") -> Pipeline:
    sources = list(inputs) or [A, B]
    return make_pipeline(
        [*sources, gem("s", "SetOperation", operation=operation, by=by)],
        [(g["id"], "s", f"in{i}") for i, g in enumerate(sources)],
    )


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("union_all", [(1, "one"), (2, "two"), (2, "two"), (2, "two"), (3, "three")]),
        ("union", [(1, "one"), (2, "two"), (3, "three")]),
        ("intersect", [(2, "two")]),
        ("intersect_all", [(2, "two")]),
        ("except", [(1, "one")]),
        ("except_all", [(1, "one"), (2, "two")]),
    ],
)
def test_set_operation_by_position(
    engine: DuckDBEngine, operation: str, expected: list[tuple[Any, ...]]
) -> None:
    assert sorted(rows_of(set_op(operation), engine, "s")) == expected


def test_set_operation_by_position_takes_the_first_inputs_names(engine: DuckDBEngine) -> None:
    assert [c.name for c in compiled_ok(set_op("union_all"), engine).columns("s")] == ["x", "y"]


def test_set_operation_lineage_joins_both_inputs(engine: DuckDBEngine) -> None:
    assert compiled_ok(set_op("union"), engine).lineage("s") == {
        "x": [["a", "x"], ["b", "p"]],
        "y": [["a", "y"], ["b", "q"]],
    }


def test_set_operation_of_three_inputs(engine: DuckDBEngine) -> None:
    c = seed("c", [("n", "INTEGER"), ("s", "VARCHAR")], [[9, "nine"]])
    assert sorted(rows_of(set_op("union", A, B, c), engine, "s")) == [
        (1, "one"),
        (2, "two"),
        (3, "three"),
        (9, "nine"),
    ]


def test_except_of_three_inputs_subtracts_both(engine: DuckDBEngine) -> None:
    c = seed("c", [("n", "INTEGER"), ("s", "VARCHAR")], [[1, "one"]])
    assert rows_of(set_op("except", A, B, c), engine, "s") == []


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("union_all", [(1, "one", None), (2, "two", None), (2, "two", None), (2, "two", True)]),
        ("union", [(1, "one", None), (2, "two", None), (2, "two", True)]),
        ("intersect", []),
        ("except", [(1, "one", None), (2, "two", None)]),
    ],
)
def test_set_operation_by_name_fills_missing_columns_with_null(
    engine: DuckDBEngine, operation: str, expected: list[tuple[Any, ...]]
) -> None:
    reordered = seed(
        "b", [("flag", "BOOLEAN"), ("Y", "VARCHAR"), ("x", "INTEGER")], [[True, "two", 2]]
    )
    pipeline = set_op(operation, A, reordered, by="name")
    assert sorted(rows_of(pipeline, engine, "s"), key=str) == expected
    assert [c.name for c in compiled_ok(pipeline, engine).columns("s")] == ["x", "y", "flag"]


def test_set_operation_column_count_mismatch_is_an_issue(engine: DuckDBEngine) -> None:
    narrow = seed("b", [("x", "INTEGER")], [[1]])
    assert issue_codes(set_op("union_all", A, narrow), engine) == [
        ("column_count", "/gems/2/properties/by")
    ]


def test_set_operation_types_are_the_common_supertype(engine: DuckDBEngine) -> None:
    wide = seed("b", [("p", "BIGINT"), ("q", "VARCHAR")], [[2**40, "big"]])
    compiled = compiled_ok(set_op("union_all", A, wide), engine)
    assert [(c.name, c.type) for c in compiled.columns("s")] == [("x", "BIGINT"), ("y", "VARCHAR")]
    assert sorted(rows_of(set_op("union_all", A, wide), engine, "s"))[-1] == (2**40, "big")


def test_one_gem_feeding_two_join_inputs_is_refused(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [
            seed("a", [("x", "INTEGER")], [[1]]),
            gem("j", "Join", joins=[{"how": "inner", "condition": "a.x = a.x"}]),
        ],
        [("a", "j", "in0"), ("a", "j", "in1")],
    )
    (issue,) = issues_of(pipeline, engine)
    assert (issue.code, issue.gem_id, issue.field) == ("self_join", "j", "/gems/1/properties/joins")
