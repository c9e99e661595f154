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


def test_add_a_fabric_with_a_secret_that_stays_masked_and_out_of_the_project(
    studio: Studio,
) -> None:
    studio.open()
    page = studio.page
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[title='Prophecy Studio']").click()
    sidebar = page.locator("#prophecy-studio-sidebar")
    sidebar.get_by_test_id("prophecy-project-select").select_option(label="shop")
    sidebar.get_by_test_id("prophecy-add-fabric").click()
    form = sidebar.get_by_test_id("prophecy-fabric-form")
    form.get_by_test_id("prophecy-fabric-name").fill("warehouse")
    form.get_by_test_id("prophecy-fabric-kind").select_option("postgres")
    form.get_by_test_id("prophecy-fabric-add-option").click()
    option = form.get_by_test_id("prophecy-fabric-option").last
    option.get_by_test_id("prophecy-fabric-option-key").fill("host")
    option.get_by_test_id("prophecy-fabric-option-value").fill("db.internal")
    form.get_by_test_id("prophecy-fabric-add-secret").click()
    secret = form.get_by_test_id("prophecy-fabric-secret").last
    secret.get_by_test_id("prophecy-fabric-secret-key").fill("password")
    secret.get_by_test_id("prophecy-fabric-secret-value").fill("s3cret-value")
    studio.shot("form-filled")
    form.get_by_test_id("prophecy-fabric-save").click()

    item = sidebar.locator("[data-testid=prophecy-fabric-item][data-name=warehouse]")
    expect(item).to_be_visible()
    fabric_file = studio.lab.shop / "fabrics" / "warehouse.yml"
    try:
        text = fabric_file.read_text(encoding="utf-8")
        assert "db.internal" in text and "password" in text
        assert "s3cret-value" not in text, "a secret value was written into the project"

        item.get_by_test_id("prophecy-fabric-edit").click()
        edited = sidebar.get_by_test_id("prophecy-fabric-form")
        value = edited.get_by_test_id("prophecy-fabric-secret-value")
        expect(value).to_have_attribute("type", "password")
        assert value.input_value() != "s3cret-value"
        expect(edited.get_by_test_id("prophecy-fabric-secret-state")).to_contain_text("stored")
        assert "s3cret-value" not in (sidebar.inner_html())
        studio.shot("editing-masked")
        edited.get_by_test_id("prophecy-fabric-cancel").click()

        item.get_by_test_id("prophecy-fabric-test").click()
        result = item.get_by_test_id("prophecy-fabric-test-result")
        expect(result).to_have_attribute("data-state", "failed", timeout=30_000)
        expect(result).to_contain_text("cannot connect to postgres at db.internal")
        studio.shot("tested")
    finally:
        fabric_file.unlink(missing_ok=True)
