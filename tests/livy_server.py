"""A Livy-compatible REST server backed by local PySpark, to test the real Livy client against.

It follows Apache Livy's documented REST API for interactive sessions
(https://livy.apache.org/docs/latest/rest-api.html) closely enough for a client not to
tell the difference:

- ``GET/POST /sessions``, ``GET/DELETE /sessions/{id}``, ``GET /sessions/{id}/state``,
  ``GET /sessions/{id}/log``, ``GET/POST /sessions/{id}/statements``,
  ``GET /sessions/{id}/statements/{sid}``, ``POST /sessions/{id}/statements/{sid}/cancel``;
  lists are paginated with ``from`` and ``size`` and say their ``total``.
- A session goes ``not_started → starting → idle``, ``busy`` while a statement runs, and can
  end ``error``, ``dead`` or ``killed``; a statement goes ``waiting → running → available``,
  or ``cancelling → cancelled``. Statements run one after another on a worker thread of
  their session, so a client really polls.
- Outputs are as Livy sends them: ``{"status": "ok", "execution_count": n, "data":
  {"text/plain": …}}``; for ``sql`` statements ``{"application/json": {"schema": <Spark
  schema JSON>, "data": [[…]]}}`` with at most ``max_rows`` rows, values rendered as Livy's
  json4s renders them (dates and timestamps as UTC ``yyyy-MM-dd'T'HH:mm:ss'Z'``, binary as
  signed bytes, decimals as exact JSON numbers); errors ``{"status": "error", "ename",
  "evalue", "traceback": [...]}``.
- 404 with ``{"msg": …}`` for unknown ids, 400 for bodies Livy would reject (not an object,
  unknown fields, wrong types, a duplicate session name), optional HTTP basic
  authentication (401) and CSRF protection (400 without ``X-Requested-By``).

``sql`` statements run with ``spark.sql`` and ``pyspark`` statements with ``exec`` in a
namespace holding ``spark`` (the last expression's value is printed, as in Livy's Python
shell). Each Livy session works in its own ``SparkSession.newSession()`` of one shared
local Spark: its own temporary views and SQL settings, the same warehouse.

As on a cluster, a session asking for more ``executorMemory`` than ``max_executor_memory_mb``
dies while starting, its log saying why; `LivyServer.kill` ends a running session as a lost
driver would; ``start_delay`` is how long sessions take to start.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import datetime as dt
import io
import itertools
import json
import logging
import queue
import re
import threading
import time
import traceback
from collections.abc import Mapping
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

KINDS = ("spark", "pyspark", "sparkr", "sql")
SESSION_FIELDS: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "proxyUser": str,
    "jars": list,
    "pyFiles": list,
    "files": list,
    "driverMemory": str,
    "driverCores": int,
    "executorMemory": str,
    "executorCores": int,
    "numExecutors": int,
    "archives": list,
    "queue": str,
    "name": str,
    "conf": dict,
    "heartbeatTimeoutInSecond": int,
    "ttl": str,
}
STATEMENT_FIELDS: dict[str, type | tuple[type, ...]] = {"code": str, "kind": str}


class BadRequest(Exception):
    """Answered with 400 and Livy's ``{"msg": …}``."""


class NotFoundError(Exception):
    """Answered with 404."""


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- values as Livy's json4s writes them ----------------------------------------------------
_DECIMAL = re.compile(r'"\\u0000DEC:([-+0-9.Ee]+)\\u0000"')


def livy_value(value: Any) -> Any:
    """A Spark value as Livy's ``Extraction.decompose`` renders it (decimals as markers that
    `livy_json` turns into exact JSON numbers)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return f"\0DEC:{value}\0"
    if isinstance(value, dt.datetime):
        stamp = value.astimezone(dt.UTC) if value.tzinfo is None else value
        return stamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        midnight = dt.datetime(value.year, value.month, value.day).astimezone(dt.UTC)
        return midnight.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, (bytes, bytearray)):
        return [b - 256 if b > 127 else b for b in value]
    if isinstance(value, tuple) and hasattr(value, "asDict"):  # a struct: a pyspark Row
        return {k: livy_value(v) for k, v in value.asDict(recursive=False).items()}
    if isinstance(value, Mapping):
        return {str(k): livy_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [livy_value(v) for v in value]
    return str(value)


def livy_json(body: Any) -> bytes:
    text = json.dumps(body)
    return _DECIMAL.sub(lambda m: m.group(1), text).encode()


# -- sessions and statements ----------------------------------------------------------------
class Statement:
    def __init__(self, statement_id: int, code: str, kind: str) -> None:
        self.id = statement_id
        self.code = code
        self.kind = kind
        self.state = "waiting"
        self.output: dict[str, Any] | None = None
        self.progress = 0.0
        self.started = 0
        self.completed = 0

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "state": self.state,
            "output": self.output,
            "progress": self.progress,
            "started": self.started,
            "completed": self.completed,
        }


class Session:
    """One interactive session: its state, log and statements, and the worker running them."""

    def __init__(
        self, server: LivyServer, session_id: int, body: dict[str, Any], owner: str | None
    ):
        self.server = server
        self.id = session_id
        self.name: str | None = body.get("name")
        self.kind: str = body.get("kind") or "shared"
        self.proxy_user: str | None = body.get("proxyUser")
        self.owner = owner
        self.conf: dict[str, str] = {str(k): str(v) for k, v in (body.get("conf") or {}).items()}
        self.body = body
        self.state = "not_started"
        self.log: list[str] = ["stdout: ", "\nstderr: "]
        self.statements: list[Statement] = []
        self.execution_count = 0
        self.lock = threading.Lock()
        self.queue: queue.Queue[Statement | None] = queue.Queue()
        self.spark: SparkSession | None = None
        self.namespace: dict[str, Any] = {}
        self.running: Statement | None = None
        self.thread = threading.Thread(target=self._work, name=f"livy-session-{session_id}")
        self.thread.daemon = True
        self.thread.start()

    def say(self, line: str) -> None:
        stamp = dt.datetime.now().strftime("%y/%m/%d %H:%M:%S")
        with self.lock:
            self.log.append(f"{stamp} {line}")

    def view(self) -> dict[str, Any]:
        with self.lock:
            app = self.spark.sparkContext.applicationId if self.spark is not None else None
            return {
                "id": self.id,
                "name": self.name,
                "appId": app,
                "owner": self.owner,
                "proxyUser": self.proxy_user,
                "state": self.state,
                "kind": self.kind,
                "appInfo": {"driverLogUrl": None, "sparkUiUrl": None},
                "log": self.log[-10:],
            }

    # -- lifecycle ----------------------------------------------------------------------
    def _start(self) -> bool:
        delay = self.server.start_delay
        time.sleep(delay / 2)
        with self.lock:
            if self.state != "not_started":
                return False
            self.state = "starting"
        self.say(f"INFO LivyTestServer: starting session {self.id} ({self.kind})")
        time.sleep(delay / 2)
        memory = _megabytes(str(self.body.get("executorMemory") or "1g"))
        if memory > self.server.max_executor_memory_mb:
            self.say("ERROR SparkContext: Error initializing SparkContext.")
            self.say(
                f"java.lang.IllegalArgumentException: Required executor memory ({memory} MB) "
                f"is above the max threshold ({self.server.max_executor_memory_mb} MB) of this "
                "cluster!"
            )
            with self.lock:
                self.state = "dead"
            return False
        spark = self.server.spark.newSession()
        for key, value in self.conf.items():
            if key.startswith("spark.sql."):
                with contextlib.suppress(Exception):  # static settings cannot change here
                    spark.conf.set(key, value)
        self.namespace = {"spark": spark, "sc": spark.sparkContext, "sqlContext": spark}
        with self.lock:
            self.spark = spark
            if self.state != "starting":
                return False
            self.state = "idle"
        self.say(f"INFO LivyTestServer: session {self.id} is idle")
        return True

    def _work(self) -> None:
        if not self._start():
            return
        while True:
            statement = self.queue.get()
            if statement is None:
                return
            with self.lock:
                if statement.state != "waiting" or self.state not in {"idle", "busy"}:
                    continue
                statement.state = "running"
                statement.started = _now_ms()
                self.state = "busy"
                self.running = statement
            output = self._execute(statement)
            with self.lock:
                self.running = None
                if statement.state == "cancelling":
                    statement.state = "cancelled"
                elif self.state != "busy":  # the session ended under it
                    statement.state = "error"
                    statement.output = {
                        "status": "error",
                        "execution_count": output.get("execution_count"),
                        "ename": "java.lang.IllegalStateException",
                        "evalue": f"Session is in state {self.state}",
                        "traceback": [],
                    }
                else:
                    statement.state = "available"
                    statement.output = output
                statement.progress = 1.0
                statement.completed = _now_ms()
                if self.state == "busy":
                    self.state = "idle"

    def stop(self, state: str) -> None:
        with self.lock:
            self.state = state
            running = self.running
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        self.queue.put(None)
        if running is not None and self.spark is not None:
            self.spark.sparkContext.cancelJobGroup(_group(self.id, running.id))

    # -- statements ---------------------------------------------------------------------
    def submit(self, code: str, kind: str) -> Statement:
        with self.lock:
            if self.state not in {"idle", "busy"}:
                raise BadRequest(f"Session is in state {self.state}")
            statement = Statement(len(self.statements), code, kind)
            self.statements.append(statement)
        self.queue.put(statement)
        return statement

    def statement(self, statement_id: int) -> Statement:
        with self.lock:
            if 0 <= statement_id < len(self.statements):
                return self.statements[statement_id]
        raise NotFoundError("Statement not found")

    def cancel(self, statement: Statement) -> None:
        with self.lock:
            if statement.state == "waiting":
                statement.state = "cancelled"
                statement.completed = _now_ms()
                return
            if statement.state != "running":
                return
            statement.state = "cancelling"
        assert self.spark is not None
        self.spark.sparkContext.cancelJobGroup(_group(self.id, statement.id))

    def _execute(self, statement: Statement) -> dict[str, Any]:
        assert self.spark is not None
        spark = self.spark
        spark.sparkContext.setJobGroup(_group(self.id, statement.id), statement.code, True)
        with self.lock:
            self.execution_count += 1
            count = self.execution_count
        kind = statement.kind
        try:
            if kind == "sql":
                frame = spark.sql(statement.code)
                rows = frame.take(self.server.max_rows)
                data: dict[str, Any] = {
                    "application/json": {
                        "schema": json.loads(frame.schema.json()),
                        "data": [[livy_value(v) for v in row] for row in rows],
                    }
                }
            elif kind == "pyspark":
                data = {"text/plain": self._python(statement.code)}
            else:
                raise NotImplementedError(f"{kind} statements are not run by this test server")
        except Exception as exc:
            ename, evalue, trace = _error(exc)
            if self.state == "busy":  # not a statement stopped by the session's end
                self.say(f"ERROR LivyTestServer: statement {statement.id} failed: {ename}")
            return {
                "status": "error",
                "execution_count": count,
                "ename": ename,
                "evalue": evalue,
                "traceback": trace,
            }
        return {"status": "ok", "execution_count": count, "data": data}

    def _python(self, code: str) -> str:
        """Run Python as Livy's shell does: statements, then the last expression's value."""
        out = io.StringIO()

        def printed(*args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("file", out)
            print(*args, **kwargs)

        self.namespace["print"] = printed
        tree = ast.parse(code)
        last = tree.body[-1] if tree.body else None
        if isinstance(last, ast.Expr):
            tree.body.pop()
        else:
            last = None
        exec(compile(tree, "<stdin>", "exec"), self.namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<stdin>", "eval"), self.namespace)
            if value is not None:
                out.write(repr(value) + "\n")
        return out.getvalue().rstrip("\n")


def _megabytes(text: str) -> int:
    """A JVM memory size (``512m``, ``4g``) in megabytes."""
    match = re.fullmatch(r"(\d+)([kmgt]?)b?", text.strip().lower())
    if match is None:
        raise BadRequest(f"Rejected, Reason: invalid memory size {text!r}")
    scale = {"k": 1 / 1024, "": 1 / (1024 * 1024), "m": 1, "g": 1024, "t": 1024 * 1024}
    return int(int(match.group(1)) * scale[match.group(2)])


class _QuietSessions(logging.Filter):
    """Drops PySpark's logged errors of statements run by sessions: Livy reports them in the
    statement's output, not on the server's console."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not threading.current_thread().name.startswith("livy-session-")


_QUIET = _QuietSessions()


def _quiet_pyspark() -> None:
    with contextlib.suppress(ImportError):
        from pyspark.logger import PySparkLogger

        for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
            logger = PySparkLogger.getLogger(name)
            if _QUIET not in logger.filters:
                logger.addFilter(_QUIET)


def _group(session_id: int, statement_id: int) -> str:
    return f"livy-{session_id}-{statement_id}"


def _error(exc: Exception) -> tuple[str, str, list[str]]:
    """Livy's ``ename``, ``evalue`` and ``traceback`` for an exception: a JVM error's class
    and stack (as the SQL interpreter reports it), a Python one's type and traceback."""
    origin = getattr(exc, "_origin", None)
    stack = getattr(exc, "_stackTrace", None)
    if origin is not None:
        with contextlib.suppress(Exception):
            ename = str(origin.getClass().getName())
            lines = str(stack).splitlines(keepends=True) if stack else []
            return ename, str(exc).strip(), lines
    lines = traceback.format_exception(exc)
    return type(exc).__name__, str(exc), lines


def _page(items: list[Any], start: int, size: int) -> list[Any]:
    return items[max(start, 0) : max(start, 0) + max(size, 0)]


def _check(body: Any, fields: Mapping[str, type | tuple[type, ...]]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("Rejected, Reason: the request body must be a JSON object")
    for key, value in body.items():
        if key not in fields:
            raise BadRequest(f'Unrecognized field "{key}"')
        wanted = fields[key]
        if value is not None and (
            not isinstance(value, wanted) or (wanted is int and isinstance(value, bool))
        ):
            raise BadRequest(f"Rejected, Reason: field {key} has the wrong type")
    kind = body.get("kind")
    if kind is not None and kind not in KINDS:
        raise BadRequest(f"Unknown kind: {kind}")
    return body


# -- the server ---------------------------------------------------------------------------
class LivyServer:
    """The server, in a thread, on ``host`` and a free port: ``url`` once started."""

    def __init__(
        self,
        spark: SparkSession,
        *,
        users: Mapping[str, str] | None = None,
        csrf: bool = False,
        start_delay: float = 0.2,
        max_rows: int = 1000,
        max_executor_memory_mb: int = 8192,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.spark = spark
        _quiet_pyspark()
        self.users = dict(users) if users else None
        self.csrf = csrf
        self.start_delay = start_delay
        self.max_rows = max_rows
        self.max_executor_memory_mb = max_executor_memory_mb
        self.sessions: dict[int, Session] = {}
        self.requests: list[tuple[str, str]] = []
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LivyServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="livy-server")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        for session in list(self.sessions.values()):
            session.stop("killed")
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LivyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kill(self, session_id: int, state: str = "dead", reason: str | None = None) -> None:
        """End a session as a cluster would (its driver lost): state ``dead`` and a log line."""
        session = self.session(session_id)
        session.say(
            "ERROR ApplicationMaster: " + (reason or "RECEIVED SIGNAL TERM: the driver was lost")
        )
        session.stop(state)

    def session(self, session_id: int) -> Session:
        with self._lock:
            session = self.sessions.get(session_id)
        if session is None:
            raise NotFoundError(f"Session '{session_id}' not found.")
        return session

    # -- routes -------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query: dict[str, str], body: Any, user: str | None
    ) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        self.requests.append((method, path))
        if not parts or parts[0] != "sessions":
            raise NotFoundError(f"Unknown path {path}")
        if len(parts) == 1:
            if method == "GET":
                return 200, self._list(query)
            if method == "POST":
                return 201, self._create(body, user)
        else:
            session = self.session(_int(parts[1]))
            rest = parts[2:]
            if not rest and method == "GET":
                return 200, session.view()
            if not rest and method == "DELETE":
                with self._lock:
                    self.sessions.pop(session.id, None)
                session.stop("killed")
                return 200, {"msg": "deleted"}
            if rest == ["state"] and method == "GET":
                return 200, {"id": session.id, "state": session.state}
            if rest == ["log"] and method == "GET":
                return 200, self._log(session, query)
            if rest and rest[0] == "statements":
                return self._statements(session, method, rest[1:], query, body)
        raise NotFoundError(f"Unknown path {method} {path}")

    def _list(self, query: dict[str, str]) -> dict[str, Any]:
        start, size = _int(query.get("from", "0")), _int(query.get("size", "100"))
        with self._lock:
            sessions = list(self.sessions.values())
        return {
            "from": start,
            "total": len(sessions),
            "sessions": [s.view() for s in _page(sessions, start, size)],
        }

    def _create(self, body: Any, user: str | None) -> dict[str, Any]:
        body = _check(body, SESSION_FIELDS)
        _megabytes(str(body.get("executorMemory") or "1g"))
        _megabytes(str(body.get("driverMemory") or "1g"))
        conf = body.get("conf") or {}
        if not all(isinstance(v, (str, int, float, bool)) for v in conf.values()):
            raise BadRequest("Rejected, Reason: conf values must be strings")
        with self._lock:
            name = body.get("name")
            if name is not None and any(s.name == name for s in self.sessions.values()):
                raise BadRequest(f"Duplicate session name: {name}")
            session = Session(self, next(self._ids), body, user)
            self.sessions[session.id] = session
        return session.view()

    def _log(self, session: Session, query: dict[str, str]) -> dict[str, Any]:
        with session.lock:
            lines = list(session.log)
        size = _int(query.get("size", "100"))
        if size < 0:
            size = len(lines)
        start = _int(query.get("from", "-1"))
        if start < 0:
            start = max(0, len(lines) - size)
        shown = _page(lines, start, size)
        return {
            "id": session.id,
            "from": start,
            "size": len(shown),
            "total": len(lines),
            "log": shown,
        }

    def _statements(
        self,
        session: Session,
        method: str,
        rest: list[str],
        query: dict[str, str],
        body: Any,
    ) -> tuple[int, Any]:
        if not rest and method == "GET":
            with session.lock:
                statements = list(session.statements)
            if query.get("order", "").strip().lower() == "desc":
                statements.reverse()
            start = _int(query.get("from", "0"))
            size = _int(query.get("size", str(len(statements))))
            with session.lock:
                views = [s.view() for s in _page(statements, start, size)]
            return 200, {"total_statements": len(statements), "statements": views}
        if not rest and method == "POST":
            body = _check(body, STATEMENT_FIELDS)
            if not isinstance(body.get("code"), str):
                raise BadRequest("Rejected, Reason: code is required")
            kind = body.get("kind") or (session.kind if session.kind in KINDS else "spark")
            statement = session.submit(body["code"], kind)
            with session.lock:
                return 201, statement.view()
        statement = session.statement(_int(rest[0]))
        if len(rest) == 1 and method == "GET":
            with session.lock:
                return 200, statement.view()
        if rest[1:] == ["cancel"] and method == "POST":
            session.cancel(statement)
            return 200, {"msg": "canceled"}
        raise NotFoundError(f"Unknown path {method} statements/{'/'.join(rest)}")

    def authorised(self, header: str | None) -> tuple[bool, str | None]:
        if self.users is None:
            return True, None
        if not header or not header.startswith("Basic "):
            return False, None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False, None
        return self.users.get(user) == password, user


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"Rejected, Reason: {text!r} is not a number") from None


def _handler(server: LivyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "LivyTestServer/0.8"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _reply(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
            data = livy_json(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            ok, user = server.authorised(self.headers.get("Authorization"))
            if not ok:
                self._reply(
                    HTTPStatus.UNAUTHORIZED,
                    {"msg": "Unauthorized"},
                    {"WWW-Authenticate": 'Basic realm="livy"'},
                )
                return
            if (
                server.csrf
                and method in {"POST", "DELETE"}
                and not self.headers.get("X-Requested-By")
            ):
                self._reply(400, {"msg": "Missing Required Header for CSRF protection."})
                return
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self._reply(400, {"msg": "Rejected, Reason: the body is not JSON"})
                return
            try:
                status, answer = server.handle(method, url.path, query, body, user)
            except BadRequest as exc:
                self._reply(400, {"msg": str(exc)})
            except NotFoundError as exc:
                self._reply(404, {"msg": str(exc)})
            except Exception as exc:
                self._reply(500, {"msg": f"{type(exc).__name__}: {exc}"})
            else:
                self._reply(status, answer)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

    return Handler
