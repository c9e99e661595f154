"""The Git tab of the Studio sidebar, used as a person would: put a project under Git, commit
the example, branch, see an edit made on disk marked on the pipeline canvas, merge with a
pipeline conflict settled in the conflict view, release and deploy the release."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, expect

from tests.browser.conftest import Studio, eventually

PROJECT = "gitshop"
"""A copy of the shop of its own, so that its repository, branches and deployments touch no
other test's project."""
PIPELINE = "pipelines/customer_totals.pipeline.json"
FEATURE = "feature/delivered"


@pytest.fixture
def project(studio: Studio) -> Iterator[Path]:
    root = studio.lab.root / PROJECT
    shutil.copytree(studio.lab.shop, root, ignore=shutil.ignore_patterns(".prophecy", ".git"))
    config = root / "prophecy_project.yml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("name: shop", f"name: {PROJECT}"),
        encoding="utf-8",
    )
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def edit(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Change customer_totals in its file, as another editor would."""
    path = root / PIPELINE
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def gem(document: dict[str, Any], gem_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(g for g in document["gems"] if g["id"] == gem_id)
    return found


def condition(value: str, move: bool = False) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        gem(document, "shipped")["properties"]["condition"] = value
        if move:
            gem(document, "ranked")["position"]["y"] += 160

    return change


def api(studio: Studio, path: str) -> Any:
    server = studio.lab.server
    request = urllib.request.Request(
        f"{server.url}prophecy/api/v1/{path}",
        headers={"Authorization": f"token {server.token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def open_git(studio: Studio) -> Locator:
    studio.open()
    page = studio.page
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[title='Prophecy Studio']").click()
    sidebar = page.locator("#prophecy-studio-sidebar")
    sidebar.get_by_test_id("prophecy-project-select").select_option(PROJECT)
    sidebar.get_by_test_id("prophecy-view-git").click()
    expect(sidebar.get_by_test_id("prophecy-view-git")).to_have_attribute("aria-selected", "true")
    return sidebar


def change_item(sidebar: Locator, path: str) -> Locator:
    return sidebar.locator(f"[data-testid=prophecy-git-change][data-path='{path}']")


def branch_item(sidebar: Locator, name: str) -> Locator:
    return sidebar.locator(f"[data-testid=prophecy-git-branch-item][data-name='{name}']")


def commit(sidebar: Locator, message: str) -> None:
    sidebar.get_by_test_id("prophecy-git-message").fill(message)
    sidebar.get_by_test_id("prophecy-git-commit").click()
    expect(sidebar.get_by_test_id("prophecy-git-commit-done")).to_contain_text("Committed")
    expect(sidebar.get_by_test_id("prophecy-git-clean")).to_be_visible()


def test_commit_branch_diff_on_the_canvas_merge_a_conflict_release_and_deploy(
    studio: Studio, project: Path
) -> None:
    page = studio.page
    sidebar = open_git(studio)
    expect(sidebar.get_by_test_id("prophecy-git-no-repository")).to_be_visible()
    studio.shot("not-under-git")

    # Put the project under Git: every file of the example is a change, grouped.
    sidebar.get_by_test_id("prophecy-git-init").click()
    expect(sidebar.get_by_test_id("prophecy-git-branch")).to_have_text("main")
    groups = sidebar.get_by_test_id("prophecy-git-group")
    expect(groups.first).to_have_attribute("data-group", "pipelines")
    pipelines = sidebar.locator("[data-testid=prophecy-git-group][data-group=pipelines]")
    expect(pipelines.get_by_test_id("prophecy-git-change")).to_have_count(4)
    expect(change_item(sidebar, "prophecy_project.yml")).to_be_visible()
    expect(change_item(sidebar, PIPELINE)).to_have_attribute("data-status", "untracked")
    assert (project / ".git").is_dir()
    studio.shot("example-files-as-changes")

    # Leave the notebooks out of the first commit, then check them again: all are committed.
    notebooks = sidebar.locator("[data-testid=prophecy-git-group][data-group=notebooks]")
    group_check = notebooks.get_by_test_id("prophecy-git-group-check")
    group_check.click()
    expect(group_check).not_to_be_checked()
    group_check.click()
    expect(group_check).to_be_checked()
    commit(sidebar, "The shop example")
    studio.shot("committed")

    # A branch for the change.
    sidebar.get_by_test_id("prophecy-git-new-branch").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill(FEATURE)
    dialog.get_by_role("button", name="Create and switch").click()
    expect(sidebar.get_by_test_id("prophecy-git-branch")).to_have_text(FEATURE)
    expect(branch_item(sidebar, "main")).to_have_attribute("data-current", "false")
    studio.shot("on-a-branch")

    # An edit made on disk: the Filter keeps delivered orders only, and a gem moves.
    edit(project, condition("status = 'delivered'", move=True))
    sidebar.get_by_test_id("prophecy-git-refresh").click()
    changed = change_item(sidebar, PIPELINE)
    expect(changed).to_have_attribute("data-status", "modified")
    studio.shot("edit-seen")

    # Opened from the changes, the canvas marks what changed.
    changed.click()
    expect(studio.editor).to_be_visible(timeout=60_000)
    shipped = studio.gem("shipped")
    expect(shipped).to_have_attribute("data-diff", "changed")
    expect(shipped.get_by_test_id("prophecy-gem-diff")).to_have_text("changed")
    expect(shipped).to_have_attribute("title", "shipped changed: condition")
    ranked = studio.gem("ranked")
    expect(ranked).to_have_attribute("data-diff", "changed")
    expect(ranked.get_by_test_id("prophecy-gem-diff")).to_have_text("moved")
    expect(studio.gem("orders")).to_have_attribute("data-diff", "")
    banner = page.get_by_test_id("prophecy-diff-banner")
    expect(banner.get_by_test_id("prophecy-diff-summary")).to_have_text("2 gems: 2 changed")
    expect(banner).to_contain_text("shipped: condition")
    studio.shot("diff-on-the-canvas")
    shipped.hover()
    page.mouse.wheel(0, -500)  # zoom in around the changed Filter to read its badge
    expect(shipped.get_by_test_id("prophecy-gem-diff")).to_be_in_viewport()
    studio.shot("diff-close-up")

    commit(sidebar, "Only delivered orders")
    expect(banner).to_have_count(0)
    expect(shipped).to_have_attribute("data-diff", "")
    studio.shot("change-committed")

    # Back on main, a conflicting edit of the same condition.
    branch_item(sidebar, "main").get_by_test_id("prophecy-git-switch").click()
    expect(sidebar.get_by_test_id("prophecy-git-branch")).to_have_text("main")
    edit(project, condition("status = 'returned'"))
    sidebar.get_by_test_id("prophecy-git-refresh").click()
    expect(change_item(sidebar, PIPELINE)).to_be_visible()
    commit(sidebar, "Returned orders")

    # Merging the branch stops on that conflict; the move merges by itself.
    branch_item(sidebar, FEATURE).get_by_test_id("prophecy-git-merge").click()
    view = sidebar.get_by_test_id("prophecy-git-merge-view")
    conflict = view.locator("[data-testid=prophecy-git-conflict][data-gem=shipped]")
    expect(conflict).to_be_visible()
    expect(view.get_by_test_id("prophecy-git-conflict")).to_have_count(1)
    expect(conflict).to_contain_text("condition")
    ours = conflict.get_by_test_id("prophecy-git-ours-value")
    expect(ours.locator("pre")).to_have_text("status = 'returned'")
    theirs = conflict.get_by_test_id("prophecy-git-theirs-value")
    expect(theirs.locator("pre")).to_have_text("status = 'delivered'")
    finish = view.get_by_test_id("prophecy-git-finish-merge")
    expect(finish).to_be_disabled()
    expect(sidebar.get_by_test_id("prophecy-git-commit")).to_be_disabled()
    studio.shot("conflict-view")

    conflict.get_by_test_id("prophecy-git-choose-theirs").click()
    expect(conflict).to_have_attribute("data-chosen", "theirs")
    expect(finish).to_be_enabled()
    studio.shot("theirs-chosen")
    finish.click()
    expect(sidebar.get_by_test_id("prophecy-git-notice")).to_contain_text(f"Merged {FEATURE}")
    expect(view).to_have_count(0)
    expect(sidebar.get_by_test_id("prophecy-git-clean")).to_be_visible()
    merged = json.loads((project / PIPELINE).read_text(encoding="utf-8"))
    assert gem(merged, "shipped")["properties"]["condition"] == "status = 'delivered'"
    assert gem(merged, "ranked")["position"]["y"] == 140 + 160
    studio.shot("merged")

    # Release the merge and deploy the release.
    sidebar.get_by_test_id("prophecy-git-new-release").click()
    form = sidebar.get_by_test_id("prophecy-git-release-form")
    form.get_by_test_id("prophecy-git-release-version").fill("v1")
    form.get_by_test_id("prophecy-git-release-notes").fill("Delivered orders only")
    studio.shot("release-form")
    form.get_by_test_id("prophecy-git-release-create").click()
    release = sidebar.locator("[data-testid=prophecy-git-release][data-version=v1]")
    expect(release).to_contain_text("Delivered orders only")

    release.get_by_test_id("prophecy-git-deploy").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("select").select_option("in-memory")
    studio.shot("deploy-dialog")
    dialog.get_by_role("button", name="Deploy").click()
    expect(sidebar.get_by_test_id("prophecy-git-release-action-done")).to_have_text(
        "Deployed v1 to in-memory"
    )
    deployments = eventually(
        lambda: api(studio, f"automate/deployments?project={PROJECT}")["deployments"]
    )
    assert deployments[0]["release"] == "v1" and deployments[0]["active"]
    assert "customer_totals" in deployments[0]["pipelines"]
    studio.shot("deployed")
