"""The Studio's workspace: every project under one root folder, as a server sees them.

This is the core behind the REST API, kept free of HTTP so it can be tested directly and
reused by any other front door that serves many users from one process. It owns what a
long-lived server needs beyond the single-shot CLI:

- **confinement**: every path a request names (a project, a pipeline, a file a Source reads
  or a Target writes, the warehouse file) must resolve inside the root, whatever ``..``,
  absolute paths or symlinks it tries;
- **optimistic concurrency**: a pipeline's ETag is a hash of its file, and writes must name
  the ETag they read, so two editors never silently overwrite each other;
- **one engine per project and fabric**, opened on first use and reused, so describes stay
  memoised and repeated validations cost milliseconds; previews and runs each take a session
  of it, which makes each of them cancellable on its own;
- **previews that can be cancelled**: a newer preview of the same pipeline, or a cancel
  request, interrupts the running one, which then fails with `Cancelled`;
- **background runs** (`RunManager`) with ids, statuses and per-gem progress;
- **fabrics** whose secrets can be written but never read back, and whose connection can be
  tried.

Request bodies arrive as bytes and are parsed here, so that any bytes yield a result or a
typed error (`ValidationError`, `NotFound`, `Conflict`, `PreconditionFailed`…), never another
exception.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from itertools import islice
from pathlib import Path, PureWindowsPath
from typing import Any, NoReturn

import sqlglot.errors
from pydantic import ValidationError as PydanticValidationError
from sqlglot import exp
from sqlglot.dialects import Dialects

from prophecy_jupyter.automate.runner import RunMode
from prophecy_jupyter.automate.runs import RunManager, keep_interrupting
from prophecy_jupyter.compiler import CompiledPipeline, compile_pipeline
from prophecy_jupyter.compiler.dialects import dialect_issues
from prophecy_jupyter.compiler.preview import preview_gem
from prophecy_jupyter.compiler.pyspark_code import pyspark_code
from prophecy_jupyter.connections import project_connections
from prophecy_jupyter.engines.base import Engine, PreviewResult
from prophecy_jupyter.errors import (
    Cancelled,
    Conflict,
    EngineError,
    Issue,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    ProphecyError,
    ValidationError,
)
from prophecy_jupyter.fabrics import (
    FABRIC_NAME,
    IN_MEMORY,
    MASK,
    Fabric,
    FabricStore,
    SecretStore,
    open_engine,
    parse_fabric,
)
from prophecy_jupyter.gems.base import LocalPath
from prophecy_jupyter.gems.registry import gem_kinds
from prophecy_jupyter.model.files import atomic_move_text, atomic_write_text
from prophecy_jupyter.model.migrations import migrate
from prophecy_jupyter.model.pipeline import (
    Pipeline,
    dump_pipeline,
    issues_from_pydantic,
    load_pipeline,
    pointer,
)
from prophecy_jupyter.model.project import (
    PIPELINE_NAME,
    PROJECT_FILE,
    Project,
    pipeline_names_in,
    read_config,
)

MAX_NAME_LENGTH = 128
DEFAULT_PREVIEW_ROWS = 100
MAX_PREVIEW_ROWS = 10_000
SCAN_DEPTH = 4
"""How deep below the root `Workspace.projects` looks for project folders."""
SCAN_FOLDERS = 5_000
SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "site-packages"})
GLOB_MATCHES = 10_000
"""How many files of a Source's glob `Workspace.path_issues` looks at."""
STUDIO_FETCH_LIMIT = 1_000
"""Rows a gem that fetches from a database or an API reads while the Studio validates or
previews (on every edit); runs read them all."""
RUN_MODES: tuple[RunMode, ...] = ("fused", "staged")
DIALECTS = tuple(sorted(d.value for d in Dialects if d.value))
"""sqlglot dialects a pipeline can be compiled to."""


def _invalid(message: str, field: str | None = None, code: str = "invalid") -> NoReturn:
    raise ValidationError([Issue(code, message, field=field)])


# -- paths ---------------------------------------------------------------------------------


def confine(root: Path, relative: str, field: str = "path") -> Path:
    """``relative`` resolved under ``root`` (itself resolved), or a `ValidationError`.

    Refused: absolute paths, ``..`` segments, backslashes and NUL bytes outright; then
    anything whose resolved location (symlinks followed) is not ``root`` or below it. The
    comparison is by path components, so ``/srv/root-evil`` is not inside ``/srv/root``.
    """
    if "\x00" in relative or "\\" in relative:
        _invalid(f"{field} may not contain NUL bytes or backslashes", field, "path")
    if relative.startswith("/") or PureWindowsPath(relative).drive:
        _invalid(f"{field} must be relative to the server root", field, "path")
    parts = [p for p in relative.split("/") if p not in {"", "."}]
    if ".." in parts:
        _invalid(f"{field} may not contain '..'", field, "path")
    return inside_root(root, root.joinpath(*parts), field)


def inside_root(root: Path, path: Path, field: str = "path") -> Path:
    """``path`` with symlinks resolved, if that is ``root`` or below it."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        _invalid(f"{field} cannot be resolved", field, "path")
    if not resolved.is_relative_to(root):
        _invalid(f"{field} leads outside the server root", field, "path")
    return resolved


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long, a component that is a file, …
        return False


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def project_folders(root: Path) -> Iterator[Path]:
    """Folders below ``root`` (itself included) holding a project file, nearest first,
    without following symlinks. The search is bounded (`SCAN_DEPTH` levels, `SCAN_FOLDERS`
    folders) because the root may well be a home folder; hidden folders and package caches
    are skipped."""
    folders = deque([(root, 0)])
    visited = 0
    while folders and visited < SCAN_FOLDERS:
        folder, depth = folders.popleft()
        visited += 1
        config = folder / PROJECT_FILE
        if _is_file(config) and not config.is_symlink():
            yield folder
        if depth >= SCAN_DEPTH:
            continue
        try:
            children = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in children:
            hidden = entry.name.startswith(".") or entry.name in SKIPPED_FOLDERS
            if not hidden and entry.is_dir(follow_symlinks=False):
                folders.append((Path(entry.path), depth + 1))


def relative_name(root: Path, path: Path) -> str:
    """How the API names a folder under the root: POSIX, ``""`` for the root itself."""
    relative = path.relative_to(root).as_posix()
    return "" if relative == "." else relative


# -- ETags and bodies ----------------------------------------------------------------------


def etag_of(content: bytes) -> str:
    """A strong ETag of a file's bytes: any change to the file, by anyone, changes it."""
    return '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def etag_matches(if_match: str, current: str) -> bool:
    """RFC 9110 If-Match: ``*`` or a list of strong tags, one equal to ``current``."""
    if if_match.strip() == "*":
        return True
    return any(tag.strip() == current for tag in if_match.split(","))


def _finite(text: str) -> float:
    value = float(text)
    if value in {float("inf"), float("-inf")}:
        raise ValueError(f"{text} is too large for a JSON number")
    return value


def _not_a_number(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes) -> Any:
    """A request body as JSON (``None`` when empty), or a `ValidationError` saying why not."""
    if not body.strip():
        return None
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_not_a_number, parse_float=_finite)
    except UnicodeDecodeError as exc:
        _invalid(f"the body is not UTF-8 text: {exc.reason}", "body", "encoding")
    except json.JSONDecodeError as exc:
        raise ValidationError(
            [
                Issue(
                    "json",
                    f"the body is not valid JSON: {exc.msg}",
                    None,
                    "body",
                    exc.lineno,
                    exc.colno,
                )
            ]
        ) from None
    except ValueError as exc:  # NaN, a number too large, an integer too long to convert
        _invalid(f"the body is not valid JSON: {exc}", "body", "json")
    except RecursionError:
        _invalid("the body is nested too deeply", "body", "json")


def load_document(source: bytes | dict[str, Any]) -> Pipeline:
    """A pipeline document sent to the API (raw body bytes, or an object inside one).

    Stricter than reading a file: after the loader's own checks (which list every issue),
    JSON types must be the published schema's own, so ``false`` is not a coordinate and
    ``"1"`` not a version. A client sending those has a bug worth reporting, and the saved
    file would otherwise differ from what was sent; a hand-edited file is still read
    leniently by `load_pipeline`.
    """
    data = parse_json(source) if isinstance(source, bytes) else source
    if not isinstance(data, dict):
        _invalid("a pipeline must be a JSON object", "", "schema")
    pipeline = load_pipeline(data)
    current = migrate(data)
    try:
        Pipeline.model_validate(current, strict=True)
    except PydanticValidationError as exc:
        raise ValidationError(issues_from_pydantic(exc, current)) from None
    return pipeline


def _request(body: bytes, allowed: frozenset[str]) -> dict[str, Any]:
    """A JSON object body with no keys but ``allowed`` (an empty body is an empty object,
    but a ``null`` one is not an object)."""
    if not body.strip():
        return {}
    data = parse_json(body)
    if not isinstance(data, dict):
        _invalid("the body must be a JSON object", "body", "schema")
    unknown = sorted(set(data) - allowed)
    if unknown:
        _invalid(f"unknown field {unknown[0]!r}", pointer(unknown[0]), "schema")
    try:  # a draft pipeline is checked by the loader, which points at the culprit
        json.dumps({k: v for k, v in data.items() if k != "pipeline"}, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        _invalid("the body holds an unpaired surrogate escape (\\udXXX)", "body", "encoding")
    return data


def _field(
    data: Mapping[str, Any], key: str, kind: type[Any], what: str, required: bool = False
) -> Any:
    """The value of ``key``, which when present must be of ``kind`` (``null`` is not)."""
    if key not in data:
        if required:
            _invalid(f"{key} is required", pointer(key), "schema")
        return None
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        _invalid(f"{key} must be {what}", pointer(key), "schema")
    return value


def _parameters(data: Mapping[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = _field(data, "parameters", dict, "an object") or {}
    if not all(v is None or isinstance(v, (str, int, float, bool)) for v in value.values()):
        _invalid(
            "parameters must map names to strings, numbers, booleans or null",
            "/parameters",
            "schema",
        )
    return value


def _limit(data: Mapping[str, Any]) -> int:
    value = _field(data, "limit", int, "an integer")
    if value is None:
        return DEFAULT_PREVIEW_ROWS
    if not 0 <= value <= MAX_PREVIEW_ROWS:
        _invalid(f"limit must be between 0 and {MAX_PREVIEW_ROWS}", "/limit", "schema")
    limit: int = value
    return limit


def _draft(data: Mapping[str, Any]) -> dict[str, Any] | None:
    draft: dict[str, Any] | None = _field(data, "pipeline", dict, "a JSON object")
    return draft


def _dialect(data: Mapping[str, Any], default: str) -> str:
    dialect: str | None = _field(data, "dialect", str, "a string")
    if dialect is None:
        return default
    if dialect not in DIALECTS:
        _invalid(f"unknown dialect {dialect!r}; one of: {', '.join(DIALECTS)}", "/dialect")
    return dialect


def _fabric_name(data: Mapping[str, Any]) -> str | None:
    """The ``fabric`` a preview or run asks for (``None``: the project's default)."""
    name: str | None = _field(data, "fabric", str, "a string")
    if name is not None and not re.match(FABRIC_NAME, name):
        _invalid(f"invalid fabric name {name[:64]!r}: letters, digits, _ and -", "/fabric", "name")
    return name


def _check_name(name: str, field: str) -> None:
    if len(name) > MAX_NAME_LENGTH or not PIPELINE_NAME.match(name):
        _invalid(
            f"invalid pipeline name {name[:MAX_NAME_LENGTH]!r}: up to {MAX_NAME_LENGTH} letters, "
            "digits, _ . - (not starting with . or -)",
            field,
            "name",
        )


# -- previews ------------------------------------------------------------------------------


class ActivePreview:
    """A preview in flight: its own engine session, and whether it has been cancelled."""

    def __init__(self) -> None:
        self.session: Engine | None = None  # set once the database could be opened
        self.cancelled = False

    @property
    def engine(self) -> Engine:
        if self.session is None:
            raise Cancelled("the preview has no engine session")
        return self.session

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled("preview cancelled: a newer preview or a cancel request replaced it")


class PreviewRegistry:
    """At most one running preview per key (a project's pipeline); a new one replaces it.

    A canvas previews the gem the user clicked last: when the user clicks another gem before
    the first preview is back, the first one is wasted work, so it is interrupted. Each
    preview runs on a session of its own, opened and closed here, so that cancelling it
    touches no other statement.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._latest: dict[tuple[Path, str], ActivePreview] = {}
        self._in_flight: set[ActivePreview] = set()
        self._closed = False

    @contextmanager
    def running(self, key: tuple[Path, str], engine: Engine) -> Iterator[ActivePreview]:
        """Register a preview under ``key`` on a new session of ``engine``, replacing (and
        cancelling) the one running there.

        The session is opened after registering and outside the lock: opening may wait for
        another process to let go of the database file, and meanwhile a newer preview, a
        cancel or the server stopping must still be able to act on this one.
        """
        with self._changed:
            if self._closed:
                raise Cancelled("the server is shutting down")
            current = ActivePreview()
            previous = self._latest.get(key)
            self._latest[key] = current
            self._in_flight.add(current)
            if previous is not None:
                self._cancel(previous)
        try:
            session = engine.session()
            with self._changed:
                current.session = session
            current.check()
            yield current
        finally:
            with self._changed:
                if self._latest.get(key) is current:
                    del self._latest[key]
                self._in_flight.discard(current)
                if current.session is not None:
                    current.session.close()
                self._changed.notify_all()

    def cancel(self, key: tuple[Path, str]) -> bool:
        """Cancel the running preview under ``key``; whether there was one."""
        with self._changed:
            active = self._latest.pop(key, None)
            if active is not None:
                self._cancel(active)
        return active is not None

    def _cancel(self, active: ActivePreview) -> None:
        """Mark ``active`` cancelled and interrupt it until it ends (called with the lock)."""
        active.cancelled = True
        if active.session is not None:
            active.session.cancel()
        keep_interrupting(lambda: self._interrupt(active))

    def _interrupt(self, active: ActivePreview) -> bool:
        with self._changed:
            if active not in self._in_flight:
                return False
            if active.session is not None:
                active.session.cancel()
            return True

    def running_count(self) -> int:
        with self._changed:
            return len(self._in_flight)

    def close(self, timeout: float = 30.0) -> bool:
        """Cancel every preview, refuse new ones, and wait (up to ``timeout`` seconds) until
        each has let go of its session; whether they all have."""
        with self._changed:
            self._closed = True
            for active in self._in_flight:
                self._cancel(active)
            return self._changed.wait_for(lambda: not self._in_flight, timeout)


# -- the workspace -------------------------------------------------------------------------


class Workspace:
    """Every project below ``root``; the REST API's one entry into the core."""

    def __init__(self, root: Path | str, secrets: SecretStore | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        self.secrets = secrets or SecretStore()
        self.runs = RunManager()
        self.previews = PreviewRegistry()
        self._engines: dict[tuple[Path, str], Engine] = {}
        self._engines_lock = threading.Lock()
        self._write_lock = threading.Lock()

    # -- projects ---------------------------------------------------------------------------
    def project(self, path: str = "") -> Project:
        """The project at ``path`` (relative to the root), or the one containing it."""
        folder = confine(self.root, path, "project")
        if not _exists(folder):
            raise NotFound(f"no file or folder '{path}' under the server root")
        start = folder if folder.is_dir() else folder.parent
        for candidate in (start, *start.parents):
            if not candidate.is_relative_to(self.root):
                break
            config = candidate / PROJECT_FILE
            if _is_file(config):
                inside_root(self.root, config, "project")
                return Project(candidate, read_config(config))
        raise NotFound(f"'{path}' is not inside a project (no {PROJECT_FILE} up to the root)")

    def project_name(self, project: Project) -> str:
        return relative_name(self.root, project.root)

    def projects(self) -> list[dict[str, Any]]:
        """Project folders below the root, as `project_folders` finds them."""
        found: list[dict[str, Any]] = []
        for folder in project_folders(self.root):
            try:
                project = Project(folder, read_config(folder / PROJECT_FILE))
            except ValidationError as exc:
                found.append({"path": relative_name(self.root, folder), "error": str(exc)})
            else:
                found.append(self._summary(project))
        return found

    def _summary(self, project: Project) -> dict[str, Any]:
        return {
            "path": self.project_name(project),
            "name": project.config.name,
            "default_fabric": project.config.default_fabric,
            "dialect": project.config.dialect,
        }

    def project_info(self, path: str = "") -> dict[str, Any]:
        project = self.project(path)
        store = FabricStore(project, self.secrets)
        return {
            **self._summary(project),
            "database": project.config.database,
            "pipelines": self._pipeline_names(project),
            "fabrics": [f.name for f in store.list()],
        }

    # -- engines ----------------------------------------------------------------------------
    def engine(self, project: Project, fabric_name: str | None = None) -> Engine:
        """The engine of one of the project's fabrics (by default its default fabric), made on
        first use and kept: its describe memo lasts, while the warehouse file is held only
        when the engine works. `NotFound` for an unknown fabric, `EngineError` for a kind
        whose engine is not available yet."""
        store = FabricStore(project, self.secrets)
        fabric = store.get(fabric_name or project.config.default_fabric)
        return self._engine_of(project, fabric)

    def _engine_of(self, project: Project, fabric: Fabric) -> Engine:
        database = str(fabric.options.get("database", ":memory:"))
        key = (project.root, f"{fabric.name}:{fabric.kind}:{database}")
        with self._engines_lock:
            engine = self._engines.get(key)
            if engine is None:
                if fabric.kind == "duckdb" and database != ":memory:":
                    inside_root(self.root, Path(project.resolve_database(database)), "database")
                try:
                    secrets = FabricStore(project, self.secrets).resolve_secrets(fabric.name)
                    engine = open_engine(fabric, project, secrets)
                except OSError as exc:  # the database's folder cannot be made
                    raise EngineError(
                        f"fabric '{fabric.name}': cannot open {database}: {exc.strerror or exc}"
                    ) from None
                self._engines[key] = engine
            return engine

    def close(self) -> None:
        """Cancel previews and runs, wait until they stop, then close every engine (unless a
        preview still holds a session of one: closing it under a running statement fails)."""
        stopped = self.previews.close()
        self.runs.close()
        if not stopped:
            return
        with self._engines_lock:
            for engine in self._engines.values():
                engine.close()
            self._engines.clear()

    # -- pipeline documents -----------------------------------------------------------------
    def _pipeline_names(self, project: Project) -> list[str]:
        folder = inside_root(self.root, project.pipelines_dir, "pipelines folder")
        return pipeline_names_in(folder)

    def pipelines(self, path: str = "") -> list[dict[str, Any]]:
        return [{"name": name} for name in self._pipeline_names(self.project(path))]

    def _pipeline_file(self, project: Project, name: str, field: str = "name") -> Path:
        _check_name(name, field)
        path = project.pipeline_path(name)
        inside_root(self.root, path, "pipeline")
        return path

    @staticmethod
    def _read(path: Path, project: Project, name: str) -> bytes:
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"project '{project.config.name}' has no pipeline '{name}'") from None

    def read_pipeline(self, path: str, name: str) -> tuple[dict[str, Any], str]:
        """A pipeline document (migrated, in its canonical form) and its ETag."""
        project = self.project(path)
        content = self._read(self._pipeline_file(project, name), project, name)
        return _document(load_pipeline(content)), etag_of(content)

    def create_pipeline(self, path: str, body: bytes) -> tuple[dict[str, Any], str]:
        """Save a new pipeline under the name its document gives; `Conflict` if it exists."""
        project = self.project(path)
        pipeline = load_document(body)
        file = self._pipeline_file(project, pipeline.name, "/name")
        text = dump_pipeline(pipeline)
        with self._write_lock:
            if _exists(file):
                raise Conflict(f"pipeline '{pipeline.name}' already exists; update it instead")
            atomic_write_text(file, text)
        return _document(pipeline), etag_of(text.encode("utf-8"))

    def update_pipeline(
        self, path: str, name: str, body: bytes, if_match: str | None
    ) -> tuple[dict[str, Any], str]:
        """Replace a pipeline, if ``if_match`` names its current ETag (or is ``*``)."""
        if_match = _required(if_match)
        project = self.project(path)
        file = self._pipeline_file(project, name)
        pipeline = load_document(body)
        if pipeline.name != name:
            raise ValidationError(
                [
                    Issue(
                        "name",
                        f"the document is named '{pipeline.name}' but is saved as '{name}'; "
                        "create a new pipeline to rename",
                        field="/name",
                    )
                ]
            )
        text = dump_pipeline(pipeline)
        with self._write_lock:
            self._check_precondition(file, project, name, if_match)
            atomic_write_text(file, text)
        return _document(pipeline), etag_of(text.encode("utf-8"))

    def rename_pipeline(
        self, path: str, name: str, body: bytes, if_match: str | None
    ) -> tuple[dict[str, Any], str]:
        """Give a pipeline a new name, if ``if_match`` names its current ETag (or is ``*``):
        its file moves to the new name and its document's ``name`` follows. The new file
        appears complete before the old one goes, so a crash never leaves a partial file or
        no pipeline (at worst both). `Conflict` if a pipeline of the new name exists."""
        if_match = _required(if_match)
        request = _request(body, frozenset({"name"}))
        new_name: str = _field(request, "name", str, "a string", required=True)
        _check_name(new_name, "/name")
        project = self.project(path)
        file = self._pipeline_file(project, name)
        new_file = self._pipeline_file(project, new_name, "/name")
        with self._write_lock:
            content = self._read(file, project, name)
            if not etag_matches(if_match, etag_of(content)):
                self._stale(name)
            pipeline = load_pipeline(content).model_copy(update={"name": new_name})
            text = dump_pipeline(pipeline)
            if new_file == file:
                atomic_write_text(file, text)
            else:
                try:
                    atomic_move_text(file, new_file, text)
                except FileExistsError:
                    raise Conflict(
                        f"pipeline '{new_name}' already exists; choose another name"
                    ) from None
        return _document(pipeline), etag_of(text.encode("utf-8"))

    def delete_pipeline(self, path: str, name: str, if_match: str | None) -> None:
        if_match = _required(if_match)
        project = self.project(path)
        file = self._pipeline_file(project, name)
        with self._write_lock:
            self._check_precondition(file, project, name, if_match)
            file.unlink()

    def _check_precondition(self, file: Path, project: Project, name: str, if_match: str) -> None:
        current = etag_of(self._read(file, project, name))
        if not etag_matches(if_match, current):
            self._stale(name)

    @staticmethod
    def _stale(name: str) -> NoReturn:
        raise PreconditionFailed(
            f"pipeline '{name}' changed since it was read; read it again and reapply the edit"
        )

    # -- validate, compile, preview ---------------------------------------------------------
    def _subject(self, project: Project, name: str, draft: dict[str, Any] | None) -> Pipeline:
        """The pipeline a request is about: its unsaved ``draft`` if any, else the file."""
        if draft is None:
            content = self._read(self._pipeline_file(project, name), project, name)
            return load_pipeline(content)
        return load_document(draft)

    def _compile(
        self,
        project: Project,
        pipeline: Pipeline,
        parameters: Mapping[str, Any],
        engine: Engine | None = None,
    ) -> CompiledPipeline:
        catalog = engine or self.engine(project)
        # Expressions are written in the project's dialect; the engine renders its own.
        return compile_pipeline(
            pipeline,
            catalog,
            parameters,
            dialect=project.config.dialect,
            connections=project_connections(project, self.secrets),
            fetch_limit=STUDIO_FETCH_LIMIT,
        )

    def validate(self, path: str, name: str, body: bytes) -> list[Issue]:
        """Every issue of the pipeline (or of the draft in the body), at once."""
        issues, _ = self._validated(path, name, body)
        return issues

    def validation_report(self, path: str, name: str, body: bytes) -> dict[str, Any]:
        """`validate`'s issues, whether any is an error, and the output columns (name and
        type) of every gem that could be built, for an editor's column completion.

        The types are those inferred while compiling, without asking the engine: cheap
        enough to answer on every keystroke of a large pipeline (the exact engine types
        come with `compile`). A gem that failed, or that is downstream of one, has none.
        """
        issues, compiled = self._validated(path, name, body)
        columns: dict[str, list[dict[str, str]]] = {}
        if compiled is not None:
            for gem_id in compiled.order:
                output = compiled.gems[gem_id].output
                if output is not None:
                    columns[gem_id] = [{"name": c.name, "type": c.type} for c in output.columns]
        return {
            "valid": not any(i.severity == "error" for i in issues),
            "issues": [i.to_dict() for i in issues],
            "columns": columns,
        }

    def _validated(
        self, path: str, name: str, body: bytes
    ) -> tuple[list[Issue], CompiledPipeline | None]:
        request = _request(body, frozenset({"parameters", "pipeline"}))
        _check_name(name, "name")
        project = self.project(path)
        parameters = _parameters(request)
        draft = _draft(request)
        try:
            pipeline = self._subject(project, name, draft)
        except ValidationError as exc:
            return exc.issues, None
        compiled = self._compile(project, pipeline, parameters)
        # A gem that checks its own path while it builds may already have said the same.
        said = {(i.code, i.field) for i in compiled.issues}
        paths = [i for i in self.path_issues(project, pipeline) if (i.code, i.field) not in said]
        return [*compiled.issues, *paths], compiled

    def compile(self, path: str, name: str, body: bytes) -> dict[str, Any]:
        """SQL (in any sqlglot dialect) and output columns of one gem or of every Target; or,
        with ``"format": "pyspark"``, the pipeline as PySpark DataFrame code."""
        request = _request(body, frozenset({"parameters", "pipeline", "dialect", "gem", "format"}))
        project = self.project(path)
        parameters = _parameters(request)
        dialect = _dialect(request, project.config.dialect)
        gem: str | None = _field(request, "gem", str, "a string")
        output = _field(request, "format", str, "a string") or "sql"
        if output not in {"sql", "pyspark"}:
            _invalid("format must be sql or pyspark", "/format", "schema")
        _check_name(name, "name")
        pipeline = self._subject(project, name, _draft(request))
        compiled = self._compile(project, pipeline, parameters)
        compiled.raise_for_issues()
        _raise(self.path_issues(project, pipeline))
        if output == "pyspark":
            _raise(dialect_issues(compiled, "spark"))
            return {"format": "pyspark", "code": pyspark_code(compiled, gem)}
        _raise(dialect_issues(compiled, dialect))
        statements = []
        for gem_id in [gem] if gem is not None else compiled.targets():
            try:
                sql = compiled.sql(gem_id, dialect=dialect)
            except sqlglot.errors.SqlglotError as exc:
                _invalid(f"cannot write gem '{gem_id}' in {dialect}: {exc}", "/dialect")
            columns = [c.to_dict() for c in compiled.columns(gem_id)]
            statements.append({"gem_id": gem_id, "sql": sql, "columns": columns})
        return {"format": "sql", "dialect": dialect, "statements": statements}

    def preview(self, path: str, name: str, body: bytes) -> PreviewResult:
        """First rows of a gem, on the fabric the body names (by default the project's); a
        newer preview of the same pipeline cancels this one."""
        request = _request(body, frozenset({"parameters", "pipeline", "gem", "limit", "fabric"}))
        project = self.project(path)
        parameters = _parameters(request)
        gem: str = _field(request, "gem", str, "a string", required=True)
        limit = _limit(request)
        fabric = _fabric_name(request)
        _check_name(name, "name")
        engine = self.engine(project, fabric)
        with self.previews.running((project.root, name), engine) as active:
            pipeline = self._subject(project, name, _draft(request))
            compiled = self._compile(project, pipeline, parameters, engine)
            _raise(self.path_issues(project, pipeline, [*compiled.ancestors(gem), gem]))
            active.check()
            try:
                result = preview_gem(compiled, active.engine, gem, limit)
            except EngineError:
                active.check()
                raise
            active.check()
            return result

    def cancel_preview(self, path: str, name: str) -> bool:
        project = self.project(path)
        _check_name(name, "name")
        return self.previews.cancel((project.root, name))

    def path_issues(
        self, project: Project, pipeline: Pipeline, gem_ids: list[str] | None = None
    ) -> list[Issue]:
        """Issues for the project files and folders gems read, list or write themselves
        (`GemKind.local_paths`: Sources and Targets of every file format, Directory, the
        file templates of DynamicInput), checked before anything is compiled or run.

        Each must stay under the server root, whatever ``..``, absolute paths or symlinks
        it tries (like every path a request names); within it, what a gem reads must be
        there (a glob must match a file) and what a Target writes must have a folder that
        can be created. Remote URLs (``s3://``, ``https://``…) are left to the engine, and
        files reached through a connection to the file connector; ``file:`` URLs are local
        paths. Properties that do not validate are left to the compiler, which says why.
        """
        kinds = gem_kinds()
        issues = []
        for index, gem in enumerate(pipeline.gems):
            if gem_ids is not None and gem.id not in gem_ids:
                continue
            kind = kinds.get(gem.kind)
            if kind is None:
                continue
            try:
                props = kind.Props.model_validate(gem.properties)
            except PydanticValidationError:
                continue
            for local in kind.local_paths(props):
                problem = self._local_path_problem(project, local)
                if problem is not None:
                    code, message = problem
                    field = pointer("gems", index, "properties", local.field)
                    issues.append(Issue(code, message, gem.id, field))
        return issues

    def _local_path_problem(self, project: Project, local: LocalPath) -> tuple[str, str] | None:
        """``(code, message)`` of what is wrong with a gem's local path, or ``None``."""
        location = local.path
        scheme, sep, _ = location.partition("://")
        if sep and scheme.isalnum() and scheme.lower() != "file":
            return None
        relative = location.removeprefix("file://")
        outside = ("path", f"{location!r} is outside the server root")
        if (
            "\x00" in relative
            or ".." in Path(relative).parts
            or not _resolves_inside(self.root, project.root / relative)
        ):
            return outside
        if local.use == "template":
            return None
        found = project.root / relative
        if local.use == "read" and any(c in relative for c in "*?["):
            try:
                matches = list(islice(project.root.glob(relative), GLOB_MATCHES))
            except (OSError, ValueError, NotImplementedError):
                return None  # a pattern Python cannot follow is left to the reader
            if any(not _resolves_inside(self.root, m) for m in matches):
                return outside
            if not any(_is_file(m) for m in matches):
                return "unreadable_source", f"{location!r} matches no file"
            return None
        if local.use == "read":
            if _is_file(found):
                return None
            if _is_dir(found):
                return "unreadable_source", (
                    f"{location!r} is a folder; name a file, or a glob such as {location}/*"
                )
            return "unreadable_source", f"{location!r} does not exist"
        if local.use == "list":
            if _is_dir(found):
                return None
            if _exists(found):
                return "unreadable_source", f"{location!r} is a file, not a folder"
            return "unreadable_source", f"folder {location!r} does not exist"
        if _is_dir(found):
            return "path", f"{location!r} is a folder; name the file to write"
        parts = Path(relative).parts
        for depth in range(1, len(parts)):
            folder = Path(*parts[:depth])
            if _exists(project.root / folder) and not _is_dir(project.root / folder):
                return "path", (
                    f"{location!r} cannot be written: {folder.as_posix()!r} is a file, not a folder"
                )
        return None

    # -- runs -------------------------------------------------------------------------------
    def start_run(self, path: str, body: bytes) -> dict[str, Any]:
        """Queue a run of a saved pipeline on the fabric the body names (by default the
        project's); returns its record (status ``queued``) at once."""
        request = _request(body, frozenset({"pipeline", "parameters", "mode", "fabric"}))
        project = self.project(path)
        name: str = _field(request, "pipeline", str, "a string", required=True)
        mode = _field(request, "mode", str, "a string")
        if mode is None:
            mode = "fused"
        elif mode not in RUN_MODES:
            _invalid(f"mode must be one of: {', '.join(RUN_MODES)}", "/mode", "schema")
        parameters = _parameters(request)
        fabric = _fabric_name(request) or project.config.default_fabric
        _check_name(name, "/pipeline")
        pipeline = self._subject(project, name, None)
        _raise(self.path_issues(project, pipeline))
        engine = self.engine(project, fabric)
        return self.runs.submit(
            self.project_name(project),
            project.root,
            pipeline,
            engine,
            parameters,
            mode,
            fabric=fabric,
            dialect=project.config.dialect,
            connections=project_connections(project, self.secrets),
        )

    def list_runs(self, path: str | None) -> list[dict[str, Any]]:
        if path is None:
            return self.runs.list()
        return self.runs.list(self.project_name(self.project(path)))

    # -- fabrics ----------------------------------------------------------------------------
    def _fabrics(self, path: str) -> FabricStore:
        project = self.project(path)
        store = FabricStore(project, self.secrets)
        inside_root(self.root, store.folder, "fabrics folder")
        return store

    @staticmethod
    def _fabric_view(store: FabricStore, name: str) -> dict[str, Any]:
        """A fabric as readers see it: each secret masked when set, ``null`` when not."""
        fabric = store.get(name)
        status = store.secret_status(name)
        view: dict[str, Any] = {"name": fabric.name, "kind": fabric.kind}
        if fabric.description is not None:
            view["description"] = fabric.description
        view["options"] = dict(fabric.options)
        view["secrets"] = {s: MASK if status.get(s) else None for s in fabric.secrets}
        return view

    def fabrics(self, path: str) -> list[dict[str, Any]]:
        store = self._fabrics(path)
        return [self._fabric_view(store, f.name) for f in store.list()]

    def fabric(self, path: str, name: str) -> dict[str, Any]:
        return self._fabric_view(self._fabrics(path), name)

    def put_fabric(self, path: str, name: str, body: bytes) -> dict[str, Any]:
        """Create or replace a fabric. ``secrets`` maps each secret the fabric uses to a new
        value, to the mask (keep the stored value, so a read can be written back) or to
        ``null`` (no value); secrets no longer listed lose their stored values."""
        request = _request(body, frozenset({"kind", "description", "options", "secrets"}))
        store = self._fabrics(path)
        secrets: dict[str, Any] = _field(request, "secrets", dict, "an object") or {}
        if not all(v is None or isinstance(v, str) for v in secrets.values()):
            _invalid("secrets must be an object of names to strings or null", "/secrets", "schema")
        fabric = parse_fabric(
            {
                **{k: v for k, v in request.items() if k != "secrets"},
                "name": name,
                "secrets": sorted(secrets),
            }
        )
        values: dict[str, str | None] = {k: v for k, v in secrets.items() if v != MASK}
        store.put(fabric, values)
        stale = [s for s in store.secrets.get(store.project, name) if s not in secrets]
        if stale:
            store.secrets.update(store.project, name, dict.fromkeys(stale))
        return self._fabric_view(store, name)

    def test_fabric(self, path: str, name: str, body: bytes = b"") -> dict[str, Any]:
        """Try a fabric's connection: ``{"ok", "message", "seconds"}``. What keeps it from
        working (a secret without a value, an engine not available yet, a database that
        cannot be opened) is the answer, not an error; only an unknown fabric is one."""
        _request(body, frozenset())
        store = self._fabrics(path)
        fabric = store.get(name)
        started = time.perf_counter()
        ok, message = self._try_fabric(store, fabric)
        return {"ok": ok, "message": message, "seconds": round(time.perf_counter() - started, 6)}

    def _try_fabric(self, store: FabricStore, fabric: Fabric) -> tuple[bool, str]:
        missing = [s for s, has in store.secret_status(fabric.name).items() if not has]
        if missing:
            names = ", ".join(f"'{s}'" for s in missing)
            has = "have" if len(missing) > 1 else "has"
            plural = "s" if len(missing) > 1 else ""
            return False, f"fabric '{fabric.name}': secret{plural} {names} {has} no value"
        try:
            engine = self._engine_of(store.project, fabric)
            session = engine.session()
            try:
                _, rows = session.query(exp.select("1"))
            finally:
                session.close()
        except ProphecyError as exc:
            return False, str(exc)
        if rows != [(1,)]:
            return False, f"fabric '{fabric.name}': SELECT 1 answered {rows!r}"
        if fabric.kind == "duckdb":
            database = fabric.options.get("database", ":memory:")
            return True, f"fabric '{fabric.name}': DuckDB database {database} answered SELECT 1"
        return True, f"fabric '{fabric.name}': {fabric.kind} answered SELECT 1"

    def delete_fabric(self, path: str, name: str) -> None:
        store = self._fabrics(path)
        if name == IN_MEMORY:
            _invalid(f"'{IN_MEMORY}' is built in and cannot be deleted", "name", "name")
        store.delete(name)


def _required(if_match: str | None) -> str:
    """The If-Match value, checked before anything else about a write is looked at."""
    if if_match is None:
        raise PreconditionRequired(
            "changing a pipeline needs an If-Match header with the ETag it was read with "
            "(or * to overwrite whatever is there)"
        )
    return if_match


def _document(pipeline: Pipeline) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dump_pipeline(pipeline))
    return data


def _raise(issues: list[Issue]) -> None:
    if issues:
        raise ValidationError(issues)


def _resolves_inside(root: Path, path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except (OSError, RuntimeError, ValueError):
        return False
