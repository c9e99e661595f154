"""More of what a person does in the editor: files changed elsewhere, copy and paste, new
pipelines from the launcher, the code view and auto-layout."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from prophecy_jupyter.model.pipeline import dump_pipeline, load_pipeline
from tests.browser.conftest import Studio, eventually

PIPELINE = "shop/pipelines/customer_totals.pipeline.json"
DIRTY = re.compile(r"\bjp-mod-dirty\b")


def relabel_on_disk(path: Path, gem_id: str, label: str) -> None:
    """Change a gem's label as another program would: the CLI's writer, straight to disk."""
    pipeline = load_pipeline(path.read_bytes())
    pipeline.gem(gem_id).label = label
    path.write_text(dump_pipeline(pipeline), encoding="utf-8")


def saved(studio: Studio, path: str = PIPELINE) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((studio.lab.root / path).read_text(encoding="utf-8"))
    return data


def test_a_file_changed_elsewhere_reloads_when_there_are_no_unsaved_edits(
    studio: Studio,
) -> None:
    studio.open(PIPELINE)
    expect(studio.validity).to_have_text("Valid")
    relabel_on_disk(studio.lab.root / PIPELINE, "shipped", "Shipped orders")
    expect(studio.gem("shipped")).to_contain_text("Shipped orders", timeout=10_000)
    tab = studio.page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="customer_totals")
    expect(tab).not_to_have_class(DIRTY)
    studio.shot("reloaded")


def test_a_file_changed_elsewhere_under_unsaved_edits_is_announced_then_reloaded(
    studio: Studio,
) -> None:
    studio.open(PIPELINE)
    page = studio.page
    expect(studio.validity).to_have_text("Valid")
    page.get_by_test_id("prophecy-layout").click()  # an unsaved edit
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="customer_totals")
    expect(tab).to_have_class(DIRTY)
    relabel_on_disk(studio.lab.root / PIPELINE, "shipped", "Changed elsewhere")
    banner = page.get_by_test_id("prophecy-conflict")
    expect(banner).to_be_visible(timeout=10_000)
    expect(studio.gem("shipped")).not_to_contain_text("Changed elsewhere")
    studio.shot("announced")
    banner.get_by_role("button", name="Reload").click()
    expect(banner).to_be_hidden()
    expect(studio.gem("shipped")).to_contain_text("Changed elsewhere")
    expect(tab).not_to_have_class(DIRTY)
    studio.shot("reloaded")


def test_copy_paste_and_delete_gems_with_the_keyboard(studio: Studio) -> None:
    studio.open(PIPELINE)
    page = studio.page
    expect(studio.gems).to_have_count(9)
    studio.gem("shipped").click()
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")
    pasted = studio.gem("shipped_1")
    expect(pasted).to_be_visible()
    expect(studio.gems).to_have_count(10)
    expect(pasted).to_have_class(re.compile(r"\bjp-mod-selected\b"))
    expect(page.get_by_test_id("prophecy-gem-id-input")).to_have_value("shipped_1")
    expect(studio.properties.locator("[data-testid=prophecy-expression] .cm-content")).to_have_text(
        "status = $status"
    )
    studio.shot("pasted")

    pasted.click()  # as a person would, before pressing Delete
    page.keyboard.press("Delete")
    expect(studio.gems).to_have_count(9)
    expect(pasted).to_have_count(0)
    page.keyboard.press("Control+s")
    eventually(lambda: len(saved(studio)["gems"]) == 9 and "saved")
    studio.shot("deleted")


def test_new_pipeline_from_the_launcher(studio: Studio) -> None:
    studio.open("shop/pipelines")
    page = studio.page
    card = page.locator(".jp-LauncherCard", has_text="New Pipeline")
    expect(card).to_be_visible()
    studio.shot("launcher")
    card.click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("New pipeline in shop")
    dialog.locator("input").fill("fresh_orders")
    studio.shot("named")
    dialog.get_by_role("button", name=re.compile("OK|Create", re.I)).click()
    expect(studio.editor).to_be_visible()
    expect(studio.gems).to_have_count(0)
    file = studio.lab.root / "shop" / "pipelines" / "fresh_orders.pipeline.json"
    assert json.loads(file.read_text(encoding="utf-8"))["name"] == "fresh_orders"
    page.locator("[data-testid=prophecy-palette-item][data-kind=Source]").dblclick()
    expect(studio.gem("source_1")).to_be_visible()
    studio.shot("gem-added")
    file.unlink()


def test_the_code_view_shows_sql_in_the_chosen_dialect(studio: Studio) -> None:
    studio.open(PIPELINE)
    page = studio.page
    studio.gem("by_customer").click()
    page.get_by_test_id("prophecy-tab-code").click()
    sql = page.get_by_test_id("prophecy-sql")
    expect(sql).to_contain_text("-- by_customer")
    expect(sql).to_contain_text('FROM "with_customer"')
    expect(sql).to_contain_text("GROUP BY")
    page.get_by_test_id("prophecy-dialect").select_option("spark")
    expect(sql).to_contain_text("`shipped`")
    studio.shot("spark")
    page.get_by_test_id("prophecy-dialect").select_option("pyspark")
    expect(sql).to_contain_text("spark.read.format('csv')")
    expect(sql).to_contain_text("by_customer = ")
    studio.shot("pyspark")


def test_auto_layout_moves_gems_and_undo_puts_them_back(studio: Studio) -> None:
    studio.open(PIPELINE)
    page = studio.page
    expect(studio.gems).to_have_count(9)
    ids = studio.gems.evaluate_all("gems => gems.map(g => g.dataset.gemId)")
    before = {i: studio.node(i).evaluate("n => n.style.transform") for i in ids}
    page.get_by_test_id("prophecy-layout").click()
    eventually(
        lambda: studio.node("products").evaluate("n => n.style.transform") != before["products"]
    )
    after = {i: studio.node(i).evaluate("n => n.style.transform") for i in ids}
    assert after != before
    # Upstream gems sit left of the gems they feed.
    left = {i: studio.node(i).bounding_box()["x"] for i in ids}  # type: ignore[index]
    for source, target in [("orders", "shipped"), ("by_customer", "ranked")]:
        assert left[source] < left[target], (source, target, left)
    studio.shot("laid-out")
    page.get_by_test_id("prophecy-undo").click()
    eventually(
        lambda: all(studio.node(i).evaluate("n => n.style.transform") == before[i] for i in ids)
    )
    studio.shot("undone")
