"""Runs executed by Automate: notebooks through papermill in the Prophecy kernel (parameters,
failing cells, cancel and timeout stopping the kernel), pipelines with per-gem statistics,
and the Studio's own runs in the same history."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import psutil
import pytest
import requests
import yaml

from prophecy_jupyter.automate.service import Automate
from prophecy_jupyter.automate.store import RunFilter
from prophecy_jupyter.errors import ValidationError
from prophecy_jupyter.server.launcher import ServerProcess
from tests.test_server_support import copy_shop, shop_server


def notebook(path: Path, *cells: str, parameters: str | None = None) -> None:
    book = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    book.metadata["kernelspec"] = {"name": "prophecy", "display_name": "Python 3 (Prophecy)"}
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)  # type: ignore[no-untyped-call]
        cell.metadata["tags"] = ["parameters"]
        book.cells.append(cell)
    book.cells.extend(
        nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]
        for source in cells
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(book, str(path))  # type: ignore[no-untyped-call]


@pytest.fixture
def automate(tmp_path: Path) -> Iterator[Automate]:
    root = tmp_path / "root"
    copy_shop(root / "shop")
    running = Automate(root, tick_seconds=0.05)
    running.start()
    yield running
    running.stop()


def kernels_of(automate: Automate, run_id: str) -> list[psutil.Process]:
    """The kernel processes the worker of a run has started."""
    worker = automate.run(run_id).worker or ""
    pid = worker.rpartition(":")[2]
    if not pid.isdigit() or int(pid) == os.getpid():
        return []
    try:
        children = psutil.Process(int(pid)).children(recursive=True)
    except psutil.Error:
        return []
    return [c for c in children if "ipykernel_launcher" in " ".join(c.cmdline())]


def test_a_notebook_runs_with_its_parameters_and_is_kept(automate: Automate) -> None:
    project = automate.root / "shop"
    notebook(
        project / "notebooks" / "report.ipynb",
        "print(f'total for {region}: {limit * 2}')",
        "%%prophecy -o top\nSELECT count(*) AS n FROM customer_totals.orders",
        "print('orders', int(top['n'][0]))",
        parameters="region = 'none'\nlimit = 1",
    )
    run = automate.trigger(
        "shop", notebook="notebooks/report.ipynb", parameters={"region": "EMEA", "limit": 21}
    )
    done = automate.wait(run.id, 120)
    assert (done.status, done.error) == ("succeeded", None)
    executed = json.loads(automate.notebook(run.id))
    outputs = ["".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])]
    assert "total for EMEA: 42\n" in outputs
    assert "orders 300\n" in outputs
    injected = [
        c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])
    ]
    assert len(injected) == 1 and 'region = "EMEA"' in "".join(injected[0]["source"])
    logged = [line["message"] for line in automate.logs(run.id)]
    assert any("total for EMEA: 42" in m for m in logged)
    # The source notebook is untouched; the executed one is the run's own.
    assert "injected-parameters" not in (project / "notebooks" / "report.ipynb").read_text()


def test_a_failing_cell_is_the_runs_error(automate: Automate) -> None:
    notebook(
        automate.root / "shop" / "notebooks" / "broken.ipynb",
        "x = 1",
        "raise ValueError('the feed is empty')",
        "print('never')",
    )
    run = automate.trigger("shop", notebook="notebooks/broken.ipynb")
    done = automate.wait(run.id, 120)
    assert done.status == "failed"
    assert done.error == "cell 2: ValueError: the feed is empty"
    executed = json.loads(automate.notebook(run.id))
    assert not executed["cells"][-1].get("outputs")


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_cancel_and_timeout_stop_the_kernel(automate: Automate, how: str) -> None:
    project = automate.root / "shop"
    notebook(project / "notebooks" / "slow.ipynb", "import time\ntime.sleep(600)")
    if how == "cancel":
        run = automate.trigger("shop", notebook="notebooks/slow.ipynb")
    else:
        (project / "schedules").mkdir()
        (project / "schedules" / "slow.yml").write_text(
            yaml.safe_dump({"notebook": "notebooks/slow.ipynb", "timeout": 12})
        )
        run = automate.trigger_schedule("shop", "slow")
    deadline = time.monotonic() + 60
    while not (started := kernels_of(automate, run.id)):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    if how == "cancel":
        automate.cancel(run.id)
    done = automate.wait(run.id, 60)
    expected = ("cancelled", "cancelled") if how == "cancel" else ("failed", "timed out after 12 s")
    assert (done.status, done.error) == expected
    deadline = time.monotonic() + 10
    while any(k.is_running() and k.status() != psutil.STATUS_ZOMBIE for k in started):
        assert time.monotonic() < deadline, "the kernel outlived its run"
        time.sleep(0.1)


def test_a_pipeline_run_records_each_gem(automate: Automate) -> None:
    run = automate.trigger("shop", pipeline="customer_totals", parameters={})
    done = automate.wait(run.id, 120)
    assert done.status == "succeeded"
    gems = {g["gem_id"]: g for g in done.gems}
    assert gems["orders"]["rows"] == 300
    assert gems["customer_totals"]["status"] == "succeeded"
    assert all(g["seconds"] is not None for g in gems.values())
    assert any(
        "gem orders succeeded, 300 rows" in line["message"] for line in automate.logs(run.id)
    )


def test_every_spelling_of_a_project_names_the_same_runs(tmp_path: Path) -> None:
    root = copy_shop(tmp_path / "shop")  # the server's root is the project itself
    (root / "schedules").mkdir()
    (root / "schedules" / "nightly.yml").write_text(
        "pipeline: customer_totals\ncron: '0 2 * * *'\n"
    )
    automate = Automate(root)
    run = automate.trigger(".", pipeline="customer_totals", parameters={})
    assert run.project == ""
    assert automate.project_name("./") == automate.project_name("") == ""
    for spelling in ("", ".", "./"):
        assert [r.id for r in automate.runs(RunFilter(project=spelling))] == [run.id]
        assert [s["name"] for s in automate.schedules(spelling)] == ["nightly"]
    with pytest.raises(ValidationError):
        automate.project_name("../elsewhere")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with shop_server(tmp_path) as running:
        yield running


def test_studio_runs_are_in_the_run_history(server: ServerProcess) -> None:
    started = requests.post(
        f"{server.api}/runs",
        json={"pipeline": "customer_totals"},
        headers=server.headers,
        timeout=30,
    ).json()
    deadline = time.monotonic() + 60
    while True:
        listed = requests.get(
            f"{server.api}/automate/runs",
            params={"trigger": "manual"},
            headers=server.headers,
            timeout=30,
        ).json()["runs"]
        if listed and listed[0]["status"] == "succeeded":
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (run,) = listed
    assert run["id"] == started["id"]
    assert (run["target"], run["kind"]) == ("customer_totals", "pipeline")
    assert {g["gem_id"] for g in run["gems"]} >= {"orders", "customer_totals"}
    # Through the store, the history outlives the server: a new Automate reads it.
    history = Automate(server.root).runs(RunFilter())
    assert [r.id for r in history] == [started["id"]]
