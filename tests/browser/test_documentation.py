"""A gem's documentation as a person writes it in the properties panel: its description and
one for each output column, saved in the pipeline file, shown on the data preview's column
headers, and a description left behind by a column the gem no longer outputs."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Studio, eventually

PIPELINE = "shop/pipelines/customer_totals.pipeline.json"


def saved_pipeline(studio: Studio, holds: str) -> dict[str, Any] | None:
    """The pipeline file once its text holds ``holds``; a read during the save is "not yet"."""
    text = (studio.lab.root / PIPELINE).read_text(encoding="utf-8")
    try:
        return json.loads(text) if holds in text else None
    except ValueError:
        return None


def test_document_a_gem_and_its_columns_by_hand(studio: Studio) -> None:
    page = studio.page
    studio.open(PIPELINE)
    studio.gem("by_customer").click()
    tab = studio.properties.get_by_test_id("prophecy-docs-tab")
    expect(tab).to_have_text("Documentation")  # nothing written yet
    tab.click()
    docs = studio.properties.get_by_test_id("prophecy-gem-docs")
    rows = docs.locator("tr[data-column]")
    expect(rows).to_have_count(5)  # customer_id, name, region, orders, total
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.column)") == [
        "customer_id",
        "name",
        "region",
        "orders",
        "total",
    ]
    docs.get_by_test_id("prophecy-gem-description").fill("Revenue per customer.")
    docs.locator("tr[data-column=region] input").fill("Sales region of the customer")
    expect(tab).to_have_text("Documentation ✓")
    studio.shot("documented")

    page.get_by_role("button", name="Preview by_customer").click()
    region = page.locator("[data-testid=prophecy-preview] thead th", has_text="region")
    expect(region).to_have_attribute("title", "VARCHAR\nSales region of the customer")

    studio.editor.locator(".jp-Prophecy-center .react-flow__pane").click(
        position={"x": 30, "y": 30}
    )
    page.keyboard.press("Control+s")
    saved = eventually(lambda: saved_pipeline(studio, "Sales region of the customer"))
    gem = next(g for g in saved["gems"] if g["id"] == "by_customer")
    assert gem["description"] == "Revenue per customer."
    assert gem["columns"] == {"region": {"description": "Sales region of the customer"}}

    # Emptying the description takes it out of the file again.
    studio.gem("by_customer").click()
    docs.locator("tr[data-column=region] input").fill("")
    studio.editor.locator(".jp-Prophecy-center .react-flow__pane").click(
        position={"x": 30, "y": 30}
    )
    page.keyboard.press("Control+s")

    def without_columns() -> dict[str, Any] | None:
        saved = saved_pipeline(studio, "Revenue per customer.")
        if saved is None or "Sales region" in json.dumps(saved):
            return None
        return saved

    gem = next(g for g in eventually(without_columns)["gems"] if g["id"] == "by_customer")
    assert "columns" not in gem


def test_describe_the_pipeline_with_nothing_selected(studio: Studio) -> None:
    studio.open(PIPELINE)
    docs = studio.page.get_by_test_id("prophecy-pipeline-docs")
    docs.get_by_test_id("prophecy-pipeline-description").fill("Customers ranked by revenue.")
    studio.shot("pipeline-description")
    studio.page.keyboard.press("Control+s")
    saved = eventually(lambda: saved_pipeline(studio, "Customers ranked by revenue."))
    assert saved["description"] == "Customers ranked by revenue."


def test_a_description_of_a_column_that_is_gone(studio: Studio) -> None:
    path = studio.lab.root / PIPELINE
    document = json.loads(path.read_text(encoding="utf-8"))
    for gem in document["gems"]:
        if gem["id"] == "by_customer":
            gem["columns"] = {"revenue_eur": {"description": "Revenue in euros"}}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    studio.open(PIPELINE)
    studio.gem("by_customer").click()
    properties = studio.properties
    issues = properties.get_by_test_id("prophecy-gem-issues")
    expect(issues).to_contain_text("revenue_eur")
    properties.get_by_test_id("prophecy-docs-tab").click()
    stale = properties.locator("tr[data-column=revenue_eur]")
    expect(stale).to_have_class("jp-mod-stale")
    expect(stale).to_contain_text("Revenue in euros")
    studio.shot("stale-description")
    stale.get_by_test_id("prophecy-column-description-remove").click()
    expect(stale).to_have_count(0)
    expect(properties.get_by_test_id("prophecy-gem-issues")).to_have_count(0)
    studio.shot("stale-removed")


def test_a_target_shows_the_descriptions_its_table_takes_from_its_input(studio: Studio) -> None:
    path = studio.lab.root / PIPELINE
    document = json.loads(path.read_text(encoding="utf-8"))
    for gem in document["gems"]:
        if gem["id"] == "ranked":
            gem["columns"] = {"total": {"description": "Shipped revenue, rounded to cents"}}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    studio.open(PIPELINE)
    studio.gem("customer_totals").click()
    studio.properties.get_by_test_id("prophecy-docs-tab").click()
    docs = studio.properties.get_by_test_id("prophecy-gem-docs")
    total = docs.locator("tr[data-column=total] input")
    expect(total).to_have_attribute("placeholder", "From ranked: Shipped revenue, rounded to cents")
    expect(total).to_have_value("")
    assert docs.locator("tr[data-column=region] input").get_attribute("placeholder") is None
    studio.shot("target-inherits")
