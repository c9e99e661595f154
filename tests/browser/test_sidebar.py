"""The Prophecy Studio sidebar: choose a project, open its pipelines, test a fabric."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.browser.conftest import Studio

SHOP_PIPELINES = ["channel_report", "clean_contacts", "customer_totals", "top_products"]


def test_the_sidebar_lists_pipelines_opens_one_and_tests_a_fabric(studio: Studio) -> None:
    studio.open()
    page = studio.page
    tab = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[title='Prophecy Studio']")
    tab.click()
    sidebar = page.locator("#prophecy-studio-sidebar")
    expect(sidebar).to_be_visible()
    studio.shot("sidebar-open")

    choice = sidebar.get_by_test_id("prophecy-project-select")
    choice.select_option(label="shop")
    expect(choice).to_have_value("shop")
    items = sidebar.get_by_test_id("prophecy-pipeline-item")
    expect(items).to_have_count(len(SHOP_PIPELINES))
    names = items.evaluate_all("items => items.map(i => i.dataset.name)")
    assert sorted(names) == SHOP_PIPELINES
    studio.shot("project-chosen")

    items.filter(has_text="top_products").click()
    expect(studio.editor).to_be_visible()
    document = page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current")
    expect(document).to_contain_text("top_products.pipeline.json")
    saved = json.loads(
        (studio.lab.shop / "pipelines" / "top_products.pipeline.json").read_text(encoding="utf-8")
    )
    expect(studio.gems).to_have_count(len(saved["gems"]))
    expect(studio.validity).to_have_text("Valid")
    studio.shot("pipeline-opened")

    fabric = sidebar.locator("[data-testid=prophecy-fabric-item][data-name=in-memory]")
    expect(fabric).to_be_visible()
    expect(fabric.get_by_test_id("prophecy-fabric-default")).to_be_visible()
    fabric.get_by_test_id("prophecy-fabric-test").click()
    result = fabric.get_by_test_id("prophecy-fabric-test-result")
    expect(result).to_have_attribute("data-state", "ok", timeout=30_000)
    expect(result).to_contain_text("Connected")
    studio.shot("fabric-tested")
