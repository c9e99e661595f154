"""Version control of projects (`prophecy_jupyter.vcs.service.Vcs`) on real repositories:
a bare remote on disk, a token-protected HTTP remote (`git http-backend`), two clones
editing the same pipeline, releases deployed through a real `Automate`."""

from __future__ import annotations

import getpass
import json
import os
import shlex
import socket
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from prophecy_jupyter.automate.service import Automate
from prophecy_jupyter.errors import Conflict, GitError, NotFound, ProphecyError, ValidationError
from prophecy_jupyter.fabrics import SecretStore
from prophecy_jupyter.model.pipeline import dump_pipeline, load_pipeline
from prophecy_jupyter.vcs.credentials import GitCredentials, git_environment, scrub
from prophecy_jupyter.vcs.service import Vcs
from tests import git_servers
from tests.git_servers import HttpGitServer, bare_remote, git
from tests.test_server_support import copy_shop

# The fixtures of real Git servers, found by pytest under these names.
http_git = git_servers.http_git
isolated_git = git_servers.isolated_git

pytestmark = pytest.mark.usefixtures("isolated_git")

PIPELINE = "pipelines/customer_totals.pipeline.json"
SSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACBfakeKeyMaterialForTestsOnlyNotARealKeyAtAll0000000000000\n"
    "-----END OPENSSH PRIVATE KEY-----"
)


# -- helpers -----------------------------------------------------------------------------------
def document(project: Path, path: str = PIPELINE) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project / path).read_text())
    return data


def gem_of(doc: dict[str, Any], gem_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(g for g in doc["gems"] if g["id"] == gem_id)
    return found


def edit(project: Path, change: Callable[[dict[str, Any]], None], path: str = PIPELINE) -> None:
    """Edit a pipeline as the Studio does: load, change, write canonically."""
    doc = document(project, path)
    change(doc)
    (project / path).write_text(dump_pipeline(load_pipeline(doc)))


def set_condition(value: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        gem_of(doc, "shipped")["properties"]["condition"] = value

    return change


def shop_repo(base: Path) -> tuple[Path, Vcs]:
    """The shop project as a repository with one commit."""
    project = copy_shop(base)
    vcs = Vcs(project)
    vcs.init()
    vcs.commit("the shop")
    return project, vcs


def two_clones(tmp_path: Path) -> tuple[Path, Vcs, Path, Vcs]:
    """The shop pushed to a bare remote, and a second clone of it."""
    remote = bare_remote(tmp_path / "remote.git")
    first, ours = shop_repo(tmp_path / "first")
    ours.set_remote(str(remote))
    ours.push()
    done = Vcs.clone(str(remote), tmp_path / "second")
    second = Path(done["root"])
    return first, ours, second, Vcs(second)


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def all_text_under(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())


# -- init, status, commit ------------------------------------------------------------------------
def test_status_groups_the_project_changes_and_commit_takes_the_chosen_files(
    tmp_path: Path,
) -> None:
    project = copy_shop(tmp_path / "shop")
    vcs = Vcs(project)
    assert vcs.init() == {"root": str(project), "branch": "main"}
    assert ".prophecy/" in (project / ".gitignore").read_text().splitlines()
    with pytest.raises(Conflict, match="already"):
        vcs.init()
    first = vcs.status()
    assert first["branch"] == "main"
    assert {c["status"] for c in first["changes"]} == {"untracked"}
    assert {"path": PIPELINE, "status": "untracked", "group": "pipelines"}.items() <= next(
        c for c in first["changes"] if c["path"] == PIPELINE
    ).items()
    vcs.commit("the shop")
    assert vcs.status()["changes"] == []

    # One change of every kind and group.
    (project / ".prophecy").mkdir(exist_ok=True)
    (project / ".prophecy" / "warehouse.duckdb").write_bytes(b"ignored")
    edit(project, set_condition("status = 'shipped'"))
    git(project, "mv", "pipelines/top_products.pipeline.json", "pipelines/best.pipeline.json")
    (project / "pipelines" / "channel_report.pipeline.json").unlink()
    (project / "schedules").mkdir()
    (project / "schedules" / "nightly.yml").write_text("pipeline: customer_totals\n")
    (project / "fabrics").mkdir()
    (project / "fabrics" / "warehouse.yml").write_text("kind: postgres\n")
    (project / "connections").mkdir()
    (project / "connections" / "crm.yml").write_text("kind: http\n")
    (project / "notebooks" / "explore.ipynb").write_text("{}")
    (project / "prophecy_project.yml").write_text("name: shop\ndefault_fabric: in-memory\n")
    (project / "data" / "more.csv").write_text("a\n1\n")
    status = vcs.status()
    seen = {c["path"]: (c["status"], c["group"], c["pipeline"]) for c in status["changes"]}
    assert seen == {
        PIPELINE: ("modified", "pipelines", "customer_totals"),
        "pipelines/best.pipeline.json": ("renamed", "pipelines", "best"),
        "pipelines/channel_report.pipeline.json": ("deleted", "pipelines", "channel_report"),
        "schedules/nightly.yml": ("untracked", "schedules", None),
        "fabrics/warehouse.yml": ("untracked", "fabrics", None),
        "connections/crm.yml": ("untracked", "connections", None),
        "notebooks/explore.ipynb": ("modified", "notebooks", None),
        "prophecy_project.yml": ("modified", "project", None),
        "data/more.csv": ("untracked", "other", None),
    }
    renamed = next(c for c in status["changes"] if c["status"] == "renamed")
    assert renamed["from"] == "pipelines/top_products.pipeline.json"

    # Only the chosen files (a file and a folder) are committed, whatever else is staged.
    git(project, "add", "data/more.csv")
    done = vcs.commit("nightly totals", [PIPELINE, "schedules"])
    assert done["files"] == [PIPELINE, "schedules/nightly.yml"]
    assert done["message"] == "nightly totals"
    shown = git(project, "show", "--name-status", "--format=%H %s", "HEAD").split("\n")
    assert shown[0] == f"{done['commit']} nightly totals"
    assert sorted(line for line in shown[1:] if line) == [
        "A\tschedules/nightly.yml",
        f"M\t{PIPELINE}",
    ]
    left = {c["path"] for c in vcs.status()["changes"]}
    assert PIPELINE not in left
    assert "schedules/nightly.yml" not in left
    assert "data/more.csv" in left

    # The rest, with a named author.
    done = vcs.commit("the rest", author_name="Ada", author_email="ada@example.com")
    assert git(project, "log", "-1", "--format=%an <%ae>").strip() == "Ada <ada@example.com>"
    assert vcs.status()["changes"] == []
    assert "warehouse.duckdb" not in git(project, "ls-files")


def test_commit_refuses_empty_commits_messages_and_pipelines_that_do_not_load(
    tmp_path: Path,
) -> None:
    project, vcs = shop_repo(tmp_path / "shop")
    head = git(project, "rev-parse", "HEAD")
    with pytest.raises(Conflict, match="nothing to commit"):
        vcs.commit("nothing")
    (project / "data" / "new.csv").write_text("x\n")
    with pytest.raises(Conflict, match="nothing to commit: no changes in pipelines"):
        vcs.commit("wrong place", ["pipelines"])
    with pytest.raises(ValidationError, match="needs a message"):
        vcs.commit("   ")
    (project / PIPELINE).write_text('{"version": 1, "gems": [}')
    with pytest.raises(ValidationError) as caught:
        vcs.commit("broken")
    assert all(PIPELINE in issue.message for issue in caught.value.issues)
    assert "not valid JSON" in str(caught.value)
    # Nothing was staged or committed.
    assert git(project, "rev-parse", "HEAD") == head
    assert git(project, "diff", "--cached", "--name-only") == ""


def test_a_project_in_a_subfolder_of_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    (repo / "README.md").write_text("team repository\n")
    project = copy_shop(repo / "projects" / "shop")
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "start")
    vcs = Vcs(project)
    (repo / "README.md").write_text("changed outside the project\n")
    edit(project, set_condition("status <> 'returned'"))
    status = vcs.status()
    assert [(c["path"], c["group"]) for c in status["changes"]] == [(PIPELINE, "pipelines")]
    (diffed,) = vcs.diff()
    assert diffed["path"] == PIPELINE
    done = vcs.commit("only the project")
    assert done["files"] == [PIPELINE]
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [
        f"projects/shop/{PIPELINE}"
    ]
    assert git(repo, "status", "--porcelain").strip() == "M README.md"
    # Releases tag the project's name; deploying reads the project's folder of the tag.
    git(repo, "checkout", "--quiet", "README.md")
    assert vcs.release("1.0", "first")["tag"] == "shop/1.0"


# -- diff --------------------------------------------------------------------------------------
def test_diff_shows_pipelines_by_gem_and_other_files_as_patches(tmp_path: Path) -> None:
    project, vcs = shop_repo(tmp_path / "shop")
    first = git(project, "rev-parse", "HEAD").strip()

    def rework(doc: dict[str, Any]) -> None:
        gem_of(doc, "shipped")["properties"]["condition"] = "status = 'shipped'"
        gem_of(doc, "ranked")["position"] = {"x": 999, "y": 5}

    edit(project, rework)
    (project / "data" / "customers.csv").write_text("customer_id,name\n1,Ada\n")
    (project / "notes.md").write_text("new\n")
    (project / "pipelines" / "broken.pipeline.json").write_text("{not json")
    found = {d["path"]: d for d in vcs.diff()}
    assert set(found) == {
        PIPELINE,
        "data/customers.csv",
        "notes.md",
        "pipelines/broken.pipeline.json",
    }
    pipeline = found[PIPELINE]
    assert pipeline["kind"] == "pipeline"
    gems = {g["id"]: g for g in pipeline["diff"]["gems"]}
    assert gems["shipped"]["fields"] == ["/properties/condition"]
    assert gems["ranked"] == {
        "id": "ranked",
        "status": "changed",
        "kind": "OrderBy",
        "fields": [],
        "moved": True,
    }
    patch = found["data/customers.csv"]["patch"]
    assert patch.startswith("--- a/data/customers.csv\n+++ b/data/customers.csv\n")
    assert "+1,Ada\n" in patch
    assert found["notes.md"]["patch"].startswith("--- /dev/null\n+++ b/notes.md\n")
    assert found["pipelines/broken.pipeline.json"]["kind"] == "text"

    (project / "pipelines" / "broken.pipeline.json").unlink()
    vcs.commit("rework")
    assert vcs.diff() == []
    # Against an older commit, and for one path.
    (only,) = vcs.diff(first, PIPELINE)
    assert {g["id"] for g in only["diff"]["gems"]} == {"shipped", "ranked"}
    (added,) = vcs.diff(first, "notes.md")
    assert added["patch"].startswith("--- /dev/null\n+++ b/notes.md\n@@ -0,0 +1 @@\n+new\n")
    with pytest.raises(NotFound, match="no-such-rev"):
        vcs.diff("no-such-rev")


# -- branches ----------------------------------------------------------------------------------
def test_branches_create_and_switch_refusing_uncommitted_changes(tmp_path: Path) -> None:
    project, vcs = shop_repo(tmp_path / "shop")
    head = git(project, "rev-parse", "HEAD").strip()
    assert vcs.create_branch("feature/filter") == {"name": "feature/filter", "commit": head}
    with pytest.raises(Conflict, match="exists"):
        vcs.create_branch("feature/filter")
    with pytest.raises(ValidationError, match="valid branch name"):
        vcs.create_branch("bad..name")
    with pytest.raises(NotFound, match="nope"):
        vcs.create_branch("other", start="nope")
    listed = vcs.branches()
    assert listed["current"] == "main"
    assert {(b["name"], b["commit"], b["remote"]) for b in listed["branches"]} == {
        ("main", head, False),
        ("feature/filter", head, False),
    }

    edit(project, set_condition("status = 'pending'"))
    (project / "schedules").mkdir()
    (project / "schedules" / "daily.yml").write_text("pipeline: customer_totals\n")
    with pytest.raises(Conflict) as caught:
        vcs.switch("feature/filter")
    message = str(caught.value)
    assert PIPELINE in message
    assert "schedules/daily.yml" in message
    assert "\n" not in message
    assert vcs.branches()["current"] == "main"

    (project / "schedules" / "daily.yml").unlink()
    git(project, "stash", "--quiet")
    assert vcs.switch("feature/filter")["current"] == "feature/filter"
    git(project, "stash", "pop", "--quiet")
    vcs.commit("pending orders")
    assert vcs.switch("main") == {"current": "main", "commit": head}
    assert gem_of(document(project), "shipped")["properties"]["condition"] == "status = $status"
    with pytest.raises(NotFound, match="no branch 'ghost'"):
        vcs.switch("ghost")


# -- remotes and credentials -------------------------------------------------------------------
def test_clone_push_and_pull_over_http_with_a_token_kept_out_of_git(
    tmp_path: Path, http_git: HttpGitServer, isolated_git: Path
) -> None:
    token = http_git.token
    # A credential helper in the user's configuration must not get (and store) the token.
    helper_file = tmp_path / "stored-credentials"
    with isolated_git.open("a") as config:
        config.write(f"[credential]\n\thelper = store --file {helper_file}\n")
    http_git.create("shop.git")
    project, vcs = shop_repo(tmp_path / "first")
    answer = vcs.set_remote(http_git.url("shop.git"), username="alice", token=token)
    assert answer["credentials"] == {"username": "alice", "token": True, "ssh_key": False}
    assert token not in json.dumps(answer)
    vcs.push()
    assert vcs.status()["upstream"] == "origin/main"

    done = Vcs.clone(http_git.url("shop.git"), tmp_path / "second", token=token)
    second = Path(done["root"])
    assert done["project"] == str(second)
    assert (second / PIPELINE).read_bytes() == (project / PIPELINE).read_bytes()
    for clone in (project, second):
        assert token not in (clone / ".git" / "config").read_text()
        assert token not in git(clone, "remote", "get-url", "origin")
        assert token not in all_text_under(clone / ".git")
    assert not helper_file.exists() or token not in helper_file.read_text()
    # The token is in the per-user secret store, readable by its owner only.
    secrets = Path(os.environ["PROPHECY_SECRETS_FILE"])
    assert token in secrets.read_text()
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert all(user in {"alice", "git"} for _, _, user in http_git.requests if user)

    # Push from one clone, pull into the other.
    edit(project, set_condition("status = 'shipped'"))
    vcs.commit("shipped only")
    assert vcs.status()["ahead"] == 1
    vcs.push()
    other = Vcs(second)
    pulled = other.pull()
    assert pulled["merged"] and pulled["fast_forward"]
    assert document(second) == document(project)
    assert other.status()["behind"] == 0

    # A branch pushed from one clone is checked out in the other, tracking the remote's.
    vcs.create_branch("feature")
    vcs.push(branch="feature")
    other.pull()
    remote_branches = {b["name"] for b in other.branches()["branches"] if b["remote"]}
    assert remote_branches == {"origin/main", "origin/feature"}
    assert other.switch("feature")["current"] == "feature"
    assert other.status()["upstream"] == "origin/feature"

    # A wrong token: a clean one-line error without it.
    with pytest.raises(GitError) as caught:
        Vcs.clone(http_git.url("shop.git"), tmp_path / "third", token="wrong-" + token)
    message = str(caught.value)
    assert "authentication failed" in message
    assert token not in message
    assert "\n" not in message
    assert not (tmp_path / "third").exists()
    # No token at all: git does not wait for someone to type one.
    with pytest.raises(GitError, match="authentication failed"):
        Vcs.clone(http_git.url("shop.git"), tmp_path / "fourth")


def test_a_token_in_the_url_goes_to_the_secret_store_and_stays_with_its_host(
    tmp_path: Path, http_git: HttpGitServer
) -> None:
    http_git.create("shop.git")
    project, vcs = shop_repo(tmp_path / "shop")
    with_token = http_git.url("shop.git").replace("http://", f"http://bob:{http_git.token}@")
    answer = vcs.set_remote(with_token)
    assert answer["url"] == http_git.url("shop.git")
    assert answer["credentials"]["username"] == "bob"
    assert http_git.token not in (project / ".git" / "config").read_text()
    vcs.push()
    assert ("POST", "/shop.git/git-receive-pack", "bob") in http_git.requests
    assert vcs.remotes() == [
        {
            "name": "origin",
            "url": http_git.url("shop.git"),
            "credentials": {"username": "bob", "token": True, "ssh_key": False},
        }
    ]
    # Moved to another host without credentials: the old ones are not sent there.
    vcs.set_remote("http://127.0.0.2:9/shop.git")
    assert vcs.remotes()[0]["credentials"] == {
        "username": None,
        "token": False,
        "ssh_key": False,
    }
    assert http_git.token not in Path(os.environ["PROPHECY_SECRETS_FILE"]).read_text()
    with pytest.raises(ValidationError, match="remote name"):
        vcs.set_remote(http_git.url("shop.git"), name="bad name")
    with pytest.raises(NotFound, match="no remote 'upstream'"):
        vcs.pull("upstream")


def test_ssh_credentials_reach_git_as_a_private_key_file_that_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command git is given, and the key file while it exists.
    known_hosts = tmp_path / "known_hosts"
    with git_environment(GitCredentials(ssh_key=SSH_KEY), known_hosts) as env:
        command = shlex.split(env["GIT_SSH_COMMAND"])
        key = Path(command[command.index("-i") + 1])
        assert command[0] == "ssh"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
        assert key.read_text() == SSH_KEY + "\n"
        assert f"UserKnownHostsFile={known_hosts}" in command
        assert {"IdentitiesOnly=yes", "BatchMode=yes"} <= set(command)
        assert env["GIT_CONFIG_KEY_0"] == "credential.helper"
        assert env["GIT_CONFIG_VALUE_0"] == ""
        assert SSH_KEY not in json.dumps({k: v for k, v in env.items() if k != "GIT_SSH_COMMAND"})
    assert not key.exists()
    assert not key.parent.exists()

    # Git runs that command: an `ssh` first on PATH records what it was given.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "ssh.log"
    fake = bin_dir / "ssh"
    fake.write_text(
        "#!/bin/sh\n"
        'while [ "$#" -gt 0 ]; do\n'
        '  if [ "$1" = "-i" ]; then\n'
        f'    stat -c %a "$2" >> {log}; cat "$2" >> {log}\n'
        "  fi\n"
        "  shift\n"
        "done\n"
        "echo 'Permission denied (publickey).' >&2\n"
        "exit 255\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    _, vcs = shop_repo(tmp_path / "shop")
    vcs.set_remote("ssh://git@example.invalid/team/shop.git", ssh_key=SSH_KEY)
    with pytest.raises(GitError) as caught:
        vcs.pull()
    assert "Permission denied" in str(caught.value)
    assert "PRIVATE KEY" not in str(caught.value)
    assert log.read_text() == "600\n" + SSH_KEY + "\n"
    assert list(scratch.iterdir()) == []  # the key's folder is gone


def test_git_output_is_scrubbed_of_credentials() -> None:
    credentials = GitCredentials(username="me", token="t0ken-value", ssh_key=SSH_KEY)
    text = (
        "fatal: unable to access 'https://me:t0ken-value@host/x.git/': 401 t0ken-value "
        + SSH_KEY.splitlines()[1]
    )
    cleaned = scrub(text, credentials.secrets())
    assert "t0ken-value" not in cleaned
    assert SSH_KEY.splitlines()[1] not in cleaned
    assert "https://***@host/x.git/" in cleaned
    assert "t0ken" not in repr(credentials)


# -- merges ------------------------------------------------------------------------------------
def test_edits_of_different_gems_of_one_pipeline_merge_without_a_manual_step(
    tmp_path: Path,
) -> None:
    first, ours, second, theirs = two_clones(tmp_path)
    base = document(first)

    # They: a new condition, and the ranking gem moved.
    def their_edit(doc: dict[str, Any]) -> None:
        gem_of(doc, "shipped")["properties"]["condition"] = "status IN ('shipped', 'delivered')"
        gem_of(doc, "ranked")["position"] = {"x": 700, "y": 100}

    edit(second, their_edit)
    theirs.commit("delivered orders count too")
    theirs.push()

    # We: the ranking reversed and the same gem moved elsewhere, which Git's line merge
    # alone would report as a conflict (the neighbouring lines changed on both sides).
    def our_edit(doc: dict[str, Any]) -> None:
        gem_of(doc, "ranked")["properties"]["keys"][0]["direction"] = "asc"
        gem_of(doc, "ranked")["position"] = {"x": 900, "y": 300}

    edit(first, our_edit)
    ours.commit("smallest first")
    (first / "data" / "orders.csv").write_text((first / "data" / "orders.csv").read_text() + "\n")
    ours.commit("a data file too")
    with pytest.raises(Conflict, match="rejected"):
        ours.push()  # their commit first

    result = ours.pull()
    assert result["merged"] is True
    assert result["conflicts"] == [] and result["text_conflicts"] == []
    expected = json.loads(json.dumps(base))
    their_edit(expected)
    our_edit(expected)  # positions never conflict: ours where both moved
    assert (first / PIPELINE).read_text() == dump_pipeline(load_pipeline(expected))
    parents = git(first, "log", "-1", "--format=%P").split()
    assert len(parents) == 2
    assert git(first, "log", "-1", "--format=%H").strip() == result["commit"]
    assert ours.status()["changes"] == []
    assert not ours.status()["merging"]
    ours.push()
    assert theirs.pull()["fast_forward"]
    assert (second / PIPELINE).read_text() == (first / PIPELINE).read_text()


def test_conflicting_edits_wait_for_choices_and_resolve_merge_finishes(tmp_path: Path) -> None:
    project, vcs = shop_repo(tmp_path / "shop")
    vcs.create_branch("feature")
    vcs.switch("feature")
    edit(project, set_condition("status = 'delivered'"))
    edit(project, lambda d: gem_of(d, "orders")["properties"].update(path="data/orders_2024.csv"))
    vcs.commit("delivered, 2024")
    vcs.switch("main")
    edit(project, set_condition("status = 'shipped'"))
    vcs.commit("shipped")
    ours_text = (project / PIPELINE).read_text()

    result = vcs.merge("feature")
    assert result["merged"] is False
    assert result["commit"] is None
    assert result["text_conflicts"] == []
    (entry,) = result["conflicts"]
    assert (entry["path"], entry["pipeline"]) == (PIPELINE, "customer_totals")
    (conflict,) = entry["conflicts"]
    assert conflict["path"] == "/gems/shipped/properties/condition"
    assert (conflict["base"], conflict["ours"], conflict["theirs"]) == (
        "status = $status",
        "status = 'shipped'",
        "status = 'delivered'",
    )
    # A normal Git merge in progress: the file holds ours and is conflicted in the index.
    assert (project / PIPELINE).read_text() == ours_text
    assert git(project, "diff", "--name-only", "--diff-filter=U").split() == [PIPELINE]
    status = vcs.status()
    assert status["merging"] is True
    assert [(c["path"], c["status"]) for c in status["changes"]] == [(PIPELINE, "conflicted")]
    assert vcs.merge_state()["conflicts"] == result["conflicts"]
    with pytest.raises(Conflict, match="merge is in progress"):
        vcs.commit("too early")
    with pytest.raises(Conflict, match="merge is in progress"):
        vcs.merge("feature")

    # Every conflict needs a choice; nothing is written until then.
    with pytest.raises(ValidationError) as caught:
        vcs.resolve_merge({})
    assert "/gems/shipped/properties/condition" in str(caught.value)
    with pytest.raises(ValidationError, match="not in conflict"):
        vcs.resolve_merge({"pipelines/top_products.pipeline.json": {"/x": "ours"}})
    assert vcs.status()["merging"] is True

    done = vcs.resolve_merge({PIPELINE: {"/gems/shipped/properties/condition": "theirs"}})
    assert done["merged"] is True
    merged = document(project)
    assert gem_of(merged, "shipped")["properties"]["condition"] == "status = 'delivered'"
    assert gem_of(merged, "orders")["properties"]["path"] == "data/orders_2024.csv"
    assert len(git(project, "log", "-1", "--format=%P").split()) == 2
    assert git(project, "log", "-1", "--format=%H").strip() == done["commit"]
    status = vcs.status()
    assert status["merging"] is False
    assert status["changes"] == []
    with pytest.raises(Conflict, match="no merge is in progress"):
        vcs.resolve_merge({})


def test_text_conflicts_are_git_s_and_a_merge_can_be_aborted(tmp_path: Path) -> None:
    project, vcs = shop_repo(tmp_path / "shop")
    customers = project / "data" / "customers.csv"
    original = customers.read_text()
    vcs.create_branch("theirs")
    vcs.switch("theirs")
    customers.write_text("customer_id,name\n1,Theirs\n")
    edit(project, lambda d: gem_of(d, "ranked")["properties"]["keys"].pop())
    vcs.commit("theirs")
    vcs.switch("main")
    customers.write_text("customer_id,name\n1,Ours\n")
    edit(project, set_condition("status = 'ours'"))
    vcs.commit("ours")
    ours_head = git(project, "rev-parse", "HEAD").strip()

    result = vcs.merge("theirs")
    assert result["merged"] is False
    assert result["conflicts"] == []  # the pipeline merged gem by gem
    assert result["text_conflicts"] == ["data/customers.csv"]
    assert "<<<<<<<" in customers.read_text()

    aborted = vcs.abort_merge()
    assert aborted["branch"] == "main"
    assert customers.read_text() == "customer_id,name\n1,Ours\n"
    assert git(project, "rev-parse", "HEAD").strip() == ours_head
    assert vcs.status() == {
        "branch": "main",
        "upstream": None,
        "ahead": 0,
        "behind": 0,
        "merging": False,
        "changes": [],
    }
    with pytest.raises(Conflict, match="no merge"):
        vcs.abort_merge()

    vcs.merge("theirs")
    with pytest.raises(ValidationError, match=r"data/customers\.csv: choose"):
        vcs.resolve_merge({})
    done = vcs.resolve_merge({}, text={"data/customers.csv": "theirs"})
    assert done["merged"] is True
    assert customers.read_text() == "customer_id,name\n1,Theirs\n"
    merged = document(project)
    assert gem_of(merged, "shipped")["properties"]["condition"] == "status = 'ours'"
    assert len(gem_of(merged, "ranked")["properties"]["keys"]) == 1
    assert original != customers.read_text()


def test_merge_refuses_uncommitted_changes_and_unknown_branches(tmp_path: Path) -> None:
    project, vcs = shop_repo(tmp_path / "shop")
    with pytest.raises(NotFound, match="ghost"):
        vcs.merge("ghost")
    vcs.create_branch("side")
    assert vcs.merge("side")["up_to_date"] is True
    edit(project, set_condition("status = 'x'"))
    with pytest.raises(Conflict, match=r"uncommitted changes in pipelines/customer_totals"):
        vcs.merge("side")


# -- releases, deploy, rollback ----------------------------------------------------------------
def test_releases_are_annotated_tags_listed_newest_first_and_pushed(tmp_path: Path) -> None:
    remote = bare_remote(tmp_path / "remote.git")
    project, vcs = shop_repo(tmp_path / "shop")
    vcs.set_remote(str(remote))
    first = vcs.release("1.0", "First release", push=True)
    head = git(project, "rev-parse", "HEAD").strip()
    assert first["tag"] == "shop/1.0"
    assert (first["version"], first["commit"], first["notes"], first["pushed"]) == (
        "1.0",
        head,
        "First release",
        True,
    )
    assert git(project, "cat-file", "-t", "shop/1.0").strip() == "tag"
    assert f"{head}\trefs/tags/shop/1.0^{{}}" in git(remote, "show-ref", "-d", "--tags") or (
        "refs/tags/shop/1.0" in git(remote, "show-ref", "--tags")
    )
    with pytest.raises(Conflict, match="exists already"):
        vcs.release("1.0", "again")
    edit(project, set_condition("status = 'new'"))
    with pytest.raises(Conflict, match="uncommitted changes in pipelines/customer_totals"):
        vcs.release("1.1", "dirty")
    with pytest.raises(ValidationError, match="valid version"):
        vcs.release("../x", "no")
    vcs.commit("newer")
    second = vcs.release("1.1", "Second\n\nwith details")
    assert second["pushed"] is False
    listed = vcs.releases()
    assert [r["version"] for r in listed] == ["1.1", "1.0"]
    assert listed[0]["notes"] == "Second\n\nwith details"
    assert listed[0]["commit"] == git(project, "rev-parse", "HEAD").strip()
    assert set(listed[0]) == {"version", "tag", "commit", "notes", "created"}
    # Another project's tags in the same repository are not this project's releases.
    git(project, "tag", "-a", "-m", "x", "other/9.9")
    assert [r["version"] for r in vcs.releases()] == ["1.1", "1.0"]


def test_deploy_a_release_then_a_newer_one_and_roll_back(tmp_path: Path) -> None:
    root = tmp_path / "root"
    project = copy_shop(root / "shop")
    (project / "schedules").mkdir()
    (project / "schedules" / "nightly.yml").write_text(
        yaml.safe_dump({"pipeline": "customer_totals", "cron": "0 2 * * *"})
    )
    vcs = Vcs(project)
    vcs.init()
    vcs.commit("the shop")
    vcs.release("1.0", "first")
    automate = Automate(root)

    first = vcs.deploy("1.0", "in-memory", automate, "shop")
    commit_1 = git(project, "rev-parse", "shop/1.0^{commit}").strip()
    assert (first.manifest["release"], first.manifest["commit"]) == ("1.0", commit_1)
    assert first.manifest["schedules"] == ["nightly"]
    snapshot = Path(first.path)
    assert (snapshot / PIPELINE).read_bytes() == (project / PIPELINE).read_bytes()

    # An edit released as 1.1; an uncommitted edit after it is in no release.
    edit(project, set_condition("status = 'delivered'"))
    (project / "schedules" / "nightly.yml").write_text(
        yaml.safe_dump({"pipeline": "customer_totals", "cron": "0 3 * * *"})
    )
    vcs.commit("delivered, at three")
    vcs.release("1.1", "second")
    edit(project, set_condition("status = 'draft'"))
    second = vcs.deploy("1.1", "in-memory", automate, "shop")
    deployed = document(Path(second.path))
    assert gem_of(deployed, "shipped")["properties"]["condition"] == "status = 'delivered'"
    (view,) = automate.schedules("shop")
    assert (view["cron"], view["deployment"]) == ("0 3 * * *", second.id)

    back = vcs.rollback("1.0", "in-memory", automate, "shop")
    active = [d for d in automate.deployments("shop") if d.active]
    assert [d.id for d in active] == [back.id]
    assert back.manifest["release"] == "1.0"
    assert back.manifest["commit"] == commit_1
    release_files = {
        name: git(project, "show", f"shop/1.0:{name}").encode()
        for name in files_under(Path(back.path))
    }
    assert files_under(Path(back.path)) == release_files
    (view,) = automate.schedules("shop")
    assert (view["cron"], view["deployment"]) == ("0 2 * * *", back.id)
    with pytest.raises(NotFound, match=r"no release '9\.9'"):
        vcs.rollback("9.9", "in-memory", automate, "shop")
    with pytest.raises(NotFound, match=r"no release '9\.9'"):
        vcs.deploy("9.9", "in-memory", automate, "shop")


def test_operations_outside_a_repository_say_so(tmp_path: Path) -> None:
    project = copy_shop(tmp_path / "shop")
    vcs = Vcs(project, SecretStore(tmp_path / "secrets.json"))
    with pytest.raises(NotFound, match="not in a Git repository"):
        vcs.status()
    with pytest.raises(ProphecyError):
        vcs.commit("x")
    vcs.init()
    with pytest.raises(Conflict, match="nothing is committed yet"):
        vcs.release("1.0", "none")
    with pytest.raises(Conflict, match="nothing is committed yet"):
        vcs.create_branch("x")
    assert vcs.diff()  # everything is new against the empty tree


def test_without_a_configured_identity_commits_are_made_as_the_servers_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nobody = tmp_path / "gitconfig-without-user"
    nobody.write_text("[init]\n\tdefaultBranch = main\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(nobody))  # a machine where git knows nobody
    shop = copy_shop(tmp_path / "anonymous")
    repo = Vcs(shop, SecretStore(tmp_path / "secrets.json"))
    repo.init()
    made = repo.commit("first")
    user = getpass.getuser()
    assert git(shop, "log", "-1", "--format=%an <%ae>").strip() == (
        f"{user} <{user}@{socket.getfqdn()}>"
    )
    assert made["commit"] == git(shop, "rev-parse", "HEAD").strip()
    # A configured identity wins.
    git(shop, "config", "user.name", "Ada")
    git(shop, "config", "user.email", "ada@example.com")
    edit(shop, set_condition("quantity > 9"))
    repo.commit("second")
    assert git(shop, "log", "-1", "--format=%an <%ae>").strip() == "Ada <ada@example.com>"
