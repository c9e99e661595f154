"""The Studio and jupyterlab-git in one JupyterLab: each keeps its own routes, commands, menus
and panels, and both work on the same repository."""

from __future__ import annotations

import shutil
import subprocess

import requests

from tests.browser.conftest import Studio


def test_the_studio_and_jupyterlab_git_work_side_by_side(studio: Studio) -> None:
    page = studio.page
    studio.open()
    page.wait_for_function(
        "() => window.jupyterapp"
        " && window.jupyterapp.commands.hasCommand('git:init')"
        " && window.jupyterapp.commands.hasCommand('prophecy:new-pipeline')",
    )
    commands: list[str] = page.evaluate("() => window.jupyterapp.commands.listCommands()")
    ours = [c for c in commands if "prophecy" in c.lower()]
    git = [c for c in commands if c.startswith("git:")]
    assert ours and all(c.startswith("prophecy:") for c in ours)
    assert len(git) > 10  # jupyterlab-git loaded its own commands beside ours
    menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
    assert menus.count("Git") == 1  # jupyterlab-git's menu, and no second one of ours
    # Both panels sit in the left area: jupyterlab-git's and the Studio's, each with its own id.
    panels: list[str] = page.evaluate(
        "() => Array.from(window.jupyterapp.shell.widgets('left')).map(w => w.id)"
    )
    assert "jp-git-sessions" in panels
    assert any(p.startswith("prophecy") for p in panels)
    assert len(panels) == len(set(panels))
    studio.shot("side-by-side")

    # The same repository through both servers' routes.
    shop = studio.lab.shop
    subprocess.run(["git", "init", "-q", str(shop)], check=True)
    server = studio.lab.server
    theirs = requests.post(
        f"{server.url}git/shop/status", headers=server.headers, json={}, timeout=30
    )
    assert theirs.status_code == 200 and theirs.json()["code"] == 0
    untracked = {f["to"] for f in theirs.json()["files"]}
    ours_status = requests.get(
        f"{server.api}/vcs/status", params={"project": "shop"}, headers=server.headers, timeout=30
    )
    assert ours_status.status_code == 200, ours_status.text
    changed = {c["path"] for c in ours_status.json()["changes"]}
    assert "pipelines/customer_totals.pipeline.json" in changed
    assert any(p.endswith("customer_totals.pipeline.json") for p in untracked)
    shutil.rmtree(shop / ".git")
