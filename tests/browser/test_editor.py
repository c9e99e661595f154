"""The pipeline editor as a person uses it: open, drag, connect, type, preview, save, run, undo."""

from __future__ import annotations

import csv
import json
import re
from typing import Any

from playwright.sync_api import Locator, expect

from tests.browser.conftest import Studio, center, eventually

PIPELINE = "shop/pipelines/customer_totals.pipeline.json"
SELECTED = re.compile(r"\bjp-mod-selected\b")
DIRTY = re.compile(r"\bjp-mod-dirty\b")
# How long a check that does not stop the test waits.
CHECK_MS = 3000


def is_selected(studio: Studio, gem_id: str = "filter_1") -> None:
    """The gem shows as selected, and the properties panel shows it."""
    expect(studio.gem(gem_id)).to_have_class(SELECTED, timeout=CHECK_MS)
    expect(studio.page.get_by_test_id("prophecy-gem-id-input")).to_have_value(
        gem_id, timeout=CHECK_MS
    )


def saved_with(studio: Studio, gem_id: str) -> dict[str, Any] | None:
    """The pipeline file as saved, once it holds ``gem_id``. Jupyter's contents manager
    rewrites a file in place (keeping a backup copy aside), so a read during the save may
    see it empty or cut short: that is "not yet"."""
    try:
        saved: dict[str, Any] = json.loads((studio.lab.root / PIPELINE).read_text(encoding="utf-8"))
    except ValueError:
        return None
    return saved if any(gem["id"] == gem_id for gem in saved["gems"]) else None


def document_tab(studio: Studio, name: str) -> Locator:
    return studio.page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text=name)


def legible(element: Locator) -> None:
    """The element's text is not drawn in the colour of its own background."""
    colors = element.evaluate(
        "e => { const s = getComputedStyle(e); return [s.color, s.backgroundColor]; }"
    )
    assert colors[0] != colors[1], f"text and background are both {colors[0]}"


def test_open_a_pipeline_from_the_file_browser(studio: Studio) -> None:
    studio.open()
    page = studio.page
    listing = page.locator(".jp-DirListing-content")
    for name in ("shop", "pipelines", "customer_totals.pipeline.json"):
        listing.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{name}$")).dblclick()
        if name != "customer_totals.pipeline.json":
            expect(page.locator(".jp-FileBrowser-crumbs")).to_contain_text(name)
            studio.shot(f"in-{name}")
    expect(studio.editor).to_be_visible()
    expect(studio.gems).to_have_count(9)
    expect(studio.validity).to_have_text("Valid")
    expect(document_tab(studio, "customer_totals.pipeline.json")).to_be_visible()
    studio.shot("valid")


def empty_spot(studio: Studio, fx: float, fy: float) -> tuple[float, float]:
    """A point of the canvas at fractions (fx, fy) of its size, checked to be bare pane."""
    box = studio.page.locator(".react-flow__pane").bounding_box()
    assert box is not None
    x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
    hit = studio.page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y)?.className ?? ''", [x, y]
    )
    assert "react-flow__pane" in str(hit), f"({x}, {y}) is on {hit}, not on the bare canvas"
    return x, y


def test_drag_a_filter_connect_it_type_a_condition_preview_and_save(studio: Studio) -> None:
    studio.open(PIPELINE)
    page = studio.page
    expect(studio.gems).to_have_count(9)
    studio.shot("opened")

    drop = empty_spot(studio, 0.45, 0.12)
    palette_item = page.locator("[data-testid=prophecy-palette-item][data-kind=Filter]")
    pane = page.locator(".react-flow__pane")
    pane_box = pane.bounding_box()
    assert pane_box is not None
    palette_item.drag_to(
        pane, target_position={"x": drop[0] - pane_box["x"], "y": drop[1] - pane_box["y"]}
    )
    added = studio.gem("filter_1")
    expect(added).to_be_visible()
    expect(studio.gems).to_have_count(10)
    selected_on_drop = studio.check("the dropped gem is selected", lambda: is_selected(studio))
    # It landed where it was dropped: its top-left corner is at the drop point.
    box = studio.node("filter_1").bounding_box()
    assert box is not None
    assert abs(box["x"] - drop[0]) < 3 and abs(box["y"] - drop[1]) < 3, (box, drop)
    studio.shot("filter-dropped")

    # The new gem's problems (no condition yet) make it taller: aim once it has them.
    expect(studio.validity).not_to_have_text("Checking…")
    output = studio.gem("orders").locator(".react-flow__handle.source")
    studio.drag(output, center(added.locator("[data-port=in0]")), steps=15)
    edge = page.locator(".react-flow__edge[data-id='orders->filter_1:in0']")
    expect(edge).to_have_count(1)
    studio.shot("connected")

    if not selected_on_drop:
        added.click()  # carry on as a person would, to check the rest of the flow
    is_selected(studio)
    expression = studio.properties.locator("[data-testid=prophecy-expression] .cm-content")
    expression.click()
    page.keyboard.type("quantity > 2")
    expect(expression).to_have_text("quantity > 2")
    page.keyboard.press("Escape")  # close the completion list
    expect(studio.validity).to_have_text("Valid")

    def filtered_preview() -> list[int] | None:
        status = page.get_by_test_id("prophecy-preview-status").text_content() or ""
        if not status.startswith("filter_1:"):
            return None
        header, rows = studio.preview_table()
        column = header.index("quantity")
        values = [int(row[column]) for row in rows]
        return values if values and all(v > 2 for v in values) else None

    quantities = eventually(filtered_preview)
    assert len(quantities) == page.get_by_test_id("prophecy-preview-row").count() > 0
    studio.shot("preview-filtered")

    tab = document_tab(studio, "customer_totals.pipeline.json")
    studio.check("the edited document is marked dirty", lambda: expect(tab).to_have_class(DIRTY))
    page.mouse.click(*empty_spot(studio, 0.3, 0.9))
    page.keyboard.press("Control+s")
    saved = eventually(lambda: saved_with(studio, "filter_1"))
    expect(tab).not_to_have_class(DIRTY)
    gems = {gem["id"]: gem for gem in saved["gems"]}
    assert gems["filter_1"]["kind"] == "Filter"
    assert gems["filter_1"]["properties"]["condition"] == "quantity > 2"
    assert {"from": "orders", "to": "filter_1", "port": "in0"} in saved["connections"]
    studio.shot("saved")
    studio.assert_checks()


def test_run_the_pipeline_from_the_toolbar(studio: Studio) -> None:
    studio.open(PIPELINE)
    page = studio.page
    expect(studio.validity).to_have_text("Valid")
    studio.shot("opened")
    page.get_by_test_id("prophecy-run").click()
    status = page.get_by_test_id("prophecy-run-status")
    expect(status).to_be_visible()
    studio.shot("running")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(status).to_contain_text("Succeeded")
    studio.check("the run status can be read", lambda: legible(status))
    expect(studio.gems).to_have_count(9)
    for gem_id in studio.gems.evaluate_all("gems => gems.map(g => g.dataset.gemId)"):
        expect(studio.gem(gem_id)).to_have_attribute("data-status", "succeeded")
    labels = page.locator(".react-flow__edge-text")
    expect(labels).to_have_count(8)
    for label in labels.all_text_contents():
        assert re.fullmatch(r"[\d,]+ rows", label), label
    studio.shot("succeeded")
    studio.assert_checks()


def test_run_saves_unsaved_edits_before_running(studio: Studio) -> None:
    studio.open(PIPELINE)
    page = studio.page
    expect(studio.validity).to_have_text("Valid")
    studio.gem("shipped").click()
    expression = studio.properties.locator("[data-testid=prophecy-expression] .cm-content")
    expression.click()
    page.keyboard.press("Control+a")
    page.keyboard.type("quantity > 4")
    page.keyboard.press("Escape")  # close the completion list
    expect(expression).to_have_text("quantity > 4")
    expect(studio.validity).to_have_text("Valid")
    studio.shot("edited")

    page.get_by_test_id("prophecy-run").click()
    status = page.get_by_test_id("prophecy-run-status")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=60_000)
    studio.shot("succeeded")
    saved = json.loads((studio.lab.root / PIPELINE).read_text(encoding="utf-8"))
    (shipped,) = [gem for gem in saved["gems"] if gem["id"] == "shipped"]
    assert shipped["properties"]["condition"] == "quantity > 4", "the run did not save the edit"
    with (studio.lab.shop / "data" / "orders.csv").open(encoding="utf-8") as orders:
        expected = sum(int(row["quantity"]) > 4 for row in csv.DictReader(orders))
    rows = studio.gem("shipped").locator(".jp-Prophecy-gem-rows")
    expect(rows).to_have_text(f"{expected:,} rows")


def test_a_bad_expression_shows_on_the_gem_the_field_and_the_toolbar(studio: Studio) -> None:
    studio.open(PIPELINE)
    page = studio.page
    expect(studio.validity).to_have_text("Valid")
    studio.gem("shipped").click()
    expression = studio.properties.locator("[data-testid=prophecy-expression] .cm-content")
    expect(expression).to_have_text("status = $status")
    studio.shot("shipped-selected")
    expression.click()
    page.keyboard.press("Control+a")
    page.keyboard.type("no_such_column = 1")
    page.keyboard.press("Escape")  # close the completion list
    expect(expression).to_have_text("no_such_column = 1")

    error = studio.gem("shipped").get_by_test_id("prophecy-gem-error")
    expect(error).to_be_visible(timeout=5000)
    expect(error).to_contain_text("no_such_column")
    expect(studio.properties).to_contain_text("no_such_column", ignore_case=True)
    field_error = studio.properties.locator(".error-detail")
    expect(field_error).to_contain_text("no_such_column")
    expect(studio.validity).to_have_text("1 problem")
    expect(studio.validity).to_have_class(re.compile(r"\bjp-mod-error\b"))
    studio.shot("error-shown")

    page.get_by_test_id("prophecy-tab-problems").click()
    problems = page.get_by_test_id("prophecy-problems")
    expect(problems.locator("li")).to_have_count(1)
    expect(problems).to_contain_text("shipped")
    studio.shot("problems-tab")


def test_undo_and_redo_a_move_with_the_keyboard(studio: Studio) -> None:
    studio.open(PIPELINE)
    page = studio.page
    expect(studio.gems).to_have_count(9)
    node = studio.node("products")
    placed = node.evaluate("n => n.style.transform")
    box = node.bounding_box()
    assert box is not None
    studio.shot("opened")

    x, y = center(studio.gem("products"))
    studio.drag(studio.gem("products"), (x + 60, y + 90))
    moved = node.evaluate("n => n.style.transform")
    assert moved != placed
    after = node.bounding_box()
    assert after is not None
    assert after["x"] - box["x"] > 40 and after["y"] - box["y"] > 60, (box, after)
    expect(page.get_by_test_id("prophecy-undo")).to_be_enabled()
    studio.shot("moved")

    page.keyboard.press("Control+z")
    expect(node).to_have_attribute("style", re.compile(re.escape(f"transform: {placed}")))
    expect(page.get_by_test_id("prophecy-redo")).to_be_enabled()
    studio.shot("undone")

    page.keyboard.press("Control+Shift+z")
    expect(node).to_have_attribute("style", re.compile(re.escape(f"transform: {moved}")))
    studio.shot("redone")
