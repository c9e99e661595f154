"""DynamicInput on DuckDB with real tables and files: a query or a file per input row, the
results unioned by name; values stay literals, table names and paths are checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp

from prophecy_jupyter.automate.runner import run_pipeline
from prophecy_jupyter.compiler import compile_pipeline
from prophecy_jupyter.connections import Connection, ConnectionStore
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.fabrics import SecretStore
from prophecy_jupyter.gems.dynamic import (
    SlotRejected,
    instantiate,
    parse_template,
    render_path,
)
from prophecy_jupyter.model.project import init_project
from tests.conftest import gem, make_pipeline, seed


def dynamic(gem_id: str = "dyn", **properties: Any) -> dict[str, Any]:
    return gem(gem_id, "DynamicInput", **properties)


def rows(engine: DuckDBEngine, sql: str) -> list[tuple[Any, ...]]:
    query: exp.Expr = exp.maybe_parse(sql, dialect="duckdb")
    assert isinstance(query, exp.Query)
    _, found = engine.query(query)
    return found


@pytest.fixture
def sales(engine: DuckDBEngine) -> DuckDBEngine:
    connection = engine.connection
    connection.execute(
        "CREATE TABLE sales AS SELECT * FROM (VALUES ('north', 10), ('north', 5), "
        "('south', 7), ('east', 1), ('x''; DROP TABLE sales; --', 99)) t(region, amount)"
    )
    connection.execute("CREATE TABLE sales_2023 AS SELECT 'a' AS item, 1 AS qty")
    connection.execute("CREATE TABLE sales_2024 AS SELECT 'b' AS item, 2 AS qty, 9.5 AS price")
    return engine


def regions(*names: str) -> dict[str, Any]:
    return seed("regions", [("region", "VARCHAR")], [[n] for n in names])


def test_query_mode_runs_one_query_per_row_and_unions_them(sales: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [
            regions("north", "south"),
            dynamic(
                query="SELECT region, sum(amount) AS total FROM sales WHERE region = {region} "
                "GROUP BY region",
                origin_column="input_row",
            ),
        ],
        [("regions", "dyn")],
    )
    compiled = compile_pipeline(pipeline, sales)
    assert compiled.issues == []
    _, found = sales.query(compiled.query("dyn"))
    assert sorted(found) == [("north", 15, 1), ("south", 7, 2)]
    assert [c.name for c in compiled.columns("dyn")] == ["region", "total", "input_row"]


def test_a_value_that_looks_like_sql_stays_a_literal(sales: DuckDBEngine) -> None:
    hostile = "x'; DROP TABLE sales; --"
    pipeline = make_pipeline(
        [
            regions(hostile, "north' OR '1'='1"),
            dynamic(query="SELECT amount FROM sales WHERE region = {region}"),
        ],
        [("regions", "dyn")],
    )
    compiled = compile_pipeline(pipeline, sales)
    assert compiled.issues == []
    _, found = sales.query(compiled.query("dyn"))
    assert found == [(99,)]  # the row whose region is that very text, nothing more
    assert len(rows(sales, "SELECT * FROM sales")) == 5


def test_table_names_come_from_rows_and_union_by_name(sales: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [
            seed("years", [("tbl", "VARCHAR")], [["sales_2023"], ["sales_2024"]]),
            dynamic(query="SELECT * FROM {tbl}"),
        ],
        [("years", "dyn")],
    )
    compiled = compile_pipeline(pipeline, sales)
    assert compiled.issues == []
    names, found = sales.query(compiled.query("dyn"))
    assert names == ["item", "qty", "price"]
    assert sorted(found, key=str) == [("a", 1, None), ("b", 2, pytest.approx(9.5))]


@pytest.mark.parametrize(
    "value", ["sales; DROP TABLE sales", "sales --", "1sales", "a.b.c.d", "sales WHERE true"]
)
def test_a_table_name_that_is_not_an_identifier_is_refused(sales: DuckDBEngine, value: str) -> None:
    pipeline = make_pipeline(
        [seed("years", [("tbl", "VARCHAR")], [[value]]), dynamic(query="SELECT * FROM {tbl}")],
        [("years", "dyn")],
    )
    issues = compile_pipeline(pipeline, sales).issues
    assert [(i.code, i.field) for i in issues] == [("invalid_value", "/gems/1/properties/query")]
    assert "is not a table name" in issues[0].message
    assert len(rows(sales, "SELECT * FROM sales")) == 5


def test_a_table_name_naming_a_gem_is_refused(sales: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [seed("years", [("tbl", "VARCHAR")], [["years"]]), dynamic(query="SELECT * FROM {tbl}")],
        [("years", "dyn")],
    )
    issues = compile_pipeline(pipeline, sales).issues
    assert [i.code for i in issues] == ["invalid_value"]
    assert "name of a gem" in issues[0].message


def test_row_cap_is_an_issue_on_max_rows(sales: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [
            regions("north", "south", "east"),
            dynamic(query="SELECT * FROM sales WHERE region = {region}", max_rows=2),
        ],
        [("regions", "dyn")],
    )
    issues = compile_pipeline(pipeline, sales).issues
    assert [(i.code, i.field) for i in issues] == [("too_many_rows", "/gems/1/properties/max_rows")]


def test_template_problems_point_at_line_and_column(sales: DuckDBEngine) -> None:
    cases = {
        "SELECT * FROM sales WHERE region = {nope}": ("unknown_column", 1, 36),
        "SELECT * FROM sales;\nDROP TABLE sales": ("multiple_statements", 1, 20),
        "DELETE FROM sales WHERE region = {region}": ("not_a_query", None, None),
        "SELECT * FROM read_csv({region})": ("forbidden_function", 1, 15),
        "SELECT * FROM my_reader({region})": ("table_function", None, None),
        "SELECT {region}.x FROM sales": ("misplaced_slot", 1, 8),
    }
    for text, (code, line, column) in cases.items():
        pipeline = make_pipeline([regions("north"), dynamic(query=text)], [("regions", "dyn")])
        issues = compile_pipeline(pipeline, sales).issues
        assert [i.code for i in issues] == [code], (text, issues)
        if line is not None:
            assert (issues[0].line, issues[0].column) == (line, column), text
    assert len(rows(sales, "SELECT * FROM sales")) == 5


def test_braces_inside_quotes_are_text_and_parameters_bind(sales: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [
            regions("north"),
            dynamic(
                query="SELECT '{region}' AS raw, {region} AS region, $min AS least "
                "FROM sales WHERE region = {region} AND amount >= $min"
            ),
        ],
        [("regions", "dyn")],
        parameters=[{"name": "min", "type": "integer", "default": 6}],
    )
    compiled = compile_pipeline(pipeline, sales)
    assert compiled.issues == []
    _, found = sales.query(compiled.query("dyn"))
    assert found == [("{region}", "north", 6)]


def test_an_empty_input_gives_an_empty_typed_result(sales: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [regions(), dynamic(query="SELECT region, amount FROM sales WHERE region = {region}")],
        [("regions", "dyn")],
    )
    compiled = compile_pipeline(pipeline, sales)
    assert compiled.issues == []
    names, found = sales.query(compiled.query("dyn"))
    assert (names, found) == (["region", "amount"], [])


def test_file_mode_reads_one_file_per_row(engine: DuckDBEngine, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "north.csv").write_text("id,amount\n1,10\n2,20\n")
    (tmp_path / "data" / "south.csv").write_text("id,amount,note\n3,30,late\n")
    pipeline = make_pipeline(
        [
            regions("north", "south"),
            dynamic(mode="file", path="data/{region}.csv", origin_column="file"),
        ],
        [("regions", "dyn")],
    )
    compiled = compile_pipeline(pipeline, engine)
    assert compiled.issues == []
    names, found = engine.query(compiled.query("dyn"))
    assert names == ["id", "amount", "note", "file"]
    by_id = {r[0]: dict(zip(names, r, strict=True)) for r in found}
    assert by_id[1]["file"] == "data/north.csv" and by_id[1]["note"] is None
    assert by_id[3]["note"] == "late" and by_id[3]["amount"] == 30
    assert len(found) == 3


def test_file_mode_parquet_and_json(engine: DuckDBEngine, tmp_path: Path) -> None:
    engine.connection.execute(
        f"COPY (SELECT 1 AS n) TO '{tmp_path / 'a.parquet'}' (FORMAT parquet)"
    )
    (tmp_path / "b.json").write_text('{"n": 2}\n{"n": 3}\n')
    for fmt, name, expected in (("parquet", "a", [(1,)]), ("json", "b", [(2,), (3,)])):
        pipeline = make_pipeline(
            [
                seed("files", [("name", "VARCHAR")], [[name]]),
                dynamic(mode="file", format=fmt, path="{name}." + fmt),
            ],
            [("files", "dyn")],
        )
        compiled = compile_pipeline(pipeline, engine)
        assert compiled.issues == []
        assert sorted(engine.query(compiled.query("dyn"))[1]) == expected


@pytest.mark.parametrize("value", ["../secret", "..", "/etc/passwd", "a/b", "*", ".hidden"])
def test_file_mode_refuses_values_that_leave_the_folder(
    engine: DuckDBEngine, tmp_path: Path, value: str
) -> None:
    pipeline = make_pipeline(
        [regions(value), dynamic(mode="file", path="data/{region}.csv")], [("regions", "dyn")]
    )
    issues = compile_pipeline(pipeline, engine).issues
    assert [(i.code, i.field) for i in issues] == [("invalid_value", "/gems/1/properties/path")]


def test_file_mode_template_outside_the_project_is_refused(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [regions("passwd"), dynamic(mode="file", path="../../etc/{region}")],
        [("regions", "dyn")],
    )
    issues = compile_pipeline(pipeline, engine).issues
    assert [i.code for i in issues] == ["path"]


def test_file_mode_missing_file_names_it(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [regions("nowhere"), dynamic(mode="file", path="data/{region}.csv")],
        [("regions", "dyn")],
    )
    issues = compile_pipeline(pipeline, engine).issues
    assert [i.code for i in issues] == ["unreadable_source"]
    assert "data/nowhere.csv" in issues[0].message


def test_whole_pipeline_runs_through_the_runner(tmp_path: Path) -> None:
    project = init_project(tmp_path / "proj")
    (project.root / "data").mkdir(exist_ok=True)
    for day, amount in (("mon", 1), ("tue", 2), ("wed", 4)):
        (project.root / "data" / f"{day}.csv").write_text(f"day,amount\n{day},{amount}\n")
    pipeline = make_pipeline(
        [
            seed("days", [("day", "VARCHAR")], [["mon"], ["tue"], ["wed"]]),
            dynamic(mode="file", path="data/{day}.csv"),
            gem("out", "Target", table="all_days", mode="overwrite"),
        ],
        [("days", "dyn"), ("dyn", "out")],
    )
    store = ConnectionStore(project, SecretStore(tmp_path / "secrets.json"))
    with DuckDBEngine(":memory:", root=project.root) as engine:
        result = run_pipeline(pipeline, engine, connections=store.resolve)
        assert result.status == "succeeded", result.error
        assert result.gem("out").rows == 3
        assert sorted(rows(engine, "SELECT day, amount FROM all_days")) == [
            ("mon", 1),
            ("tue", 2),
            ("wed", 4),
        ]


def test_a_thousand_rows_union_without_deep_recursion(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [
            seed("n", [("i", "INTEGER")], [[i] for i in range(1000)]),
            dynamic(query="SELECT {i} * 2 AS doubled"),
        ],
        [("n", "dyn")],
    )
    compiled = compile_pipeline(pipeline, engine)
    assert compiled.issues == []
    _, found = engine.query(compiled.query("dyn"))
    assert sorted(r[0] for r in found) == [i * 2 for i in range(1000)]


def test_instantiate_and_render_path_directly() -> None:
    template = parse_template("SELECT * FROM {t} WHERE a = {v}", "duckdb")
    sql = instantiate(template, {"t": "s.tbl", "v": "it's"}).sql("duckdb")
    assert sql == """SELECT * FROM "s"."tbl" WHERE a = 'it''s'"""
    with pytest.raises(SlotRejected):
        instantiate(template, {"t": "tbl; --", "v": 1})
    assert render_path("x/{a}_{b}.csv", {"a": "2024-01-01", "b": 7}) == "x/2024-01-01_7.csv"
    with pytest.raises(SlotRejected):
        render_path("x/{a}.csv", {"a": "../y"})


def test_query_mode_on_a_connection_needs_a_database_connection(tmp_path: Path) -> None:
    project = init_project(tmp_path / "proj")
    store = ConnectionStore(project, SecretStore(tmp_path / "secrets.json"))
    store.put(Connection(name="api", kind="http", options={"base_url": "http://x"}))
    pipeline = make_pipeline(
        [regions("north"), dynamic(query="SELECT {region} AS r", connection="api")],
        [("regions", "dyn")],
    )
    with DuckDBEngine(":memory:", root=project.root) as engine:
        issues = compile_pipeline(pipeline, engine, connections=store.resolve).issues
    assert [(i.code, i.field) for i in issues] == [
        ("wrong_connection", "/gems/1/properties/connection")
    ]
