"""The notebook front door in a real IPython shell: ``%%prophecy`` cells and ``%prophecy`` lines
over a copy of the shop project, on real DuckDB."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from IPython.core.error import UsageError
from IPython.core.extensions import ExtensionManager
from IPython.core.interactiveshell import InteractiveShell

from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.magics.display import ProphecyMagicError, ResultTable, RunSummary
from prophecy_jupyter.magics.magics import ProphecyMagics
from prophecy_jupyter.magics.widget import PipelineGraph
from prophecy_jupyter.model import dump_pipeline
from tests.conftest import gem, make_pipeline, seed

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".prophecy", "output", "notebooks"))
    return root


@pytest.fixture
def shell(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """The IPython shell with the extension loaded, working in a copy of the shop project."""
    monkeypatch.chdir(project)
    ipython = InteractiveShell.instance()
    ipython.reset(new_session=False)  # type: ignore[no-untyped-call]
    extensions(ipython).load_extension("prophecy_jupyter")
    yield ipython
    extensions(ipython).unload_extension("prophecy_jupyter")


def extensions(shell: InteractiveShell) -> ExtensionManager:
    manager = shell.extension_manager
    assert isinstance(manager, ExtensionManager)
    return manager


def magics(shell: InteractiveShell) -> ProphecyMagics:
    found = shell.magics_manager.registry["ProphecyMagics"]
    assert isinstance(found, ProphecyMagics)
    return found


def duckdb_engine(shell: InteractiveShell) -> DuckDBEngine:
    engine = magics(shell).session.engine()
    assert isinstance(engine, DuckDBEngine)
    return engine


def run(shell: InteractiveShell, cell: str) -> Any:
    """Run a cell as Jupyter does; its value, or its error raised."""
    result = shell.run_cell(cell, store_history=False)  # type: ignore[no-untyped-call]
    if result.error_before_exec is not None:
        raise result.error_before_exec
    if result.error_in_exec is not None:
        raise result.error_in_exec
    return result.result


def table(shell: InteractiveShell, cell: str) -> ResultTable:
    result = run(shell, cell)
    assert isinstance(result, ResultTable)
    return result


def failure(shell: InteractiveShell, capsys: pytest.CaptureFixture[str], cell: str) -> str:
    """What the user sees when a cell fails: one message, no traceback."""
    capsys.readouterr()
    result = shell.run_cell(cell, store_history=False)  # type: ignore[no-untyped-call]
    assert isinstance(result.error_in_exec, ProphecyMagicError | UsageError)
    shown = "".join(capsys.readouterr())
    assert "Traceback" not in shown
    assert 'File "' not in shown
    return shown


def write_pipeline(project: Path, name: str, *gems: dict[str, Any]) -> None:
    ids = [g["id"] for g in gems]
    pipeline = make_pipeline(gems, list(itertools.pairwise(ids)), name=name)
    (project / "pipelines" / f"{name}.pipeline.json").write_text(dump_pipeline(pipeline))


PEOPLE = """
import pandas as pd
people = pd.DataFrame({"name": ["ann", "bob", "cyd"], "age": [31, 45, 27]})
"""


# -- cells over data frames -------------------------------------------------------------------


def test_cell_reads_a_pandas_frame_by_its_variable_name(shell: InteractiveShell) -> None:
    shell.user_ns["people"] = pd.DataFrame({"name": ["ann", "bob", "cyd"], "age": [31, 45, 27]})
    result = table(shell, "%%prophecy\nSELECT name, age FROM people WHERE age > 30 ORDER BY age")
    assert result.rows == [("ann", 31), ("bob", 45)]
    assert result.columns == [("name", "VARCHAR"), ("age", "BIGINT")]
    assert result.row_count == 2


@pytest.mark.parametrize(
    "frame",
    [
        pl.DataFrame({"k": [1, 2, 3]}),
        pl.DataFrame({"k": [1, 2, 3]}).lazy(),
        pa.table({"k": [1, 2, 3]}),
        pa.record_batch({"k": [1, 2, 3]}),
    ],
    ids=["polars", "polars-lazy", "arrow-table", "arrow-batch"],
)
def test_cell_reads_polars_and_arrow_frames(shell: InteractiveShell, frame: Any) -> None:
    shell.user_ns["numbers"] = frame
    assert table(shell, "%%prophecy\nSELECT sum(k) AS total FROM numbers").rows == [(6,)]


def test_a_frame_is_readable_only_while_its_cell_runs(shell: InteractiveShell) -> None:
    run(shell, PEOPLE)
    table(shell, "%%prophecy\nSELECT count(*) FROM people")
    connection = duckdb_engine(shell).connection
    views = "SELECT view_name FROM duckdb_views() WHERE NOT internal"
    assert connection.execute(views).fetchall() == []
    with pytest.raises(Exception, match="people does not exist"):
        connection.execute("SELECT * FROM people")


def test_a_variable_that_is_not_a_frame_is_not_a_table(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.user_ns["rows"] = [1, 2, 3]
    assert "unknown table rows" in failure(shell, capsys, "%%prophecy\nSELECT * FROM rows")


def test_a_cte_of_the_cell_shadows_a_frame_of_the_same_name(shell: InteractiveShell) -> None:
    run(shell, PEOPLE)
    cell = "%%prophecy\nWITH people AS (SELECT 1 AS n)\nSELECT * FROM people"
    assert table(shell, cell).rows == [(1,)]


def test_a_large_result_shows_its_first_rows_and_its_row_count(shell: InteractiveShell) -> None:
    result = table(shell, "%%prophecy --show 5\nSELECT * FROM range(1000)")
    assert len(result.rows) == 5
    assert result.row_count == 1000
    assert "5 of 1,000 rows" in result._repr_html_()
    assert "(5 of 1,000 rows)" in repr(result)


def test_the_table_shows_rows_types_and_count_as_html_and_text(shell: InteractiveShell) -> None:
    result = table(shell, "%%prophecy\nSELECT 42 AS answer, 'x' AS letter")
    page = result._repr_html_()
    assert "<th>answer<br><small>INTEGER</small></th>" in page
    assert "<td>42</td><td>x</td>" in page
    assert "1 row" in page
    assert repr(result).splitlines()[:2] == ["answer  | letter", "INTEGER | VARCHAR"]


def test_values_are_escaped_in_html(shell: InteractiveShell) -> None:
    page = table(shell, "%%prophecy\nSELECT '<img src=x onerror=alert(1)>' AS s")._repr_html_()
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


# -- parameters -------------------------------------------------------------------------------


def test_a_dollar_name_takes_the_notebook_variable_as_a_typed_literal(
    shell: InteractiveShell,
) -> None:
    run(shell, PEOPLE)
    shell.user_ns.update(min_age=30, since=dt.date(2024, 1, 31), ratio=0.5, flag=True)
    cell = (
        "%%prophecy\nSELECT name, $since AS since, $ratio AS ratio, $flag AS flag\n"
        "FROM people WHERE age > $min_age ORDER BY name"
    )
    result = table(shell, cell)
    assert result.rows == [
        ("ann", dt.date(2024, 1, 31), 0.5, True),
        ("bob", dt.date(2024, 1, 31), 0.5, True),
    ]
    assert [t for _, t in result.columns] == ["VARCHAR", "DATE", "DOUBLE", "BOOLEAN"]


def test_numpy_scalars_from_pandas_are_parameters(shell: InteractiveShell) -> None:
    run(shell, PEOPLE)
    run(shell, "oldest = people['age'].max()")
    assert table(shell, "%%prophecy\nSELECT name FROM people WHERE age = $oldest").rows == [
        ("bob",)
    ]


def test_a_param_option_wins_over_the_variable(shell: InteractiveShell) -> None:
    run(shell, PEOPLE)
    shell.user_ns["min_age"] = 100
    cell = "%%prophecy --param min_age=40\nSELECT name FROM people WHERE age > $min_age"
    assert table(shell, cell).rows == [("bob",)]


def test_a_param_option_that_is_not_a_python_literal_is_text(shell: InteractiveShell) -> None:
    cell = "%%prophecy --param day=2024-01-31 --param n=7\nSELECT $day AS day, $n AS n"
    assert table(shell, cell).rows == [("2024-01-31", 7)]


@pytest.mark.parametrize(
    "attack",
    ["x' OR '1'='1", "'; DROP TABLE kept; --", 'bob" OR "1"="1', "\\'; SELECT 1; --"],
)
def test_an_injection_attempt_is_bound_as_one_string_value(
    shell: InteractiveShell, attack: str
) -> None:
    run(shell, PEOPLE)
    duckdb_engine(shell).connection.execute("CREATE TABLE kept AS SELECT 1 AS one")
    shell.user_ns["who"] = attack
    cell = "%%prophecy\nSELECT count(*) AS n, max($who) AS value FROM people WHERE name = $who"
    assert table(shell, cell).rows == [(0, None)]
    assert table(shell, "%%prophecy\nSELECT $who AS value").rows == [(attack,)]
    assert table(shell, "%%prophecy\nSELECT one FROM kept").rows == [(1,)]


def test_an_unknown_parameter_is_reported_at_its_position(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = failure(shell, capsys, "%%prophecy\nSELECT 1\nWHERE 2 > $nowhere")
    assert "line 3, column 11: $nowhere is neither a --param nor a variable" in shown


def test_a_value_without_a_sql_literal_is_refused(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.user_ns["ids"] = [1, 2]
    assert "$ids is a list" in failure(shell, capsys, "%%prophecy\nSELECT $ids")


# -- results: -o and --save -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "kind"),
    [("", pd.DataFrame), ("--as polars", pl.DataFrame), ("--as arrow", pa.Table)],
)
def test_output_assigns_the_whole_result(
    shell: InteractiveShell, option: str, kind: type[Any]
) -> None:
    result = table(shell, f"%%prophecy -o numbers {option} --show 3\nSELECT * FROM range(50) t(n)")
    frame: Any = shell.user_ns["numbers"]
    assert isinstance(frame, kind)
    assert frame.shape[0] == 50
    assert (len(result.rows), result.row_count) == (3, 50)


def test_a_saved_result_is_readable_by_later_cells(shell: InteractiveShell) -> None:
    run(shell, PEOPLE)
    table(shell, "%%prophecy --save adults\nSELECT * FROM people WHERE age >= 30")
    run(shell, "people = people.iloc[0:0]")
    assert table(shell, "%%prophecy\nSELECT name FROM adults ORDER BY name").rows == [
        ("ann",),
        ("bob",),
    ]


def test_saving_again_replaces_the_saved_result(shell: InteractiveShell) -> None:
    table(shell, "%%prophecy --save answer\nSELECT 1 AS n")
    table(shell, "%%prophecy --save answer\nSELECT n + 1 AS n FROM answer")
    assert table(shell, "%%prophecy\nSELECT n FROM answer").rows == [(2,)]
    assert magics(shell).session.saved_results() == ["answer"]
    temporary = "SELECT count(*) FROM duckdb_tables() WHERE temporary"
    assert duckdb_engine(shell).connection.execute(temporary).fetchone() == (0,)


def test_a_saved_result_outlives_the_engine_letting_go_of_the_warehouse(
    shell: InteractiveShell,
) -> None:
    run(shell, PEOPLE)
    saved = table(shell, "%%prophecy --save adults\nSELECT * FROM people WHERE age >= 30")
    engine = duckdb_engine(shell)
    deadline = time.monotonic() + 60
    while engine.holding:
        assert time.monotonic() < deadline, "the engine kept the warehouse file"
        time.sleep(0.02)
    again = table(shell, "%%prophecy\nSELECT * FROM adults")
    assert (again.columns, again.rows) == (saved.columns, saved.rows)


def test_a_saved_result_shadows_a_warehouse_table_only_in_the_cells(
    shell: InteractiveShell,
) -> None:
    duckdb_engine(shell).connection.execute("CREATE TABLE scores AS SELECT 1 AS n")
    table(shell, "%%prophecy --save scores\nSELECT 2 AS n")
    assert table(shell, "%%prophecy\nSELECT n FROM scores").rows == [(2,)]
    assert table(shell, "%%prophecy\nSELECT n FROM main.scores").rows == [(1,)]


# -- pipeline gems ----------------------------------------------------------------------------


def test_a_pipeline_gem_is_read_as_pipeline_dot_gem(shell: InteractiveShell) -> None:
    session = magics(shell).session
    compiled, _ = session.compiled("customer_totals")
    _, expected = duckdb_engine(shell).query(compiled.query("by_customer"))
    cell = "%%prophecy --show 100\nSELECT * FROM customer_totals.by_customer"
    assert sorted(table(shell, cell).rows) == sorted(expected)


def test_gems_of_two_pipelines_join_in_one_cell(shell: InteractiveShell) -> None:
    cell = (
        "%%prophecy\nSELECT count(*) AS n\n"
        "FROM customer_totals.customers AS c\n"
        "JOIN top_products.products AS p ON c.customer_id = p.product_id"
    )
    assert table(shell, cell).rows[0][0] > 0


def test_the_cell_params_reach_the_pipeline_parameters(shell: InteractiveShell) -> None:
    cell = "%%prophecy{}\nSELECT count(*) FROM customer_totals.by_customer"
    everyone = table(shell, cell.format("")).rows[0][0]
    big = table(shell, cell.format(" --param min_total=1000")).rows[0][0]
    assert 0 < big < everyone


def test_an_unknown_gem_is_reported_at_its_position(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = failure(shell, capsys, "%%prophecy\nSELECT *\nFROM customer_totals.nope")
    assert "line 3, column 22: pipeline 'customer_totals' has no gem 'nope'" in shown


def test_an_invalid_gem_names_the_pipeline_gem_field_and_position(
    shell: InteractiveShell, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_pipeline(
        project,
        "broken",
        seed("orders", [("amount", "DOUBLE")], [[1.0]]),
        gem("big", "Filter", condition="amount >"),
    )
    shown = failure(shell, capsys, "%%prophecy\nSELECT * FROM broken.big")
    where = "pipeline 'broken': gem 'big', field /gems/1/properties/condition"
    assert f"ValidationError: {where}" in shown
    assert "line 1, column" in shown


# -- what a cell may not do -------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t AS SELECT 1",
        "DROP TABLE customer_totals",
        "INSERT INTO t VALUES (1)",
        "PRAGMA version",
        "COPY (SELECT 1) TO 'out.csv'",
        "ATTACH 'other.db' AS other",
        "SELECT * FROM (DESCRIBE SELECT 1)",
        "SELECT 1; SELECT 2",
    ],
)
def test_a_cell_holds_one_query_that_only_reads(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], sql: str
) -> None:
    shown = failure(shell, capsys, f"%%prophecy\n{sql}")
    assert shown.startswith("ValidationError: ")
    assert len(shown.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM read_csv('data/orders.csv')", "function read_csv() is not allowed"),
        ("SELECT getenv('HOME')", "function getenv() is not allowed"),
        ("SELECT * FROM 'data/orders.csv'", "unknown table"),
        ('SELECT * FROM "data/orders.csv"', 'unknown table "data/orders.csv"'),
        ('SELECT * FROM data."orders.csv"', "unknown table"),
        ("SELECT * FROM duckdb_tables()", "table function"),
    ],
)
def test_a_cell_reads_no_files(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], sql: str, message: str
) -> None:
    assert message in failure(shell, capsys, f"%%prophecy\n{sql}")


def test_a_syntax_error_names_its_line_in_the_cell(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = failure(shell, capsys, "%%prophecy\nSELECT 1,\nFROM")
    assert "ValidationError: line 3" in shown


# -- engines ----------------------------------------------------------------------------------


def test_the_engine_is_opened_once_and_reused_by_every_cell(shell: InteractiveShell) -> None:
    table(shell, "%%prophecy\nSELECT 1")
    first = magics(shell).session.engine()
    run(shell, "%prophecy run customer_totals")
    table(shell, "%%prophecy\nSELECT count(*) FROM customer_totals")
    assert magics(shell).session.engine() is first


@pytest.mark.parametrize(
    ("kind", "says"),
    [("livy", "the option url"), ("postgres", "cannot connect to postgres at")],
)
def test_an_engine_without_its_settings_gives_one_clear_line(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], kind: str, says: str
) -> None:
    shown = failure(shell, capsys, f"%%prophecy --engine {kind}\nSELECT 1").strip()
    assert shown.startswith(f"EngineError: fabric '{kind}': ") and "\n" not in shown
    assert says in shown


def test_a_stored_fabric_of_another_kind_gives_the_same_error(
    shell: InteractiveShell, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "fabrics").mkdir()
    (project / "fabrics" / "cluster.yml").write_text("kind: livy\n")
    shown = failure(shell, capsys, "%prophecy run customer_totals --fabric cluster")
    assert "fabric 'cluster': the option url" in shown


def test_the_duckdb_engine_is_the_projects_warehouse(shell: InteractiveShell) -> None:
    run(shell, "%prophecy run customer_totals")
    rows = table(shell, "%%prophecy --engine duckdb\nSELECT count(*) FROM customer_totals").rows
    assert rows[0][0] > 0


def test_outside_a_project_cells_run_on_an_in_memory_duckdb(
    shell: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extensions(shell).reload_extension("prophecy_jupyter")
    monkeypatch.chdir(tmp_path)
    run(shell, PEOPLE)
    assert table(shell, "%%prophecy\nSELECT count(*) FROM people").rows == [(3,)]
    assert magics(shell).session.project() is None


def test_the_project_line_magic_chooses_the_project(
    shell: InteractiveShell,
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    extensions(shell).reload_extension("prophecy_jupyter")
    monkeypatch.chdir(tmp_path)
    run(shell, f"%prophecy project {project / 'pipelines'}")
    assert "project 'shop'" in capsys.readouterr().out
    assert table(shell, "%%prophecy\nSELECT count(*) FROM customer_totals.orders").rows == [(300,)]


def test_unloading_closes_the_engines(shell: InteractiveShell) -> None:
    engine = duckdb_engine(shell)
    extensions(shell).unload_extension("prophecy_jupyter")
    with pytest.raises(Exception, match="closed"):
        engine.connection.execute("SELECT 1")
    extensions(shell).load_extension("prophecy_jupyter")
    assert table(shell, "%%prophecy\nSELECT 1 AS one").rows == [(1,)]


# -- pipelines: run, preview, compile -----------------------------------------------------------


def test_run_writes_the_targets_with_a_text_progress_bar(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = run(shell, "%prophecy run customer_totals --param min_total=100 --mode staged")
    assert isinstance(summary, RunSummary)
    assert summary.result.status == "succeeded"
    assert "9/9 customer_totals succeeded" in capsys.readouterr().out
    written = table(shell, "%%prophecy\nSELECT min(total) FROM customer_totals").rows[0][0]
    assert written >= 100
    assert "customer_totals succeeded" in summary._repr_html_()


def test_a_failed_run_fails_the_cell_naming_the_gem(
    shell: InteractiveShell, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_pipeline(
        project,
        "once",
        seed("numbers", [("n", "INTEGER")], [[1]]),
        gem("out", "Target", table="numbers_once", mode="error_if_exists"),
    )
    run(shell, "%prophecy run once")
    shown = failure(shell, capsys, "%prophecy run once")
    failed = "pipeline 'once' failed: gem 'out': table numbers_once already exists"
    assert f"EngineError: {failed}" in shown


def test_an_invalid_pipeline_prints_one_message_per_issue(
    shell: InteractiveShell, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_pipeline(
        project,
        "broken",
        seed("orders", [("amount", "DOUBLE")], [[1.0]]),
        gem("big", "Filter", condition="amount >"),
        gem("out", "Target", table="t", mode="sideways"),
    )
    shown = failure(shell, capsys, "%prophecy run broken")
    lines = shown.strip().splitlines()
    assert lines[0].startswith("ValidationError: pipeline 'broken': 2 problems")
    assert any("gem 'big', field /gems/1/properties/condition, line 1, column" in x for x in lines)
    assert any("gem 'out', field /gems/2/properties/mode" in x for x in lines)


def test_an_unknown_pipeline_is_reported(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = failure(shell, capsys, "%prophecy preview nowhere gem")
    assert shown.strip() == "NotFound: project 'shop' has no pipeline 'nowhere'"


def test_preview_shows_the_first_rows_of_a_gem(shell: InteractiveShell) -> None:
    result = table(shell, "%prophecy preview customer_totals shipped --limit 4")
    assert len(result.rows) == 4
    assert result.row_count is None
    assert ("status", "VARCHAR") in result.columns
    assert all(row[-1] == "shipped" for row in result.rows)


def test_compile_shows_the_sql_of_the_targets_in_a_dialect(shell: InteractiveShell) -> None:
    code = run(shell, "%prophecy compile customer_totals --dialect spark")
    assert "FROM `ranked`" in code.data
    assert "WITH `customers` AS" in code.data


def test_compile_shows_one_gem(shell: InteractiveShell) -> None:
    code = run(shell, "%prophecy compile customer_totals --gem shipped")
    assert code.data.endswith('FROM "orders"\nWHERE\n  "status" = \'shipped\';')


@pytest.mark.parametrize(
    "line",
    ["%prophecy", "%prophecy frobnicate", "%prophecy run", "%prophecy run x --param nonsense"],
)
def test_a_usage_mistake_is_a_usage_error(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    assert failure(shell, capsys, line).startswith("UsageError: ")


# -- the graph widget -------------------------------------------------------------------------


def test_the_graph_widget_carries_the_pipeline(shell: InteractiveShell) -> None:
    graph = run(shell, "%prophecy graph customer_totals")
    assert isinstance(graph, PipelineGraph)
    state = graph.get_state()
    assert state["pipeline"] == "customer_totals"
    nodes = {n["id"]: n for n in state["nodes"]}
    assert len(nodes) == 9
    assert (nodes["orders"]["x"], nodes["orders"]["y"]) == (40.0, 220.0)
    assert nodes["by_customer"]["kind"] == "Aggregate"
    assert nodes["by_customer"]["category"] == "Transform"
    assert {"name": "total", "type": "DOUBLE"} in nodes["by_customer"]["columns"]
    assert nodes["shipped"]["properties"] == {"condition": "status = $status"}
    assert {"from": "products", "to": "order_lines", "port": "in1"} in state["edges"]
    assert len(state["edges"]) == 8
    assert state["status"] == {}
    assert "export default" in graph._esm


def test_the_graph_marks_gems_with_issues(shell: InteractiveShell, project: Path) -> None:
    write_pipeline(
        project,
        "broken",
        seed("orders", [("amount", "DOUBLE")], [[1.0]]),
        gem("big", "Filter", condition="amount >"),
    )
    graph = run(shell, "%prophecy graph broken")
    nodes = {n["id"]: n for n in graph.nodes}
    assert nodes["orders"]["issues"] == []
    assert nodes["big"]["issues"][0].startswith("/gems/1/properties/condition: ")
    assert nodes["big"]["y"] == nodes["orders"]["y"]
    assert nodes["big"]["x"] > nodes["orders"]["x"]


def test_a_run_updates_the_status_of_the_displayed_graph(shell: InteractiveShell) -> None:
    graph = run(shell, "%prophecy graph customer_totals")
    seen: list[tuple[str, str]] = []

    def record(change: dict[str, Any]) -> None:
        seen.extend((g, s["status"]) for g, s in change["new"].items() if change["old"].get(g) != s)

    graph.observe(record, names="status")
    run(shell, "%prophecy run customer_totals --mode staged")
    assert ("by_customer", "running") in seen
    assert seen.index(("by_customer", "running")) < seen.index(("by_customer", "succeeded"))
    assert graph.status["customer_totals"]["status"] == "succeeded"
    assert graph.status["orders"]["rows"] == 300
    assert graph.get_state()["status"] == graph.status


def test_a_fused_run_shows_the_ancestors_running_with_their_target(
    shell: InteractiveShell,
) -> None:
    graph = run(shell, "%prophecy graph customer_totals")
    running: list[set[str]] = []
    graph.observe(
        lambda change: running.append(
            {g for g, s in change["new"].items() if s["status"] == "running"}
        ),
        names="status",
    )
    run(shell, "%prophecy run customer_totals")
    assert {g["id"] for g in graph.nodes} in running
    assert {s["status"] for s in graph.status.values()} == {"succeeded"}


def test_graph_again_returns_the_same_widget_redrawn(shell: InteractiveShell) -> None:
    first = run(shell, "%prophecy graph customer_totals")
    run(shell, "%prophecy run customer_totals")
    again = run(shell, "%prophecy graph customer_totals")
    assert again is first
    assert again.status["customer_totals"]["status"] == "succeeded"
