"""A client of Apache Livy's REST API: interactive sessions, statements, logs.

Livy runs code on a Spark cluster on behalf of its callers: a *session* is a Spark
application (a driver and its executors) started with a kind, Spark settings and resources;
a *statement* is a piece of code run in it — Scala, Python or SQL, the kind chosen per
statement since Livy 0.5 (shared sessions). Everything is JSON over HTTP, and everything is
asynchronous: a session starts (``not_started → starting → idle``) and a statement runs
(``waiting → running → available``) while the client polls.

Why not sparkmagic's client library (``sparkmagic.livyclientlib``): it does the same HTTP
calls, but installing it pulls ``requests-kerberos`` and through it ``gssapi``, which builds
against the system's Kerberos headers (``krb5-config``), for every user including those who
never use Kerberos; and it pins ``pandas<3`` while this package runs on pandas 3. Its
classes also carry its notebook-magic configuration and display code. The calls are few and
documented, so they are written here on ``requests`` alone; Kerberos stays the optional
extra ``livy-kerberos``, imported only by a client that asks for it.

What Livy itself constrains, which this client passes on rather than hides:

- A ``sql`` statement's result comes back as ``application/json``: the Spark schema and at
  most ``livy.rsc.sql.num-rows`` rows (1000 by default) — `StatementOutput.table`.
- Livy renders dates and timestamps with json4s's default format, in UTC and to the second;
  `parse_value` turns them back into ``date`` and ``datetime`` values by the schema's types.
- Session names are unique on a server (0.6+), and a session does not echo its Spark
  settings back: `SessionSpec.session_name` carries a digest of them, which is how an idle
  session started earlier with the same settings is recognised and reused.

Errors are `LivyError`, an `EngineError` whose message is one line; a failed statement is a
`StatementFailed` with Livy's ``ename`` and ``evalue``, and the remote traceback (or a dead
session's log) is attached as a note, which Python prints with the traceback — under
``--debug`` — and never in the one-line message.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import requests

from prophecy_jupyter.errors import EngineError

SessionKind = Literal["spark", "pyspark", "sparkr", "sql"]
StatementKind = Literal["spark", "pyspark", "sparkr", "sql"]
AuthKind = Literal["none", "basic", "kerberos"]

SESSION_KINDS: tuple[str, ...] = ("spark", "pyspark", "sparkr", "sql")
SESSION_STARTING = frozenset({"not_started", "starting"})
SESSION_READY = frozenset({"idle", "busy"})
SESSION_GONE = frozenset({"shutting_down", "error", "dead", "killed", "success", "gone"})
STATEMENT_DONE = frozenset({"available", "error", "cancelled"})

REQUESTED_BY = "prophecy-jupyter"
"""Sent as ``X-Requested-By``: Livy with CSRF protection refuses a POST or DELETE without it."""
LOG_TAIL = 30
"""Lines of a session's log attached to an error about the session."""
LIST_PAGE = 100


# -- errors ---------------------------------------------------------------------------------
class LivyError(EngineError):
    """Livy refused a request, could not be reached, or a session or statement failed."""


class LivyHTTPError(LivyError):
    """Livy answered with an HTTP error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class SessionFailed(LivyError):
    """A session is in a state it cannot run statements in (``error``, ``dead``, ``killed``,
    or gone); ``log`` is the tail of its log."""

    def __init__(self, message: str, session_id: int, state: str, log: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.state = state
        self.log = list(log)
        if self.log:
            self.add_note("Livy session log (tail):\n" + "\n".join(self.log))


class StatementFailed(LivyError):
    """A statement ran and failed: Livy's ``ename`` and ``evalue``; ``traceback`` is the
    remote one, shown only with the local traceback."""

    def __init__(self, ename: str, evalue: str, traceback: Sequence[str] = ()) -> None:
        lines = [line.strip() for line in evalue.strip().splitlines() if line.strip()]
        first = lines[0] if lines else ""
        short = ename.rsplit(".", 1)[-1] if ename else "Error"
        super().__init__(f"{short}: {first}" if first else short)
        self.ename = ename
        self.evalue = evalue
        self.traceback = [str(t) for t in traceback]
        rest = "\n".join(lines[1:])
        detail = "\n".join(part for part in (rest, "".join(self.traceback).rstrip()) if part)
        if detail:
            self.add_note("Livy statement error:\n" + detail)


class StatementCancelled(LivyError):
    """A statement was cancelled before it finished."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)


class LivyTimeout(LivyError):
    """A session did not start, or a statement did not finish, in the time allowed."""


# -- what is sent ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionSpec:
    """What a session is created with (``POST /sessions``); Livy's own field names."""

    kind: SessionKind | None = "sql"
    name: str | None = None
    conf: Mapping[str, str] = field(default_factory=dict)
    driverMemory: str | None = None  # noqa: N815 - Livy's field names
    driverCores: int | None = None  # noqa: N815
    executorMemory: str | None = None  # noqa: N815
    executorCores: int | None = None  # noqa: N815
    numExecutors: int | None = None  # noqa: N815
    queue: str | None = None
    proxyUser: str | None = None  # noqa: N815
    heartbeatTimeoutInSecond: int | None = None  # noqa: N815
    jars: tuple[str, ...] = ()
    pyFiles: tuple[str, ...] = ()  # noqa: N815
    files: tuple[str, ...] = ()
    archives: tuple[str, ...] = ()

    def settings(self) -> dict[str, Any]:
        """The body's fields other than the name, as Livy takes them."""
        body: dict[str, Any] = {}
        for key in (
            "kind",
            "driverMemory",
            "driverCores",
            "executorMemory",
            "executorCores",
            "numExecutors",
            "queue",
            "proxyUser",
            "heartbeatTimeoutInSecond",
        ):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        for key in ("jars", "pyFiles", "files", "archives"):
            if getattr(self, key):
                body[key] = list(getattr(self, key))
        if self.conf:
            body["conf"] = {str(k): str(v) for k, v in sorted(self.conf.items())}
        return body

    def digest(self, user: str | None = None) -> str:
        """A short digest of the settings (and of who asks), to recognise a session by name."""
        text = json.dumps([self.settings(), user], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def session_name(self, user: str | None = None) -> str:
        """The session's name: the given one (or ``prophecy``) and the settings' digest."""
        return f"{self.name or 'prophecy'}-{self.digest(user)}"

    def body(self, user: str | None = None) -> dict[str, Any]:
        return {**self.settings(), "name": self.session_name(user)}


# -- what comes back ------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """A column of a ``sql`` result: its name, its Spark type as SQL writes it (``bigint``,
    ``decimal(10,2)``, ``array<string>``) and the schema's JSON type it came from."""

    name: str
    type: str
    json_type: Any
    nullable: bool = True


@dataclass(frozen=True)
class StatementOutput:
    """An ``available`` statement's ``ok`` output."""

    execution_count: int | None
    data: Mapping[str, Any]

    @property
    def text(self) -> str:
        """The ``text/plain`` part ('' when there is none)."""
        value = self.data.get("text/plain")
        return "" if value is None else str(value)

    @property
    def json(self) -> Any:
        return self.data.get("application/json")

    def table(self) -> tuple[list[Column], list[tuple[Any, ...]]]:
        """A ``sql`` statement's columns and rows, values converted by their Spark types."""
        body = self.json
        if not isinstance(body, Mapping):
            raise LivyError("the Livy statement returned no table (no application/json output)")
        schema = body.get("schema") or {}
        fields = schema.get("fields") if isinstance(schema, Mapping) else None
        columns = [
            Column(
                name=str(f.get("name")),
                type=type_name(f.get("type")),
                json_type=f.get("type"),
                nullable=bool(f.get("nullable", True)),
            )
            for f in (fields or [])
        ]
        rows = [
            tuple(parse_value(c.json_type, v) for c, v in zip(columns, row, strict=False))
            for row in body.get("data") or []
        ]
        return columns, rows


SIMPLE_TYPES = {
    "integer": "int",
    "long": "bigint",
    "short": "smallint",
    "byte": "tinyint",
    "null": "void",
}


def type_name(json_type: Any) -> str:
    """A Spark schema's JSON type as Spark SQL writes it (``DataType.simpleString``)."""
    if isinstance(json_type, str):
        return SIMPLE_TYPES.get(json_type, json_type)
    if isinstance(json_type, Mapping):
        kind = json_type.get("type")
        if kind == "array":
            return f"array<{type_name(json_type.get('elementType'))}>"
        if kind == "map":
            key, value = json_type.get("keyType"), json_type.get("valueType")
            return f"map<{type_name(key)},{type_name(value)}>"
        if kind == "struct":
            inner = ",".join(
                f"{f.get('name')}:{type_name(f.get('type'))}" for f in json_type.get("fields", [])
            )
            return f"struct<{inner}>"
        if kind == "udt":
            return type_name(json_type.get("sqlType"))
    return str(json_type)


def _timestamp(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    return value


def parse_value(json_type: Any, value: Any) -> Any:
    """One value of a Livy ``sql`` result as Python holds it, by its Spark type.

    Numbers arrive parsed as `Decimal` (so that ``decimal`` columns keep every digit) and
    become ``int``/``float`` for the other numeric types; json4s writes dates as a UTC
    timestamp of the JVM's local midnight, taken back to the nearest day.
    """
    if value is None:
        return None
    if isinstance(json_type, Mapping):
        kind = json_type.get("type")
        if kind == "array" and isinstance(value, list):
            return [parse_value(json_type.get("elementType"), v) for v in value]
        if kind == "map" and isinstance(value, Mapping):
            return {
                parse_value(json_type.get("keyType"), k): parse_value(json_type.get("valueType"), v)
                for k, v in value.items()
            }
        if kind == "struct":
            fields = json_type.get("fields", [])
            if isinstance(value, Mapping):
                return {f["name"]: parse_value(f.get("type"), value.get(f["name"])) for f in fields}
            if isinstance(value, list):
                return {
                    f["name"]: parse_value(f.get("type"), v)
                    for f, v in zip(fields, value, strict=False)
                }
        if kind == "udt":
            return parse_value(json_type.get("sqlType"), value)
        return value
    kind = str(json_type)
    if kind in {"integer", "long", "short", "byte"} and isinstance(value, (Decimal, float, int)):
        return int(value)
    if kind in {"double", "float"} and isinstance(value, (Decimal, int, float)):
        return float(value)
    if kind.startswith("decimal") and isinstance(value, (Decimal, int, float)):
        return value if isinstance(value, Decimal) else Decimal(str(value))
    if kind == "date" and isinstance(value, str):
        if "T" not in value and " " not in value:
            return dt.date.fromisoformat(value)
        stamp = _timestamp(value)
        return (stamp + dt.timedelta(hours=12)).date()
    if kind in {"timestamp", "timestamp_ntz"} and isinstance(value, str):
        stamp = _timestamp(value)
        return stamp.replace(tzinfo=None) if kind == "timestamp_ntz" else stamp
    if kind == "binary":
        if isinstance(value, list):
            return bytes(int(b) & 0xFF for b in value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return base64.b64decode(value, validate=True)
    if isinstance(value, Decimal):  # a number in a column of another type (string, void)
        return int(value) if value == value.to_integral_value() else float(value)
    return value


# -- the client -----------------------------------------------------------------------------
def _redacted(url: str) -> str:
    """The URL without any user or password it carries."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def kerberos_auth(mutual: str = "required") -> requests.auth.AuthBase:
    """``requests-kerberos``'s SPNEGO authentication, or a clear error without it."""
    try:
        import requests_kerberos  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise LivyError(
            "Kerberos authentication for Livy needs requests-kerberos: "
            "pip install 'prophecy-jupyter[livy-kerberos]'"
        ) from None
    levels = {
        "required": requests_kerberos.REQUIRED,
        "optional": requests_kerberos.OPTIONAL,
        "disabled": requests_kerberos.DISABLED,
    }
    if mutual not in levels:
        raise LivyError(f"kerberos mutual authentication must be one of {', '.join(levels)}")
    auth: requests.auth.AuthBase = requests_kerberos.HTTPKerberosAuth(
        mutual_authentication=levels[mutual]
    )
    return auth


class Backoff:
    """Pauses that grow from ``initial`` by ``factor`` up to ``cap`` seconds."""

    def __init__(self, initial: float = 0.05, factor: float = 1.5, cap: float = 2.0) -> None:
        self.pause = initial
        self.factor = factor
        self.cap = cap

    def next(self) -> float:
        pause = self.pause
        self.pause = min(self.pause * self.factor, self.cap)
        return pause


class LivyClient:
    """Livy's REST API at ``url``, over one `requests.Session` (thread-safe for the calls made
    here); every call raises `LivyError` with a one-line message on failure."""

    def __init__(
        self,
        url: str,
        *,
        auth: AuthKind = "none",
        user: str | None = None,
        password: str | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        poll_initial: float = 0.05,
        poll_max: float = 2.0,
        kerberos_mutual: str = "required",
        cancel_wait: float = 30.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise LivyError(f"the Livy URL must start with http:// or https://: {url!r}")
        self.url = url.rstrip("/")
        self.where = _redacted(self.url)
        self.user = user
        self.timeout = (connect_timeout, read_timeout)
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.cancel_wait = cancel_wait
        self._http = requests.Session()
        self._http.verify = verify
        self._http.headers.update(
            {"X-Requested-By": REQUESTED_BY, "Accept": "application/json", **(headers or {})}
        )
        if auth == "basic":
            if not user:
                raise LivyError("basic authentication to Livy needs a user")
            self._http.auth = requests.auth.HTTPBasicAuth(user, password or "")
        elif auth == "kerberos":
            self._http.auth = kerberos_auth(kerberos_mutual)
        elif auth != "none":
            raise LivyError(f"unknown Livy authentication {auth!r}: none, basic or kerberos")

    def backoff(self) -> Backoff:
        return Backoff(self.poll_initial, 1.5, self.poll_max)

    # -- HTTP ---------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """One call; the decoded JSON answer (numbers with a fraction as `Decimal`)."""
        try:
            response = self._http.request(
                method,
                self.url + path,
                json=body,
                params=params,
                timeout=self.timeout,
            )
        except requests.exceptions.SSLError as exc:
            raise LivyError(f"TLS error talking to Livy at {self.where}: {_reason(exc)}") from None
        except requests.exceptions.ConnectionError as exc:
            raise LivyError(f"cannot reach Livy at {self.where}: {_reason(exc)}") from None
        except requests.exceptions.Timeout:
            raise LivyError(
                f"Livy at {self.where} did not answer {method} {path} within {self.timeout[1]:g} s"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise LivyError(f"request to Livy at {self.where} failed: {_reason(exc)}") from None
        if response.status_code >= 400:
            raise LivyHTTPError(self._refusal(method, path, response), response.status_code)
        if not response.content:
            return None
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise LivyError(
                f"Livy at {self.where} answered {method} {path} with something that is not JSON"
            ) from None

    def _refusal(self, method: str, path: str, response: requests.Response) -> str:
        status = response.status_code
        if status == 401:
            return f"Livy at {self.where} refused the credentials (HTTP 401)"
        if status == 403:
            return f"Livy at {self.where} forbids {method} {path} (HTTP 403)"
        message = ""
        with contextlib.suppress(ValueError):
            body = response.json()
            if isinstance(body, Mapping):
                message = str(body.get("msg") or body.get("message") or "")
        if not message:
            message = response.text.strip() or response.reason or ""
        message = message.strip().splitlines()[0] if message.strip() else ""
        return f"Livy {method} {path}: HTTP {status}" + (f": {message}" if message else "")

    # -- sessions -----------------------------------------------------------------------
    def sessions(self) -> list[dict[str, Any]]:
        """Every session the server lists, page by page."""
        found: list[dict[str, Any]] = []
        start = 0
        while True:
            page = self.request("GET", "/sessions", params={"from": start, "size": LIST_PAGE})
            items = list(page.get("sessions") or [])
            found.extend(items)
            start += len(items)
            total = int(page.get("total", start))
            if not items or start >= total:
                return found

    def create_session(self, spec: SessionSpec) -> dict[str, Any]:
        session: dict[str, Any] = self.request("POST", "/sessions", spec.body(self.user))
        return session

    def session(self, session_id: int) -> dict[str, Any]:
        session: dict[str, Any] = self.request("GET", f"/sessions/{session_id}")
        return session

    def session_state(self, session_id: int) -> str:
        return str(self.request("GET", f"/sessions/{session_id}/state")["state"])

    def delete_session(self, session_id: int) -> None:
        with contextlib.suppress(LivyHTTPError):  # already gone is what was asked
            self.request("DELETE", f"/sessions/{session_id}")

    def log(self, session_id: int, start: int | None = None, size: int | None = None) -> list[str]:
        """Lines of a session's log: by default the last 100, as Livy answers."""
        params = {k: v for k, v in (("from", start), ("size", size)) if v is not None}
        body = self.request("GET", f"/sessions/{session_id}/log", params=params)
        return [str(line) for line in body.get("log") or []]

    def log_tail(self, session_id: int, lines: int = LOG_TAIL) -> list[str]:
        """The last lines of a session's log, or none if it cannot be read (it is gone)."""
        try:
            return [line for line in self.log(session_id, size=lines) if line.strip()][-lines:]
        except LivyError:
            return []

    def find_session(self, spec: SessionSpec) -> dict[str, Any] | None:
        """A session started with the same settings (by name) that is not gone."""
        name = spec.session_name(self.user)
        for session in self.sessions():
            if session.get("name") != name:
                continue
            state = str(session.get("state"))
            if state in SESSION_GONE:
                # Its name is taken until it is deleted.
                self.delete_session(int(session["id"]))
                continue
            kind = session.get("kind")
            if spec.kind is None or kind in (None, spec.kind, "shared"):
                return session
        return None

    def wait_session(
        self, session_id: int, timeout: float, stop: threading.Event | None = None
    ) -> str:
        """Poll until the session can run statements (``idle`` or ``busy``); `SessionFailed`
        with its log when it ends up elsewhere, `LivyTimeout` when it takes too long."""
        deadline = time.monotonic() + timeout
        backoff = self.backoff()
        while True:
            try:
                state = self.session_state(session_id)
            except LivyHTTPError as exc:
                if exc.status == 404:
                    raise SessionFailed(
                        f"Livy session {session_id} is gone", session_id, "gone"
                    ) from None
                raise
            if state in SESSION_READY:
                return state
            if state not in SESSION_STARTING:
                raise self.session_failed(session_id, state)
            left = deadline - time.monotonic()
            if left <= 0:
                tail = self.log_tail(session_id)
                raise SessionFailed(
                    f"Livy session {session_id} did not start within {timeout:g} s (still {state})",
                    session_id,
                    state,
                    tail,
                )
            pause = min(backoff.next(), left)
            if stop is None:
                time.sleep(pause)
            elif stop.wait(pause):
                raise StatementCancelled()

    def session_failed(self, session_id: int, state: str) -> SessionFailed:
        """An error about a session in a state it cannot work in, with its log's tail."""
        tail = self.log_tail(session_id)
        reason = next((line.strip() for line in reversed(tail) if _telling(line)), "")
        message = f"Livy session {session_id} is {state}"
        return SessionFailed(message + (f": {reason}" if reason else ""), session_id, state, tail)

    # -- statements ---------------------------------------------------------------------
    def submit(self, session_id: int, code: str, kind: StatementKind | None) -> dict[str, Any]:
        body: dict[str, Any] = {"code": code}
        if kind is not None:
            body["kind"] = kind
        statement: dict[str, Any] = self.request("POST", f"/sessions/{session_id}/statements", body)
        return statement

    def statement(self, session_id: int, statement_id: int) -> dict[str, Any]:
        statement: dict[str, Any] = self.request(
            "GET", f"/sessions/{session_id}/statements/{statement_id}"
        )
        return statement

    def statements(self, session_id: int) -> list[dict[str, Any]]:
        body = self.request("GET", f"/sessions/{session_id}/statements")
        return list(body.get("statements") or [])

    def cancel(self, session_id: int, statement_id: int) -> None:
        with contextlib.suppress(LivyHTTPError):  # finished or gone: nothing to cancel
            self.request("POST", f"/sessions/{session_id}/statements/{statement_id}/cancel")

    def wait_statement(
        self,
        session_id: int,
        statement_id: int,
        timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> StatementOutput:
        """Poll a statement with growing pauses until it is done; its output, or
        `StatementFailed`, `StatementCancelled`, `SessionFailed`, `LivyTimeout`.

        Setting ``stop`` cancels the statement on Livy and waits for it to stop; a timeout
        does the same before raising.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = self.backoff()
        cancelling: float | None = None
        polls = 0
        while True:
            try:
                statement = self.statement(session_id, statement_id)
            except LivyHTTPError as exc:
                if exc.status == 404:
                    raise self.session_lost(session_id) from None
                raise
            polls += 1
            state = str(statement.get("state"))
            if state in STATEMENT_DONE:
                return self._outcome(session_id, statement)
            if cancelling is None and stop is not None and stop.is_set():
                self.cancel(session_id, statement_id)
                cancelling = time.monotonic()
                backoff = self.backoff()
            elif cancelling is not None and time.monotonic() - cancelling > self.cancel_wait:
                raise StatementCancelled(
                    f"cancelled (Livy statement {statement_id} of session {session_id} "
                    f"was still {state} {self.cancel_wait:g} s later)"
                )
            if deadline is not None and time.monotonic() >= deadline and cancelling is None:
                self.cancel(session_id, statement_id)
                self._await_end(session_id, statement_id, self.cancel_wait)
                raise LivyTimeout(f"the Livy statement did not finish within {timeout:g} s")
            if polls % 5 == 0:  # a session that died leaves its statements running forever
                session_state = self.session_state(session_id)
                if session_state in SESSION_GONE:
                    raise self.session_failed(session_id, session_state)
            pause = backoff.next()
            if deadline is not None and cancelling is None:
                pause = max(0.0, min(pause, deadline - time.monotonic()))
            if stop is not None and cancelling is None:
                stop.wait(pause)
            else:
                time.sleep(pause)

    def _await_end(self, session_id: int, statement_id: int, seconds: float) -> None:
        """Give a cancelled statement some time to stop (so the session is free after)."""
        end = time.monotonic() + seconds
        backoff = self.backoff()
        while time.monotonic() < end:
            try:
                if self.statement(session_id, statement_id).get("state") in STATEMENT_DONE:
                    return
            except LivyError:
                return
            time.sleep(backoff.next())

    def session_lost(self, session_id: int) -> SessionFailed:
        try:
            state = self.session_state(session_id)
        except LivyHTTPError:
            return SessionFailed(f"Livy session {session_id} is gone", session_id, "gone")
        return self.session_failed(session_id, state)

    def _outcome(self, session_id: int, statement: Mapping[str, Any]) -> StatementOutput:
        state = statement.get("state")
        output = statement.get("output")
        if state == "cancelled":
            raise StatementCancelled()
        if state == "error":  # the interpreter failed, not the code: is the session gone?
            session_state = self.session_state(session_id)
            if session_state in SESSION_GONE:
                raise self.session_failed(session_id, session_state)
        if isinstance(output, Mapping):
            status = output.get("status")
            if status == "ok":
                count = output.get("execution_count")
                return StatementOutput(
                    int(count) if count is not None else None, dict(output.get("data") or {})
                )
            if status == "error":
                raise StatementFailed(
                    str(output.get("ename") or "Error"),
                    str(output.get("evalue") or ""),
                    [str(t) for t in output.get("traceback") or []],
                )
        session_state = self.session_state(session_id)
        if session_state in SESSION_GONE:
            raise self.session_failed(session_id, session_state)
        raise LivyError(f"the Livy statement ended in state {state} without an output")

    def run(
        self,
        session_id: int,
        code: str,
        kind: StatementKind | None = "sql",
        timeout: float | None = None,
    ) -> StatementOutput:
        """Submit a statement and wait for its output."""
        statement = self.submit(session_id, code, kind)
        return self.wait_statement(session_id, int(statement["id"]), timeout)

    def close(self) -> None:
        self._http.close()


def _reason(exc: Exception) -> str:
    """The innermost reason of a requests error, one line (``Connection refused``)."""
    text = str(exc)
    for marker in ("] ", "): "):
        if marker in text:
            text = text.rsplit(marker, 1)[-1]
    text = text.strip(" ')\"(")
    return text.splitlines()[0] if text else type(exc).__name__


def _telling(line: str) -> bool:
    """Whether a log line says something about a failure (not a banner or a blank)."""
    text = line.strip()
    if not text or text.endswith(":") or text in {"stdout:", "stderr:"}:
        return False
    lowered = text.lower()
    return any(word in lowered for word in ("error", "exception", "failed", "killed", "dead"))


# -- one session, kept -------------------------------------------------------------------
@dataclass
class Handle:
    """A statement submitted through a `LivySession`."""

    session_id: int
    id: int
    stop: threading.Event = field(default_factory=threading.Event)


class LivySession:
    """One Livy session, started on first use and reused for every statement after.

    On first use it reuses a live session started earlier with the same settings (on this
    machine or another, found by name), else creates one, and waits until it is ready.
    A session that dies is replaced on the next statement. After ``idle_timeout`` seconds
    without a statement (and with nothing held, see `hold`) a session this object created
    is deleted, and started again on next use; `close` deletes it at once. A session found
    and reused is left running for whoever started it (Livy's own timeout ends it).
    Safe to share between threads: Livy runs a session's statements one after another.
    """

    def __init__(
        self,
        client: LivyClient,
        spec: SessionSpec,
        *,
        start_timeout: float = 600.0,
        statement_timeout: float | None = None,
        idle_timeout: float | None = 900.0,
        reuse: bool = True,
    ) -> None:
        self.client = client
        self.spec = spec
        self.start_timeout = start_timeout
        self.statement_timeout = statement_timeout
        self.idle_timeout = idle_timeout or None
        self.reuse = reuse
        self.id: int | None = None
        self.owned = False
        self._start_lock = threading.Lock()
        self._guard = threading.Lock()
        self._running: dict[int, Handle] = {}
        self._holders: set[object] = set()
        self._last_used = time.monotonic()
        self._timer: threading.Timer | None = None
        self._closed = False

    # -- the session --------------------------------------------------------------------
    def ensure(self) -> int:
        """The id of a ready session, starting (or finding) one if needed."""
        with self._start_lock:
            if self._closed:
                raise LivyError(f"the Livy session of {self.client.where} is closed")
            if self.id is not None:
                return self.id
            session = self.client.find_session(self.spec) if self.reuse else None
            owned = session is None
            if session is None:
                session = self.client.create_session(self.spec)
            session_id = int(session["id"])
            try:
                self.client.wait_session(session_id, self.start_timeout)
            except LivyError:
                if owned:
                    self.client.delete_session(session_id)
                raise
            with self._guard:
                closed = self._closed
                if not closed:
                    self.id, self.owned = session_id, owned
            if closed:  # closed while it started: nobody will use it
                if owned:
                    self.client.delete_session(session_id)
                raise LivyError(f"the Livy session of {self.client.where} is closed")
            self._touch()
            return session_id

    def forget(self, session_id: int) -> None:
        """Drop a session that failed, so the next statement starts another."""
        with self._start_lock, self._guard:
            if self.id == session_id:
                self.id = None
                if self.owned:
                    self.client.delete_session(session_id)

    # -- statements ---------------------------------------------------------------------
    def submit(self, code: str, kind: StatementKind | None = "sql") -> Handle:
        session_id = self.ensure()
        try:
            statement = self.client.submit(session_id, code, kind)
        except LivyHTTPError as exc:
            if exc.status != 404 and not (
                exc.status == 400 and self._state_or_gone(session_id) in SESSION_GONE
            ):
                raise
            # The session went away between statements (killed, timed out): the statement
            # never ran, so it is safe to start another session and send it there.
            self.forget(session_id)
            session_id = self.ensure()
            statement = self.client.submit(session_id, code, kind)
        handle = Handle(session_id, int(statement["id"]))
        with self._guard:
            self._running[id(handle)] = handle
        return handle

    def _state_or_gone(self, session_id: int) -> str:
        try:
            return self.client.session_state(session_id)
        except LivyHTTPError:
            return "gone"

    def wait(self, handle: Handle) -> StatementOutput:
        try:
            return self.client.wait_statement(
                handle.session_id, handle.id, self.statement_timeout, handle.stop
            )
        except SessionFailed:
            self.forget(handle.session_id)
            raise
        finally:
            with self._guard:
                self._running.pop(id(handle), None)
            self._touch()

    def run(self, code: str, kind: StatementKind | None = "sql") -> StatementOutput:
        return self.wait(self.submit(code, kind))

    @staticmethod
    def cancel(handle: Handle) -> None:
        """Ask for a statement to stop: whoever waits for it cancels it on Livy and then
        raises `StatementCancelled` (or returns, if it finished first)."""
        handle.stop.set()

    # -- idle and close -----------------------------------------------------------------
    @contextlib.contextmanager
    def held(self, holder: object) -> Iterator[None]:
        self.hold(holder)
        try:
            yield
        finally:
            self.release(holder)

    def hold(self, holder: object) -> None:
        """Keep the session past its idle timeout while ``holder`` lives in it (a temporary
        view that a later statement will read)."""
        with self._guard:
            self._holders.add(holder)

    def release(self, holder: object) -> None:
        with self._guard:
            self._holders.discard(holder)
        self._touch()

    def _touch(self) -> None:
        with self._guard:
            self._last_used = time.monotonic()
            if self.idle_timeout is not None and self._timer is None and not self._closed:
                self._arm(self.idle_timeout)

    def _arm(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self._close_if_idle)
        self._timer.daemon = True
        self._timer.start()

    def _close_if_idle(self) -> None:
        with self._guard:
            self._timer = None
            if self._closed or self.id is None or self.idle_timeout is None:
                return
            if self._running or self._holders:
                self._arm(self.idle_timeout)
                return
            left = self._last_used + self.idle_timeout - time.monotonic()
            if left > 0:
                self._arm(left)
                return
            session_id, owned = self.id, self.owned
            self.id = None
        if owned:
            self.client.delete_session(session_id)

    def close(self) -> None:
        """Stop statements in flight and delete the session if this object started it."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            session_id, owned = self.id, self.owned
            self.id = None
            for handle in self._running.values():
                handle.stop.set()
        try:
            if session_id is not None and owned:
                with contextlib.suppress(LivyError):
                    self.client.delete_session(session_id)
        finally:
            self.client.close()
