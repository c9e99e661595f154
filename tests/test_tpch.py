"""The TPC-H example: Q1, Q3, Q5 and Q6 drawn with visual gems answer like the hand-written
queries on the same data."""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from benchmarks.tpch_data import EXAMPLE, QUERIES, generate, reference_query, register_views
from prophecy_jupyter.automate.runner import run_pipeline
from prophecy_jupyter.compiler import CompiledPipeline, compile_pipeline, validate_pipeline
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.gems.sources import written_relation
from prophecy_jupyter.model import Pipeline, Project, dump_pipeline, load_pipeline

pytestmark = pytest.mark.slow

SF = 0.1
VISUAL_GEMS = {"Source", "Filter", "Reformat", "Join", "Aggregate", "OrderBy", "Limit", "Target"}

# Q1 on the reference generator's (dbgen's) SF 0.1 data, as DuckDB's tpch extension records it
# in answers/sf0.1/q01.csv: (l_returnflag, l_linestatus) → (sum_qty, sum_base_price, count_order).
Q1_ANSWER_SF01 = {
    ("A", "F"): (Decimal("3774200.00"), Decimal("5320753880.69"), 147790),
    ("N", "F"): (Decimal("95257.00"), Decimal("133737795.84"), 3765),
    ("N", "O"): (Decimal("7459297.00"), Decimal("10512270008.90"), 292000),
    ("R", "F"): (Decimal("3785523.00"), Decimal("5337950526.47"), 148301),
}

Result = tuple[list[str], list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def project() -> Project:
    return Project.open(EXAMPLE)


@pytest.fixture(scope="module")
def tpch() -> Iterator[DuckDBEngine]:
    """DuckDB rooted where ``data/*.parquet`` of the example resolve, with a view per table."""
    root = generate(SF)
    with DuckDBEngine(":memory:", root=root, threads=2) as engine:
        register_views(engine.connection, root)
        yield engine


def compiled_query(project: Project, engine: DuckDBEngine, name: str) -> CompiledPipeline:
    compiled = compile_pipeline(project.load_pipeline(name), engine)
    assert compiled.issues == [], [str(i) for i in compiled.issues]
    return compiled


def hand_written(engine: DuckDBEngine, name: str) -> Result:
    cursor = engine.connection.execute(reference_query(name))
    return [str(d[0]) for d in cursor.description], cursor.fetchall()


def same_value(actual: Any, expected: Any) -> bool:
    if isinstance(expected, (float, Decimal)) and isinstance(actual, (float, Decimal)):
        return math.isclose(float(actual), float(expected), rel_tol=1e-9, abs_tol=1e-9)
    return type(actual) is type(expected) and bool(actual == expected)


def assert_same_result(actual: Result, expected: Result) -> None:
    """Same columns by name, same rows in the same order, floats and decimals within 1e-9."""
    names, rows = actual
    expected_names, expected_rows = expected
    assert sorted(names) == sorted(expected_names)
    positions = [names.index(n) for n in expected_names]
    assert len(rows) == len(expected_rows)
    for number, (row, expected_row) in enumerate(zip(rows, expected_rows, strict=True)):
        reordered = [row[p] for p in positions]
        assert all(same_value(a, e) for a, e in zip(reordered, expected_row, strict=True)), (
            f"row {number}: {reordered} != {list(expected_row)}"
        )


def target_of(compiled: CompiledPipeline) -> str:
    (target,) = compiled.targets()
    return target


def test_project_holds_one_pipeline_per_query(project: Project) -> None:
    assert project.config.name == "tpch"
    assert project.database_path == ":memory:"
    assert project.pipeline_names() == list(QUERIES)


@pytest.mark.parametrize("name", QUERIES)
def test_pipeline_file_is_written_as_dump_pipeline_writes_it(name: str) -> None:
    text = (EXAMPLE / "pipelines" / f"{name}.pipeline.json").read_text(encoding="utf-8")
    assert dump_pipeline(load_pipeline(text)) == text


@pytest.mark.parametrize("name", QUERIES)
def test_pipeline_is_drawn_with_visual_gems_only(project: Project, name: str) -> None:
    kinds = {g.kind for g in project.load_pipeline(name).gems}
    assert "SQLStatement" not in kinds
    assert kinds <= VISUAL_GEMS


@pytest.mark.parametrize("name", QUERIES)
def test_every_gem_has_its_own_place_on_the_canvas(project: Project, name: str) -> None:
    pipeline: Pipeline = project.load_pipeline(name)
    positions = {(g.position.x, g.position.y) for g in pipeline.gems if g.position is not None}
    assert len(positions) == len(pipeline.gems)


@pytest.mark.parametrize("name", QUERIES)
def test_pipeline_validates_and_ends_in_its_result_table(
    project: Project, tpch: DuckDBEngine, name: str
) -> None:
    assert validate_pipeline(project.load_pipeline(name), tpch) == []
    compiled = compiled_query(project, tpch, name)
    props = compiled.target_properties(target_of(compiled))
    assert (props.format, props.table) == ("table", f"{name}_result")


@pytest.mark.parametrize("name", QUERIES)
def test_pipeline_answers_like_the_hand_written_query(
    project: Project, tpch: DuckDBEngine, name: str
) -> None:
    compiled = compiled_query(project, tpch, name)
    actual = tpch.query(compiled.query(target_of(compiled)))
    expected = hand_written(tpch, name)
    assert expected[1], "the reference query returned no rows"
    assert_same_result(actual, expected)


@pytest.mark.parametrize("name", QUERIES)
def test_run_writes_the_hand_written_answer_to_the_target_table(
    project: Project, tpch: DuckDBEngine, name: str
) -> None:
    result = run_pipeline(project.load_pipeline(name), tpch)
    assert result.status == "succeeded", result.error
    compiled = compiled_query(project, tpch, name)
    written = tpch.query(written_relation(compiled.target_properties(target_of(compiled))))
    assert_same_result(written, hand_written(tpch, name))


def test_q1_matches_the_reference_answer(project: Project, tpch: DuckDBEngine) -> None:
    compiled = compiled_query(project, tpch, "q1")
    names, rows = tpch.query(compiled.query(target_of(compiled)))
    answer = {
        (r[names.index("l_returnflag")], r[names.index("l_linestatus")]): (
            r[names.index("sum_qty")],
            r[names.index("sum_base_price")],
            r[names.index("count_order")],
        )
        for r in rows
    }
    assert answer == Q1_ANSWER_SF01


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("q1", {"delta": 60}),
        ("q3", {"segment": "MACHINERY", "cutoff_date": "1995-03-20"}),
        ("q5", {"region": "EUROPE", "start_date": "1995-01-01"}),
        ("q6", {"start_date": "1995-01-01", "discount": 0.05, "quantity": 25}),
    ],
)
def test_parameters_substitute_like_the_query_text(
    project: Project, tpch: DuckDBEngine, name: str, params: dict[str, Any]
) -> None:
    compiled = compile_pipeline(project.load_pipeline(name), tpch, params)
    assert compiled.issues == []
    text = reference_query(name)
    substitutions = {
        "q1": [("interval '90' day", "interval '60' day")],
        "q3": [("'BUILDING'", "'MACHINERY'"), ("1995-03-15", "1995-03-20")],
        "q5": [("'ASIA'", "'EUROPE'"), ("1994-01-01", "1995-01-01")],
        "q6": [("1994-01-01", "1995-01-01"), ("0.06", "0.05"), ("< 24", "< 25")],
    }[name]
    for old, new in substitutions:
        assert old in text
        text = text.replace(old, new)
    cursor = tpch.connection.execute(text)
    expected = [str(d[0]) for d in cursor.description], cursor.fetchall()
    assert expected[1]
    assert_same_result(tpch.query(compiled.query(target_of(compiled))), expected)
