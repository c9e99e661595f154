"""Handlers of the AI API, ``/prophecy/api/v1/ai/…``: the Studio's copilot over a pipeline.

``GET ai/status`` says whether the copilot can be used (and if not, why); ``POST ai/build``,
``ai/describe``, ``ai/explain``, ``ai/fix`` and ``ai/suggest`` ask the model about the
pipeline named in the body (or its unsaved draft). ``ai/describe`` proposes descriptions of
the gems and of their output columns (the gems' ``columns``), changing nothing else; build,
describe and explain send sample rows to the model only when the body says
``"sample_rows": true``. Each answers JSON, or, when the request accepts
``text/event-stream``, Server-Sent Events: ``text`` events carry the model's words as they
come, then one ``proposal`` (build, describe, fix) or ``answer`` (explain, suggest) event
carries the result, or an ``error`` event ``{"code", "message"}`` says why there is none.

A client that goes away cancels the model call. What fails before the call starts (a
malformed body, an unknown pipeline, the copilot switched off or not configured) is a JSON
error with its status even for a streaming request. The API key is never part of an answer.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from tornado import web
from tornado.iostream import StreamClosedError
from tornado.log import app_log

from prophecy_jupyter.ai import AIDisabled, AINotConfigured, Copilot
from prophecy_jupyter.errors import Cancelled, Issue, ProphecyError, ValidationError
from prophecy_jupyter.model.pipeline import Pipeline
from prophecy_jupyter.model.project import Project
from prophecy_jupyter.server.handlers import LONG_WORK, ProphecyHandler, authorized_to
from prophecy_jupyter.workspace import _check_name, _field, _request

EVENT_STREAM = "text/event-stream"
MAX_PROMPT = 20_000
MAX_HISTORY = 100
ROLES = frozenset({"user", "assistant"})


def _bad(message: str, field: str) -> ValidationError:
    return ValidationError([Issue("invalid", message, field=field)])


def _text(body: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value: str | None = _field(body, key, str, "a string", required=required)
    if value is not None and len(value) > MAX_PROMPT:
        raise _bad(f"{key} is longer than {MAX_PROMPT} characters", f"/{key}")
    return value


def _sample_rows(body: Mapping[str, Any]) -> bool:
    """Whether the user opted in to sending sample rows with this one request."""
    return bool(_field(body, "sample_rows", bool, "a boolean"))


def _history(body: Mapping[str, Any]) -> list[dict[str, str]]:
    """The conversation so far: ``[{"role": "user" | "assistant", "content": text}]``."""
    value: list[Any] = _field(body, "history", list, "an array of messages") or []
    if len(value) > MAX_HISTORY:
        raise _bad(f"history holds more than {MAX_HISTORY} messages", "/history")
    turns: list[dict[str, str]] = []
    for i, turn in enumerate(value):
        if (
            not isinstance(turn, dict)
            or set(turn) != {"role", "content"}
            or not isinstance(turn["role"], str)
            or turn["role"] not in ROLES
            or not isinstance(turn["content"], str)
            or len(turn["content"]) > MAX_PROMPT
        ):
            raise _bad(
                "each message must be {role: user or assistant, content: a string}",
                f"/history/{i}",
            )
        turns.append({"role": turn["role"], "content": turn["content"]})
    return turns


def sse(event: str, data: Any) -> bytes:
    """One Server-Sent Event (``data`` as one line of JSON)."""
    return f"event: {event}\ndata: {json.dumps(data, allow_nan=False)}\n\n".encode()


class AIHandler(ProphecyHandler):
    """A copilot route on the project named by ``?project=``."""

    result_event = "answer"
    """The name of the event that carries the result (``proposal`` for build and fix)."""
    cancel: threading.Event

    def initialize(self) -> None:
        self.cancel = threading.Event()

    def on_connection_close(self) -> None:
        """The client went away (or pressed Stop): the model call is abandoned."""
        self.cancel.set()
        super().on_connection_close()

    @property
    def streaming(self) -> bool:
        return EVENT_STREAM in self.request.headers.get("Accept", "")

    def copilot(self, project: Project) -> Copilot:
        """The project's copilot, refusing at once when it is off or has no key."""
        # The workspace's engine of the project: the copilot reads schemas through it.
        copilot = Copilot(project, self.workspace.secrets, engine=self.workspace.engine(project))
        settings = copilot.settings()
        if settings.disabled_by_admin:
            raise AIDisabled(settings.reason or "the AI copilot is disabled by the administrator")
        if not settings.configured:
            raise AINotConfigured(
                settings.reason
                or "the AI copilot has no API key: set ANTHROPIC_API_KEY for the server"
            )
        return copilot

    def pipeline(self, project: Project, body: Mapping[str, Any]) -> Pipeline:
        """The pipeline the request is about: the draft in the body, else the saved file."""
        name: str = _field(body, "name", str, "a pipeline name", required=True)
        draft: dict[str, Any] | None = _field(body, "pipeline", dict, "a JSON object")
        _check_name(name, "name")
        return self.workspace._subject(project, name, draft)

    def _subject(self, body: Mapping[str, Any]) -> tuple[Pipeline, Copilot]:
        project = self.workspace.project(self.project)
        return self.pipeline(project, body), self.copilot(project)

    async def subject(self, body: Mapping[str, Any]) -> tuple[Pipeline, Copilot]:
        """The pipeline the request is about and the copilot to ask, read off the loop."""
        return await self.call(self._subject, body)

    async def answer(self, work: Callable[[Callable[[str], None] | None], Any]) -> None:
        """Call ``work(on_text)`` on a worker thread; answer its JSON, or stream it."""
        if not self.streaming:
            await self.reply(await self.call_long(work, None))
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def on_text(text: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, ("text", {"text": text}))

        def run() -> None:
            try:
                event: tuple[str, Any] = (self.result_event, work(on_text))
            except Cancelled:
                app_log.info("prophecy_jupyter | AI request cancelled: the client went away")
                event = ("error", {"code": "cancelled", "message": "the AI request was cancelled"})
            except ProphecyError as error:
                body = error.to_dict()
                event = (
                    "error",
                    {k: body[k] for k in ("code", "message", "retry_after") if k in body},
                )
            except Exception as error:  # reported to the client, never raised
                self.log_exception(type(error), error, error.__traceback__)
                event = ("error", {"code": "internal_error", "message": "internal server error"})
            loop.call_soon_threadsafe(queue.put_nowait, event)

        self.set_header("Content-Type", EVENT_STREAM)
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        self.set_status(200)
        try:
            await self.flush()
        except StreamClosedError:
            self.cancel.set()
            return
        loop.run_in_executor(LONG_WORK, run)
        while True:
            event, data = await queue.get()
            if self.cancel.is_set():
                return  # the client is gone; the call stops at its next delta
            try:
                self.write(sse(event, data))
                await self.flush()
            except StreamClosedError:
                self.cancel.set()
                return
            if event != "text":
                break
        await self.finish()


class AIStatusHandler(AIHandler):
    @web.authenticated
    @authorized_to("read")
    async def get(self) -> None:
        def status() -> dict[str, Any]:
            project = self.workspace.project(self.project)
            answer: dict[str, Any] = Copilot(project, self.workspace.secrets).status()
            return answer

        await self.reply(await self.call(status))


class AIBuildHandler(AIHandler):
    result_event = "proposal"

    @web.authenticated
    @authorized_to("read")
    async def post(self) -> None:
        body = _request(
            self.request.body, frozenset({"name", "pipeline", "prompt", "history", "sample_rows"})
        )
        prompt = _text(body, "prompt", required=True) or ""
        if not prompt.strip():
            raise _bad("prompt must not be empty", "/prompt")
        history = _history(body)
        sample_rows = _sample_rows(body)
        pipeline, copilot = await self.subject(body)
        await self.answer(
            lambda on_text: copilot.build(
                prompt,
                pipeline,
                history=history,
                sample_rows=sample_rows,
                on_text=on_text,
                cancel=self.cancel,
            ).to_dict()
        )


class AIDescribeHandler(AIHandler):
    result_event = "proposal"

    @web.authenticated
    @authorized_to("read")
    async def post(self) -> None:
        body = _request(self.request.body, frozenset({"name", "pipeline", "gem", "sample_rows"}))
        gem = _text(body, "gem")
        sample_rows = _sample_rows(body)
        pipeline, copilot = await self.subject(body)
        await self.answer(
            lambda on_text: copilot.describe(
                pipeline,
                gem_id=gem,
                sample_rows=sample_rows,
                on_text=on_text,
                cancel=self.cancel,
            ).to_dict()
        )


class AIExplainHandler(AIHandler):
    @web.authenticated
    @authorized_to("read")
    async def post(self) -> None:
        body = _request(self.request.body, frozenset({"name", "pipeline", "gem", "sample_rows"}))
        gem = _text(body, "gem")
        sample_rows = _sample_rows(body)
        pipeline, copilot = await self.subject(body)
        await self.answer(
            lambda on_text: {
                "text": copilot.explain(
                    pipeline, gem, sample_rows=sample_rows, on_text=on_text, cancel=self.cancel
                )
            }
        )


class AIFixHandler(AIHandler):
    result_event = "proposal"

    @web.authenticated
    @authorized_to("read")
    async def post(self) -> None:
        body = _request(self.request.body, frozenset({"name", "pipeline", "gem", "error"}))
        gem = _text(body, "gem")
        error = _text(body, "error", required=True) or ""
        pipeline, copilot = await self.subject(body)
        await self.answer(
            lambda on_text: copilot.fix(
                pipeline, error, gem, on_text=on_text, cancel=self.cancel
            ).to_dict()
        )


class AISuggestHandler(AIHandler):
    @web.authenticated
    @authorized_to("read")
    async def post(self) -> None:
        body = _request(
            self.request.body, frozenset({"name", "pipeline", "gem", "field", "request"})
        )
        gem = _text(body, "gem", required=True) or ""
        field = _text(body, "field", required=True) or ""
        request = _text(body, "request") or ""
        pipeline, copilot = await self.subject(body)
        await self.answer(
            lambda _: {"suggestions": copilot.suggest_expression(pipeline, gem, field, request)}
        )


AI_ROUTES: tuple[tuple[str, type[ProphecyHandler]], ...] = (
    ("/ai/status", AIStatusHandler),
    ("/ai/build", AIBuildHandler),
    ("/ai/describe", AIDescribeHandler),
    ("/ai/explain", AIExplainHandler),
    ("/ai/fix", AIFixHandler),
    ("/ai/suggest", AISuggestHandler),
)
"""The copilot's routes, as the path templates of ``openapi.yaml``."""
