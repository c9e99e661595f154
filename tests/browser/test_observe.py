"""Observe, in the Studio sidebar: Automate's run history, a run's detail, schedules and
deployments, on runs made through the real orchestration API."""

from __future__ import annotations

import json
import re
import shutil
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from playwright.sync_api import Locator, expect

from tests.browser.conftest import Lab, Studio, eventually

API = "prophecy/api/v1/automate"
RUN_MS = 60_000
"""How long a run may take to finish: a notebook starts a kernel."""

BROKEN = "broken_totals"
"""A copy of customer_totals whose Filter fails when it runs (it validates)."""

SLOW_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "wait",
            "metadata": {},
            "outputs": [],
            "source": ["import time\n", "time.sleep(120)"],
        }
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}

NIGHTLY = {
    "pipeline": "customer_totals",
    "cron": "0 2 * * *",
    "timezone": "Europe/Paris",
    "fabric": "in-memory",
    "enabled": True,
}


def automate(lab: Lab, method: str, path: str, body: object | None = None) -> Any:
    """Call the orchestration API as a script would, with the server's token."""
    request = urllib.request.Request(
        f"{lab.server.url}{API}/{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"token {lab.server.token}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def start_run(lab: Lab, **target: str) -> dict[str, Any]:
    run: dict[str, Any] = automate(lab, "POST", "runs", {"project": "shop", **target})
    return run


def finished(lab: Lab, run: dict[str, Any]) -> dict[str, Any]:
    """The run once it finished."""

    def done() -> dict[str, Any] | None:
        now: dict[str, Any] = automate(lab, "GET", f"runs/{run['id']}")
        return now if now["status"] in ("succeeded", "failed", "cancelled") else None

    return eventually(done, timeout=RUN_MS / 1000)


@pytest.fixture
def shop(studio: Studio) -> Iterator[Studio]:
    """The shop with a pipeline that fails, a slow notebook and a nightly schedule."""
    root = studio.lab.shop
    pipeline = json.loads((root / "pipelines" / "customer_totals.pipeline.json").read_text())
    pipeline["name"] = BROKEN
    for gem in pipeline["gems"]:
        if gem["id"] == "shipped":
            gem["properties"]["condition"] = "CAST(status AS INTEGER) > 0"
        if gem["kind"] == "Target":
            gem["properties"]["table"] = BROKEN
    (root / "pipelines" / f"{BROKEN}.pipeline.json").write_text(json.dumps(pipeline))
    slow = root / "notebooks" / "slow.ipynb"
    slow.write_text(json.dumps(SLOW_NOTEBOOK))
    schedules = root / "schedules"
    schedules.mkdir(exist_ok=True)
    (schedules / "nightly.yml").write_text(yaml.safe_dump(NIGHTLY))
    try:
        yield studio
    finally:
        slow.unlink(missing_ok=True)
        shutil.rmtree(schedules, ignore_errors=True)


def open_observe(studio: Studio) -> Locator:
    studio.open()
    page = studio.page
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[title='Prophecy Studio']").click()
    sidebar = page.locator("#prophecy-studio-sidebar")
    sidebar.get_by_test_id("prophecy-project-select").select_option(label="shop")
    sidebar.get_by_test_id("prophecy-view-observe").click()
    expect(sidebar.get_by_test_id("prophecy-view-observe")).to_have_attribute(
        "aria-selected", "true"
    )
    return sidebar


def run_row(sidebar: Locator, run: dict[str, Any]) -> Locator:
    return sidebar.locator(f"[data-testid=prophecy-observe-run][data-id='{run['id']}']")


def statuses(sidebar: Locator) -> set[str]:
    rows = sidebar.get_by_test_id("prophecy-observe-run")
    return set(rows.evaluate_all("rows => rows.map(r => r.dataset.status)"))


def test_run_history_filter_a_failed_run_run_it_again_cancel_and_get_a_notebook(
    shop: Studio,
) -> None:
    studio = shop
    lab = studio.lab
    good = start_run(lab, pipeline="customer_totals")
    bad = start_run(lab, pipeline=BROKEN)
    notebook = start_run(lab, notebook="notebooks/explore.ipynb")
    for run in (good, bad, notebook):
        finished(lab, run)

    sidebar = open_observe(studio)
    expect(run_row(sidebar, good)).to_have_attribute("data-status", "succeeded")
    expect(run_row(sidebar, bad)).to_have_attribute("data-status", "failed")
    expect(run_row(sidebar, notebook)).to_contain_text("notebooks/explore.ipynb")
    ids = sidebar.get_by_test_id("prophecy-observe-run").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    )
    assert ids.index(notebook["id"]) < ids.index(bad["id"]) < ids.index(good["id"])
    studio.shot("history")

    sidebar.get_by_test_id("prophecy-observe-filter-status").select_option("failed")
    expect(run_row(sidebar, good)).to_have_count(0)
    expect(run_row(sidebar, bad)).to_be_visible()
    assert statuses(sidebar) == {"failed"}
    studio.shot("only-failed-runs")

    run_row(sidebar, bad).click()
    detail = sidebar.get_by_test_id("prophecy-observe-run-detail")
    expect(detail).to_have_attribute("data-status", "failed")
    expect(detail.get_by_test_id("prophecy-observe-error")).to_contain_text(
        "Could not convert string 'shipped'"
    )
    gems = detail.get_by_test_id("prophecy-observe-gem")
    expect(gems).to_have_count(9)
    orders = detail.locator("[data-testid=prophecy-observe-gem][data-gem-id=orders]")
    expect(orders).to_have_attribute("data-status", "succeeded")
    expect(orders).to_contain_text("300")
    shipped = detail.locator("[data-testid=prophecy-observe-gem][data-gem-id=shipped]")
    expect(shipped).to_have_attribute("data-status", "failed")
    expect(detail.locator("[data-gem-id=customer_totals]")).to_have_attribute(
        "data-status", "skipped"
    )
    expect(detail.get_by_test_id("prophecy-observe-fact-fabric")).to_have_text("in-memory")
    expect(detail.get_by_test_id("prophecy-observe-log")).to_contain_text(
        f"pipeline {BROKEN} on in-memory"
    )
    expect(detail.get_by_test_id("prophecy-observe-cancel")).to_have_count(0)
    studio.shot("failed-run-detail")

    # Run again: the new run's detail follows it to its end without a click.
    detail.get_by_test_id("prophecy-observe-run-again").click()
    expect(detail).not_to_have_attribute("data-id", bad["id"])
    again_id = detail.get_attribute("data-id")
    assert again_id
    expect(detail).to_have_attribute("data-status", "failed", timeout=RUN_MS)
    again = automate(lab, "GET", f"runs/{again_id}")
    assert (again["target"], again["fabric"]) == (BROKEN, "in-memory")
    assert again["parameters"] == bad["parameters"]
    studio.shot("run-again-failed")
    detail.get_by_test_id("prophecy-observe-back").click()
    expect(run_row(sidebar, again)).to_have_attribute("data-status", "failed")

    # A run started elsewhere shows on refresh, and the list follows it while it runs.
    sidebar.get_by_test_id("prophecy-observe-filter-status").select_option("")
    slow = start_run(lab, notebook="notebooks/slow.ipynb")
    sidebar.get_by_test_id("prophecy-observe-refresh-runs").click()
    expect(run_row(sidebar, slow)).to_have_attribute("data-status", "running", timeout=RUN_MS)
    studio.shot("slow-notebook-running")
    run_row(sidebar, slow).click()
    expect(detail).to_have_attribute("data-status", "running")
    studio.shot("slow-notebook-detail")
    detail.get_by_test_id("prophecy-observe-cancel").click()
    expect(detail).to_have_attribute("data-status", "cancelled", timeout=RUN_MS)
    expect(detail.get_by_test_id("prophecy-observe-cancel")).to_have_count(0)
    assert automate(lab, "GET", f"runs/{slow['id']}")["status"] == "cancelled"
    studio.shot("slow-notebook-cancelled")
    detail.get_by_test_id("prophecy-observe-back").click()

    run_row(sidebar, notebook).click()
    expect(detail).to_have_attribute("data-status", "succeeded")
    expect(detail.get_by_test_id("prophecy-observe-gems")).to_have_count(0)
    with studio.page.expect_download() as download:
        detail.get_by_test_id("prophecy-observe-output-notebook").click()
    assert download.value.suggested_filename == f"explore-run-{notebook['id']}.ipynb"
    saved = json.loads(download.value.path().read_text(encoding="utf-8"))
    outputs = [o for cell in saved["cells"] for o in cell.get("outputs", [])]
    assert outputs, "the output notebook has no outputs"
    studio.shot("notebook-run")

    # Opened in JupyterLab's own notebook viewer, outputs and all, and read-only.
    detail.get_by_test_id("prophecy-observe-open-notebook").click()
    tab = studio.page.locator(".lm-TabBar-tab", has_text=f"explore-run-{notebook['id']}.ipynb")
    expect(tab).to_be_visible()
    viewer = studio.page.locator(".jp-NotebookPanel:visible")
    expect(viewer.locator(".jp-OutputArea-output").first).to_be_visible()
    # The notebook is windowed: only cells near the top are drawn; their outputs are there.
    expect(viewer.locator(".jp-OutputArea-output", has_text="3 rows")).to_be_visible()
    expect(viewer).to_contain_text("notebook is read-only")
    studio.shot("notebook-opened")


def test_a_schedule_shows_its_next_fire_turns_off_and_on_runs_now_and_is_deployed(
    shop: Studio,
) -> None:
    studio = shop
    lab = studio.lab
    page = studio.page
    sidebar = open_observe(studio)
    nightly = sidebar.locator("[data-testid=prophecy-observe-schedule][data-name=nightly]")
    expect(nightly).to_contain_text("pipeline customer_totals · in-memory")
    expect(nightly).to_contain_text("0 2 * * *")
    expect(nightly).to_contain_text("Europe/Paris")
    next_fire = nightly.get_by_test_id("prophecy-schedule-next")
    expect(next_fire).to_contain_text(re.compile(r"in \d+ (min|h)"))
    listed = automate(lab, "GET", "schedules?project=shop")["schedules"]
    served = next(s for s in listed if s["name"] == "nightly")["next_fire"]
    expect(next_fire.locator("time")).to_have_attribute("datetime", served)
    expect(nightly.get_by_test_id("prophecy-schedule-last")).to_contain_text("no run yet")
    studio.shot("schedules")

    switch = nightly.get_by_test_id("prophecy-schedule-enabled")
    switch.click()
    expect(nightly).to_have_attribute("data-enabled", "false")
    expect(next_fire).to_contain_text("disabled")
    written = yaml.safe_load((lab.shop / "schedules" / "nightly.yml").read_text())
    assert written["enabled"] is False
    studio.shot("schedule-disabled")
    switch.click()
    expect(nightly).to_have_attribute("data-enabled", "true")
    expect(next_fire).to_contain_text(re.compile(r"in \d+ (min|h)"))

    nightly.get_by_test_id("prophecy-schedule-run-now").click()
    row = sidebar.locator("[data-testid=prophecy-observe-run][data-target=customer_totals]")
    expect(row.first).to_contain_text("nightly")
    expect(row.first).to_have_attribute("data-status", "succeeded", timeout=RUN_MS)
    last = nightly.get_by_test_id("prophecy-schedule-last-run")
    expect(last).to_have_attribute("data-status", "succeeded")
    studio.shot("ran-now")

    sidebar.get_by_test_id("prophecy-observe-filter-schedule").select_option("nightly")
    expect(sidebar.get_by_test_id("prophecy-observe-run")).to_have_count(1)
    last.click()
    detail = sidebar.get_by_test_id("prophecy-observe-run-detail")
    expect(detail.get_by_test_id("prophecy-observe-fact-trigger")).to_contain_text("nightly")
    studio.shot("scheduled-run-detail")
    detail.get_by_test_id("prophecy-observe-back").click()

    sidebar.get_by_test_id("prophecy-observe-deploy").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("select").select_option("in-memory")
    studio.shot("deploy-dialog")
    dialog.get_by_role("button", name="Deploy").click()
    deployment = sidebar.get_by_test_id("prophecy-observe-deployment").first
    expect(deployment).to_have_attribute("data-active", "true")
    expect(deployment).to_have_attribute("data-fabric", "in-memory")
    expect(deployment).to_contain_text("1 schedule")
    deployment.click()
    contents = deployment.get_by_test_id("prophecy-deployment-contents")
    expect(contents).to_contain_text("customer_totals")
    expect(contents).to_contain_text("nightly")
    expect(nightly).to_contain_text(f"deployment {deployment.get_attribute('data-id')}")
    studio.shot("deployed")
