"""A Python client of the orchestration API (``/prophecy/api/v1/automate/…``).

The same API is served by every Jupyter server with the extension and by the headless
`prophecy automate` daemon, so one client talks to both: give it the server's base URL and
its token. Answers are the API's JSON objects, typed here as `TypedDict`s (plain dicts at
run time); errors are the core's typed errors, so callers and the CLI handle a 404 from the
server exactly as they handle a `NotFound` raised in-process:

- 404 → `NotFound`; 422 and 400 → `ValidationError` carrying the server's issues (or one
  made of its message); 409 → `Conflict`; 401 and 403 → `AuthenticationError`, which says
  how to authenticate; anything else → `ProphecyError` with the status;
- a server that cannot be reached → `ServerUnreachable`, one message naming the URL;
- `wait` past its deadline → `RunTimeout`, which carries the run as last seen.

The token travels only in the ``Authorization: token …`` header (Jupyter's scheme) and is
never part of a message, a log line or a ``repr``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypedDict, cast
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from prophecy_jupyter.errors import (
    Conflict,
    EngineError,
    Issue,
    NotFound,
    ProphecyError,
    Severity,
    ValidationError,
)

API_PREFIX = "/prophecy/api/v1"
"""Where the extension serves its API under a server's base URL (the server's own
``handlers.API_PREFIX``, repeated so that the client does not import the server)."""

DEFAULT_URL = "http://127.0.0.1:8765"
"""Where `prophecy automate` listens unless told otherwise."""

FINISHED = frozenset({"succeeded", "failed", "cancelled"})


# -- what the API answers ------------------------------------------------------------------
class RunTrigger(TypedDict):
    type: str
    """manual, api, schedule, file, upstream or retry"""
    schedule: str | None
    fire_time: str | None
    detail: str | None


class GemInfo(TypedDict):
    gem_id: str
    kind: str
    status: str
    rows: int | None
    seconds: float | None
    error: str | None


class RunInfo(TypedDict):
    """A run as ``GET /automate/runs/{id}`` shows it; times are ISO 8601 in UTC."""

    id: str
    project: str
    kind: Literal["pipeline", "notebook"]
    target: str
    fabric: str
    parameters: dict[str, Any]
    trigger: RunTrigger
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    attempt: int
    created: str | None
    started: str | None
    finished: str | None
    seconds: float | None
    error: str | None
    issues: list[dict[str, Any]]
    gems: list[GemInfo]
    output_notebook: bool
    deployment: str | None


class LogLine(TypedDict):
    time: str | None
    level: str
    message: str


class LastRun(TypedDict):
    id: str
    status: str
    finished: str | None


class ScheduleInfo(TypedDict):
    """A schedule where it applies now (the project's own, or a deployment's)."""

    project: str
    name: str
    kind: Literal["pipeline", "notebook"]
    target: str
    fabric: str
    cron: str | None
    timezone: str
    enabled: bool
    triggers: list[dict[str, Any]]
    next_fire: str | None
    last_run: LastRun | None
    deployment: str | None
    misfire: str
    max_concurrent: int
    retries: int
    timeout: float | None


class DeploymentInfo(TypedDict):
    id: str
    project: str
    fabric: str
    created: str | None
    active: bool
    pipelines: list[str]
    schedules: list[str]
    notebooks: list[str]


# -- errors of the client's own --------------------------------------------------------------
class AuthenticationError(ProphecyError):
    """The server refused the credentials (401) or the user behind them (403)."""

    code = "unauthorized"


class ServerUnreachable(ProphecyError):
    """No server answered at the URL (refused, timed out, not HTTP)."""

    code = "unreachable"


class RunTimeout(ProphecyError):
    """`AutomateClient.wait` gave up before the run finished; the run goes on."""

    code = "timeout"

    def __init__(self, run: RunInfo, timeout: float) -> None:
        super().__init__(
            f"run '{run['id']}' is still {run['status']} after {timeout:g} s "
            "(it goes on; wait again or cancel it)"
        )
        self.run = run
        self.timeout = timeout


def api_base(url: str) -> str:
    """The API's base URL for a server URL (``http://host:8765`` or ``…/prophecy/api/v1``),
    without a query (where a token pasted from Jupyter's log would otherwise travel) or a
    trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValidationError(
            [Issue("url", f"not an http(s) URL: {_without_query(url)!r}", field="url")]
        )
    path = parts.path.rstrip("/")
    if not path.endswith(API_PREFIX):
        path += API_PREFIX
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _without_query(url: str) -> str:
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _compact(values: Mapping[str, Any]) -> dict[str, Any]:
    """The API refuses ``null`` for an optional field: an unset one is left out."""
    return {k: v for k, v in values.items() if v is not None}


class AutomateClient:
    """The orchestration API of the server at ``url`` (see the module's docstring).

    ``session`` lets a caller bring its own `requests.Session` (proxies, TLS settings); the
    client adds only its ``Authorization`` header to each request, never to the session.
    ``timeout`` bounds each HTTP request, not a run (see `wait`).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        session: requests.Session | None = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        self.api = api_base(url)
        self.server = self.api[: -len(API_PREFIX)] or self.api
        self._token = token or None
        self.session = session or requests.Session()
        self.timeout = timeout

    def __repr__(self) -> str:  # never the token
        return f"AutomateClient({self.server!r})"

    # -- runs ------------------------------------------------------------------------------
    def trigger(
        self,
        project: str = "",
        pipeline: str | None = None,
        notebook: str | None = None,
        fabric: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> RunInfo:
        """Queue a run of a pipeline (by name) or a notebook (a path in the project); the
        run is returned at once, queued. ``project`` is the project's folder relative to
        the server's root (``""``: the root itself)."""
        body = _compact(
            {
                "project": project,
                "pipeline": pipeline,
                "notebook": notebook,
                "fabric": fabric,
                "parameters": dict(parameters) if parameters is not None else None,
            }
        )
        return cast(RunInfo, self._call("POST", "automate/runs", body=body))

    def run(self, run_id: str) -> RunInfo:
        return cast(RunInfo, self._call("GET", f"automate/runs/{quote(run_id, safe='')}"))

    def runs(
        self,
        *,
        project: str | None = None,
        status: str | None = None,
        target: str | None = None,
        kind: str | None = None,
        trigger: str | None = None,
        schedule: str | None = None,
        limit: int | None = None,
        before: str | None = None,
    ) -> list[RunInfo]:
        """Runs, newest first, narrowed by whichever filters are given (``before`` is an
        ISO 8601 time: the page after a list's last ``created``)."""
        query = _compact(
            {
                "project": project,
                "status": status,
                "target": target,
                "kind": kind,
                "trigger": trigger,
                "schedule": schedule,
                "limit": None if limit is None else str(limit),
                "before": before,
            }
        )
        answer = self._call("GET", "automate/runs", query=query)
        return cast(list[RunInfo], answer["runs"])

    def logs(self, run_id: str) -> list[LogLine]:
        answer = self._call("GET", f"automate/runs/{quote(run_id, safe='')}/logs")
        return cast(list[LogLine], answer["lines"])

    def notebook(self, run_id: str) -> dict[str, Any]:
        """The executed notebook of a notebook run (nbformat JSON, as far as it got)."""
        answer = self._call("GET", f"automate/runs/{quote(run_id, safe='')}/notebook")
        return cast(dict[str, Any], answer)

    def cancel(self, run_id: str) -> RunInfo:
        """Cancel a run: a queued one at once, a running one as soon as its executor sees
        the request (the run answered may still say ``running``)."""
        return cast(RunInfo, self._call("POST", f"automate/runs/{quote(run_id, safe='')}/cancel"))

    def wait(
        self,
        run_id: str,
        timeout: float = 600.0,
        poll: float = 0.5,
        progress: Callable[[RunInfo], None] | None = None,
    ) -> RunInfo:
        """Poll a run until it has finished and return it as finished (whatever its
        status: a failed run is an answer, not an error); `RunTimeout` after ``timeout``
        seconds. ``progress`` sees the run at each poll."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if progress is not None:
                progress(run)
            if run["status"] in FINISHED:
                return run
            left = deadline - time.monotonic()
            if left <= 0:
                raise RunTimeout(run, timeout)
            time.sleep(min(poll, left))

    # -- schedules -------------------------------------------------------------------------
    def schedules(self, project: str | None = None) -> list[ScheduleInfo]:
        answer = self._call("GET", "automate/schedules", query=_compact({"project": project}))
        return cast(list[ScheduleInfo], answer["schedules"])

    def enable(self, project: str, name: str) -> ScheduleInfo:
        """Turn a schedule on (a project's own schedule in its file, so Git has it)."""
        return self._switch(project, name, "enable")

    def disable(self, project: str, name: str) -> ScheduleInfo:
        return self._switch(project, name, "disable")

    def _switch(self, project: str, name: str, action: str) -> ScheduleInfo:
        path = f"automate/schedules/{quote(name, safe='')}/{action}"
        return cast(ScheduleInfo, self._call("POST", path, query={"project": project}))

    def trigger_schedule(
        self, project: str, name: str, parameters: Mapping[str, Any] | None = None
    ) -> RunInfo:
        """Run a schedule now, whatever its cron says, with extra parameters."""
        path = f"automate/schedules/{quote(name, safe='')}/trigger"
        body = {"parameters": dict(parameters or {})}
        return cast(RunInfo, self._call("POST", path, query={"project": project}, body=body))

    # -- deployments -----------------------------------------------------------------------
    def deployments(self, project: str | None = None) -> list[DeploymentInfo]:
        answer = self._call("GET", "automate/deployments", query=_compact({"project": project}))
        return cast(list[DeploymentInfo], answer["deployments"])

    def deploy(self, project: str, fabric: str) -> DeploymentInfo:
        """Freeze the project's pipelines, schedules and notebooks as what its schedules
        run on ``fabric`` until the next deploy."""
        body = {"project": project, "fabric": fabric}
        return cast(DeploymentInfo, self._call("POST", "automate/deployments", body=body))

    # -- HTTP ------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"token {self._token}"
        url = f"{self.api}/{path}"
        try:
            response = self.session.request(
                method,
                url,
                params=dict(query or {}),
                data=None if body is None else json.dumps(body),
                headers={**headers, **({"Content-Type": "application/json"} if body else {})},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise ServerUnreachable(
                f"the Prophecy server at {self.server} did not answer within {self.timeout:g} s"
            ) from None
        except requests.RequestException as exc:
            raise ServerUnreachable(
                f"cannot reach the Prophecy server at {self.server} ({_reason(exc)}): is "
                "`prophecy automate` or a Jupyter server with the extension running there?"
            ) from None
        if response.status_code >= 400:
            raise self._error(response)
        try:
            return response.json()
        except ValueError:
            raise ProphecyError(
                f"the server at {self.server} answered {method} {path} with "
                f"{response.status_code} but no JSON: is it a Prophecy server?"
            ) from None

    def _error(self, response: requests.Response) -> ProphecyError:
        """The typed error for an error answer (the body is ``{"error": {…}}``)."""
        status = response.status_code
        error: dict[str, Any] = {}
        try:
            data = response.json()
            if isinstance(data, dict) and isinstance(data.get("error"), dict):
                error = data["error"]
        except ValueError:
            pass
        message = str(error.get("message") or response.reason or f"HTTP {status}")
        code = str(error.get("code") or "")
        if status == 401:
            return AuthenticationError(
                f"the server at {self.server} refused the request ({message}): give it the "
                "token it was started with (AutomateClient(token=…), `--token` or "
                "$PROPHECY_TOKEN; `prophecy automate` prints it when it makes one)"
            )
        if status == 403:
            return AuthenticationError(
                f"the server at {self.server} does not allow this ({message}): the token's "
                "user needs access to the 'prophecy' resource"
            )
        if status == 404 or code == "not_found":
            if not error:  # not the API's answer: no such route, so not a Prophecy server
                message = f"{response.request.method} {_without_query(response.url)}: not found"
                message += f" (is {self.server} a Prophecy server?)"
            return NotFound(message)
        if code == "engine_error":
            return EngineError(message, error.get("gem_id"))
        if status in {400, 422}:
            issues = [_issue(i) for i in error.get("issues") or [] if isinstance(i, dict)]
            if not issues:
                issues = [Issue(code or "invalid", message, field=error.get("field"))]
            return ValidationError(issues, summary=message)
        if status == 409:
            return Conflict(message)
        return ProphecyError(f"the server at {self.server} answered {status}: {message}")


def _issue(data: Mapping[str, Any]) -> Issue:
    severity: Severity = "warning" if data.get("severity") == "warning" else "error"
    return Issue(
        code=str(data.get("code", "invalid")),
        message=str(data.get("message", "")),
        gem_id=data.get("gem_id"),
        field=data.get("field"),
        line=data.get("line"),
        column=data.get("column"),
        severity=severity,
    )


def _reason(exc: requests.RequestException) -> str:
    """Why a connection failed, in a few words (urllib3's messages run to lines)."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host"):
        if marker in text:
            return marker.lower()
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    return type(exc).__name__
