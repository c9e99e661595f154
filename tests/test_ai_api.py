"""The AI API (``/prophecy/api/v1/ai/…``) of a real Jupyter server whose copilot talks to a
local Messages-API server through the real SDK: JSON and streamed answers, a client that
goes away cancelling the model call, the endpoint's errors as statuses, and no secret in
any answer or log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from prophecy_jupyter.server.launcher import ServerProcess
from tests.messages_api_server import (
    API_KEY,
    MessagesAPIServer,
    Reply,
    error_reply,
    text_reply,
    tool_reply,
)
from tests.test_server_support import copy_shop

PIPELINE = "customer_totals"

TOP_ONLY = {
    "summary": "Keep the ranked customers in a Filter top_only.",
    "add_gems": [{"id": "top_only", "kind": "Filter", "properties": {"condition": "true"}}],
    "add_connections": [{"from": "ranked", "to": "top_only"}],
}


def ai_env(api: MessagesAPIServer, base: Path, **extra: str) -> dict[str, str]:
    return {
        "PROPHECY_SECRETS_FILE": str(base / "secrets.json"),
        "ANTHROPIC_API_KEY": API_KEY,
        "ANTHROPIC_BASE_URL": api.base_url,
        "PROPHECY_AI_MODEL": "test-model",
        "PROPHECY_AI_MAX_RETRIES": "0",
        "PROPHECY_AI_TIMEOUT": "3",
        **extra,
    }


def start_server(base: Path, env: dict[str, str]) -> ServerProcess:
    root = copy_shop(base / "shop")
    return ServerProcess(root, env=env, log_path=base / "server.log").start()


@pytest.fixture(scope="module")
def api() -> Iterator[MessagesAPIServer]:
    server = MessagesAPIServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(
    api: MessagesAPIServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("ai")
    running = start_server(base, ai_env(api, base))
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(autouse=True)
def fresh(api: MessagesAPIServer) -> None:
    api.replies.clear()
    api.requests.clear()


def post(server: ServerProcess, action: str, body: dict[str, Any], **kwargs: Any) -> Any:
    return requests.post(
        f"{server.api}/ai/{action}",
        json=body,
        headers={**server.headers, **kwargs.pop("headers", {})},
        timeout=60,
        **kwargs,
    )


def events(response: requests.Response) -> list[tuple[str, Any]]:
    """The Server-Sent Events of a whole answer, as (event, data)."""
    found: list[tuple[str, Any]] = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((lines["event"], json.loads(lines["data"])))
    return found


STREAM = {"Accept": "text/event-stream"}


def test_status_names_the_model_and_never_the_key(server: ServerProcess) -> None:
    answer = requests.get(f"{server.api}/ai/status", headers=server.headers, timeout=30)
    assert answer.status_code == 200
    status = answer.json()
    assert status["enabled"] is True
    assert status["configured"] is True
    assert status["model"] == "test-model"
    assert status["reason"] is None
    assert API_KEY not in answer.text


def test_build_answers_a_proposal_as_json(server: ServerProcess, api: MessagesAPIServer) -> None:
    api.reply(tool_reply("propose_pipeline", TOP_ONLY, text="Adding a filter."))
    history = [
        {"role": "user", "content": "What does ranked do?"},
        {"role": "assistant", "content": "It orders customers by total."},
    ]
    answer = post(
        server,
        "build",
        {"name": PIPELINE, "prompt": "Add a filter after ranked", "history": history},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    proposal = answer.json()
    assert proposal["summary"] == TOP_ONLY["summary"]
    assert proposal["issues"] == []
    assert "top_only" in [g["id"] for g in proposal["document"]["gems"]]
    assert {"id": "top_only", "status": "added"}.items() <= proposal["diff"]["gems"][0].items()
    # Nothing was written: the saved pipeline has no such gem.
    saved = requests.get(f"{server.api}/pipelines/{PIPELINE}", headers=server.headers, timeout=30)
    assert "top_only" not in saved.text
    # The conversation so far went to the model before the new prompt.
    sent = api.requests[-1].body["messages"]
    assert sent[0]["content"] == "What does ranked do?"
    assert sent[1]["content"] == "It orders customers by total."
    assert "Add a filter after ranked" in json.dumps(sent[2])
    assert API_KEY not in answer.text


def test_build_streams_text_then_the_proposal(
    server: ServerProcess, api: MessagesAPIServer
) -> None:
    words = "I will add a filter named top_only after the ranked gem."
    api.reply(tool_reply("propose_pipeline", TOP_ONLY, text=words))
    draft = json.loads((server.root / "pipelines" / f"{PIPELINE}.pipeline.json").read_text())
    draft["description"] = "an unsaved draft"
    answer = post(
        server,
        "build",
        {"name": PIPELINE, "pipeline": draft, "prompt": "Add a filter"},
        headers=STREAM,
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/event-stream")
    found = events(answer)
    texts = [data["text"] for event, data in found if event == "text"]
    assert len(texts) > 1  # deltas, one event each
    assert "".join(texts) == words
    last_event, proposal = found[-1]
    assert last_event == "proposal"
    assert "top_only" in [g["id"] for g in proposal["document"]["gems"]]
    # The draft, not the file, is what the model saw and what the proposal changes.
    assert "an unsaved draft" in api.requests[-1].raw
    assert proposal["document"]["description"] == "an unsaved draft"


def test_explain_as_json_and_as_a_stream(server: ServerProcess, api: MessagesAPIServer) -> None:
    api.reply(text_reply("The gem keeps shipped orders."))
    answer = post(server, "explain", {"name": PIPELINE, "gem": "shipped"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"text": "The gem keeps shipped orders."}
    assert "shipped" in api.requests[-1].raw

    api.reply(text_reply("It ranks customers by what they spent."))
    found = events(post(server, "explain", {"name": PIPELINE}, headers=STREAM))
    assert "".join(d["text"] for e, d in found if e == "text") == (
        "It ranks customers by what they spent."
    )
    assert found[-1] == ("answer", {"text": "It ranks customers by what they spent."})


DESCRIBED = {
    "summary": "Described the filter and its columns.",
    "update_gems": [
        {
            "id": "shipped",
            "description": "Orders of the chosen status.",
            "columns": {"status": "Where the order is.", "quantity": "Items ordered."},
        }
    ],
}


def test_describe_answers_a_proposal_with_column_descriptions(
    server: ServerProcess, api: MessagesAPIServer
) -> None:
    saved_before = (server.root / "pipelines" / f"{PIPELINE}.pipeline.json").read_bytes()
    api.reply(tool_reply("propose_pipeline", DESCRIBED))
    answer = post(server, "describe", {"name": PIPELINE, "gem": "shipped"})
    assert answer.status_code == 200, answer.text
    proposal = answer.json()
    assert proposal["issues"] == []
    shipped = next(g for g in proposal["document"]["gems"] if g["id"] == "shipped")
    assert shipped["columns"] == {
        "quantity": {"description": "Items ordered."},
        "status": {"description": "Where the order is."},
    }
    assert [g["id"] for g in proposal["diff"]["gems"]] == ["shipped"]
    assert "gem 'shipped'" in api.requests[-1].raw
    assert "sample_rows" not in api.requests[-1].raw
    # Nothing was written.
    saved = (server.root / "pipelines" / f"{PIPELINE}.pipeline.json").read_bytes()
    assert saved == saved_before

    api.reply(tool_reply("propose_pipeline", DESCRIBED, text="Describing."))
    found = events(
        post(server, "describe", {"name": PIPELINE, "sample_rows": True}, headers=STREAM)
    )
    assert "".join(d["text"] for e, d in found if e == "text") == "Describing."
    last_event, streamed = found[-1]
    assert last_event == "proposal"
    assert streamed["document"] == proposal["document"]
    assert '<data name=\\"sample_rows\\">' in api.requests[-1].raw


def test_describe_refuses_a_column_the_gem_does_not_output(
    server: ServerProcess, api: MessagesAPIServer
) -> None:
    invented = {
        "summary": "Described.",
        "update_gems": [{"id": "shipped", "columns": {"shipped_on": "The day it left."}}],
    }
    api.reply(tool_reply("propose_pipeline", invented), tool_reply("propose_pipeline", invented))
    answer = post(server, "describe", {"name": PIPELINE})
    assert answer.status_code == 200, answer.text
    [issue] = answer.json()["issues"]
    assert issue["code"] == "unknown_column"
    assert issue["message"] == (
        "gem 'shipped' describes column 'shipped_on', which it does not output"
    )


def test_explain_sends_sample_rows_only_when_asked_for(
    server: ServerProcess, api: MessagesAPIServer
) -> None:
    api.reply(text_reply("It keeps shipped orders."), text_reply("It keeps shipped orders."))
    assert post(server, "explain", {"name": PIPELINE, "gem": "shipped"}).status_code == 200
    assert post(
        server, "explain", {"name": PIPELINE, "gem": "shipped", "sample_rows": True}
    ).json() == {"text": "It keeps shipped orders."}
    without, with_rows = (r.raw for r in api.requests)
    assert "sample_rows" not in without
    assert '<data name=\\"sample_rows\\">' in with_rows


@pytest.mark.parametrize("action", ["describe", "explain"])
def test_describe_and_explain_refuse_a_bad_body_as_json(
    server: ServerProcess, api: MessagesAPIServer, action: str
) -> None:
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        ({"name": PIPELINE, "sample_rows": "yes"}, 422, "/sample_rows"),
        ({"name": PIPELINE, "columns": {}}, 422, None),
        ({"name": PIPELINE, "gem": 3}, 422, "/gem"),
        ({}, 422, "/name"),
        ({"name": "no_such_pipeline"}, 404, None),
    ]
    for body, status, field in cases:
        for headers in ({}, STREAM):
            answer = post(server, action, body, headers=headers)
            assert answer.status_code == status, (body, answer.text)
            assert answer.headers["Content-Type"].startswith("application/json")
            if field is not None:
                assert answer.json()["error"]["field"] == field
    assert api.requests == []  # refused before the model was called


def test_fix_and_suggest(server: ServerProcess, api: MessagesAPIServer) -> None:
    fix = {
        "summary": "Use the status column.",
        "update_gems": [{"id": "shipped", "properties": {"condition": "status = 'shipped'"}}],
    }
    api.reply(tool_reply("propose_pipeline", fix))
    answer = post(
        server, "fix", {"name": PIPELINE, "gem": "shipped", "error": "unknown column 'stat'"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["summary"] == "Use the status column."
    assert "unknown column 'stat'" in api.requests[-1].raw

    api.reply(tool_reply("suggest_expressions", {"candidates": ["status = 'shipped'", "((("]}))
    answer = post(
        server,
        "suggest",
        {"name": PIPELINE, "gem": "shipped", "field": "condition", "request": "shipped only"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"suggestions": ["status = 'shipped'"]}


def test_a_client_that_goes_away_cancels_the_model_call(
    server: ServerProcess, api: MessagesAPIServer
) -> None:
    # The endpoint sends a few words, then holds the rest back for half a minute.
    api.reply(Reply(content=[{"type": "text", "text": "Thinking about it " * 20}], stall_after=6))
    started = time.monotonic()
    with post(server, "explain", {"name": PIPELINE}, headers=STREAM, stream=True) as answer:
        lines = answer.iter_lines(decode_unicode=True)
        assert next(line for line in lines if line) == "event: text"
    # The connection is closed: the server stops waiting for the model within moments.
    deadline = time.monotonic() + 10
    while "AI request cancelled" not in server.log_text():
        assert time.monotonic() < deadline, server.log_text()[-2000:]
        time.sleep(0.1)
    assert time.monotonic() - started < 15
    # And it answers the next request at once.
    api.reply(text_reply("Still here."))
    assert post(server, "explain", {"name": PIPELINE}).json() == {"text": "Still here."}
    assert "Traceback" not in server.log_text()


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        (
            error_reply(429, "rate_limit_error", "slow down", retry_after="7"),
            429,
            "ai_rate_limited",
        ),
        (error_reply(529, "overloaded_error", "overloaded"), 503, "ai_unavailable"),
        (error_reply(400, "invalid_request_error", "too long"), 502, "ai_error"),
        (text_reply("late", delay=6), 504, "ai_timeout"),
    ],
)
def test_the_endpoints_errors_map_to_statuses(
    server: ServerProcess, api: MessagesAPIServer, reply: Reply, status: int, code: str
) -> None:
    api.reply(reply)
    answer = post(server, "explain", {"name": PIPELINE})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code
    if status == 429:
        assert answer.headers["Retry-After"] == "7"
    # Streamed, the same error arrives as an event.
    api.reply(reply)
    found = events(post(server, "explain", {"name": PIPELINE}, headers=STREAM))
    assert found[-1][0] == "error"
    assert found[-1][1]["code"] == code


def test_request_errors_are_json_even_when_streaming(server: ServerProcess) -> None:
    cases: list[tuple[dict[str, Any], int]] = [
        ({"name": PIPELINE, "prompt": "  "}, 422),
        ({"name": PIPELINE}, 422),
        ({"name": PIPELINE, "prompt": "x", "extra": 1}, 422),
        ({"name": PIPELINE, "prompt": "x", "history": [{"role": "system", "content": "x"}]}, 422),
        ({"name": "no_such_pipeline", "prompt": "x"}, 404),
    ]
    for body, status in cases:
        answer = post(server, "build", body, headers=STREAM)
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["Content-Type"].startswith("application/json")


def test_a_refused_key_is_a_bad_gateway_that_says_so(
    api: MessagesAPIServer, tmp_path: Path
) -> None:
    env = ai_env(api, tmp_path, ANTHROPIC_API_KEY="sk-wrong-key-42")
    with start_server(tmp_path, env) as server:
        answer = post(server, "explain", {"name": PIPELINE})
        assert answer.status_code == 502
        error = answer.json()["error"]
        assert error["code"] == "ai_auth"
        assert "configured API key was refused" in error["message"]
        assert "sk-wrong-key-42" not in answer.text
        assert "sk-wrong-key-42" not in server.log_text()


def test_off_and_unconfigured(api: MessagesAPIServer, tmp_path: Path) -> None:
    disabled = ai_env(api, tmp_path / "off", PROPHECY_AI_DISABLED="1")
    (tmp_path / "off").mkdir()
    with start_server(tmp_path / "off", disabled) as server:
        status = requests.get(f"{server.api}/ai/status", headers=server.headers, timeout=30)
        assert status.json()["enabled"] is False
        assert "PROPHECY_AI_DISABLED" in status.json()["reason"]
        answer = post(server, "build", {"name": PIPELINE, "prompt": "x"}, headers=STREAM)
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "ai_disabled"
    unconfigured = ai_env(api, tmp_path / "none", ANTHROPIC_API_KEY="")
    (tmp_path / "none").mkdir()
    with start_server(tmp_path / "none", unconfigured) as server:
        status = requests.get(f"{server.api}/ai/status", headers=server.headers, timeout=30)
        assert status.json()["configured"] is False
        answer = post(server, "explain", {"name": PIPELINE})
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "ai_not_configured"
        assert "ANTHROPIC_API_KEY" in answer.json()["error"]["message"]
    assert not api.requests  # neither server called the model


def test_the_key_never_reaches_an_answer_or_the_log(
    server: ServerProcess, api: MessagesAPIServer
) -> None:
    api.reply(text_reply("Fine."))
    answer = post(server, "explain", {"name": PIPELINE}, headers=STREAM)
    assert answer.status_code == 200
    assert api.requests[-1].headers["x-api-key"] == API_KEY  # it was used, and only there
    assert API_KEY not in answer.text
    assert API_KEY not in server.log_text()
