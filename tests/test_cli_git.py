"""`prophecy git …` and `prophecy diff`, driven as a user would, on temporary repositories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from prophecy_jupyter.automate.service import Automate
from prophecy_jupyter.cli import main
from prophecy_jupyter.model.pipeline import dump_pipeline, load_pipeline
from tests import git_servers
from tests.git_servers import HttpGitServer, bare_remote, git
from tests.test_server_support import copy_shop

http_git = git_servers.http_git
isolated_git = git_servers.isolated_git

pytestmark = pytest.mark.usefixtures("isolated_git")

PIPELINE = "pipelines/customer_totals.pipeline.json"


def prophecy(project: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--project", str(project), *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def ok(project: Path, *args: str, env: dict[str, str] | None = None) -> str:
    code, out, err = prophecy(project, *args, env=env)
    assert code == 0, (code, out, err)
    return out


def set_condition(project: Path, value: str) -> None:
    doc: dict[str, Any] = json.loads((project / PIPELINE).read_text())
    next(g for g in doc["gems"] if g["id"] == "shipped")["properties"]["condition"] = value
    (project / PIPELINE).write_text(dump_pipeline(load_pipeline(doc)))


def condition(project: Path) -> str:
    doc: dict[str, Any] = json.loads((project / PIPELINE).read_text())
    value: str = next(g for g in doc["gems"] if g["id"] == "shipped")["properties"]["condition"]
    return value


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """The shop project as a repository with one commit, made through the CLI."""
    project = copy_shop(tmp_path / "shop")
    assert "initialized a Git repository" in ok(project, "git", "init")
    out = ok(project, "git", "commit", "-m", "the shop")
    assert out.startswith("committed ") and out.rstrip().endswith("(13 files)")
    return project


def test_status_diff_commit_and_branches(shop: Path) -> None:
    assert ok(shop, "git", "status").splitlines() == ["on branch main", "nothing to commit"]
    set_condition(shop, "status = 'shipped'")
    (shop / "data" / "extra.csv").write_text("a\n1\n")
    assert ok(shop, "git", "status").splitlines() == [
        "on branch main",
        "other:",
        "  untracked  data/extra.csv",
        "pipelines:",
        f"  modified   {PIPELINE}",
    ]
    status = json.loads(ok(shop, "git", "status", "--format", "json"))
    assert {c["path"]: c["pipeline"] for c in status["changes"]} == {
        "data/extra.csv": None,
        PIPELINE: "customer_totals",
    }

    diff = ok(shop, "git", "diff")
    assert (
        f"pipeline customer_totals ({PIPELINE})\n~ gem shipped (Filter): /properties/condition\n"
        in diff
    )
    assert "--- /dev/null\n+++ b/data/extra.csv\n" in diff
    assert ok(shop, "diff") == diff  # the top-level alias
    (entry,) = json.loads(ok(shop, "diff", "--path", "pipelines", "--format", "json"))
    assert entry["kind"] == "pipeline"
    assert entry["diff"]["gems"][0]["id"] == "shipped"

    out = ok(shop, "git", "commit", "-m", "shipped only", PIPELINE, "--author", "Ada <ada@x.org>")
    assert out.rstrip().endswith("shipped only (1 files)")
    assert git(shop, "log", "-1", "--format=%an %ae %s").strip() == "Ada ada@x.org shipped only"
    assert ok(shop, "diff", "HEAD~1", "--path", PIPELINE).startswith("pipeline customer_totals")

    assert ok(shop, "git", "branch", "feature").startswith("created branch feature at ")
    # Switching with uncommitted changes: one line naming them, exit 1.
    code, out, err = prophecy(shop, "git", "switch", "feature")
    assert code == 1
    assert err.startswith("error: uncommitted changes in data/extra.csv")
    assert err.count("\n") == 1
    (shop / "data" / "extra.csv").unlink()
    assert ok(shop, "git", "switch", "feature").startswith("switched to feature")
    out = ok(shop, "git", "branch", "next", "--switch")
    assert "created branch next" in out and "switched to next" in out
    listed = ok(shop, "git", "branch").splitlines()
    assert [line.split()[:-1] for line in listed] == [["feature"], ["main"], ["*", "next"]]
    assert ok(shop, "git", "switch", "main").startswith("switched to main")


def test_merge_conflicts_are_listed_and_settled_with_resolve(shop: Path) -> None:
    ok(shop, "git", "branch", "feature", "--switch")
    set_condition(shop, "status = 'delivered'")
    ok(shop, "git", "commit", "-m", "delivered")
    ok(shop, "git", "switch", "main")
    set_condition(shop, "status = 'shipped'")
    ok(shop, "git", "commit", "-m", "shipped")

    code, out, err = prophecy(shop, "git", "merge", "feature")
    assert code == 1, err
    assert f"conflicts in {PIPELINE} (pipeline customer_totals):" in out
    assert (
        "  /gems/shipped/properties/condition: both changed the condition "
        "(ours \"status = 'shipped'\", theirs \"status = 'delivered'\")\n"
    ) in out
    assert "--resolve FILE:PATH=ours|theirs" in out
    assert "a merge is in progress" in ok(shop, "git", "status")
    code, out, _ = prophecy(shop, "git", "merge")
    assert code == 1 and "/gems/shipped/properties/condition" in out

    code, _, err = prophecy(shop, "git", "merge", "feature", "--resolve", "nonsense")
    assert code == 2 and "FILE:PATH=ours|theirs" in err
    code, _, err = prophecy(shop, "git", "commit", "-m", "too early")
    assert code == 1 and err.startswith("error: a merge is in progress")

    out = ok(
        shop,
        "git",
        "merge",
        "feature",
        "--resolve",
        f"{PIPELINE}:/gems/shipped/properties/condition=theirs",
    )
    assert out.startswith("merge resolved: merged")
    assert condition(shop) == "status = 'delivered'"
    assert len(git(shop, "log", "-1", "--format=%P").split()) == 2
    assert ok(shop, "git", "status").splitlines() == ["on branch main", "nothing to commit"]


def test_merge_abort_and_a_whole_file_resolution(shop: Path) -> None:
    data = shop / "data" / "customers.csv"
    ok(shop, "git", "branch", "other", "--switch")
    data.write_text("customer_id\n2\n")
    ok(shop, "git", "commit", "-m", "theirs")
    ok(shop, "git", "switch", "main")
    data.write_text("customer_id\n1\n")
    ok(shop, "git", "commit", "-m", "ours")
    code, out, _ = prophecy(shop, "git", "merge", "other")
    assert code == 1 and "conflict in data/customers.csv" in out
    assert ok(shop, "git", "merge", "--abort") == "merge aborted\n"
    assert data.read_text() == "customer_id\n1\n"
    code, _, _ = prophecy(shop, "git", "merge", "other")
    assert code == 1
    out = ok(shop, "git", "merge", "other", "--resolve", "data/customers.csv=theirs")
    assert out.startswith("merge resolved")
    assert data.read_text() == "customer_id\n2\n"


def test_remote_push_pull_release_deploy_and_rollback(tmp_path: Path, shop: Path) -> None:
    remote = bare_remote(tmp_path / "remote.git")
    assert ok(shop, "git", "remote", str(remote)).startswith(f"origin  {remote}  (no credentials)")
    assert ok(shop, "git", "push").startswith("pushed main to origin")
    clone = tmp_path / "clone"
    assert "cloned into" in ok(shop, "git", "clone", str(remote), str(clone))

    set_condition(shop, "status = 'shipped'")
    ok(shop, "git", "commit", "-m", "shipped")
    ok(shop, "git", "push")
    assert "fast-forward" in ok(clone, "git", "pull")
    assert condition(clone) == "status = 'shipped'"
    assert "already up to date" in ok(clone, "git", "pull")

    out = ok(shop, "git", "release", "1.0", "-m", "first release", "--push")
    assert out.startswith("released shop/1.0 at ") and "pushed to origin" in out
    assert "refs/tags/shop/1.0" in git(remote, "show-ref", "--tags")
    set_condition(shop, "status = 'delivered'")
    ok(shop, "git", "commit", "-m", "delivered")
    ok(shop, "git", "release", "1.1", "-m", "second")
    lines = ok(shop, "git", "releases").splitlines()
    assert [line.split()[0] for line in lines] == ["1.1", "1.0"]
    assert lines[0].endswith("second")
    released = json.loads(ok(shop, "git", "releases", "--format", "json"))
    assert [r["tag"] for r in released] == ["shop/1.1", "shop/1.0"]

    out = ok(shop, "git", "deploy", "1.1", "--fabric", "in-memory")
    assert out.startswith("deployed fabric 'in-memory' to release 1.1")
    out = ok(shop, "git", "rollback", "1.0", "--fabric", "in-memory")
    assert out.startswith("rolled back fabric 'in-memory' to release 1.0")
    automate = Automate(shop)
    active = [d for d in automate.deployments("") if d.active]
    assert [d.manifest["release"] for d in active] == ["1.0"]
    deployed = json.loads((Path(active[0].path) / PIPELINE).read_text())
    shipped = next(g for g in deployed["gems"] if g["id"] == "shipped")
    assert shipped["properties"]["condition"] == "status = 'shipped'"
    code, _, err = prophecy(shop, "git", "deploy", "7.0", "--fabric", "in-memory")
    assert code == 1 and err == "error: project 'shop' has no release '7.0'\n"


def test_a_token_is_read_from_the_environment_and_never_printed(
    tmp_path: Path, shop: Path, http_git: HttpGitServer
) -> None:
    http_git.create("shop.git")
    env = {"SHOP_TOKEN": http_git.token}
    out = ok(
        shop,
        "git",
        "remote",
        http_git.url("shop.git"),
        "--username",
        "alice",
        "--token-env",
        "SHOP_TOKEN",
        env=env,
    )
    assert out.strip() == f"origin  {http_git.url('shop.git')}  (token, user alice)"
    ok(shop, "git", "push")
    assert ("POST", "/shop.git/git-receive-pack", "alice") in http_git.requests
    assert http_git.token not in (shop / ".git" / "config").read_text()
    assert http_git.token not in ok(shop, "git", "remote")

    clone = tmp_path / "clone"
    env_bad = {"BAD_TOKEN": "nope-" + http_git.token}
    code, out, err = prophecy(
        shop,
        "git",
        "clone",
        http_git.url("shop.git"),
        str(clone),
        "--token-env",
        "BAD_TOKEN",
        env=env_bad,
    )
    assert code == 1
    assert err.startswith("error: git clone: authentication failed")
    assert http_git.token not in out + err
    code, _, err = prophecy(shop, "git", "remote", "x", "--token-env", "UNSET_VARIABLE_X")
    assert code == 2 and "$UNSET_VARIABLE_X is not set" in err
    ok(
        shop,
        "git",
        "clone",
        http_git.url("shop.git"),
        str(clone),
        "--token-env",
        "SHOP_TOKEN",
        env=env,
    )
    assert (clone / PIPELINE).read_bytes() == (shop / PIPELINE).read_bytes()


def test_errors_are_one_line(tmp_path: Path, shop: Path) -> None:
    code, _, err = prophecy(shop, "git", "commit", "-m", "nothing")
    assert (code, err) == (1, "error: nothing to commit: no changes in the project\n")
    (shop / PIPELINE).write_text("{")
    code, _, err = prophecy(shop, "git", "commit", "-m", "broken")
    assert code == 1
    assert err.startswith("error: ") and PIPELINE in err and err.count("\n") == 1
    outside = copy_shop(tmp_path / "plain")
    code, _, err = prophecy(outside, "git", "status")
    assert code == 1 and "is not in a Git repository" in err and err.count("\n") == 1
    code, _, err = prophecy(shop, "git", "switch", "nowhere")
    assert code == 1
