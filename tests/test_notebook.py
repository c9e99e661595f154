"""The example notebook, executed end to end by papermill in the "Python 3 (Prophecy)" kernel.

The notebook has no ``%load_ext``: that its magics run at all shows the kernelspec loads the
extension. Each test reads one part of the executed notebook's outputs.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    """The notebook run in a copy of the shop project, as a scheduler would run it."""
    root = tmp_path_factory.mktemp("notebook") / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".prophecy", "output"))
    notebooks = root / "notebooks"
    papermill.execute_notebook(
        str(notebooks / "explore.ipynb"),
        str(notebooks / "explored.ipynb"),
        parameters={"min_total": 100},
        kernel_name="prophecy",
        cwd=str(notebooks),
        progress_bar=False,
    )
    notebook: nbformat.NotebookNode = nbformat.read(  # type: ignore[no-untyped-call]
        notebooks / "explored.ipynb", as_version=4
    )
    return notebook


def outputs(notebook: nbformat.NotebookNode, cell_id: str) -> list[Any]:
    (cell,) = [c for c in notebook.cells if c.get("id") == cell_id]
    found: list[Any] = cell.outputs
    return found


def html(notebook: nbformat.NotebookNode, cell_id: str) -> str:
    """The HTML result of a cell, with the markup between cells squeezed out."""
    results = [o for o in outputs(notebook, cell_id) if o.output_type == "execute_result"]
    return re.sub(r">\s+<", "><", results[-1].data["text/html"])


def test_every_cell_ran_without_an_error(executed: nbformat.NotebookNode) -> None:
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert [o for c in code for o in c.outputs if o.output_type == "error"] == []
    assert executed.metadata.papermill.exception is None
    assert executed.metadata.kernelspec.name == "prophecy"


def test_a_pandas_frame_is_queried(executed: nbformat.NotebookNode) -> None:
    page = html(executed, "frame-query")
    assert (
        "<th>region<br><small>VARCHAR</small></th><th>target<br><small>DOUBLE</small></th>" in page
    )
    assert "<tr><td>east</td><td>3000.0</td></tr>" in page
    assert "<tr><td>west</td><td>4000.0</td></tr>" in page
    assert "3 rows" in page


def test_a_pipeline_gem_is_queried_and_saved(executed: nbformat.NotebookNode) -> None:
    page = html(executed, "gem-query")
    assert "<tr><td>east</td><td>3211.31</td><td>9</td></tr>" in page
    assert "<tr><td>west</td><td>4540.04</td><td>12</td></tr>" in page
    assert "4 rows" in page


def test_a_saved_result_joins_a_frame_and_is_assigned_as_pandas(
    executed: nbformat.NotebookNode,
) -> None:
    page = html(executed, "saved-query")
    assert "<tr><td>west</td><td>4540.04</td><td>4000.0</td><td>1.135</td></tr>" in page
    assert "<tr><td>north</td><td>1969.33</td><td>2500.0</td><td>0.788</td></tr>" in page
    frame = html(executed, "output")
    assert 'class="dataframe"' in frame
    assert "<td>south</td><td>3868.12</td><td>3500.0</td><td>1.105</td>" in frame


def test_the_run_writes_the_target_that_a_cell_reads_back(executed: nbformat.NotebookNode) -> None:
    run = outputs(executed, "run")
    assert any(WIDGET_VIEW in o.get("data", {}) for o in run)  # the progress bar
    assert "customer_totals succeeded in" in html(executed, "run")
    page = html(executed, "table-query")
    assert "<tr><td>20</td><td>Tom Clark</td><td>west</td><td>1034.15</td></tr>" in page
    assert "5 rows" in page


def test_preview_and_compile_show_a_gem_and_the_sql(executed: nbformat.NotebookNode) -> None:
    assert "first 5 rows" in html(executed, "preview")
    compiled = outputs(executed, "compile")[-1].data["text/plain"]
    assert compiled.startswith('WITH "customers" AS (')
    assert 'HAVING\n    ROUND(SUM("revenue"), 2) >= 50.0' in compiled


def test_the_graph_widget_holds_the_gems_and_their_run_status(
    executed: nbformat.NotebookNode,
) -> None:
    (view,) = [o.data[WIDGET_VIEW] for o in outputs(executed, "graph")]
    state = executed.metadata.widgets[WIDGET_STATE]["state"][view["model_id"]]["state"]
    assert state["pipeline"] == "customer_totals"
    assert {n["id"] for n in state["nodes"]} >= {"orders", "by_customer", "customer_totals"}
    assert len(state["edges"]) == 8
    assert state["status"]["customer_totals"]["status"] == "succeeded"
    assert state["status"]["customer_totals"]["rows"] == 35
    assert {s["status"] for s in state["status"].values()} == {"succeeded"}
