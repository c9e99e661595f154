"""The editor's AI panel as a person uses it: ask for a change, watch the answer stream in,
see the proposed gem marked on the proposal's canvas, accept it (then undo it) or reject it,
and stop an answer half-way. The copilot talks to a local Messages-API server, configured
through the lab's secret store (read on every request) for these tests only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Locator, expect

from prophecy_jupyter.ai.settings import save_settings
from prophecy_jupyter.fabrics import SecretStore
from tests.browser.conftest import Lab, Studio, center, eventually
from tests.messages_api_server import (
    API_KEY,
    MessagesAPIServer,
    Recorded,
    Reply,
    text_reply,
    tool_reply,
)

PIPELINE = "shop/pipelines/customer_totals.pipeline.json"
WORDS = "I will add a filter named top_only after the ranked gem, keeping every row."
SUMMARY = "Add a Filter top_only after ranked."
TOP_ONLY = {
    "summary": SUMMARY,
    "add_gems": [{"id": "top_only", "kind": "Filter", "properties": {"condition": "true"}}],
    "add_connections": [{"from": "ranked", "to": "top_only"}],
}


@pytest.fixture
def api(lab: Lab) -> Iterator[MessagesAPIServer]:
    server = MessagesAPIServer().start()
    store = SecretStore(lab.root.parent / "secrets.json")
    save_settings({"api_key": API_KEY, "base_url": server.base_url}, secrets=store)
    try:
        yield server
    finally:
        save_settings({"api_key": None, "base_url": None}, secrets=store)
        server.stop()


def slow_proposal(pause: float = 2.5) -> Reply:
    """The proposal, its words held back for a moment after the first few."""
    reply = tool_reply("propose_pipeline", TOP_ONLY, text=WORDS)
    reply.stall_after = 6  # message_start, ping, block start, three deltas
    reply.stall = pause
    return reply


def open_ai(studio: Studio) -> Locator:
    studio.open(PIPELINE)
    studio.page.get_by_test_id("prophecy-ai").click()
    panel = studio.page.get_by_test_id("prophecy-ai-panel")
    expect(panel.get_by_test_id("prophecy-ai-input")).to_be_visible()
    return panel


def ask(panel: Locator, prompt: str) -> None:
    panel.get_by_test_id("prophecy-ai-input").fill(prompt)
    panel.get_by_test_id("prophecy-ai-send").click()


def main_gem(studio: Studio, gem_id: str) -> Locator:
    """A gem of the editor's own canvas (not of the proposal's)."""
    return studio.editor.locator(
        f".jp-Prophecy-center [data-testid=prophecy-gem][data-gem-id={gem_id}]"
    )


def test_ask_see_it_stream_accept_and_undo(studio: Studio, api: MessagesAPIServer) -> None:
    page = studio.page
    panel = open_ai(studio)
    studio.shot("panel-open")
    api.reply(slow_proposal())
    ask(panel, "Add a filter after ranked")

    streaming = panel.get_by_test_id("prophecy-ai-streaming")
    expect(streaming).to_contain_text("I will add a")
    expect(panel.get_by_test_id("prophecy-ai-stop")).to_be_visible()
    assert WORDS not in streaming.inner_text()  # only part of it so far
    studio.shot("streaming")

    proposal = panel.get_by_test_id("prophecy-ai-proposal")
    expect(proposal.get_by_test_id("prophecy-ai-summary")).to_have_text(SUMMARY)
    proposed = proposal.locator("[data-testid=prophecy-gem][data-gem-id=top_only]")
    expect(proposed).to_have_attribute("data-diff", "added")
    expect(proposed.get_by_test_id("prophecy-gem-diff")).to_have_text("added")
    expect(proposal.get_by_test_id("prophecy-diff-summary")).to_contain_text("1 added")
    expect(main_gem(studio, "top_only")).to_have_count(0)  # not applied yet
    # The model saw the open pipeline and the prompt.
    assert "Add a filter after ranked" in api.requests[-1].raw
    studio.shot("proposal")

    proposal.get_by_test_id("prophecy-ai-accept").click()
    expect(main_gem(studio, "top_only")).to_be_visible()
    expect(panel.get_by_test_id("prophecy-ai-proposal")).to_have_count(0)
    expect(panel.locator("[data-outcome=accepted]")).to_have_count(1)
    expect(page.get_by_test_id("prophecy-undo")).to_be_enabled()
    # Applied to the editor only: the file is written when the user saves.
    saved = (studio.lab.shop / "pipelines" / "customer_totals.pipeline.json").read_text()
    assert "top_only" not in saved
    studio.shot("accepted")

    studio.editor.locator(".jp-Prophecy-center .react-flow__pane").click(
        position={"x": 30, "y": 30}
    )
    page.keyboard.press("Control+z")
    expect(main_gem(studio, "top_only")).to_have_count(0)
    expect(main_gem(studio, "ranked")).to_be_visible()
    studio.shot("undone")

    # The next question carries the conversation so far.
    api.reply(tool_reply("propose_pipeline", TOP_ONLY, text="Again."))
    ask(panel, "Do it again")
    expect(panel.get_by_test_id("prophecy-ai-proposal")).to_be_visible()
    messages = api.requests[-1].body["messages"]
    assert messages[0]["content"] == "Add a filter after ranked"
    assert "accepted" in messages[1]["content"]
    studio.shot("second-turn")


def test_reject_drops_the_proposal(studio: Studio, api: MessagesAPIServer) -> None:
    panel = open_ai(studio)
    api.reply(tool_reply("propose_pipeline", TOP_ONLY, text=WORDS))
    ask(panel, "Add a filter after ranked")
    proposal = panel.get_by_test_id("prophecy-ai-proposal")
    expect(proposal.locator("[data-gem-id=top_only]")).to_have_attribute("data-diff", "added")
    studio.shot("proposal")
    proposal.get_by_test_id("prophecy-ai-reject").click()
    expect(panel.get_by_test_id("prophecy-ai-proposal")).to_have_count(0)
    expect(panel.locator("[data-outcome=rejected]")).to_contain_text("Rejected")
    expect(main_gem(studio, "top_only")).to_have_count(0)
    expect(studio.page.get_by_test_id("prophecy-undo")).to_be_disabled()
    studio.shot("rejected")


def test_stop_mid_stream(studio: Studio, api: MessagesAPIServer) -> None:
    panel = open_ai(studio)
    api.reply(slow_proposal(pause=30))
    ask(panel, "Add a filter after ranked")
    expect(panel.get_by_test_id("prophecy-ai-streaming")).to_contain_text("I will add a")
    studio.shot("streaming")
    panel.get_by_test_id("prophecy-ai-stop").click()
    expect(panel.get_by_test_id("prophecy-ai-streaming")).to_have_count(0)
    expect(panel.locator("[data-outcome=stopped]")).to_contain_text("I will add a")
    expect(panel.get_by_test_id("prophecy-ai-proposal")).to_have_count(0)
    expect(panel.get_by_test_id("prophecy-ai-send")).to_be_visible()
    studio.shot("stopped")
    # The server let go of the model call when the browser closed the connection.
    for _ in range(100):
        if "AI request cancelled" in studio.lab.server.log_text():
            break
        studio.page.wait_for_timeout(100)
    assert "AI request cancelled" in studio.lab.server.log_text()


def test_the_panel_says_how_to_turn_ai_on_when_it_is_off(studio: Studio) -> None:
    studio.open(PIPELINE)
    studio.page.get_by_test_id("prophecy-ai").click()
    panel = studio.page.get_by_test_id("prophecy-ai-panel")
    off = panel.get_by_test_id("prophecy-ai-off")
    expect(off).to_contain_text("AI is off")
    expect(off).to_contain_text("ANTHROPIC_API_KEY")
    studio.shot("off")


def test_explain_the_selected_gem(studio: Studio, api: MessagesAPIServer) -> None:
    panel = open_ai(studio)
    studio.gem("shipped").click()
    explain = panel.get_by_test_id("prophecy-ai-explain")
    expect(explain).to_have_text("Explain shipped")
    api.reply(text_reply("The gem keeps the orders that were shipped."))
    explain.click()
    expect(panel.locator("[data-outcome=answer]")).to_have_text(
        "The gem keeps the orders that were shipped."
    )
    assert "shipped" in json.dumps(api.requests[-1].body["messages"])
    studio.shot("explained")


def test_fix_a_gem_with_a_problem(studio: Studio, api: MessagesAPIServer) -> None:
    path = studio.lab.shop / "pipelines" / "customer_totals.pipeline.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    for gem in document["gems"]:
        if gem["id"] == "shipped":
            gem["properties"]["condition"] = "stat = 'shipped'"
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    panel = open_ai(studio)
    expect(studio.validity).to_contain_text("problem")
    studio.gem("shipped").click()
    fix = panel.get_by_test_id("prophecy-ai-fix")
    expect(fix).to_be_visible()
    studio.shot("problem")
    edit = {
        "summary": "Use the status column.",
        "update_gems": [{"id": "shipped", "properties": {"condition": "status = 'shipped'"}}],
    }
    api.reply(tool_reply("propose_pipeline", edit, text="The column is called status."))
    fix.click()
    proposal = panel.get_by_test_id("prophecy-ai-proposal")
    marked = proposal.locator("[data-testid=prophecy-gem][data-gem-id=shipped]")
    expect(marked).to_have_attribute("data-diff", "changed")
    assert "stat" in api.requests[-1].raw  # the problem went to the model
    studio.shot("proposed-fix")
    proposal.get_by_test_id("prophecy-ai-accept").click()
    expect(studio.validity).to_have_text("Valid")
    expect(panel.get_by_test_id("prophecy-ai-fix")).to_have_count(0)
    studio.shot("fixed")


def user_text(request: Recorded) -> str:
    """The text of the user turns of a recorded request, as the model reads it."""
    parts: list[str] = []
    for message in request.body["messages"]:
        content = message["content"]
        blocks = [content] if isinstance(content, str) else content
        parts.extend(b if isinstance(b, str) else b.get("text", "") for b in blocks)
    return "\n".join(parts)


def saved_pipeline(studio: Studio, holds: str) -> dict[str, Any] | None:
    """The pipeline file once its text holds ``holds``; a read during the save is "not yet"."""
    text = (studio.lab.root / PIPELINE).read_text(encoding="utf-8")
    if holds not in text:
        return None
    try:
        saved: dict[str, Any] = json.loads(text)
    except ValueError:
        return None
    return saved


def save(studio: Studio) -> None:
    studio.editor.locator(".jp-Prophecy-center .react-flow__pane").click(
        position={"x": 30, "y": 30}
    )
    studio.page.keyboard.press("Control+s")


DESCRIBED_SUMMARY = "Describe by_customer and its columns."
DESCRIBED = {
    "summary": DESCRIBED_SUMMARY,
    "update_gems": [
        {
            "id": "by_customer",
            "description": "Shipped revenue and orders per customer.",
            "columns": {
                "total": "Revenue of the customer's shipped orders, rounded to cents.",
                "orders": "Number of distinct shipped orders.",
            },
        }
    ],
}


def test_describe_a_gem_accept_and_save(studio: Studio, api: MessagesAPIServer) -> None:
    studio.open(PIPELINE)
    studio.gem("by_customer").click()  # selected before the panel narrows the canvas
    studio.page.get_by_test_id("prophecy-ai").click()
    panel = studio.page.get_by_test_id("prophecy-ai-panel")
    describe = panel.get_by_test_id("prophecy-ai-describe")
    expect(describe).to_have_text("Describe by_customer")
    api.reply(tool_reply("propose_pipeline", DESCRIBED, text="Here are the descriptions."))
    describe.click()
    proposal = panel.get_by_test_id("prophecy-ai-proposal")
    marked = proposal.locator("[data-testid=prophecy-gem][data-gem-id=by_customer]")
    expect(marked).to_have_attribute("data-diff", "changed")
    expect(proposal.get_by_test_id("prophecy-ai-summary")).to_have_text(DESCRIBED_SUMMARY)
    # The proposed texts are there to read before accepting.
    expect(proposal.locator("[data-testid=prophecy-ai-proposed-docs] dt")).to_have_text(
        ["by_customer", "by_customer.total", "by_customer.orders"]
    )
    expect(proposal.get_by_test_id("prophecy-ai-proposed-docs")).to_contain_text(
        "Number of distinct shipped orders."
    )
    sent = user_text(api.requests[-1])
    assert "by_customer" in sent
    assert 'name="sample_rows"' not in sent  # schema only unless asked
    studio.shot("describe-proposed")

    proposal.get_by_test_id("prophecy-ai-accept").click()
    studio.properties.get_by_test_id("prophecy-docs-tab").click()
    docs = studio.properties.get_by_test_id("prophecy-gem-docs")
    expect(docs.get_by_test_id("prophecy-gem-description")).to_have_value(
        "Shipped revenue and orders per customer."
    )
    total = docs.locator("tr[data-column=total] input")
    expect(total).to_have_value("Revenue of the customer's shipped orders, rounded to cents.")
    expect(docs.locator("tr[data-column=region] input")).to_have_value("")
    studio.shot("describe-accepted")

    save(studio)
    saved = eventually(lambda: saved_pipeline(studio, "distinct shipped orders"))
    gem = next(g for g in saved["gems"] if g["id"] == "by_customer")
    assert gem["description"] == "Shipped revenue and orders per customer."
    assert gem["columns"] == {
        "orders": {"description": "Number of distinct shipped orders."},
        "total": {"description": "Revenue of the customer's shipped orders, rounded to cents."},
    }


def test_sample_rows_go_only_with_the_request_they_were_ticked_for(
    studio: Studio, api: MessagesAPIServer
) -> None:
    panel = open_ai(studio)
    rows = panel.get_by_test_id("prophecy-ai-sample-rows")
    expect(rows).not_to_be_checked()
    rows.check()
    api.reply(text_reply("It totals shipped revenue per customer."))
    panel.get_by_test_id("prophecy-ai-explain").click()
    expect(panel.locator("[data-outcome=answer]")).to_have_count(1)
    sent = user_text(api.requests[-1])
    assert 'name="sample_rows"' in sent
    assert "Kim Brown" in sent.split('name="sample_rows"')[1]  # a value of the data
    expect(panel.get_by_test_id("prophecy-ai-rows-sent")).to_have_count(1)
    expect(rows).not_to_be_checked()  # opted in for that request only
    studio.shot("sent-with-rows")

    api.reply(text_reply("Again: it totals shipped revenue per customer."))
    panel.get_by_test_id("prophecy-ai-explain").click()
    expect(panel.locator("[data-outcome=answer]")).to_have_count(2)
    assert 'name="sample_rows"' not in user_text(api.requests[-1])
    expect(panel.get_by_test_id("prophecy-ai-rows-sent")).to_have_count(1)
    studio.shot("sent-without-rows")


def test_suggest_an_expression_in_the_properties_panel(
    studio: Studio, api: MessagesAPIServer
) -> None:
    studio.open(PIPELINE)
    studio.gem("shipped").click()
    properties = studio.properties
    properties.get_by_test_id("prophecy-suggest-open").click()
    box = properties.get_by_test_id("prophecy-suggest")
    api.reply(
        tool_reply(
            "suggest_expressions",
            {"candidates": ["status <> 'shipped'", "status = ((", "status IS NULL"]},
        )
    )
    box.get_by_test_id("prophecy-suggest-input").fill("orders not shipped yet")
    box.get_by_test_id("prophecy-suggest-input").press("Enter")
    suggestions = box.get_by_test_id("prophecy-suggestion")
    expect(suggestions).to_have_text(["status <> 'shipped'", "status IS NULL"])  # parsed only
    request = api.requests[-1]
    assert request.body["tool_choice"] == {"type": "tool", "name": "suggest_expressions"}
    sent = user_text(request)
    assert "orders not shipped yet" in sent and "/condition" in sent
    assert "status" in sent.split('name="input_columns"')[1]  # the input schema went along
    studio.shot("suggestions")

    suggestions.first.click()
    expect(properties.get_by_test_id("prophecy-expression").first).to_contain_text(
        "status <> 'shipped'"
    )
    expect(properties.get_by_test_id("prophecy-suggest")).to_have_count(0)
    studio.shot("suggestion-picked")
    save(studio)
    saved = eventually(lambda: saved_pipeline(studio, "status <> 'shipped'"))
    shipped = next(g for g in saved["gems"] if g["id"] == "shipped")
    assert shipped["properties"]["condition"] == "status <> 'shipped'"


def test_no_suggest_button_while_ai_is_off(studio: Studio) -> None:
    studio.open(PIPELINE)
    studio.gem("shipped").click()
    expect(studio.properties.get_by_test_id("prophecy-expression").first).to_be_visible()
    expect(studio.properties.get_by_test_id("prophecy-suggest-open")).to_have_count(0)


def test_side_panels_resize_and_keep_their_width(studio: Studio) -> None:
    page = studio.page
    studio.open(PIPELINE)
    page.get_by_test_id("prophecy-ai").click()
    panel = page.get_by_test_id("prophecy-ai-panel")
    properties = page.locator(".jp-Prophecy-properties")
    canvas = studio.editor.locator(".jp-Prophecy-center")

    def width(locator: Locator) -> float:
        box = locator.bounding_box()
        assert box is not None
        return box["width"]

    assert round(width(panel)) == 380 and round(width(properties)) == 320
    canvas_before = width(canvas)
    # Narrow the properties panel by dragging its edge right, as a hand does.
    handle = page.get_by_test_id("prophecy-properties-resize")
    x, y = center(handle)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y, steps=6)
    page.mouse.move(x + 100, y, steps=6)
    page.mouse.up()
    expect(handle).to_have_attribute("aria-valuenow", "220")
    assert round(width(properties)) == 220
    # Widen the AI panel from the keyboard.
    ai_handle = page.get_by_test_id("prophecy-ai-resize")
    ai_handle.focus()
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    expect(ai_handle).to_have_attribute("aria-valuenow", str(380 + 3 * 16))
    assert width(canvas) > canvas_before + 100 - 3 * 16 - 1
    studio.shot("resized")

    # The widths hold for the next editor opened in this browser.
    studio.open(PIPELINE)
    page.get_by_test_id("prophecy-ai").click()
    expect(page.get_by_test_id("prophecy-properties-resize")).to_have_attribute(
        "aria-valuenow", "220"
    )
    assert round(width(page.get_by_test_id("prophecy-ai-panel"))) == 380 + 3 * 16
