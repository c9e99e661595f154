"""One Git repository as a project inside it sees it: the one place git is run.

The project may be the repository's top folder or any folder below it, so paths cross this
module in two spellings: *project paths* (``pipelines/a.pipeline.json``, what users, the
Studio and the API name) and *repository paths* (what git prints). `GitRepo` converts
between them and runs every git command through `GitRepo.run`, which

- gives git an environment of its own for that command only (no prompt on a terminal, no
  editor, credentials as `credentials.git_environment` hands them), so nothing is changed in
  the user's git configuration and jupyterlab-git keeps working beside it;
- turns a failure into a typed error with one line of git's own explanation, scrubbed of
  every credential, instead of GitPython's multi-line `GitCommandError`.

GitPython is used for what it reads well (finding the repository, commits, trees, blobs,
tags) and its command runner for everything else.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType

import git
from git.exc import BadName, GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from prophecy_jupyter.errors import (
    Conflict,
    GitError,
    Issue,
    NotFound,
    ProphecyError,
    ValidationError,
)
from prophecy_jupyter.vcs.credentials import scrub

NETWORK_TIMEOUT = 600.0
"""Seconds a fetch, push or clone may take before it is stopped (a server must not hang on
a remote that stopped answering)."""

QUIET_ENV: dict[str, str] = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_EDITOR": ":",
    "GIT_MERGE_AUTOEDIT": "no",
    "GIT_PAGER": "cat",
    "GIT_OPTIONAL_LOCKS": "0",
}
"""Set for every git command: no prompt, no editor, no pager; and ``status`` does not take
the index lock it only needs to refresh stat data (another tool may be using the index)."""

IDENTITY_HINT = (
    "git does not know who you are: set user.name and user.email "
    "(git config user.name 'Your Name'), or give an author"
)


@dataclass(frozen=True)
class GitResult:
    status: int
    stdout: str
    stderr: str


ERROR_PREFIXES = ("fatal:", "error:")


def _first_lines(text: str) -> str:
    """git's explanation on one line: its ``fatal:``/``error:`` lines, else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    marked = [i for i, line in enumerate(lines) if line.startswith(ERROR_PREFIXES)]
    if not marked:
        return lines[-1].removeprefix("hint:").strip() if lines else "no explanation given"
    picked = [lines[i].split(":", 1)[1].strip() for i in marked]
    before = [line for line in lines[: marked[0]] if not line.startswith("hint:")]
    if before:  # what ssh or the remote said, before git's own verdict
        picked.insert(0, before[-1])
    return "; ".join(dict.fromkeys(picked))


def explain(command: str, stderr: str, secrets: Sequence[str] = ()) -> ProphecyError:
    """The typed error for a failed git ``command`` (its name, as ``push``)."""
    detail = scrub(_first_lines(stderr), list(secrets))
    lowered = detail.lower()
    if "tell me who you are" in lowered or "unable to auto-detect email" in lowered:
        return ValidationError([Issue("identity", IDENTITY_HINT)])
    if "authentication failed" in lowered or "could not read username" in lowered:
        return GitError(f"git {command}: authentication failed ({detail})")
    if "rejected" in lowered or "non-fast-forward" in lowered or "fetch first" in lowered:
        return Conflict(f"git {command}: {detail}")
    if "did not match any file" in lowered:
        return NotFound(f"git {command}: {detail}")
    if "would be overwritten" in lowered:
        return Conflict(f"git {command}: {detail}")
    return GitError(f"git {command}: {detail}")


def run_git(
    cwd: Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    ok: Iterable[int] = (0,),
    secrets: Sequence[str] = (),
    timeout: float | None = None,
    stdin: bytes | None = None,
) -> GitResult:
    """Run ``git args…`` in ``cwd`` (see `GitRepo.run`; also for a clone, before there is a
    repository)."""
    status, stdout, stderr = _execute(cwd, list(args), env, timeout, stdin, binary=False)
    if status not in set(ok):
        raise explain(args[0], stderr, secrets)
    assert isinstance(stdout, str)
    return GitResult(status, stdout, stderr)


def _execute(
    cwd: Path,
    args: list[str],
    env: Mapping[str, str] | None,
    timeout: float | None,
    stdin: bytes | None,
    *,
    binary: bool,
) -> tuple[int, str | bytes, str]:
    with tempfile.TemporaryFile() as source:
        if stdin is not None:
            source.write(stdin)
            source.seek(0)
        try:
            status, stdout, stderr = git.Git(cwd).execute(
                ["git", *args],
                istream=source if stdin is not None else None,
                with_extended_output=True,
                with_exceptions=False,
                stdout_as_string=not binary,
                strip_newline_in_stdout=False,
                env={**QUIET_ENV, **(env or {})},
                kill_after_timeout=timeout,
            )
        except GitCommandError as exc:  # git could not be started at all
            raise GitError(f"git {args[0]}: cannot run git ({exc.status})") from None
    out: str | bytes = stdout if stdout is not None else ("" if not binary else b"")
    return int(status), out, stderr if isinstance(stderr, str) else stderr.decode()


class GitRepo:
    """The repository holding a project folder (see the module's docstring)."""

    def __init__(self, project_root: Path) -> None:
        self.project_root = Path(project_root).resolve()
        try:
            self.repo = git.Repo(self.project_root, search_parent_directories=True)
        except (InvalidGitRepositoryError, NoSuchPathError):
            raise NotFound(
                f"{self.project_root} is not in a Git repository: initialize or clone one"
            ) from None
        if self.repo.working_tree_dir is None:
            self.repo.close()
            raise ValidationError([Issue("repository", "a bare repository has no files")])
        self.root = Path(self.repo.working_tree_dir).resolve()
        self.git_dir = Path(self.repo.git_dir).resolve()
        relative = self.project_root.relative_to(self.root)
        self.prefix = "" if relative == Path() else relative.as_posix()

    def close(self) -> None:
        """Stop GitPython's helper processes (it keeps a ``cat-file`` per repository)."""
        self.repo.close()

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- paths -------------------------------------------------------------------------
    @property
    def pathspec(self) -> str:
        """The project folder as a git pathspec (relative to the repository's top)."""
        return self.prefix or "."

    def to_repo(self, path: str) -> str:
        """A project path as git names it."""
        parts = [p for p in PurePosixPath(path).parts if p not in ("", ".")]
        if path.startswith("/") or ".." in parts:
            raise ValidationError(
                [Issue("path", f"{path!r} is not a path relative to the project")]
            )
        joined = "/".join(parts)
        if not self.prefix:
            return joined or "."
        return f"{self.prefix}/{joined}" if joined else self.prefix

    def to_project(self, path: str) -> str:
        """A repository path as the project names it (``../x`` when outside it)."""
        if not self.prefix:
            return path
        if path == self.prefix or path.startswith(self.prefix + "/"):
            return path[len(self.prefix) + 1 :]
        return os.path.relpath(path, self.prefix).replace(os.sep, "/")

    def in_project(self, path: str) -> bool:
        return not self.prefix or path.startswith(self.prefix + "/")

    def file(self, repo_path: str) -> Path:
        return self.root / repo_path

    # -- running git -------------------------------------------------------------------
    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        ok: Iterable[int] = (0,),
        secrets: Sequence[str] = (),
        timeout: float | None = None,
        stdin: bytes | None = None,
    ) -> GitResult:
        """Run ``git args…`` at the repository's top; a typed error unless its exit status
        is in ``ok``."""
        return run_git(
            self.root, args, env=env, ok=ok, secrets=secrets, timeout=timeout, stdin=stdin
        )

    def run_bytes(self, *args: str) -> bytes:
        """``git args…`` whose output is bytes (a blob)."""
        status, stdout, stderr = _execute(self.root, list(args), None, None, None, binary=True)
        if status != 0:
            raise explain(args[0], stderr)
        assert isinstance(stdout, bytes)
        return stdout

    # -- reading -----------------------------------------------------------------------
    def commit(self, rev: str) -> git.Commit:
        """The commit ``rev`` names (a branch, tag, sha, ``HEAD~1``), or `NotFound`."""
        if not rev or rev.startswith("-"):
            raise ValidationError([Issue("rev", f"{rev!r} is not a revision")])
        try:
            found = self.repo.rev_parse(rev)
        except (BadName, ValueError, IndexError):
            raise NotFound(f"no commit, branch or tag '{rev}'") from None
        if isinstance(found, git.TagObject):
            found = found.object
        if not isinstance(found, git.Commit):
            raise NotFound(f"'{rev}' is not a commit")
        return found

    def head(self) -> git.Commit | None:
        """The current commit; None on a branch with no commit yet."""
        return self.repo.head.commit if self.repo.head.is_valid() else None

    def branch(self) -> str | None:
        """The current branch's name; None when no branch is checked out (detached)."""
        if self.repo.head.is_detached:
            return None
        return self.repo.head.ref.name

    def blob(self, commit: git.Commit | None, repo_path: str) -> git.Blob | None:
        if commit is None:
            return None
        try:
            found = commit.tree / repo_path
        except KeyError:
            return None
        return found if isinstance(found, git.Blob) else None

    def read(self, commit: git.Commit | None, repo_path: str) -> bytes | None:
        """A file's bytes as ``commit`` has it; None when it has no such file."""
        found = self.blob(commit, repo_path)
        return None if found is None else bytes(found.data_stream.read())

    def read_working(self, repo_path: str) -> bytes | None:
        path = self.file(repo_path)
        return path.read_bytes() if path.is_file() else None

    @property
    def merge_head(self) -> str | None:
        """The commit being merged in, while a merge waits for its conflicts to be resolved."""
        marker = self.git_dir / "MERGE_HEAD"
        if not marker.is_file():
            return None
        lines = marker.read_text(encoding="ascii").split()
        return lines[0] if lines else None

    def unmerged(self) -> dict[str, dict[int, tuple[str, str]]]:
        """Files in conflict: repository path → stage (1 base, 2 ours, 3 theirs) → (mode,
        blob sha)."""
        listed = self.run("ls-files", "--unmerged", "-z").stdout
        found: dict[str, dict[int, tuple[str, str]]] = {}
        for record in filter(None, listed.split("\0")):
            info, _, path = record.partition("\t")
            mode, sha, stage = info.split()
            found.setdefault(path, {})[int(stage)] = (mode, sha)
        return found

    def remote_names(self) -> list[str]:
        return [r.name for r in self.repo.remotes]

    def remote_url(self, name: str) -> str:
        if name not in self.remote_names():
            raise NotFound(f"the repository has no remote '{name}'")
        return self.run("remote", "get-url", name).stdout.strip()

    def ref_exists(self, ref: str) -> bool:
        return self.run("show-ref", "--verify", "--quiet", ref, ok=(0, 1)).status == 0

    def check_ref_name(self, name: str, what: str, *, branch: bool = False) -> None:
        """`ValidationError` unless git accepts ``name`` as a branch or tag name."""
        if not name or name.startswith("-") or any(c.isspace() for c in name):
            raise ValidationError([Issue("name", f"{name!r} is not a valid {what} name")])
        args = ("--branch", name) if branch else (f"refs/tags/{name}",)
        if self.run("check-ref-format", *args, ok=(0, 1, 128)).status != 0:
            raise ValidationError([Issue("name", f"{name!r} is not a valid {what} name")])
