"""A local server that speaks the Messages API (``POST /v1/messages``) as the real one does,
for the copilot's tests, with pytest fixtures that point the copilot at it.

Each test scripts the answers (`MessagesAPIServer.reply` queues `Reply` objects, one per
request) and reads what was sent (`MessagesAPIServer.requests`). Requests are checked as the
API checks them: the ``x-api-key`` header (401 ``authentication_error`` otherwise) and the
``anthropic-version`` header (400 otherwise). A reply is JSON, or server-sent events when
the request asks to stream: ``message_start``, ``ping``, ``content_block_start`` (text and
tool_use), ``content_block_delta`` (``text_delta``, ``input_json_delta`` in partial_json
chunks), ``content_block_stop``, ``message_delta`` (stop reason, usage), ``message_stop``.
Errors have the API's JSON shape. ``delay`` holds the answer back (timeouts) and
``stall_after`` stops a stream after some events (cancellation).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from prophecy_jupyter.fabrics import SecretStore
from prophecy_jupyter.model import Project, init_project

API_KEY = "sk-test-0123456789abcdef-key"


@dataclass
class Reply:
    """One scripted answer."""

    content: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    stop_reason: str | None = None
    error_type: str = "api_error"
    error_message: str = "error"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds before anything is answered."""
    stall_after: int | None = None
    """Stop streaming after this many events, for ``stall`` seconds (or until shutdown)."""
    stall: float = 30.0
    stream_error: str | None = None
    """Streaming: after ``stall_after`` events (or at once), send an ``error`` event of this
    type (``overloaded_error``…) and end, as the API does when it fails mid-stream."""


def text_reply(text: str, **options: Any) -> Reply:
    return Reply(content=[{"type": "text", "text": text}], **options)


def tool_reply(name: str, tool_input: dict[str, Any], text: str | None = None) -> Reply:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content.append(
        {
            "type": "tool_use",
            "id": f"toolu_{uuid.uuid4().hex[:20]}",
            "name": name,
            "input": tool_input,
        }
    )
    return Reply(content=content)


def error_reply(status: int, error_type: str, message: str, **headers: str) -> Reply:
    return Reply(
        status=status,
        error_type=error_type,
        error_message=message,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: str


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class MessagesAPIServer:
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.replies: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def reply(self, *replies: Reply) -> None:
        with self.lock:
            self.replies.extend(replies)

    def bodies(self) -> list[str]:
        return [r.raw for r in self.requests]

    def start(self) -> MessagesAPIServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _next(self) -> Reply | None:
        with self.lock:
            return self.replies.popleft() if self.replies else None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", f"req_{uuid.uuid4().hex[:16]}")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _error(
                self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
            ) -> None:
                body = {"type": "error", "error": {"type": kind, "message": message}}
                self._json(status, body, headers)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server.lock:
                    server.requests.append(Recorded(self.path, headers, body, raw))
                if self.path.split("?")[0] != "/v1/messages":
                    self._error(404, "not_found_error", f"no route {self.path}")
                    return
                if headers.get("x-api-key") != server.api_key:
                    self._error(401, "authentication_error", "invalid x-api-key")
                    return
                if not headers.get("anthropic-version"):
                    self._error(400, "invalid_request_error", "anthropic-version is required")
                    return
                reply = server._next()
                if reply is None:
                    self._error(500, "api_error", "no scripted reply left")
                    return
                if reply.delay and server.stopping.wait(reply.delay):
                    return
                if reply.status != 200:
                    self._error(reply.status, reply.error_type, reply.error_message, reply.headers)
                    return
                message = self._message(body, reply)
                try:
                    if body.get("stream"):
                        self._stream(message, reply)
                    else:
                        self._json(200, message)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            @staticmethod
            def _message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
                uses_tool = any(b["type"] == "tool_use" for b in reply.content)
                return {
                    "id": f"msg_{uuid.uuid4().hex[:24]}",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", "unknown"),
                    "content": reply.content,
                    "stop_reason": reply.stop_reason or ("tool_use" if uses_tool else "end_turn"),
                    "stop_sequence": None,
                    "usage": {"input_tokens": len(json.dumps(body)) // 4, "output_tokens": 17},
                }

            def _stream(self, message: dict[str, Any], reply: Reply) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("connection", "close")
                self.end_headers()
                sent = 0

                def event(kind: str, data: dict[str, Any]) -> None:
                    nonlocal sent
                    if reply.stall_after is not None and sent == reply.stall_after:
                        if reply.stream_error is not None:
                            error = {"type": reply.stream_error, "message": "failed mid-stream"}
                            payload = json.dumps({"type": "error", "error": error})
                            self.wfile.write(f"event: error\ndata: {payload}\n\n".encode())
                            self.wfile.flush()
                            raise BrokenPipeError  # ends the answer
                        server.stopping.wait(reply.stall)
                    payload = f"event: {kind}\ndata: {json.dumps(data)}\n\n"
                    self.wfile.write(payload.encode("utf-8"))
                    self.wfile.flush()
                    sent += 1

                start = {**message, "content": [], "stop_reason": None}
                start["usage"] = {**message["usage"], "output_tokens": 1}
                event("message_start", {"type": "message_start", "message": start})
                event("ping", {"type": "ping"})
                for index, block in enumerate(message["content"]):
                    if block["type"] == "text":
                        opening: dict[str, Any] = {"type": "text", "text": ""}
                        deltas = [
                            {"type": "text_delta", "text": c} for c in _chunks(block["text"], 7)
                        ]
                    else:
                        opening = {**block, "input": {}}
                        text = json.dumps(block["input"])
                        deltas = [{"type": "input_json_delta", "partial_json": ""}] + [
                            {"type": "input_json_delta", "partial_json": c}
                            for c in _chunks(text, 11)
                        ]
                    event(
                        "content_block_start",
                        {"type": "content_block_start", "index": index, "content_block": opening},
                    )
                    for delta in deltas:
                        event(
                            "content_block_delta",
                            {"type": "content_block_delta", "index": index, "delta": delta},
                        )
                    event("content_block_stop", {"type": "content_block_stop", "index": index})
                event(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                        "usage": {"output_tokens": message["usage"]["output_tokens"]},
                    },
                )
                event("message_stop", {"type": "message_stop"})

        return Handler


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def api_server() -> Iterator[MessagesAPIServer]:
    server = MessagesAPIServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ai_env(
    api_server: MessagesAPIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> SecretStore:
    """The copilot configured by environment for the test server, with a private secret
    store; returns that store."""
    secrets_file = tmp_path / "secrets.json"
    monkeypatch.setenv("PROPHECY_SECRETS_FILE", str(secrets_file))
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api_server.base_url)
    monkeypatch.setenv("PROPHECY_AI_MODEL", "test-model")
    monkeypatch.setenv("PROPHECY_AI_MAX_RETRIES", "0")
    monkeypatch.setenv("PROPHECY_AI_TIMEOUT", "10")
    monkeypatch.delenv("PROPHECY_AI_DISABLED", raising=False)
    return SecretStore(secrets_file)


ORDERS = {
    "id": "orders",
    "kind": "Source",
    "properties": {
        "format": "seed",
        "columns": [
            {"name": "id", "type": "INTEGER"},
            {"name": "amount", "type": "DOUBLE"},
            {"name": "status", "type": "VARCHAR"},
        ],
        "rows": [[1, 250.0, "shipped"], [2, 40.0, "open"], [3, 900.5, "shipped"]],
    },
}


@pytest.fixture
def ai_project(tmp_path: Path, ai_env: SecretStore) -> Project:
    """A project with pipeline ``sales``: a seed Source ``orders`` and a Filter ``shipped``."""
    project = init_project(tmp_path / "shop")
    (project.pipelines_dir / "sales.pipeline.json").write_text(
        json.dumps(
            {
                "version": 1,
                "name": "sales",
                "gems": [
                    ORDERS,
                    {
                        "id": "shipped",
                        "kind": "Filter",
                        "properties": {"condition": "status = 'shipped'"},
                    },
                ],
                "connections": [{"from": "orders", "to": "shipped"}],
            }
        )
    )
    return project
