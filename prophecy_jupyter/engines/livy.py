"""Livy fabrics: pipelines run as Spark SQL statements sent to a cluster through Apache Livy.

`LivyEngine` is a `SparkSQLEngine`: everything a pipeline does — file Sources as temporary
views, table and file Targets, previews, describes — is the same Spark SQL text the Spark
engine runs, sent here as ``kind: sql`` statements of one Livy session and read back from
Livy's ``application/json`` result (columns typed from the result's Spark schema). So it
all runs on the cluster, and paths are the cluster's: relative paths resolve under the
fabric's ``root`` (by default the project folder, right when Livy runs beside the project);
the few file operations of a file Target (rename into place, remove) go through the
session's Hadoop filesystem in ``pyspark`` statements (``filesystem: cluster``), or the
local disk (``filesystem: local``).

One Livy session per engine, started on first use — or an idle one started earlier with the
same settings, found by name — and reused by every preview, run and cell; `session` gives
handles on it whose `cancel` stops only their own statement; closing the engine deletes the
session (when it started it), and so does ``idle_timeout`` seconds without work (the next
statement starts another). A session that dies is replaced on the next statement.

Fabric options: ``url``; ``kind`` (the session's, ``pyspark`` by default: statements carry
their own kind, Livy 0.5+); Livy's session settings ``driverMemory``, ``driverCores``,
``executorMemory``, ``executorCores``, ``numExecutors``, ``queue``, ``proxyUser``,
``heartbeatTimeoutInSecond``, ``jars``, ``pyFiles``, ``files``, ``archives`` (comma-separated),
``session_name``, and any ``spark.*`` setting (the session's
``conf``); ``auth`` (``none``, ``basic`` with ``user`` and the secret ``password``, or
``kerberos`` with the ``livy-kerberos`` extra, ``kerberos_mutual``); ``verify`` (TLS: true,
false or a CA bundle's path); ``header.NAME`` (a header sent with every request; also as a
secret, for tokens); ``connect_timeout``, ``read_timeout``, ``start_timeout``,
``statement_timeout``, ``idle_timeout`` (seconds; 0 = none), ``poll_max``; ``root``,
``database``, ``table_format``, ``filesystem``, ``reuse`` (find idle sessions), ``max_rows``
(the server's ``livy.rsc.sql.num-rows``: a result that reaches it is checked not to have
been cut short).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prophecy_jupyter.engines.livy_client import (
    SESSION_KINDS,
    Handle,
    LivyClient,
    LivyError,
    LivySession,
    SessionSpec,
    StatementCancelled,
    StatementFailed,
    StatementKind,
    StatementOutput,
)
from prophecy_jupyter.engines.spark import (
    _URL,
    SESSION_CONF,
    Columns,
    FileSystem,
    Rows,
    SparkSQLEngine,
    _one_line,
)
from prophecy_jupyter.errors import EngineError
from prophecy_jupyter.fabrics import Fabric
from prophecy_jupyter.model.project import Project

SESSION_OPTIONS = {
    "driverMemory": str,
    "driverCores": int,
    "executorMemory": str,
    "executorCores": int,
    "numExecutors": int,
    "queue": str,
    "proxyUser": str,
    "heartbeatTimeoutInSecond": int,
}
LIST_OPTIONS = ("jars", "pyFiles", "files", "archives")
"""Session settings that are lists: comma-separated in the fabric's options."""
OPTIONS = frozenset(
    {
        "url",
        "kind",
        "session_name",
        "auth",
        "user",
        "kerberos_mutual",
        "verify",
        "connect_timeout",
        "read_timeout",
        "start_timeout",
        "statement_timeout",
        "idle_timeout",
        "poll_max",
        "root",
        "database",
        "table_format",
        "filesystem",
        "reuse",
        "max_rows",
        *SESSION_OPTIONS,
        *LIST_OPTIONS,
    }
)
"""Fabric options of a Livy fabric besides ``spark.*`` settings and ``header.*`` headers."""
SECRETS = "password, or header.* headers"


class LivyFileSystem:
    """The cluster's filesystem (HDFS, S3A, the driver's disk…), through Hadoop's
    ``FileSystem`` in ``pyspark`` statements of the engine's Livy session."""

    def __init__(self, engine: LivyEngine) -> None:
        self.engine = engine

    def _call(self, operation: str, *paths: str) -> object:
        code = _FS_CODE + f"_prophecy_fs({operation!r}, {json.dumps(list(paths))})"
        output = self.engine._statement(code, "pyspark")
        try:
            return json.loads(output.text.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise EngineError(
                f"the cluster's filesystem answered {operation} with {output.text[:80]!r}"
            ) from None

    def exists(self, path: str) -> bool:
        return bool(self._call("exists", path))

    def replace(self, staged: str, final: str) -> None:
        problem = self._call("replace", staged, final)
        if problem:
            raise OSError(str(problem))

    def remove(self, path: str) -> None:
        self._call("remove", path)

    def stamp(self, path: str) -> object | None:
        return None


_FS_CODE = """
import json as _prophecy_json
def _prophecy_fs(operation, paths):
    jvm = spark._jvm
    conf = spark._jsc.hadoopConfiguration()
    def resolve(text):
        path = jvm.org.apache.hadoop.fs.Path(text)
        return path.getFileSystem(conf), path
    answer = None
    if operation == "exists":
        fs, path = resolve(paths[0])
        answer = bool(fs.exists(path))
    elif operation == "remove":
        fs, path = resolve(paths[0])
        answer = bool(fs.delete(path, True))
    elif operation == "replace":
        fs, target = resolve(paths[1])
        _, source = resolve(paths[0])
        if fs.exists(target):
            import uuid
            aside = jvm.org.apache.hadoop.fs.Path(
                target.getParent(), "." + target.getName() + "." + uuid.uuid4().hex + ".old")
            if not fs.rename(target, aside):
                answer = "cannot move " + paths[1] + " aside"
            elif not fs.rename(source, target):
                fs.rename(aside, target)
                answer = "cannot rename " + paths[0] + " to " + paths[1]
            else:
                fs.delete(aside, True)
        elif not fs.rename(source, target):
            answer = "cannot rename " + paths[0] + " to " + paths[1]
    print(_prophecy_json.dumps(answer))
"""


class LivyEngine(SparkSQLEngine):
    """Spark SQL through a Livy session (see the module's description)."""

    name = "livy"

    def __init__(
        self,
        livy: LivySession,
        root: Path | str | None = None,
        *,
        database: str | None = None,
        table_format: str = "parquet",
        filesystem: str = "cluster",
        max_rows: int = 1000,
        secrets: tuple[str, ...] = (),
    ) -> None:
        remote_root = str(root) if root is not None and _URL.match(str(root)) else None
        super().__init__(None if remote_root else root, table_format=table_format)
        self.remote_root = remote_root
        if filesystem not in {"cluster", "local"}:
            raise EngineError(f"filesystem must be cluster or local, not {filesystem!r}")
        self.livy = livy
        self.database = database
        self.filesystem = filesystem
        self.max_rows = max_rows
        self._secrets = tuple(s for s in secrets if s)
        self._guard = threading.Lock()
        self._current: Handle | None = None
        self._prepared: int | None = None  # the Livy session the settings were made in
        self._preparing = threading.Lock()
        self._livy_files = LivyFileSystem(self)

    # -- statements -----------------------------------------------------------------------
    def _prepare_session(self) -> None:
        """Make the engine's settings in a session it has not worked in yet (the first, or
        one started again after the last one died or idled out); views made in the old one
        are gone with it."""
        owner = self._owner if isinstance(self._owner, LivyEngine) else self
        session_id = self.livy.ensure()
        if owner._prepared == session_id:
            return
        with owner._preparing:  # the others wait: their statements need the settings
            if owner._prepared == session_id:
                return
            if owner._prepared is not None:
                with self._shared.lock:
                    self._shared.sources.clear()
            setup = [f"SET {key}={value}" for key, value in SESSION_CONF.items()]
            if self.database:
                name = "`" + self.database.replace("`", "``") + "`"
                setup += [f"CREATE DATABASE IF NOT EXISTS {name}", f"USE {name}"]
            for sql in setup:
                self._send(sql, "sql")
            owner._prepared = session_id

    def _send(self, code: str, kind: StatementKind) -> StatementOutput:
        """Submit a statement and wait for its output; cancellable through `_interrupt`."""
        handle = self.livy.submit(code, kind)
        with self._guard:
            self._current = handle
            if self._cancelled:
                handle.stop.set()
        try:
            return self.livy.wait(handle)
        except StatementFailed as exc:
            message = _one_line(exc.evalue) or exc.ename.rsplit(".", 1)[-1]
            raise self._engine_error(message, exc) from None
        except StatementCancelled:
            raise EngineError("cancelled") from None
        except LivyError as exc:
            raise self._engine_error(str(exc), exc) from None
        finally:
            with self._guard:
                self._current = None

    def _engine_error(self, message: str, cause: LivyError) -> EngineError:
        """An `EngineError` of one line, with the remote traceback or log as notes."""
        error = EngineError(self._masked(message))
        for note in getattr(cause, "__notes__", []):
            error.add_note(self._masked(note))
        return error

    def _statement(self, code: str, kind: StatementKind) -> StatementOutput:
        if self._closed:
            raise EngineError("the Livy engine is closed")
        if self._cancelled:
            raise EngineError("cancelled")
        self._prepare_session()
        return self._send(code, kind)

    def _masked(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text

    def _run(self, sql: str) -> tuple[Columns, Rows]:
        output = self._statement(sql, "sql")
        try:
            fields, rows = output.table()
        except LivyError as exc:
            raise EngineError(str(exc)) from None
        columns = [(f.name, f.type) for f in fields]
        if self.max_rows and len(rows) >= self.max_rows and columns:
            self._check_complete(sql, len(rows))
        return columns, rows

    def _check_complete(self, sql: str, got: int) -> None:
        """Livy returns at most ``livy.rsc.sql.num-rows`` rows of a result: make sure a
        result that long was not cut short."""
        try:
            counted = self._statement(f"SELECT count(*) FROM ({sql}) AS __prophecy_all", "sql")
            total = int(counted.table()[1][0][0])
        except EngineError as exc:
            if str(exc) == "cancelled":
                raise
            total = got + 1  # a statement that is not a query: cannot tell, so refuse
        except (IndexError, TypeError, ValueError):
            total = got + 1
        if total > got:
            raise EngineError(
                f"the result has more rows than Livy returns ({got}, livy.rsc.sql.num-rows); "
                "write it with a Target or add a limit"
            )

    def _interrupt(self) -> None:
        with self._guard:
            handle = self._current
        if handle is not None:
            LivySession.cancel(handle)

    def _new_session(self) -> LivyEngine:
        handle = object.__new__(LivyEngine)
        handle.__dict__.update(self.__dict__)
        handle._owner = self
        handle._closed = False
        handle._cancelled = False
        handle._guard = threading.Lock()
        handle._current = None
        handle._livy_files = LivyFileSystem(handle)
        return handle

    def _location(self, path: str) -> str:
        """A path of the pipeline as the cluster sees it: relative ones under the root."""
        if self.remote_root is None or _URL.match(path) or path.startswith("/"):
            return super()._location(path)
        return self.remote_root.rstrip("/") + "/" + path

    def _filesystem(self, location: str) -> FileSystem:
        if self.filesystem == "local":
            return super()._filesystem(location)
        return self._livy_files

    # -- session-private relations live in the Livy session: keep it while they do --------
    def materialize(self, name: str, query: Any) -> int:
        self.livy.hold(("view", name))
        try:
            return super().materialize(name, query)
        except BaseException:
            self.livy.release(("view", name))
            raise

    def drop_materialized(self, name: str) -> None:
        try:
            super().drop_materialized(name)
        finally:
            self.livy.release(("view", name))

    def register_frame(self, name: str, frame: Any) -> None:
        self.livy.hold(("frame", name))
        try:
            super().register_frame(name, frame)
        except BaseException:
            self.livy.release(("frame", name))
            raise

    def unregister_frame(self, name: str) -> None:
        try:
            super().unregister_frame(name)
        finally:
            self.livy.release(("frame", name))

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Close a handle; closing the engine deletes the Livy session it started (its views
        go with it) or, in a session it found, drops its views and leaves it running."""
        if self._closed:
            return
        if self._owner is not None:
            self._closed = True
            return
        try:
            if self.livy.owned or self.livy.id is None:
                with self._shared.lock:
                    self._shared.sources.clear()
                    self._shared.frames.clear()
                    self._shared.materialized.clear()
            with contextlib.suppress(EngineError):
                super().close()
        finally:
            self._closed = True
            self.livy.close()

    def __enter__(self) -> LivyEngine:
        return self


# -- fabrics ------------------------------------------------------------------------------
def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(fabric: Fabric, options: Mapping[str, object], key: str, default: float) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise EngineError(f"fabric '{fabric.name}': {key} must be a number of seconds")
    try:
        number = float(value)
    except ValueError:
        raise EngineError(f"fabric '{fabric.name}': {key} must be a number of seconds") from None
    if number < 0:
        raise EngineError(f"fabric '{fabric.name}': {key} must not be negative")
    return number


def _flag(fabric: Fabric, value: object, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "1"}:
        return True
    if text in {"false", "no", "0"}:
        return False
    raise EngineError(f"fabric '{fabric.name}': {key} must be true or false")


def livy_settings(
    fabric: Fabric, secrets: Mapping[str, str], project: Project | None
) -> tuple[LivyClient, LivySession, dict[str, Any]]:
    """The client, the session and the engine's settings a Livy fabric describes."""
    options = dict(fabric.options)
    unknown = sorted(
        k for k in options if k not in OPTIONS and not k.startswith(("spark.", "header."))
    )
    if unknown:
        raise EngineError(
            f"fabric '{fabric.name}': unknown option '{unknown[0]}' (options: "
            f"{', '.join(sorted(OPTIONS))}, spark.* settings and header.* headers)"
        )
    strange = sorted(k for k in secrets if k != "password" and not k.startswith("header."))
    if strange:
        raise EngineError(f"fabric '{fabric.name}': unknown secret '{strange[0]}' ({SECRETS})")
    url = options.get("url")
    if not url:
        raise EngineError(
            f"fabric '{fabric.name}': the option url (Livy's address, such as "
            "http://localhost:8998) is missing"
        )
    kind = _text(options.get("kind", "pyspark"))
    if kind not in SESSION_KINDS:
        raise EngineError(f"fabric '{fabric.name}': kind must be one of {', '.join(SESSION_KINDS)}")
    auth = _text(options.get("auth", "basic" if "password" in secrets else "none"))
    if auth not in {"none", "basic", "kerberos"}:
        raise EngineError(f"fabric '{fabric.name}': auth must be none, basic or kerberos")
    user = _text(options["user"]) if "user" in options else None
    if auth == "basic" and (not user or "password" not in secrets):
        missing = "user" if not user else "the secret password"
        raise EngineError(f"fabric '{fabric.name}': basic authentication needs {missing}")
    verify_option = options.get("verify", True)
    verify: bool | str = _text(verify_option)
    if isinstance(verify_option, bool) or verify in {"true", "false", "yes", "no", "1", "0"}:
        verify = _flag(fabric, verify_option, "verify")
    headers = {k[len("header.") :]: _text(v) for k, v in options.items() if k.startswith("header.")}
    headers |= {k[len("header.") :]: v for k, v in secrets.items() if k.startswith("header.")}
    settings: dict[str, Any] = {}
    for key, wanted in SESSION_OPTIONS.items():
        if key in options:
            value = options[key]
            if wanted is int:
                if isinstance(value, bool) or not str(value).isdigit():
                    raise EngineError(f"fabric '{fabric.name}': {key} must be a whole number")
                settings[key] = int(value)
            else:
                settings[key] = _text(value)
    for key in LIST_OPTIONS:
        if options.get(key):
            settings[key] = tuple(p.strip() for p in _text(options[key]).split(",") if p.strip())
    conf = {k: _text(v) for k, v in options.items() if k.startswith("spark.")}
    project_name = project.config.name if project is not None else "jupyter"
    spec = SessionSpec(
        kind=kind,  # type: ignore[arg-type]
        name=_text(options.get("session_name", f"prophecy-{project_name}-{fabric.name}")),
        conf=conf,
        **settings,
    )
    client = LivyClient(
        _text(url),
        auth=auth,  # type: ignore[arg-type]
        user=user,
        password=secrets.get("password"),
        headers=headers,
        verify=verify,
        connect_timeout=_number(fabric, options, "connect_timeout", 10.0),
        read_timeout=_number(fabric, options, "read_timeout", 60.0),
        poll_max=_number(fabric, options, "poll_max", 2.0) or 2.0,
        kerberos_mutual=_text(options.get("kerberos_mutual", "required")),
    )
    statement_timeout = _number(fabric, options, "statement_timeout", 0.0)
    session = LivySession(
        client,
        spec,
        start_timeout=_number(fabric, options, "start_timeout", 600.0) or 600.0,
        statement_timeout=statement_timeout or None,
        idle_timeout=_number(fabric, options, "idle_timeout", 900.0) or None,
        reuse=_flag(fabric, options.get("reuse", True), "reuse"),
    )
    root = options.get("root")
    engine: dict[str, Any] = {
        "root": _text(root) if root else (project.root if project is not None else None),
        "database": _text(options["database"]) if options.get("database") else None,
        "table_format": _text(options.get("table_format", "parquet")),
        "filesystem": _text(options.get("filesystem", "cluster")),
        "max_rows": int(_number(fabric, options, "max_rows", 1000)),
    }
    return client, session, engine


def open_livy(fabric: Fabric, secrets: Mapping[str, str], project: Project | None) -> LivyEngine:
    """The engine of a Livy fabric; its Livy session starts on the first statement."""
    try:
        _, session, settings = livy_settings(fabric, secrets, project)
    except LivyError as exc:
        raise EngineError(f"fabric '{fabric.name}': {exc}") from None
    return LivyEngine(session, secrets=tuple(secrets.values()), **settings)
