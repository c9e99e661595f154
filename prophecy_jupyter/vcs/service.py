"""Version control of a project: the `Vcs` facade the REST API, the Studio's Git panel and
the ``prophecy git`` commands call.

It is Git, as any other Git tool sees it (jupyterlab-git works on the same repository side
by side), with what a pipeline platform adds on top:

- **status and diff in the project's terms**: changes are grouped (pipelines, schedules,
  fabrics…) and a pipeline's diff lists gems and connections, not JSON lines;
- **commits of valid pipelines only**: a pipeline file that does not load is refused before
  anything is staged;
- **pipeline-aware merges**: a pipeline changed on both branches is merged by
  `merge_pipelines` on (merge base, ours, theirs), so edits of different gems never
  conflict and canvas positions never do; other files get git's own merge. Conflicts leave
  a normal Git merge in progress (the pipeline files holding ours and marked as conflicted
  in the index, so any Git tool sees them), which `resolve_merge` finishes from choices of
  a side per conflict, or `abort_merge` undoes;
- **releases**: an annotated tag ``<project>/<version>`` per release, which can be deployed
  to a fabric through Automate, and an earlier one deployed again to roll back;
- **credentials** kept out of Git altogether (see `prophecy_jupyter.vcs.credentials`).

Every answer is JSON-able (deployments excepted: Automate's own `Deployment`). Paths in
answers and arguments are relative to the project, which may be any folder of the
repository. Calls on one repository take turns, since Git keeps one index per repository.
"""

from __future__ import annotations

import difflib
import getpass
import json
import re
import shutil
import socket
import tarfile
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

import git

from prophecy_jupyter.errors import Conflict, Issue, NotFound, ValidationError
from prophecy_jupyter.fabrics import SecretStore
from prophecy_jupyter.model.pipeline import dump_pipeline, load_pipeline
from prophecy_jupyter.model.project import PROJECT_FILE, pipeline_name_of, read_config
from prophecy_jupyter.vcs.credentials import (
    KNOWN_HOSTS,
    CredentialStore,
    GitCredentials,
    git_environment,
    host_of,
    scrub,
    split_url,
)
from prophecy_jupyter.vcs.pipeline_diff import PipelineDiff, diff_pipelines
from prophecy_jupyter.vcs.pipeline_merge import (
    MergeConflict,
    MergeResult,
    merge_pipelines,
    resolve,
)
from prophecy_jupyter.vcs.repo import NETWORK_TIMEOUT, GitRepo, explain, run_git

if TYPE_CHECKING:
    from prophecy_jupyter.automate.service import Automate
    from prophecy_jupyter.automate.store import Deployment

ChangeStatus = Literal["added", "modified", "deleted", "renamed", "untracked", "conflicted"]
Side = Literal["ours", "theirs"]

GROUPS = ("pipelines", "schedules", "fabrics", "connections", "notebooks")
IGNORED = (".prophecy/", ".ipynb_checkpoints/")
"""What `Vcs.init` puts in the project's ``.gitignore``: the warehouse, run store and
deployments of ``.prophecy/`` are per machine, and notebook checkpoints are JupyterLab's."""
REMOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
SHOWN_CHANGES = 8

_LOCKS: dict[Path, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock(git_dir: Path) -> threading.RLock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(git_dir, threading.RLock())


def group_of(path: str) -> str:
    """Which part of the project a file (a project path) belongs to."""
    if path == PROJECT_FILE:
        return "project"
    first = path.split("/", 1)[0]
    return first if first in GROUPS and "/" in path else "other"


def pipeline_of(path: str) -> str | None:
    """The pipeline a project path holds: ``pipelines/<name>.pipeline.json``."""
    parts = PurePosixPath(path).parts
    if len(parts) != 2 or parts[0] != "pipelines":
        return None
    return pipeline_name_of(Path(parts[1]))


def _is_pipeline_file(repo_path: str) -> bool:
    """Whether a repository path is a pipeline file, of this project or any other."""
    parts = PurePosixPath(repo_path).parts
    return (
        len(parts) >= 2
        and parts[-2] == "pipelines"
        and pipeline_of("/".join(parts[-2:])) is not None
    )


def _listing(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:SHOWN_CHANGES])
    more = len(paths) - SHOWN_CHANGES
    return f"{shown} and {more} more" if more > 0 else shown


def _document(data: bytes | None) -> dict[str, Any] | None:
    """A pipeline file's JSON object; None for an absent file; `ValueError` if not JSON."""
    if data is None:
        return None
    value = json.loads(data.decode("utf-8"))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _patch(path: str, old: bytes | None, new: bytes | None) -> str:
    """A unified diff of one file (``/dev/null`` for an absent side)."""
    try:
        before = (old or b"").decode("utf-8")
        after = (new or b"").decode("utf-8")
    except UnicodeDecodeError:
        return f"Binary file {path} differs\n"
    lines = difflib.unified_diff(
        _lines(before),
        _lines(after),
        fromfile="/dev/null" if old is None else f"a/{path}",
        tofile="/dev/null" if new is None else f"b/{path}",
    )
    return "".join(lines)


def _lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


@dataclass(frozen=True)
class FileDiff:
    """One changed file: a pipeline's structural diff, or a text patch."""

    path: str
    kind: Literal["pipeline", "text"]
    pipeline: PipelineDiff | None = None
    patch: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.pipeline is not None:
            return {"path": self.path, "kind": "pipeline", "diff": self.pipeline.to_dict()}
        return {"path": self.path, "kind": "text", "patch": self.patch or ""}


@dataclass(frozen=True)
class _MergeSides:
    """The three commits of a merge: the common ancestor (None for unrelated histories),
    the current branch and the one being merged in."""

    base: git.Commit | None
    ours: git.Commit
    theirs: git.Commit


@dataclass(frozen=True)
class _PipelineMerge:
    """A pipeline file changed on both sides, as `merge_pipelines` sees it."""

    base: dict[str, Any] | None
    ours: dict[str, Any]
    theirs: dict[str, Any]
    result: MergeResult

    @property
    def conflicts(self) -> list[MergeConflict]:
        return self.result.conflicts

    @property
    def document(self) -> dict[str, Any]:
        return self.result.document


class Vcs:
    """Version control of the project at ``project_root`` (see the module's docstring)."""

    def __init__(self, project_root: Path | str, secrets: SecretStore | None = None) -> None:
        self.project_root = Path(project_root).resolve()
        self.secrets = secrets or SecretStore()

    # -- plumbing ----------------------------------------------------------------------
    @contextmanager
    def _repo(self) -> Iterator[GitRepo]:
        """The project's repository, held for one operation."""
        with GitRepo(self.project_root) as repo, _lock(repo.git_dir):
            yield repo

    def _credentials(self, repo: GitRepo, remote: str) -> tuple[str, GitCredentials]:
        url = repo.remote_url(remote)
        return url, CredentialStore(repo.root, self.secrets).get(remote, url)

    def _network(self, repo: GitRepo, remote: str, *args: str, ok: Sequence[int] = (0,)) -> str:
        """A git command that talks to ``remote``, with its credentials for this command
        only and its output scrubbed of them."""
        _, credentials = self._credentials(repo, remote)
        with git_environment(credentials, repo.git_dir / KNOWN_HOSTS) as env:
            result = repo.run(
                *args, env=env, ok=ok, secrets=credentials.secrets(), timeout=NETWORK_TIMEOUT
            )
        return scrub(result.stdout + result.stderr, credentials.secrets())

    def _project_name(self) -> str:
        config = self.project_root / PROJECT_FILE
        if not config.is_file():
            raise NotFound(f"no {PROJECT_FILE} in {self.project_root}")
        return read_config(config).name

    def _identity(self, name: str | None, email: str | None) -> dict[str, str]:
        """Environment variables naming the author (and committer) of one commit.

        Without a name or email given here or in Git's configuration (a fresh machine, a
        JupyterHub user's new server), the commit is made as the account the server runs as,
        ``user@host``, rather than refused."""
        name = name or self._configured("user.name") or getpass.getuser()
        email = email or self._configured("user.email") or f"{getpass.getuser()}@{socket.getfqdn()}"
        return {
            "GIT_AUTHOR_NAME": name,
            "GIT_COMMITTER_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_EMAIL": email,
        }

    def _configured(self, key: str) -> str | None:
        found = run_git(self.project_root, ["config", "--get", key], ok=(0, 1)).stdout.strip()
        return found or None

    # -- repositories ------------------------------------------------------------------
    def init(self, branch: str = "main") -> dict[str, Any]:
        """Make the project folder a Git repository (its first branch ``branch``), with
        ``.prophecy/`` and notebook checkpoints ignored."""
        if (self.project_root / ".git").exists():
            raise Conflict(f"{self.project_root} is a Git repository already")
        if not self.project_root.is_dir():
            raise NotFound(f"no folder {self.project_root}")
        if not branch or branch.startswith("-"):
            raise ValidationError([Issue("name", f"{branch!r} is not a valid branch name")])
        run_git(self.project_root, ["init", "--quiet", f"--initial-branch={branch}", "."])
        ignore = self.project_root / ".gitignore"
        present = ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else []
        missing = [line for line in IGNORED if line not in present]
        if missing:
            text = "\n".join([*present, *missing]) + "\n"
            ignore.write_text(text, encoding="utf-8")
        return {"root": str(self.project_root), "branch": branch}

    @classmethod
    def clone(
        cls,
        url: str,
        dest: Path | str,
        *,
        username: str | None = None,
        token: str | None = None,
        ssh_key: str | None = None,
        branch: str | None = None,
        secrets: SecretStore | None = None,
    ) -> dict[str, Any]:
        """Clone ``url`` into ``dest`` (absent or empty), over HTTPS with a token or SSH with
        a key; the credentials are kept in the secret store for the clone's ``origin``.

        Answers ``{"root", "project", "branch", "commit"}``; ``project`` is the first folder
        of the clone holding a ``prophecy_project.yml`` (None if there is none).
        """
        target = Path(dest).expanduser().resolve()
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise Conflict(f"{target} exists and is not an empty folder")
        clean, url_user, url_token = _remote_url(url)
        credentials = GitCredentials(
            username or url_user, token or url_token, ssh_key, host_of(clean)
        )
        if branch is not None and (not branch or branch.startswith("-")):
            raise ValidationError([Issue("branch", f"{branch!r} is not a valid branch name")])
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="prophecy-clone-") as scratch:
            hosts = Path(scratch) / KNOWN_HOSTS
            with git_environment(credentials, hosts) as env:
                args = ["clone", "--quiet", *(["--branch", branch] if branch else [])]
                run_git(
                    target.parent,
                    [*args, "--", clean, str(target)],
                    env=env,
                    secrets=credentials.secrets(),
                    timeout=NETWORK_TIMEOUT,
                )
            if hosts.is_file():
                shutil.copy2(hosts, target / ".git" / KNOWN_HOSTS)
        with GitRepo(target) as repo:
            CredentialStore(repo.root, secrets).save("origin", clean, credentials)
            head = repo.head()
            project = _find_project(repo.root)
            return {
                "root": str(repo.root),
                "project": None if project is None else str(project),
                "branch": repo.branch(),
                "commit": None if head is None else head.hexsha,
            }

    def set_remote(
        self,
        url: str,
        *,
        name: str = "origin",
        username: str | None = None,
        token: str | None = None,
        ssh_key: str | None = None,
    ) -> dict[str, Any]:
        """Add or change a remote, and keep its credentials (given here, or as the URL's
        password) in the secret store, never in the URL Git keeps.

        Credentials are only sent to the host they were given for: moving a remote to
        another host without new credentials forgets the old ones.
        """
        if not REMOTE_NAME.match(name):
            raise ValidationError([Issue("name", f"{name!r} is not a valid remote name")])
        clean, url_user, url_token = _remote_url(url)
        credentials = GitCredentials(
            username or url_user, token or url_token, ssh_key, host_of(clean)
        )
        with self._repo() as repo:
            store = CredentialStore(repo.root, self.secrets)
            if name in repo.remote_names():
                before = repo.remote_url(name)
                repo.run("remote", "set-url", name, clean)
            else:
                before = None
                repo.run("remote", "add", name, clean)
            if not credentials.empty:
                store.save(name, clean, credentials)
            elif before is not None and host_of(before) != host_of(clean):
                store.forget(name)
            return {
                "name": name,
                "url": clean,
                "credentials": store.get(name, clean).public(),
            }

    def remotes(self) -> list[dict[str, Any]]:
        """The remotes, with which credentials each has (never their values)."""
        with self._repo() as repo:
            store = CredentialStore(repo.root, self.secrets)
            found = []
            for name in repo.remote_names():
                url = repo.remote_url(name)
                found.append(
                    {"name": name, "url": scrub(url), "credentials": store.get(name, url).public()}
                )
            return found

    # -- status and diff ---------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The current branch, how far it is from its upstream, and the project's changes."""
        with self._repo() as repo:
            return self._status(repo)

    def _status(self, repo: GitRepo) -> dict[str, Any]:
        out = repo.run(
            "status",
            "--porcelain=v2",
            "-z",
            "--branch",
            "--untracked-files=all",
            "--",
            repo.pathspec,
        ).stdout
        info: dict[str, Any] = {"branch": None, "upstream": None, "ahead": 0, "behind": 0}
        changes: list[dict[str, Any]] = []
        records = iter(out.split("\0"))
        for record in records:
            if not record:
                continue
            if record.startswith("# "):
                key, _, value = record[2:].partition(" ")
                if key == "branch.head" and value != "(detached)":
                    info["branch"] = value
                elif key == "branch.upstream":
                    info["upstream"] = value
                elif key == "branch.ab":
                    ahead, behind = value.split()
                    info["ahead"], info["behind"] = int(ahead), -int(behind)
                continue
            kind = record[0]
            if kind == "?":
                changes.append(self._change(repo, record[2:], "untracked"))
            elif kind == "u":
                changes.append(self._change(repo, record.split(" ", 10)[10], "conflicted"))
            elif kind == "1":
                fields = record.split(" ", 8)
                changes.append(self._change(repo, fields[8], _status_of(fields[1])))
            elif kind == "2":
                fields = record.split(" ", 9)
                change = self._change(repo, fields[9], "renamed")
                change["from"] = repo.to_project(next(records))
                changes.append(change)
        return {
            **info,
            "merging": repo.merge_head is not None,
            "changes": sorted(changes, key=lambda c: str(c["path"])),
        }

    @staticmethod
    def _change(repo: GitRepo, repo_path: str, status: ChangeStatus) -> dict[str, Any]:
        path = repo.to_project(repo_path)
        return {
            "path": path,
            "status": status,
            "group": group_of(path),
            "pipeline": pipeline_of(path),
        }

    def diff(self, rev: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """What changed in the working tree since ``rev`` (default: the last commit), per
        file: a pipeline's gems and connections, any other file's unified diff."""
        return [entry.to_dict() for entry in self.file_diffs(rev, path)]

    def file_diffs(self, rev: str | None = None, path: str | None = None) -> list[FileDiff]:
        """`diff` as objects (the CLI renders pipeline diffs as text)."""
        with self._repo() as repo:
            base = repo.head() if rev is None else repo.commit(rev)
            spec = repo.to_repo(path) if path else repo.pathspec
            against = base.hexsha if base is not None else _empty_tree(repo)
            tracked = repo.run("diff", "--name-only", "-z", "--no-renames", against, "--", spec)
            untracked = repo.run("ls-files", "--others", "--exclude-standard", "-z", "--", spec)
            names = sorted(set(filter(None, (tracked.stdout + untracked.stdout).split("\0"))))
            found: list[FileDiff] = []
            for name in names:
                old, new = repo.read(base, name), repo.read_working(name)
                if old == new:
                    continue  # only its stat data changed
                shown = repo.to_project(name)
                found.append(self._file_diff(shown, old, new))
            return found

    @staticmethod
    def _file_diff(path: str, old: bytes | None, new: bytes | None) -> FileDiff:
        if pipeline_of(path) is not None:
            try:
                return FileDiff(
                    path, "pipeline", pipeline=diff_pipelines(_document(old), _document(new))
                )
            except (ValueError, ValidationError):
                pass  # not a pipeline (yet): its text shows what is wrong
        return FileDiff(path, "text", patch=_patch(path, old, new))

    # -- commits -----------------------------------------------------------------------
    def commit(
        self,
        message: str,
        paths: Sequence[str] | None = None,
        author_name: str | None = None,
        author_email: str | None = None,
    ) -> dict[str, Any]:
        """Commit the project's changes (or only ``paths``, files or folders of the
        project), whatever else is staged in the repository.

        Refused: an empty message, nothing to commit, a pipeline file that does not load
        (before anything is staged), and a merge in progress (`resolve_merge` ends it).
        """
        text = message.strip()
        if not text:
            raise ValidationError([Issue("message", "a commit needs a message")])
        with self._repo() as repo:
            if repo.merge_head is not None:
                raise Conflict("a merge is in progress: resolve its conflicts or abort it first")
            wanted = [repo.to_repo(p) for p in paths] if paths else [repo.pathspec]
            selected = [
                c
                for c in self._status(repo)["changes"]
                if any(_covers(spec, repo.to_repo(c["path"])) for spec in wanted)
            ]
            if not selected:
                where = _listing(list(paths)) if paths else "the project"
                raise Conflict(f"nothing to commit: no changes in {where}")
            self._check_pipelines(
                repo, [c["path"] for c in selected if c["status"] not in ("deleted",)]
            )
            repo.run("add", "--all", "--", *wanted)
            if repo.run("diff", "--cached", "--quiet", "--", *wanted, ok=(0, 1)).status == 0:
                raise Conflict("nothing to commit: the changes cancel out")
            repo.run(
                "commit",
                "--quiet",
                "-m",
                text,
                "--",
                *wanted,
                env=self._identity(author_name, author_email),
            )
            head = repo.head()
            assert head is not None
            return {
                "commit": head.hexsha,
                "message": text,
                "files": [c["path"] for c in selected],
            }

    @staticmethod
    def _check_pipelines(repo: GitRepo, paths: Sequence[str]) -> None:
        """`ValidationError` naming every pipeline file among ``paths`` that does not load."""
        issues: list[Issue] = []
        for path in paths:
            if pipeline_of(path) is None:
                continue
            data = repo.read_working(repo.to_repo(path))
            if data is None:
                continue
            try:
                load_pipeline(data)
            except ValidationError as exc:
                issues.extend(_in_file(path, exc))
        if issues:
            raise ValidationError(issues)

    # -- branches ----------------------------------------------------------------------
    def branches(self) -> dict[str, Any]:
        """The current branch, and every local and remote-tracking branch."""
        with self._repo() as repo:
            listed = repo.run(
                "for-each-ref",
                "--format=%(refname)%00%(objectname)%00%(symref)%00%(upstream:short)",
                "refs/heads",
                "refs/remotes",
            ).stdout
            found = []
            for line in filter(None, listed.splitlines()):
                ref, sha, symref, upstream = line.split("\0")
                if symref:
                    continue  # origin/HEAD
                remote = ref.startswith("refs/remotes/")
                name = ref.removeprefix("refs/remotes/" if remote else "refs/heads/")
                entry: dict[str, Any] = {"name": name, "commit": sha, "remote": remote}
                if not remote:
                    entry["upstream"] = upstream or None
                found.append(entry)
            return {"current": repo.branch(), "branches": found}

    def create_branch(self, name: str, start: str | None = None) -> dict[str, Any]:
        """A new branch at ``start`` (default: the current commit); it is not switched to."""
        with self._repo() as repo:
            repo.check_ref_name(name, "branch", branch=True)
            if repo.ref_exists(f"refs/heads/{name}"):
                raise Conflict(f"branch '{name}' exists already")
            commit = repo.head() if start is None else repo.commit(start)
            if commit is None:
                raise Conflict("nothing is committed yet: commit once before branching")
            repo.run("branch", name, commit.hexsha)
            return {"name": name, "commit": commit.hexsha}

    def switch(self, name: str) -> dict[str, Any]:
        """Check out branch ``name`` (a local branch, or a remote one, which gets a local
        branch tracking it). Refused while the project has uncommitted changes, which would
        otherwise follow to the other branch or be lost."""
        with self._repo() as repo:
            if repo.merge_head is not None:
                raise Conflict("a merge is in progress: resolve its conflicts or abort it first")
            dirty = [c["path"] for c in self._status(repo)["changes"]]
            dirty += [p for p in self._dirty_elsewhere(repo) if p not in dirty]
            if dirty:
                raise Conflict(
                    f"uncommitted changes in {_listing(dirty)}: commit or discard them "
                    f"before switching to '{name}'"
                )
            if name.startswith("-"):
                raise ValidationError([Issue("name", f"{name!r} is not a valid branch name")])
            if repo.ref_exists(f"refs/heads/{name}"):
                repo.run("switch", "--quiet", name)
            elif repo.ref_exists(f"refs/remotes/{name}") and "/" in name:
                repo.run("switch", "--quiet", "--track", name)
            elif any(repo.ref_exists(f"refs/remotes/{r}/{name}") for r in repo.remote_names()):
                repo.run("switch", "--quiet", "--guess", name)
            else:
                raise NotFound(f"no branch '{name}'")
            head = repo.head()
            return {"current": repo.branch(), "commit": None if head is None else head.hexsha}

    @staticmethod
    def _dirty_elsewhere(repo: GitRepo) -> list[str]:
        """Tracked files changed anywhere in the repository (paths as the project says)."""
        out = repo.run("status", "--porcelain=v1", "-z", "--untracked-files=no").stdout
        found: list[str] = []
        records = iter(out.split("\0"))
        for record in records:
            if not record:
                continue
            found.append(repo.to_project(record[3:]))
            if record[0] in "RC":
                next(records)  # the original path of a rename
        return found

    # -- remotes -----------------------------------------------------------------------
    def pull(self, remote: str = "origin") -> dict[str, Any]:
        """Fetch ``remote`` and merge the current branch's counterpart there into it, as
        `merge` does (pipelines merged gem by gem)."""
        with self._repo() as repo:
            self._network(repo, remote, "fetch", "--prune", "--quiet", remote)
            branch = repo.branch()
            if branch is None:
                raise Conflict("no branch is checked out: switch to one before pulling")
            upstream = self._upstream(repo, branch)
            source = upstream if upstream and upstream.startswith(remote + "/") else None
            source = source or f"{remote}/{branch}"
            if not repo.ref_exists(f"refs/remotes/{source}"):
                raise NotFound(f"remote '{remote}' has no branch '{branch}'")
            merged = self._merge(repo, source, None, None)
            if repo.head() is not None and upstream is None:
                repo.run("branch", "--quiet", f"--set-upstream-to={source}", branch)
            return {**merged, "remote": remote, "source": source}

    @staticmethod
    def _upstream(repo: GitRepo, branch: str) -> str | None:
        found = repo.run(
            "for-each-ref", "--format=%(upstream:short)", f"refs/heads/{branch}"
        ).stdout.strip()
        return found or None

    def push(self, remote: str = "origin", branch: str | None = None) -> dict[str, Any]:
        """Push a branch (default: the current one) to ``remote`` and make it its upstream."""
        with self._repo() as repo:
            name = branch or repo.branch()
            if name is None:
                raise Conflict("no branch is checked out: name the branch to push")
            if name.startswith("-") or not repo.ref_exists(f"refs/heads/{name}"):
                raise NotFound(f"no branch '{name}'")
            self._network(
                repo,
                remote,
                "push",
                "--quiet",
                "--set-upstream",
                remote,
                f"refs/heads/{name}:refs/heads/{name}",
            )
            commit = repo.commit(f"refs/heads/{name}").hexsha
            return {"remote": remote, "branch": name, "commit": commit}

    # -- merges ------------------------------------------------------------------------
    def merge(
        self,
        branch: str,
        *,
        author_name: str | None = None,
        author_email: str | None = None,
    ) -> dict[str, Any]:
        """Merge ``branch`` into the current branch.

        Pipelines changed on both sides are merged gem by gem and committed with the rest
        when nothing conflicts. Otherwise the merge stays in progress: the answer lists each
        pipeline's conflicts and the other files in conflict, and `resolve_merge` or
        `abort_merge` ends it.
        """
        with self._repo() as repo:
            return self._merge(repo, branch, author_name, author_email)

    def _merge(
        self, repo: GitRepo, branch: str, author_name: str | None, author_email: str | None
    ) -> dict[str, Any]:
        if repo.merge_head is not None:
            raise Conflict("a merge is in progress: resolve its conflicts or abort it first")
        theirs = repo.commit(branch)
        dirty = self._dirty_elsewhere(repo)
        if dirty:
            raise Conflict(f"uncommitted changes in {_listing(dirty)}: commit them before merging")
        ours = repo.head()
        done: dict[str, Any] = {"merged": True, "conflicts": [], "text_conflicts": []}
        if ours is not None and repo.repo.is_ancestor(theirs, ours):
            return {**done, "commit": ours.hexsha, "up_to_date": True}
        if ours is None or repo.repo.is_ancestor(ours, theirs):
            repo.run("merge", "--quiet", "--ff-only", theirs.hexsha)
            return {**done, "commit": theirs.hexsha, "fast_forward": True}
        bases = repo.repo.merge_base(ours, theirs)
        sides = _MergeSides(bases[0] if bases else None, ours, theirs)
        both = self._changed_on_both_sides(repo, sides)
        result = repo.run("merge", "--no-ff", "--no-commit", "--quiet", branch, ok=(0, 1))
        if repo.merge_head is None:  # git refused to start (an untracked file in the way…)
            raise explain("merge", result.stderr + result.stdout)
        conflicted: dict[str, list[MergeConflict]] = {}
        for path in both:
            merged = self._merge_pipeline(repo, sides, path)
            if merged is None:
                continue  # deleted on one side, or not a pipeline: git's merge stands
            text = _loadable(merged.document) if merged.conflicts == [] else None
            if text is not None:
                repo.file(path).write_text(text, encoding="utf-8")
                repo.run("add", "--", path)
            else:
                self._mark_conflicted(repo, sides, path)
                conflicted[path] = merged.conflicts
        if not repo.unmerged():
            repo.run(
                "commit", "--quiet", "--no-edit", env=self._identity(author_name, author_email)
            )
            head = repo.head()
            assert head is not None
            return {**done, "commit": head.hexsha}
        return self._pending(repo, conflicted)

    @staticmethod
    def _changed_on_both_sides(repo: GitRepo, sides: _MergeSides) -> list[str]:
        """Pipeline files (repository paths) that each side changed since the base."""

        def changed(commit: git.Commit) -> set[str]:
            against = sides.base.hexsha if sides.base is not None else _empty_tree(repo)
            out = repo.run(
                "diff", "--name-only", "-z", "--no-renames", against, commit.hexsha
            ).stdout
            return {p for p in out.split("\0") if p and _is_pipeline_file(p)}

        return sorted(changed(sides.ours) & changed(sides.theirs))

    @staticmethod
    def _merge_pipeline(repo: GitRepo, sides: _MergeSides, path: str) -> _PipelineMerge | None:
        """`merge_pipelines` of one file's three versions; None when it cannot apply (a
        side deleted the file, or a version does not load as a pipeline)."""
        try:
            base = _document(repo.read(sides.base, path))
            ours = _document(repo.read(sides.ours, path))
            theirs = _document(repo.read(sides.theirs, path))
            if ours is None or theirs is None:
                return None
            result = merge_pipelines(base, ours, theirs)
        except (ValueError, ValidationError):
            return None
        return _PipelineMerge(base, ours, theirs, result)

    @staticmethod
    def _mark_conflicted(repo: GitRepo, sides: _MergeSides, path: str) -> None:
        """Leave a file holding ours and recorded as conflicted in the index (stages 1 to 3),
        as git does for a conflict of its own, so that every Git tool sees it unresolved and
        none can commit the merge before it is resolved."""
        ours = repo.blob(sides.ours, path)
        assert ours is not None
        repo.file(path).write_bytes(bytes(ours.data_stream.read()))
        lines = [f"0 {'0' * len(ours.hexsha)}\t{path}"]
        for stage, commit in ((1, sides.base), (2, sides.ours), (3, sides.theirs)):
            blob = repo.blob(commit, path)
            if blob is not None:
                lines.append(f"{blob.mode:06o} {blob.hexsha} {stage}\t{path}")
        repo.run("update-index", "--index-info", stdin=("\n".join(lines) + "\n").encode())

    def _sides(self, repo: GitRepo) -> _MergeSides:
        merging = repo.merge_head
        if merging is None:
            raise Conflict("no merge is in progress")
        ours = repo.head()
        assert ours is not None
        theirs = repo.commit(merging)
        bases = repo.repo.merge_base(ours, theirs)
        return _MergeSides(bases[0] if bases else None, ours, theirs)

    def _pending(
        self, repo: GitRepo, conflicted: Mapping[str, list[MergeConflict]]
    ) -> dict[str, Any]:
        """The answer for a merge waiting for resolutions."""
        unmerged = repo.unmerged()
        return {
            "merged": False,
            "commit": None,
            "conflicts": [
                {
                    "path": repo.to_project(path),
                    "pipeline": pipeline_of("/".join(PurePosixPath(path).parts[-2:])),
                    "conflicts": [c.to_dict() for c in conflicts],
                }
                for path, conflicts in sorted(conflicted.items())
                if path in unmerged
            ],
            "text_conflicts": sorted(repo.to_project(p) for p in unmerged if p not in conflicted),
        }

    def merge_state(self) -> dict[str, Any]:
        """The merge in progress, as `merge` answered it (for a Studio opened mid-merge)."""
        with self._repo() as repo:
            sides = self._sides(repo)
            conflicted: dict[str, list[MergeConflict]] = {}
            for path in repo.unmerged():
                if _is_pipeline_file(path):
                    merged = self._merge_pipeline(repo, sides, path)
                    if merged is not None and merged.conflicts:
                        conflicted[path] = merged.conflicts
            return self._pending(repo, conflicted)

    def resolve_merge(
        self,
        choices: Mapping[str, Mapping[str, Side]],
        text: Mapping[str, str] | None = None,
        *,
        author_name: str | None = None,
        author_email: str | None = None,
    ) -> dict[str, Any]:
        """Finish the merge in progress: ``choices`` picks a side for each conflict of each
        pipeline (``{file: {conflict path: "ours" | "theirs"}}``), ``text`` a side for each
        other file in conflict (``{file: "ours" | "theirs"}``; ``"working"`` keeps the file
        as edited by hand). A pipeline may also be given a side as a whole in ``text``.

        Everything is checked before anything is written: every conflict needs a choice
        and every resolved pipeline must load, else a `ValidationError` lists what is
        missing and the merge stays as it was. Then the files are written and the merge is
        committed.
        """
        sides_of_text = dict(text or {})
        with self._repo() as repo:
            sides = self._sides(repo)
            unmerged = repo.unmerged()
            picks = {repo.to_repo(f): dict(c) for f, c in choices.items()}
            whole = {repo.to_repo(f): s for f, s in sides_of_text.items()}
            issues = [
                Issue("not_conflicted", f"{repo.to_project(p)} is not in conflict")
                for p in sorted((picks.keys() | whole.keys()) - unmerged.keys())
            ]
            issues += [
                Issue(
                    "invalid_choice", f"{repo.to_project(p)}: choose 'ours' or 'theirs', not {s!r}"
                )
                for p, s in whole.items()
                if s not in ("ours", "theirs", "working")
            ]
            writes: dict[str, str] = {}
            for path in sorted(unmerged):
                shown = repo.to_project(path)
                if path in whole:
                    if path in picks:
                        issues.append(
                            Issue(
                                "invalid_choice",
                                f"{shown}: pick a side for the file or per conflict, not both",
                            )
                        )
                    elif whole[path] == "working" and _is_pipeline_file(path):
                        data = repo.read_working(path)
                        if data is not None:
                            try:
                                load_pipeline(data)
                            except ValidationError as exc:
                                issues.extend(_in_file(shown, exc))
                    continue
                merged = (
                    self._merge_pipeline(repo, sides, path) if _is_pipeline_file(path) else None
                )
                if merged is None or not merged.conflicts:
                    issues.append(
                        Issue(
                            "unresolved_file", f"{shown}: choose 'ours' or 'theirs' for this file"
                        )
                    )
                    continue
                try:
                    document = resolve(
                        merged.result,
                        merged.base,
                        merged.ours,
                        merged.theirs,
                        picks.get(path, {}),
                    )
                    writes[path] = dump_pipeline(load_pipeline(document))
                except ValidationError as exc:
                    issues.extend(_in_file(shown, exc))
            if issues:
                raise ValidationError(issues)
            for path, content in writes.items():
                repo.file(path).write_text(content, encoding="utf-8")
                repo.run("add", "--", path)
            for path, side in whole.items():
                self._take_side(repo, path, side, unmerged[path])
            repo.run(
                "commit", "--quiet", "--no-edit", env=self._identity(author_name, author_email)
            )
            head = repo.head()
            assert head is not None
            return {"merged": True, "commit": head.hexsha, "conflicts": [], "text_conflicts": []}

    @staticmethod
    def _take_side(
        repo: GitRepo, path: str, side: str, stages: Mapping[int, tuple[str, str]]
    ) -> None:
        """Settle one conflicted file with one side's version (or its working copy); a side
        that deleted the file deletes it."""
        if side == "working":
            if repo.file(path).exists():
                repo.run("add", "--", path)
            else:
                repo.run("update-index", "--force-remove", "--", path)
            return
        if (2 if side == "ours" else 3) in stages:
            repo.run("checkout", f"--{side}", "--", path)
            repo.run("add", "--", path)
        else:
            repo.run("update-index", "--force-remove", "--", path)
            repo.file(path).unlink(missing_ok=True)

    def abort_merge(self) -> dict[str, Any]:
        """Undo the merge in progress: the branch and files as they were before it."""
        with self._repo() as repo:
            if repo.merge_head is None:
                raise Conflict("no merge is in progress")
            repo.run("merge", "--abort")
            head = repo.head()
            return {"aborted": True, "branch": repo.branch(), "commit": head and head.hexsha}

    # -- releases ----------------------------------------------------------------------
    def release(
        self, version: str, notes: str = "", *, push: bool = False, remote: str = "origin"
    ) -> dict[str, Any]:
        """Tag the current commit as release ``version`` of the project: an annotated tag
        ``<project name>/<version>`` holding the notes, pushed to ``remote`` when asked and
        the repository has it.

        Refused: uncommitted changes in the project (a release must be what was tested),
        a merge in progress, and a version released already.
        """
        if not VERSION.match(version):
            raise ValidationError(
                [
                    Issue(
                        "version",
                        f"{version!r} is not a valid version: letters, digits, _ . + - "
                        "(starting with a letter or digit)",
                    )
                ]
            )
        name = self._project_name()
        tag = f"{name}/{version}"
        with self._repo() as repo:
            repo.check_ref_name(tag, "tag")
            if repo.merge_head is not None:
                raise Conflict("a merge is in progress: resolve its conflicts or abort it first")
            head = repo.head()
            if head is None:
                raise Conflict("nothing is committed yet: commit before releasing")
            dirty = [
                c["path"]
                for c in self._status(repo)["changes"]
                if c["status"] != "untracked" or c["group"] != "other"
            ]
            if dirty:
                raise Conflict(
                    f"uncommitted changes in {_listing(dirty)}: commit them before releasing"
                )
            if repo.ref_exists(f"refs/tags/{tag}"):
                raise Conflict(f"release '{version}' of project '{name}' exists already")
            message = notes.strip() or f"Release {version} of {name}"
            repo.run("tag", "--annotate", "--message", message, tag, head.hexsha)
            pushed = False
            if push and remote in repo.remote_names():
                self._network(
                    repo, remote, "push", "--quiet", remote, f"refs/tags/{tag}:refs/tags/{tag}"
                )
                pushed = True
            found = next(r for r in self._releases(repo, name) if r["tag"] == tag)
            return {**found, "pushed": pushed}

    def releases(self) -> list[dict[str, Any]]:
        """The project's releases, newest first: ``{version, tag, commit, notes, created}``."""
        name = self._project_name()
        with self._repo() as repo:
            return self._releases(repo, name)

    @staticmethod
    def _releases(repo: GitRepo, name: str) -> list[dict[str, Any]]:
        prefix = f"refs/tags/{name}/"
        out = repo.run(
            "for-each-ref",
            "--sort=-v:refname",
            "--sort=-creatordate",
            "--format=%(refname)%00%(objecttype)%00%(objectname)%00%(*objectname)"
            "%00%(creatordate:iso-strict)%00%(contents)%1e",
            prefix,
        ).stdout
        found = []
        for entry in out.split("\x1e"):
            record = entry.lstrip("\n")
            if not record:
                continue
            ref, kind, sha, peeled, created, contents = record.split("\0", 5)
            found.append(
                {
                    "version": ref.removeprefix(prefix),
                    "tag": ref.removeprefix("refs/tags/"),
                    "commit": peeled if kind == "tag" else sha,
                    "notes": contents.strip() if kind == "tag" else "",
                    "created": created,
                }
            )
        return found

    def deploy(self, version: str, fabric: str, automate: Automate, project: str) -> Deployment:
        """Deploy release ``version`` to ``fabric``: its files, checked out of the tag into
        a temporary folder, become the project's active deployment there (``project`` is
        the project's name under Automate's root)."""
        name = self._project_name()
        with self._repo() as repo:
            tag = f"refs/tags/{name}/{version}"
            if version.startswith("-") or not repo.ref_exists(tag):
                raise NotFound(f"project '{name}' has no release '{version}'")
            commit = repo.commit(tag)
            tree = commit.tree
            if repo.prefix:
                try:
                    tree = commit.tree / repo.prefix
                except KeyError:
                    raise NotFound(f"release '{version}' has no folder {repo.prefix}") from None
            with tempfile.TemporaryDirectory(prefix="prophecy-release-") as scratch:
                archive = Path(scratch) / "release.tar"
                repo.run("archive", "--format=tar", f"--output={archive}", tree.hexsha)
                folder = Path(scratch) / "project"
                with tarfile.open(archive) as tar:
                    tar.extractall(folder, filter="data")
                if not (folder / PROJECT_FILE).is_file():
                    raise NotFound(f"release '{version}' has no {PROJECT_FILE}")
                return automate.deploy(
                    project, fabric, source=folder, release=version, commit=commit.hexsha
                )

    def rollback(self, version: str, fabric: str, automate: Automate, project: str) -> Deployment:
        """Deploy an earlier release again: the fabric runs ``version``'s files until the
        next deploy (the deployments in between stay in the history). `deploy` refuses a
        version that is not a release."""
        return self.deploy(version, fabric, automate, project)


def _status_of(xy: str) -> ChangeStatus:
    """A change's status from porcelain's two letters (index, working tree)."""
    if "R" in xy or "C" in xy:
        return "renamed"
    if xy[0] == "A":
        return "added"
    if "D" in xy:
        return "deleted"
    return "modified"


def _covers(spec: str, repo_path: str) -> bool:
    """Whether pathspec ``spec`` (a file or folder) includes ``repo_path``."""
    return spec in (".", repo_path) or repo_path.startswith(spec.rstrip("/") + "/")


def _empty_tree(repo: GitRepo) -> str:
    """The empty tree's id, in the repository's hash (what an unborn branch compares to)."""
    return repo.run("hash-object", "-t", "tree", "--stdin", stdin=b"").stdout.strip()


def _loadable(document: Mapping[str, Any]) -> str | None:
    """A merged document's file text, or None if it does not load (then it is left in
    conflict, to be settled a side as a whole)."""
    try:
        return dump_pipeline(load_pipeline(dict(document)))
    except ValidationError:
        return None


def _in_file(path: str, error: ValidationError) -> list[Issue]:
    """``error``'s issues, each naming the file it is about."""
    return [
        Issue(i.code, f"{path}: {i.message}", i.gem_id, i.field, i.line, i.column, i.severity)
        for i in error.issues
    ]


def _remote_url(url: str) -> tuple[str, str | None, str | None]:
    """A remote URL as Git may keep it, and the user name and token it held."""
    if not url.strip() or url.startswith("-") or any(c.isspace() for c in url):
        raise ValidationError(
            [Issue("url", "a remote URL has no spaces and does not start with '-'")]
        )
    return split_url(url)


def _find_project(root: Path) -> Path | None:
    """The shallowest folder of a clone holding a project (three levels deep at most)."""
    for depth in range(4):
        pattern = "/".join(["*"] * depth + [PROJECT_FILE])
        found = sorted(p for p in root.glob(pattern) if ".git" not in p.parts)
        if found:
            return found[0].parent
    return None
