"""Tornado handlers of the Studio REST API: parse, authorize, call the workspace, answer JSON.

Each handler is a few lines over `prophecy_jupyter.workspace.Workspace`; what goes wrong is
raised there as a typed error and turned into a status code and a JSON body in one place,
`ProphecyHandler.write_error`. Blocking work (files, DuckDB) runs in a worker thread so the
server keeps answering, in particular the request that cancels a running preview.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.client import responses
from types import TracebackType
from typing import Any, TypeVar, cast

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.escape import url_escape
from tornado.log import app_log

from prophecy_jupyter.ai.errors import (
    AIAuthError,
    AIDisabled,
    AIError,
    AINotConfigured,
    AIRateLimited,
    AITimeout,
    AIUnavailable,
)
from prophecy_jupyter.errors import (
    Cancelled,
    Conflict,
    EngineError,
    GitError,
    Issue,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    ProphecyError,
    ValidationError,
)
from prophecy_jupyter.gems.registry import catalog
from prophecy_jupyter.workspace import Workspace

T = TypeVar("T")

LONG_WORK = ThreadPoolExecutor(max_workers=8, thread_name_prefix="prophecy-preview")
"""Threads for previews and connection tests; started on demand."""
Method = TypeVar("Method", bound=Callable[..., Awaitable[None]])

API_PREFIX = "/prophecy/api/v1"
AUTH_RESOURCE = "prophecy"

ERROR_STATUS: tuple[tuple[type[ProphecyError], int], ...] = (
    (PreconditionFailed, 412),
    (PreconditionRequired, 428),
    (Cancelled, 409),
    (ValidationError, 422),
    (NotFound, 404),
    (Conflict, 409),
    # A statement the engine refused: the pipeline's data or SQL is at fault, not the server.
    (EngineError, 422),
    # A failed git command: a conflict with the remote's (or a hook's) state.
    (GitError, 409),
    # The copilot: off, without a key, or its model endpoint refused or failed.
    (AIDisabled, 403),
    (AINotConfigured, 409),
    (AIAuthError, 502),
    (AIRateLimited, 429),
    (AITimeout, 504),
    (AIUnavailable, 503),
    (AIError, 502),
)
"""Typed core errors → HTTP status, first match wins; any other `ProphecyError` is a 400."""

JUPYTER_ARGUMENTS = frozenset({"token", "_xsrf", "no_track_activity"})
"""Query arguments Jupyter itself reads on any route."""

HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}


def authorized_to(action: str) -> Callable[[Method], Method]:
    """`authorized` for an action other than the HTTP method's default (a POST that only
    reads, or runs SQL), with its type kept."""
    return cast("Callable[[Method], Method]", authorized(action))


def error_body(error: BaseException | None, status: int) -> tuple[int, dict[str, Any]]:
    """The status and ``{"code", "message", "gem_id"?, "field"?, "issues"?}`` for an error.

    Anything that is neither a core error nor an HTTP error is a bug: the client learns only
    that, never a traceback.
    """
    if isinstance(error, ProphecyError):
        mapped = next((code for kind, code in ERROR_STATUS if isinstance(error, kind)), 400)
        return mapped, error.to_dict()
    if isinstance(error, web.HTTPError) or (error is None and status < 500):
        if isinstance(error, web.HTTPError):
            status = error.status_code
        message = responses.get(status, "error")
        if isinstance(error, web.HTTPError) and error.log_message:
            try:
                message = error.log_message % error.args
            except (TypeError, ValueError):
                message = error.log_message
        return status, {"code": HTTP_ERROR_CODES.get(status, "http_error"), "message": message}
    return 500, {"code": "internal_error", "message": "internal server error"}


class ProphecyHandler(APIHandler):
    """Base of every Studio handler: authorization resource, JSON replies, error mapping."""

    auth_resource = AUTH_RESOURCE
    query_arguments: frozenset[str] = frozenset({"project"})
    """The query arguments the route reads; any other is refused, so that a misspelt
    ``project`` cannot silently act on the root project instead."""

    async def prepare(self) -> None:  # type: ignore[override]  # as APIHandler.prepare
        await super().prepare()
        unknown = sorted(
            set(self.request.query_arguments) - self.query_arguments - JUPYTER_ARGUMENTS
        )
        if unknown:
            raise ValidationError(
                [Issue("argument", f"unknown query argument {unknown[0]!r}", field=unknown[0])]
            )

    @property
    def workspace(self) -> Workspace:
        workspace: Workspace = self.settings["prophecy_workspace"]
        return workspace

    @property
    def project(self) -> str:
        """The ``project`` query argument: a folder relative to the server root."""
        return self.get_query_argument("project", "")

    def api_url(self, *parts: str, project: str = "") -> str:
        """The URL of an API resource, as a ``Location`` header gives it."""
        url = url_path_join(self.base_url, API_PREFIX, *(url_escape(p, plus=False) for p in parts))
        return f"{url}?project={url_escape(project)}" if project else url

    async def call(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(work, *args)

    async def call_long(self, work: Callable[..., T], *args: Any) -> T:
        """Run work that may take minutes (a preview) on threads of its own, so that it
        cannot hold up the quick calls, among them the one that cancels it."""
        return await asyncio.get_running_loop().run_in_executor(LONG_WORK, partial(work, *args))

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The HTTP methods this route implements (itself or in a base of its own)."""
        own = [
            k for k in cls.__mro__ if issubclass(k, ProphecyHandler) and k is not ProphecyHandler
        ]
        return [
            m.upper() for m in ("get", "post", "put", "delete") if any(m in vars(k) for k in own)
        ]

    def get_login_url(self) -> str:
        """An API has no login page to redirect to: without credentials the answer is 401."""
        if not self.current_user:
            raise web.HTTPError(401, "authentication required: send a token or the login cookie")
        return super().get_login_url()

    def check_xsrf_cookie(self) -> None:
        """A write without any credentials is unauthenticated (401) before it is a forgery
        attempt (403): the XSRF check only guards cookie-authenticated writes."""
        if getattr(self, "_jupyter_current_user", True) is None:
            raise web.HTTPError(401, "authentication required: send a token or the login cookie")
        super().check_xsrf_cookie()

    def compute_etag(self) -> str | None:
        return None  # pipelines carry their file's ETag; nothing else is versioned

    async def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        await self.finish(json.dumps(data, allow_nan=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        status, body = error_body(exc_info[1] if exc_info else None, status_code)
        self.set_status(status)
        if "retry_after" in body:
            self.set_header("Retry-After", str(body["retry_after"]))
        if status == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="jupyter_server"')
        if status == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.finish(json.dumps({"error": body}))

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Core errors are answers, not incidents (the access log has their status); other
        exceptions are logged by name and message only, as tracebacks may quote data."""
        if isinstance(value, ProphecyError):
            return
        if isinstance(value, web.HTTPError):
            super().log_exception(typ, value, tb)
            return
        app_log.error(
            "prophecy_jupyter | %s %s failed: %r", self.request.method, self.request.path, value
        )


class GemsHandler(ProphecyHandler):
    query_arguments = frozenset()

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.reply({"gems": await self.call(catalog)})


class ProjectsHandler(ProphecyHandler):
    query_arguments = frozenset()

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.reply({"projects": await self.call(self.workspace.projects)})


class ProjectHandler(ProphecyHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.reply(await self.call(self.workspace.project_info, self.project))


class PipelinesHandler(ProphecyHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        pipelines = await self.call(self.workspace.pipelines, self.project)
        await self.reply({"pipelines": pipelines})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        document, etag = await self.call(
            self.workspace.create_pipeline, self.project, self.request.body
        )
        self.set_header("ETag", etag)
        self.set_header(
            "Location", self.api_url("pipelines", document["name"], project=self.project)
        )
        await self.reply(document, 201)


class PipelineHandler(ProphecyHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        document, etag = await self.call(self.workspace.read_pipeline, self.project, name)
        self.set_header("ETag", etag)
        await self.reply(document)

    @web.authenticated
    @authorized
    async def put(self, name: str) -> None:
        document, etag = await self.call(
            self.workspace.update_pipeline,
            self.project,
            name,
            self.request.body,
            self.request.headers.get("If-Match"),
        )
        self.set_header("ETag", etag)
        await self.reply(document)

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.call(
            self.workspace.delete_pipeline,
            self.project,
            name,
            self.request.headers.get("If-Match"),
        )
        self.set_status(204)
        await self.finish()


class PipelineRenameHandler(ProphecyHandler):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        document, etag = await self.call(
            self.workspace.rename_pipeline,
            self.project,
            name,
            self.request.body,
            self.request.headers.get("If-Match"),
        )
        self.set_header("ETag", etag)
        self.set_header(
            "Location", self.api_url("pipelines", document["name"], project=self.project)
        )
        await self.reply(document)


class ValidateHandler(ProphecyHandler):
    @web.authenticated
    @authorized_to("read")
    async def post(self, name: str) -> None:
        await self.reply(
            await self.call(self.workspace.validation_report, self.project, name, self.request.body)
        )


class CompileHandler(ProphecyHandler):
    @web.authenticated
    @authorized_to("read")
    async def post(self, name: str) -> None:
        await self.reply(
            await self.call(self.workspace.compile, self.project, name, self.request.body)
        )


class PreviewHandler(ProphecyHandler):
    @web.authenticated
    @authorized_to("execute")
    async def post(self, name: str) -> None:
        result = await self.call_long(self.workspace.preview, self.project, name, self.request.body)
        await self.reply(result.to_dict())

    @web.authenticated
    @authorized_to("execute")
    async def delete(self, name: str) -> None:
        cancelled = await self.call(self.workspace.cancel_preview, self.project, name)
        await self.reply({"cancelled": cancelled})


class RunsHandler(ProphecyHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        project = self.get_query_argument("project", None)
        await self.reply({"runs": await self.call(self.workspace.list_runs, project)})

    @web.authenticated
    @authorized_to("execute")
    async def post(self) -> None:
        run = await self.call(self.workspace.start_run, self.project, self.request.body)
        self.set_header("Location", self.api_url("runs", run["id"]))
        await self.reply(run, 202)


class RunHandler(ProphecyHandler):
    query_arguments = frozenset()

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        await self.reply(self.workspace.runs.get(run_id))


class RunCancelHandler(ProphecyHandler):
    query_arguments = frozenset()

    @web.authenticated
    @authorized_to("execute")
    async def post(self, run_id: str) -> None:
        await self.reply(self.workspace.runs.cancel(run_id), 202)


class FabricsHandler(ProphecyHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.reply({"fabrics": await self.call(self.workspace.fabrics, self.project)})


class FabricHandler(ProphecyHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        await self.reply(await self.call(self.workspace.fabric, self.project, name))

    @web.authenticated
    @authorized
    async def put(self, name: str) -> None:
        await self.reply(
            await self.call(self.workspace.put_fabric, self.project, name, self.request.body)
        )

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.call(self.workspace.delete_fabric, self.project, name)
        self.set_status(204)
        await self.finish()


class FabricTestHandler(ProphecyHandler):
    @web.authenticated
    @authorized_to("execute")
    async def post(self, name: str) -> None:
        # Opening a warehouse may wait for another process to let go of it.
        await self.reply(
            await self.call_long(self.workspace.test_fabric, self.project, name, self.request.body)
        )


ROUTES: tuple[tuple[str, type[ProphecyHandler]], ...] = (
    ("/gems", GemsHandler),
    ("/projects", ProjectsHandler),
    ("/project", ProjectHandler),
    ("/pipelines", PipelinesHandler),
    ("/pipelines/{name}", PipelineHandler),
    ("/pipelines/{name}/rename", PipelineRenameHandler),
    ("/pipelines/{name}/validate", ValidateHandler),
    ("/pipelines/{name}/compile", CompileHandler),
    ("/pipelines/{name}/preview", PreviewHandler),
    ("/runs", RunsHandler),
    ("/runs/{run_id}", RunHandler),
    ("/runs/{run_id}/cancel", RunCancelHandler),
    ("/fabrics", FabricsHandler),
    ("/fabrics/{name}", FabricHandler),
    ("/fabrics/{name}/test", FabricTestHandler),
)
"""Every route, as the path templates of ``openapi.yaml`` (below `API_PREFIX`)."""
