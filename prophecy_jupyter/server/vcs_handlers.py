"""Handlers of the version-control API, ``/prophecy/api/v1/vcs/…``: a project's Git
repository as the Studio's Git panel uses it (status, pipeline-aware diffs, commits,
branches, remotes, merges with their conflicts, releases and their deployments).

Same rules as the Studio API (the same base handler: authentication, authorization on the
``prophecy`` resource, JSON errors). Reads are GETs; what changes the repository is a POST
authorized as a write, deploying and rolling back as ``execute``. Each handler checks its
input here, names the project from ``?project=`` and calls the `Vcs` facade in a worker
thread (the facade makes calls on one repository take turns). A git command that failed
against a remote or a hook (`GitError`) answers 409, with git's own explanation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar, cast

from jupyter_server.auth.decorator import authorized
from tornado import web

from prophecy_jupyter.automate.service import Automate, deployment_view
from prophecy_jupyter.errors import Issue, ValidationError
from prophecy_jupyter.model.pipeline import pointer
from prophecy_jupyter.model.project import Project
from prophecy_jupyter.server.handlers import ProphecyHandler, authorized_to
from prophecy_jupyter.vcs.service import REMOTE_NAME, VERSION, Side, Vcs
from prophecy_jupyter.workspace import _fabric_name, _field, _request

T = TypeVar("T")

MAX_NAME = 200
MAX_MESSAGE = 20_000
MAX_URL = 2048
MAX_SECRET = 16_384

BRANCH_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
"""A branch name Git accepts and no command line can mistake for an option."""
REVISION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./~^@{}-]*")
"""A revision (branch, tag, commit, ``HEAD~2``), never starting with ``-``."""
SIDES = frozenset({"ours", "theirs"})
FILE_SIDES = SIDES | {"working"}
"""A conflicting file may also be kept as edited by hand (``working``)."""


def _bad(message: str, field: str) -> NoReturn:
    raise ValidationError([Issue("invalid", message, field=field)])


def _is_ref(name: str, pattern: re.Pattern[str]) -> bool:
    """Whether ``name`` matches ``pattern`` and the rules of ``git check-ref-format``."""
    return (
        len(name) <= MAX_NAME
        and pattern.fullmatch(name) is not None
        and not any(bad in name for bad in ("..", "//", "/.", "@{", ".lock/"))
        and not name.endswith(("/", ".", ".lock"))
    )


def _text(
    body: Mapping[str, Any], key: str, *, required: bool = False, limit: int = MAX_NAME
) -> str | None:
    """A string field without control characters other than newlines and tabs."""
    value: str | None = _field(body, key, str, "a string", required=required)
    if value is None:
        return None
    if len(value) > limit:
        _bad(f"{key} is longer than {limit} characters", f"/{key}")
    if any(ord(c) < 32 and c not in "\n\t" for c in value) or "\x7f" in value:
        _bad(f"{key} holds a control character", f"/{key}")
    return value


def _branch(value: str | None, field: str) -> str | None:
    if value is not None and not _is_ref(value, BRANCH_NAME):
        _bad(f"{value[:MAX_NAME]!r} is not a valid branch name", field)
    return value


def _revision(value: str | None, field: str) -> str | None:
    if value is not None and not _is_ref(value, REVISION):
        _bad(f"{value[:MAX_NAME]!r} is not a revision (a branch, tag or commit)", field)
    return value


def _version(value: str, field: str = "version") -> str:
    if not _is_ref(value, VERSION):
        _bad(
            f"{value[:64]!r} is not a valid version: up to 64 letters, digits, _ . + - "
            "(starting with a letter or digit)",
            field,
        )
    return value


def _relative(value: str, field: str) -> str:
    """A file path inside the project, as Git names it (POSIX, relative, no ``..``, and no
    pathspec magic such as ``:(top)``, which could reach outside the project)."""
    parts = value.split("/")
    if (
        not value
        or len(value) > 4096
        or value.startswith(("/", ":"))
        or "\\" in value
        or "\x00" in value
        or any(part in ("", ".", "..") for part in parts)
    ):
        _bad(f"{value[:200]!r} is not a file path relative to the project", field)
    return value


def _paths(body: Mapping[str, Any]) -> list[str] | None:
    value: list[Any] | None = _field(body, "paths", list, "an array of file paths")
    if value is None:
        return None
    if not all(isinstance(p, str) for p in value):
        _bad("paths must be an array of file paths", "/paths")
    return [_relative(p, f"/paths/{i}") for i, p in enumerate(value)]


def _side(value: Any, field: str, sides: frozenset[str] = SIDES) -> str:
    if not isinstance(value, str) or value not in sides:
        _bad(f"a choice must be one of {', '.join(sorted(sides))}", field)
    side: str = value
    return side


def _pipeline_side(value: Any, field: str) -> Side:
    return cast("Side", _side(value, field))


def _choices(body: Mapping[str, Any]) -> dict[str, dict[str, Side]]:
    """``{file: {property path: "ours" | "theirs"}}``: how each pipeline conflict ends."""
    value: dict[str, Any] = _field(body, "choices", dict, "an object") or {}
    choices: dict[str, dict[str, Side]] = {}
    for file, picks in value.items():
        where = pointer("choices", file)
        _relative(file, where)
        if not isinstance(picks, dict):
            _bad("each file's choices must be an object of property paths", where)
        choices[file] = {
            path: _pipeline_side(side, pointer("choices", file, path))
            for path, side in picks.items()
        }
    return choices


def _text_choices(body: Mapping[str, Any]) -> dict[str, str]:
    """``{file: "ours" | "theirs" | "working"}``: what a conflicting file keeps whole."""
    value: dict[str, Any] = _field(body, "text", dict, "an object") or {}
    for file, side in value.items():
        where = pointer("text", file)
        _relative(file, where)
        _side(side, where, FILE_SIDES)
    return dict(value)


def _remote_name(body: Mapping[str, Any], key: str = "remote") -> str:
    """A remote's name (``origin`` when not given)."""
    name = _text(body, key)
    if name is None:
        return "origin"
    if not _is_ref(name, REMOTE_NAME):
        _bad(f"{name[:64]!r} is not a valid remote name", f"/{key}")
    return name


class VcsHandler(ProphecyHandler):
    """A route on the repository of the project named by ``?project=``."""

    @property
    def automate(self) -> Automate:
        automate: Automate = self.settings["prophecy_automate"]
        return automate

    def _work(self, project_path: str, work: Callable[[Vcs, Project], T]) -> T:
        project = self.workspace.project(project_path)
        return work(Vcs(project.root, self.workspace.secrets), project)

    async def on_repository(self, work: Callable[[Vcs, Project], T]) -> T:
        """Call ``work`` on the project's repository in a worker thread."""
        return await self.call(self._work, self.project, work)

    async def on_repository_long(self, work: Callable[[Vcs, Project], T]) -> T:
        """As `on_repository`, for work that may take minutes (the network, a deploy)."""
        return await self.call_long(self._work, self.project, work)

    def body(self, allowed: frozenset[str]) -> dict[str, Any]:
        return _request(self.request.body, allowed)


class VcsStatusHandler(VcsHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.reply(await self.on_repository(lambda vcs, _: vcs.status()))


class VcsDiffHandler(VcsHandler):
    query_arguments = frozenset({"project", "rev", "path"})

    @web.authenticated
    @authorized
    async def get(self) -> None:
        rev = _revision(self.get_query_argument("rev", None) or None, "rev")
        path = self.get_query_argument("path", None) or None
        if path is not None:
            _relative(path, "path")
        files = await self.on_repository(lambda vcs, _: vcs.diff(rev=rev, path=path))
        await self.reply({"files": files})


class VcsInitHandler(VcsHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.body(frozenset())

        def init(vcs: Vcs, _: Project) -> Any:
            vcs.init()
            return vcs.status()

        await self.reply(await self.on_repository(init), 201)


class VcsRemoteHandler(VcsHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.body(frozenset({"url", "name", "username", "token", "ssh_key"}))
        url = _text(body, "url", required=True, limit=MAX_URL) or ""
        if not url.strip() or any(c.isspace() for c in url) or url.startswith("-"):
            _bad("url must be a repository URL or path, without spaces", "/url")
        name = _remote_name(body, "name")
        username = _text(body, "username")
        token = _text(body, "token", limit=MAX_SECRET) or None
        ssh_key = _text(body, "ssh_key", limit=MAX_SECRET) or None
        remote = await self.on_repository(
            lambda vcs, _: vcs.set_remote(
                url, name=name, username=username or None, token=token, ssh_key=ssh_key
            )
        )
        # Secrets are stored, never shown: the answer says which are set, not their values.
        await self.reply(
            {"name": remote["name"], "url": remote["url"], "credentials": remote["credentials"]}
        )


class VcsCommitHandler(VcsHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.body(frozenset({"message", "paths"}))
        message = _text(body, "message", required=True, limit=MAX_MESSAGE) or ""
        if not message.strip():
            _bad("message must not be empty", "/message")
        paths = _paths(body)
        commit = await self.on_repository(lambda vcs, _: vcs.commit(message, paths=paths))
        await self.reply(commit, 201)


class VcsBranchesHandler(VcsHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.reply(await self.on_repository(lambda vcs, _: vcs.branches()))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.body(frozenset({"name", "start"}))
        name = _branch(_text(body, "name", required=True), "/name") or ""
        start = _revision(_text(body, "start"), "/start")
        created = await self.on_repository(lambda vcs, _: vcs.create_branch(name, start=start))
        await self.reply(created, 201)


class VcsSwitchHandler(VcsHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.body(frozenset({"name"}))
        name = _branch(_text(body, "name", required=True), "/name") or ""
        await self.reply(await self.on_repository(lambda vcs, _: vcs.switch(name)))


class VcsPullHandler(VcsHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        remote = _remote_name(self.body(frozenset({"remote"})))
        await self.reply(await self.on_repository_long(lambda vcs, _: vcs.pull(remote=remote)))


class VcsPushHandler(VcsHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.body(frozenset({"remote", "branch"}))
        remote = _remote_name(body)
        branch = _branch(_text(body, "branch"), "/branch")
        await self.reply(
            await self.on_repository_long(lambda vcs, _: vcs.push(remote=remote, branch=branch))
        )


class VcsMergeHandler(VcsHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """The merge in progress with its conflicts, as its POST answered (409 if none)."""
        await self.reply(await self.on_repository(lambda vcs, _: vcs.merge_state()))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.body(frozenset({"branch"}))
        branch = _branch(_text(body, "branch", required=True), "/branch") or ""
        await self.reply(await self.on_repository(lambda vcs, _: vcs.merge(branch)))


class VcsMergeResolveHandler(VcsHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.body(frozenset({"choices", "text"}))
        choices = _choices(body)
        text = _text_choices(body)
        await self.reply(
            await self.on_repository(lambda vcs, _: vcs.resolve_merge(choices, text=text))
        )


class VcsMergeAbortHandler(VcsHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.body(frozenset())
        await self.reply(await self.on_repository(lambda vcs, _: vcs.abort_merge()))


class VcsReleasesHandler(VcsHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        releases = await self.on_repository(lambda vcs, _: vcs.releases())
        await self.reply({"releases": releases})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.body(frozenset({"version", "notes", "push"}))
        version = _version(_text(body, "version", required=True) or "", "/version")
        notes = _text(body, "notes", limit=MAX_MESSAGE) or ""
        push = bool(_field(body, "push", bool, "a boolean"))
        release = await self.on_repository_long(
            lambda vcs, _: vcs.release(version, notes, push=push)
        )
        await self.reply(release, 201)


class _ReleaseDeployment(VcsHandler):
    """Deploy a release to a fabric, or roll the fabric back to it."""

    rollback: bool

    @web.authenticated
    @authorized_to("execute")
    async def post(self, name: str) -> None:
        version = _version(name)
        fabric = _fabric_name(self.body(frozenset({"fabric"})))
        if fabric is None:
            _bad("fabric is required", "/fabric")
        target: str = fabric
        automate = self.automate

        def deploy(vcs: Vcs, project: Project) -> Any:
            action = vcs.rollback if self.rollback else vcs.deploy
            return action(version, target, automate, self.workspace.project_name(project))

        deployment = await self.on_repository_long(deploy)
        await self.reply(deployment_view(deployment), 201)


class VcsReleaseDeployHandler(_ReleaseDeployment):
    rollback = False


class VcsReleaseRollbackHandler(_ReleaseDeployment):
    rollback = True


VCS_ROUTES: tuple[tuple[str, type[ProphecyHandler]], ...] = (
    ("/vcs/status", VcsStatusHandler),
    ("/vcs/diff", VcsDiffHandler),
    ("/vcs/init", VcsInitHandler),
    ("/vcs/remote", VcsRemoteHandler),
    ("/vcs/commit", VcsCommitHandler),
    ("/vcs/branches", VcsBranchesHandler),
    ("/vcs/switch", VcsSwitchHandler),
    ("/vcs/pull", VcsPullHandler),
    ("/vcs/push", VcsPushHandler),
    ("/vcs/merge", VcsMergeHandler),
    ("/vcs/merge/resolve", VcsMergeResolveHandler),
    ("/vcs/merge/abort", VcsMergeAbortHandler),
    ("/vcs/releases", VcsReleasesHandler),
    ("/vcs/releases/{name}/deploy", VcsReleaseDeployHandler),
    ("/vcs/releases/{name}/rollback", VcsReleaseRollbackHandler),
)
"""The version-control routes, as the path templates of ``openapi.yaml``."""
