"""Pipeline-aware diff and three-way merge, on the shop example's pipelines and edited copies.

The merge is checked rule by rule (gems by id, properties by key, keyed lists, positions,
edit/delete, connections as a set, one feed per port, top-level fields), on exact conflicts
and their resolution, and by Hypothesis: two sides' random edits of disjoint gems always merge
cleanly into a document holding both, and any two sides' edits merge into a document that
loads, whatever side is chosen for each conflict.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from prophecy_jupyter.errors import ValidationError
from prophecy_jupyter.model import dump_pipeline, load_pipeline
from prophecy_jupyter.model.pipeline import canonical_json
from prophecy_jupyter.vcs.pipeline_diff import (
    ConnectionChange,
    GemChange,
    PipelineDiff,
    diff_pipelines,
    render_diff,
)
from prophecy_jupyter.vcs.pipeline_merge import (
    MergeConflict,
    Side,
    merge_pipelines,
    resolve,
)

PIPELINES = Path(__file__).resolve().parents[1] / "examples" / "shop" / "pipelines"
NAMES = sorted(path.name.removesuffix(".pipeline.json") for path in PIPELINES.iterdir())

Doc = dict[str, Any]
Edit = Callable[[Doc], object]
"""Changes a document in place (what it returns is ignored)."""


def shop(name: str) -> Doc:
    document: Doc = json.loads((PIPELINES / f"{name}.pipeline.json").read_text())
    return document


def edited(document: Doc, *edits: Edit) -> Doc:
    copied = copy.deepcopy(document)
    for edit in edits:
        edit(copied)
    return copied


def gem(document: Doc, gem_id: str) -> Doc:
    found: Doc = next(g for g in document["gems"] if g["id"] == gem_id)
    return found


def ids(document: Doc) -> list[str]:
    return [g["id"] for g in document["gems"]]


def links(document: Doc) -> set[tuple[str, str, str]]:
    return {(c["from"], c["to"], c.get("port", "in0")) for c in document["connections"]}


def set_property(gem_id: str, key: str, value: Any) -> Edit:
    def edit(document: Doc) -> None:
        gem(document, gem_id)["properties"][key] = value

    return edit


def set_field(gem_id: str, key: str, value: Any) -> Edit:
    def edit(document: Doc) -> None:
        gem(document, gem_id)[key] = value

    return edit


def move(gem_id: str, x: float, y: float) -> Edit:
    return set_field(gem_id, "position", {"x": x, "y": y})


def remove_gem(gem_id: str) -> Edit:
    """Remove a gem with its connections, as the canvas's Delete does."""

    def edit(document: Doc) -> None:
        document["gems"] = [g for g in document["gems"] if g["id"] != gem_id]
        document["connections"] = [
            c for c in document["connections"] if gem_id not in (c["from"], c["to"])
        ]

    return edit


def add_gem(gem_id: str, kind: str, properties: Doc, x: float = 0, y: float = 0) -> Edit:
    def edit(document: Doc) -> None:
        document["gems"].append(
            {"id": gem_id, "kind": kind, "properties": properties, "position": {"x": x, "y": y}}
        )

    return edit


def connect(source: str, target: str, port: str = "in0") -> Edit:
    def edit(document: Doc) -> None:
        document["connections"].append({"from": source, "port": port, "to": target})

    return edit


def disconnect(source: str, target: str, port: str = "in0") -> Edit:
    def edit(document: Doc) -> None:
        document["connections"].remove({"from": source, "port": port, "to": target})

    return edit


def set_top(key: str, value: Any) -> Edit:
    def edit(document: Doc) -> None:
        document[key] = value

    return edit


def set_parameter(name: str, key: str, value: Any) -> Edit:
    def edit(document: Doc) -> None:
        next(p for p in document["parameters"] if p["name"] == name)[key] = value

    return edit


def columns(document: Doc, gem_id: str) -> list[Doc]:
    found: list[Doc] = gem(document, gem_id)["properties"]["columns"]
    return found


def assert_canonical(document: Doc) -> None:
    """The document loads, and is exactly what `dump_pipeline` writes for it."""
    text = dump_pipeline(load_pipeline(document))
    assert text == canonical_json(document) + "\n"
    assert dump_pipeline(load_pipeline(text)) == text


def same_pipeline(a: Doc, b: Doc) -> bool:
    """Equal but for the order of gems and connections."""
    rest = {k: v for k, v in a.items() if k not in ("gems", "connections")}
    other = {k: v for k, v in b.items() if k not in ("gems", "connections")}
    return (
        rest == other
        and {g["id"]: g for g in a["gems"]} == {g["id"]: g for g in b["gems"]}
        and links(a) == links(b)
    )


# ----------------------------------------------------------------------------------------- diff


def test_identical_documents_have_an_empty_diff() -> None:
    base = shop("customer_totals")
    diff = diff_pipelines(base, copy.deepcopy(base))
    assert diff.is_empty()
    assert render_diff(diff) == "no changes"
    assert diff.to_dict() == {
        "name": "customer_totals",
        "fields": [],
        "gems": [],
        "connections": [],
    }


def test_diff_reports_gems_connections_and_fields_as_users_see_them() -> None:
    base = shop("customer_totals")
    new = edited(
        base,
        set_property("shipped", "condition", "status = 'shipped'"),
        move("orders", 60, 220),
        set_property("orders", "path", "data/orders_2025.csv"),
        move("customers", 0, 0),
        lambda d: columns(d, "with_customer")[2].update(expression="upper(region)"),
        set_field("ranked", "label", "Ranked"),
        remove_gem("customer_totals"),
        add_gem("top10", "Limit", {"count": 10}),
        connect("ranked", "top10"),
        set_top("description", "Totals"),
    )
    diff = diff_pipelines(base, new)
    assert diff == PipelineDiff(
        name="customer_totals",
        gems=[
            GemChange("customer_totals", "removed", "Target", [], moved=False),
            GemChange("customers", "changed", "Source", [], moved=True),
            GemChange("orders", "changed", "Source", ["/properties/path"], moved=True),
            GemChange("ranked", "changed", "OrderBy", ["/label"], moved=False),
            GemChange("shipped", "changed", "Filter", ["/properties/condition"], moved=False),
            GemChange("top10", "added", "Limit", [], moved=False),
            GemChange(
                "with_customer",
                "changed",
                "Join",
                ["/properties/columns/2/expression"],
                moved=False,
            ),
        ],
        connections=[
            ConnectionChange("removed", "ranked", "customer_totals", "in0"),
            ConnectionChange("added", "ranked", "top10", "in0"),
        ],
        fields=["/description"],
    )
    assert render_diff(diff).splitlines() == [
        "~ pipeline customer_totals: /description",
        "- gem customer_totals (Target)",
        "~ gem customers (Source)",
        "  moved",
        "~ gem orders (Source): /properties/path",
        "  moved",
        "~ gem ranked (OrderBy): /label",
        "~ gem shipped (Filter): /properties/condition",
        "+ gem top10 (Limit)",
        "~ gem with_customer (Join): /properties/columns/2/expression",
        "- connection ranked → customer_totals (in0)",
        "+ connection ranked → top10 (in0)",
    ]
    as_json = diff.to_dict()
    assert json.loads(json.dumps(as_json)) == as_json
    assert as_json["gems"][2] == {
        "id": "orders",
        "status": "changed",
        "kind": "Source",
        "fields": ["/properties/path"],
        "moved": True,
    }
    assert as_json["connections"][1] == {
        "status": "added",
        "from": "ranked",
        "to": "top10",
        "port": "in0",
    }


def test_diff_names_kind_changes_and_lists_that_changed_length() -> None:
    base = shop("customer_totals")
    new = edited(
        base,
        set_field("ranked", "kind", "Limit"),
        lambda d: columns(d, "order_lines").append({"name": "price", "expression": "price"}),
        set_property("shipped", "negate", True),
    )
    gems = {change.gem_id: change for change in diff_pipelines(base, new).gems}
    assert gems["ranked"].fields == ["/kind"]
    assert gems["ranked"].kind == "Limit"
    assert gems["order_lines"].fields == ["/properties/columns"]
    assert gems["shipped"].fields == ["/properties/negate"]


def test_diff_ignores_list_order_spelled_defaults_and_key_order() -> None:
    base = shop("customer_totals")
    same = edited(base)
    same["gems"].reverse()
    same["connections"].reverse()
    for connection in same["connections"]:
        if connection["port"] == "in0":
            del connection["port"]
    gem(same, "shipped")["label"] = None
    assert diff_pipelines(base, same).is_empty()


def test_diff_tells_true_from_one() -> None:
    base = shop("clean_contacts")
    new = edited(base, set_property("tidy_names", "trim", 1))
    assert diff_pipelines(base, new).gems[0].fields == ["/properties/trim"]


def test_diff_against_an_absent_file_adds_or_removes_everything() -> None:
    document = shop("top_products")
    created = diff_pipelines(None, document)
    assert [change.status for change in created.gems] == ["added"] * len(document["gems"])
    assert [change.gem_id for change in created.gems] == sorted(ids(document))
    assert {(c.source, c.target, c.port) for c in created.connections} == links(document)
    assert {c.status for c in created.connections} == {"added"}
    assert created.fields == ["/description", "/name", "/parameters", "/version"]
    deleted = diff_pipelines(document, None)
    assert deleted.name == "top_products"
    assert {change.status for change in deleted.gems} == {"removed"}
    assert {c.status for c in deleted.connections} == {"removed"}
    assert render_diff(deleted).startswith("~ pipeline top_products: /description, /name")


def test_diff_refuses_documents_it_cannot_compare() -> None:
    document = shop("top_products")
    with pytest.raises(ValidationError, match="the new document is not a valid pipeline"):
        diff_pipelines(document, {"gems": "nope"})
    twice = edited(document, add_gem("orders", "Source", {}))
    with pytest.raises(ValidationError, match="more than one gem 'orders'") as caught:
        diff_pipelines(twice, document)
    assert caught.value.issues[0].field == f"/gems/{len(twice['gems']) - 1}/id"


# ------------------------------------------------------------------------------ clean merges


def test_edits_of_different_gems_merge_cleanly_into_both() -> None:
    base = shop("customer_totals")
    ours_edits = (
        set_property("shipped", "condition", "status = 'shipped' AND quantity > 0"),
        move("shipped", 260, 240),
        add_gem("top10", "Limit", {"count": 10}, 1140, 140),
        disconnect("ranked", "customer_totals"),
        connect("ranked", "top10"),
        connect("top10", "customer_totals"),
    )
    theirs_edits = (
        lambda d: columns(d, "with_customer").append({"name": "email", "expression": "email"}),
        set_field("by_customer", "label", "Totals per customer"),
        set_property("customer_totals", "table", "customer_totals_v2"),
        set_parameter("min_total", "default", 100),
    )
    ours, theirs = edited(base, *ours_edits), edited(base, *theirs_edits)
    result = merge_pipelines(base, ours, theirs)
    assert result.clean
    assert result.conflicts == []
    assert result.document == edited(base, *ours_edits, *theirs_edits)
    assert_canonical(result.document)
    assert dump_pipeline(load_pipeline(result.document)) == dump_pipeline(
        load_pipeline(edited(base, *ours_edits, *theirs_edits))
    )
    assert resolve(result, base, ours, theirs, {}) == result.document


def test_the_same_change_on_both_sides_is_not_a_conflict() -> None:
    base = shop("channel_report")
    both = (set_property("recent", "condition", "order_date >= $since"), remove_gem("first_rows"))
    result = merge_pipelines(base, edited(base, *both), edited(base, *both))
    assert result.clean
    assert result.document == edited(base, *both)


def test_gems_added_on_one_side_are_added_after_ours_in_their_order() -> None:
    base = shop("top_products")
    ours = edited(base, add_gem("a_first", "Limit", {"count": 1}), connect("top", "a_first"))
    theirs = edited(
        base,
        add_gem("z_new", "Limit", {"count": 2}),
        add_gem("m_new", "Limit", {"count": 3}),
        connect("top", "z_new"),
        connect("z_new", "m_new"),
    )
    result = merge_pipelines(base, ours, theirs)
    assert result.clean
    assert ids(result.document) == [*ids(base), "a_first", "z_new", "m_new"]
    assert links(result.document) == links(ours) | links(theirs)


def test_a_gem_removed_on_one_side_and_untouched_on_the_other_goes_with_its_connections() -> None:
    base = shop("channel_report")
    ours = edited(base, remove_gem("first_rows"), connect("long_form", "units_long"))
    theirs = edited(base, set_property("by_month", "keys", [{"expression": "month DESC"}]))
    result = merge_pipelines(base, ours, theirs)
    assert result.clean
    assert "first_rows" not in ids(result.document)
    assert ("long_form", "units_long", "in0") in links(result.document)
    assert not any("first_rows" in link for link in links(result.document))


def test_a_gem_removed_on_one_side_and_only_moved_on_the_other_is_removed() -> None:
    base = shop("channel_report")
    result = merge_pipelines(
        base, edited(base, move("first_rows", 9, 9)), edited(base, remove_gem("first_rows"))
    )
    assert result.clean
    assert "first_rows" not in ids(result.document)


def test_gems_removed_on_both_sides_are_removed() -> None:
    base = shop("channel_report")
    ours = edited(base, remove_gem("returns"), remove_gem("returned_items"))
    theirs = edited(base, remove_gem("returned_items"))
    result = merge_pipelines(base, ours, theirs)
    assert result.clean
    assert result.document == ours


def test_changes_to_different_properties_of_one_gem_merge() -> None:
    base = shop("customer_totals")
    ours = edited(base, set_property("customer_totals", "mode", "append"))
    theirs = edited(
        base,
        set_property("customer_totals", "table", "totals"),
        set_field("customer_totals", "description", "the report"),
    )
    result = merge_pipelines(base, ours, theirs)
    assert result.clean
    assert gem(result.document, "customer_totals") == {
        **gem(base, "customer_totals"),
        "description": "the report",
        "properties": {"format": "table", "mode": "append", "table": "totals"},
    }


# --------------------------------------------------------------------------------- positions


def test_positions_never_conflict() -> None:
    base = shop("customer_totals")
    ours = edited(base, move("orders", 1, 1), move("customers", 2, 2))
    theirs = edited(
        base,
        move("orders", 3, 3),
        move("products", 4, 4),
        set_property("customers", "path", "data/c.csv"),
    )
    result = merge_pipelines(base, ours, theirs)
    assert result.clean
    assert gem(result.document, "orders")["position"] == {"x": 1, "y": 1}  # both moved: ours
    assert gem(result.document, "customers")["position"] == {"x": 2, "y": 2}
    assert gem(result.document, "customers")["properties"]["path"] == "data/c.csv"
    assert gem(result.document, "products")["position"] == {"x": 4, "y": 4}


def test_a_gem_added_on_both_sides_alike_but_placed_apart_takes_our_place() -> None:
    base = shop("top_products")
    ours = edited(base, add_gem("sample", "Limit", {"count": 3}, 10, 10))
    theirs = edited(base, add_gem("sample", "Limit", {"count": 3}, 90, 90))
    result = merge_pipelines(base, ours, theirs)
    assert result.clean
    assert gem(result.document, "sample")["position"] == {"x": 10, "y": 10}


def test_a_position_can_be_removed() -> None:
    base = shop("top_products")
    theirs = edited(base, lambda d: gem(d, "top").pop("position"))
    ours = edited(base, set_property("top", "condition", "rank <= 3"))
    result = merge_pipelines(base, ours, theirs)
    assert result.clean
    assert "position" not in gem(result.document, "top")
    assert gem(result.document, "top")["properties"]["condition"] == "rank <= 3"


# ------------------------------------------------------------------------------- conflicts


def test_different_changes_to_one_property_conflict_and_resolve_per_side() -> None:
    base = shop("customer_totals")
    ours = edited(base, set_property("shipped", "condition", "status = 'shipped'"))
    theirs = edited(base, set_property("shipped", "condition", "status IN ('shipped', 'done')"))
    result = merge_pipelines(base, ours, theirs)
    assert not result.clean
    assert result.conflicts == [
        MergeConflict(
            path="/gems/shipped/properties/condition",
            gem_id="shipped",
            reason="both changed the condition",
            base="status = $status",
            ours="status = 'shipped'",
            theirs="status IN ('shipped', 'done')",
        )
    ]
    assert result.document == ours
    assert resolve(result, base, ours, theirs, {result.conflicts[0].path: "ours"}) == ours
    assert resolve(result, base, ours, theirs, {result.conflicts[0].path: "theirs"}) == theirs
    assert result.to_dict()["conflicts"][0]["path"] == "/gems/shipped/properties/condition"
    assert result.to_dict()["clean"] is False


def test_resolve_picks_a_side_for_each_conflict() -> None:
    base = shop("customer_totals")
    ours = edited(
        base,
        set_property("shipped", "condition", "status = 'ours'"),
        set_top("description", "ours"),
        set_parameter("min_total", "default", 10),
        set_property("products", "path", "data/p.json"),
    )
    theirs = edited(
        base,
        set_property("shipped", "condition", "status = 'theirs'"),
        set_top("description", "theirs"),
        set_parameter("min_total", "default", 20),
        set_field("products", "label", "Catalog"),
    )
    result = merge_pipelines(base, ours, theirs)
    assert [(c.path, c.gem_id, c.reason, c.base, c.ours, c.theirs) for c in result.conflicts] == [
        (
            "/description",
            None,
            "both changed the description",
            base["description"],
            "ours",
            "theirs",
        ),
        (
            "/parameters/min_total/default",
            None,
            "both changed the parameters[min_total].default",
            50,
            10,
            20,
        ),
        (
            "/gems/shipped/properties/condition",
            "shipped",
            "both changed the condition",
            "status = $status",
            "status = 'ours'",
            "status = 'theirs'",
        ),
    ]
    choices: dict[str, Side] = {
        "/description": "ours",
        "/parameters/min_total/default": "theirs",
        "/gems/shipped/properties/condition": "theirs",
    }
    final = resolve(result, base, ours, theirs, choices)
    assert final["description"] == "ours"
    assert final["parameters"][0]["default"] == 20
    assert gem(final, "shipped")["properties"]["condition"] == "status = 'theirs'"
    assert gem(final, "products")["properties"]["path"] == "data/p.json"
    assert gem(final, "products")["label"] == "Catalog"
    assert_canonical(final)


def test_resolve_refuses_unresolved_unknown_and_invalid_choices() -> None:
    base = shop("customer_totals")
    ours = edited(base, set_top("description", "a"), set_top("name", "a"))
    theirs = edited(base, set_top("description", "b"), set_top("name", "b"))
    result = merge_pipelines(base, ours, theirs)
    assert [c.path for c in result.conflicts] == ["/name", "/description"]
    with pytest.raises(
        ValidationError, match="unresolved conflicts: /name, /description"
    ) as caught:
        resolve(result, base, ours, theirs, {})
    assert [i.field for i in caught.value.issues] == ["/name", "/description"]
    with pytest.raises(ValidationError, match="unresolved conflicts: /description"):
        resolve(result, base, ours, theirs, {"/name": "ours"})
    with pytest.raises(ValidationError, match="no conflict at /version"):
        resolve(
            result,
            base,
            ours,
            theirs,
            {"/name": "ours", "/description": "ours", "/version": "ours"},
        )
    with pytest.raises(ValidationError, match="choose 'ours' or 'theirs'"):
        resolve(result, base, ours, theirs, {"/name": "ours", "/description": "both"})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="not computed from these documents"):
        resolve(result, base, theirs, ours, {"/name": "ours", "/description": "ours"})


def test_edit_against_delete_conflicts_on_the_gem() -> None:
    base = shop("customer_totals")
    ours = edited(base, set_property("ranked", "keys", [{"expression": "total"}]))
    theirs = edited(base, remove_gem("ranked"), connect("by_customer", "customer_totals"))
    result = merge_pipelines(base, ours, theirs)
    assert result.conflicts == [
        MergeConflict(
            "/gems/ranked",
            "ranked",
            "removed on one side, changed on the other",
            gem(base, "ranked"),
            gem(ours, "ranked"),
            None,
        ),
        MergeConflict(
            "/connections/customer_totals/in0",
            "customer_totals",
            "each side feeds port in0 of 'customer_totals' from a different gem",
            "ranked",
            "ranked",
            "by_customer",
        ),
    ]
    assert result.document == ours
    kept = resolve(result, base, ours, theirs, {c.path: "ours" for c in result.conflicts})
    assert kept == ours
    removed = resolve(result, base, ours, theirs, {c.path: "theirs" for c in result.conflicts})
    assert removed == theirs
    # the other way round: we deleted, they edited
    swapped = merge_pipelines(base, theirs, ours)
    assert (swapped.conflicts[0].path, swapped.conflicts[0].ours, swapped.conflicts[0].theirs) == (
        "/gems/ranked",
        None,
        gem(ours, "ranked"),
    )
    assert swapped.document == theirs
    restored = resolve(swapped, base, theirs, ours, {c.path: "theirs" for c in swapped.conflicts})
    assert same_pipeline(restored, ours)
    assert ids(restored)[-1] == "ranked"  # a gem only theirs has comes after ours'


def test_keeping_an_edited_gem_keeps_its_connections_from_the_side_that_kept_it() -> None:
    base = shop("top_products")
    ours = edited(base, remove_gem("first_orphans"), connect("orphans", "orphan_orders"))
    theirs = edited(base, set_property("first_orphans", "count", 50))
    result = merge_pipelines(base, ours, theirs)
    choices: dict[str, Side] = {c.path: "theirs" for c in result.conflicts}
    assert list(choices) == ["/gems/first_orphans", "/connections/orphan_orders/in0"]
    assert same_pipeline(resolve(result, base, ours, theirs, choices), theirs)
    half = resolve(
        result,
        base,
        ours,
        theirs,
        {"/gems/first_orphans": "theirs", "/connections/orphan_orders/in0": "ours"},
    )
    assert ("orphans", "first_orphans", "in0") in links(half)
    assert ("orphans", "orphan_orders", "in0") in links(half)
    assert ("first_orphans", "orphan_orders", "in0") not in links(half)
    assert_canonical(half)


def test_a_connection_to_a_gem_removed_on_the_other_side_conflicts() -> None:
    base = shop("channel_report")
    ours = edited(
        base,
        add_gem("sample", "Limit", {"count": 5}),
        connect("returned_items", "sample"),
    )
    theirs = edited(base, remove_gem("returned_items"), remove_gem("by_reason"))
    result = merge_pipelines(base, ours, theirs)
    assert [(c.path, c.reason) for c in result.conflicts] == [
        ("/gems/returned_items", "connected on one side to a gem removed on the other"),
    ]
    conflict = result.conflicts[0]
    assert (conflict.base, conflict.ours, conflict.theirs) == (
        gem(base, "returned_items"),
        gem(base, "returned_items"),
        None,
    )
    # ours until resolved: the gem stays, with our connections into and out of it
    assert "returned_items" in ids(result.document)
    assert "by_reason" not in ids(result.document)
    assert ("returns", "returned_items", "in0") in links(result.document)
    assert ("returned_items", "sample", "in0") in links(result.document)
    assert_canonical(result.document)
    final = resolve(result, base, ours, theirs, {conflict.path: "theirs"})
    assert "returned_items" not in ids(final)
    assert "sample" in ids(final)
    assert not any("returned_items" in link for link in links(final))


def test_two_sides_feeding_one_port_conflict() -> None:
    base = shop("customer_totals")
    ours = edited(
        base,
        add_gem("top10", "Limit", {"count": 10}),
        disconnect("ranked", "customer_totals"),
        connect("ranked", "top10"),
        connect("top10", "customer_totals"),
    )
    theirs = edited(
        base,
        add_gem("big", "Filter", {"condition": "total > 1000"}),
        disconnect("ranked", "customer_totals"),
        connect("ranked", "big"),
        connect("big", "customer_totals"),
    )
    result = merge_pipelines(base, ours, theirs)
    assert result.conflicts == [
        MergeConflict(
            "/connections/customer_totals/in0",
            "customer_totals",
            "each side feeds port in0 of 'customer_totals' from a different gem",
            "ranked",
            "top10",
            "big",
        )
    ]
    assert ids(result.document) == [*ids(base), "top10", "big"]
    into_target = {link for link in links(result.document) if link[1] == "customer_totals"}
    assert into_target == {("top10", "customer_totals", "in0")}
    final = resolve(result, base, ours, theirs, {"/connections/customer_totals/in0": "theirs"})
    assert {link for link in links(final) if link[1] == "customer_totals"} == {
        ("big", "customer_totals", "in0")
    }
    assert {("ranked", "top10", "in0"), ("ranked", "big", "in0")} <= links(final)


def test_gems_added_on_both_sides_with_different_content_conflict() -> None:
    base = shop("top_products")
    ours = edited(base, add_gem("sample", "Limit", {"count": 3}))
    theirs = edited(base, add_gem("sample", "Filter", {"condition": "true"}))
    result = merge_pipelines(base, ours, theirs)
    assert result.conflicts == [
        MergeConflict(
            "/gems/sample",
            "sample",
            "added on both sides with different content",
            None,
            gem(ours, "sample"),
            gem(theirs, "sample"),
        )
    ]
    assert resolve(result, base, ours, theirs, {"/gems/sample": "theirs"}) == theirs


def test_a_kind_change_against_an_edit_conflicts_on_the_whole_gem() -> None:
    base = shop("customer_totals")
    ours = edited(
        base, set_field("ranked", "kind", "Limit"), set_field("ranked", "properties", {"count": 5})
    )
    theirs = edited(
        base, set_property("ranked", "keys", [{"expression": "total"}]), move("ranked", 7, 7)
    )
    result = merge_pipelines(base, ours, theirs)
    assert [(c.path, c.reason) for c in result.conflicts] == [
        ("/gems/ranked", "both changed the gem, and they disagree on its kind")
    ]
    ranked = gem(resolve(result, base, ours, theirs, {"/gems/ranked": "ours"}), "ranked")
    assert ranked == {**gem(ours, "ranked"), "position": {"x": 7, "y": 7}}
    # one side's kind change alone merges like any field
    alone = merge_pipelines(base, ours, edited(base, move("ranked", 7, 7)))
    assert alone.clean
    assert gem(alone.document, "ranked")["kind"] == "Limit"


def test_a_field_removed_on_one_side_and_changed_on_the_other_conflicts() -> None:
    base = shop("customer_totals")
    ours = edited(base, lambda d: gem(d, "by_customer")["properties"].pop("having"))
    theirs = edited(base, set_property("by_customer", "having", "total >= 10"))
    result = merge_pipelines(base, ours, theirs)
    assert [(c.path, c.reason, c.base, c.ours, c.theirs) for c in result.conflicts] == [
        (
            "/gems/by_customer/properties/having",
            "removed on one side, changed on the other",
            "total >= $min_total",
            None,
            "total >= 10",
        )
    ]
    assert "having" not in gem(result.document, "by_customer")["properties"]
    both_added = merge_pipelines(
        base,
        edited(base, set_field("ranked", "label", "A")),
        edited(base, set_field("ranked", "label", "B")),
    )
    assert [(c.path, c.reason) for c in both_added.conflicts] == [
        ("/gems/ranked/label", "both added the label with different values")
    ]


# ------------------------------------------------------------------------------ keyed lists


def test_list_items_with_a_name_merge_by_name() -> None:
    base = shop("customer_totals")
    ours = edited(
        base,
        lambda d: columns(d, "with_customer")[4].update(expression="round(revenue, 2)"),
        lambda d: columns(d, "with_customer").insert(
            2, {"name": "segment", "expression": "segment"}
        ),
    )
    theirs = edited(
        base,
        lambda d: columns(d, "with_customer").pop(2),  # region
        lambda d: columns(d, "with_customer").append({"name": "email", "expression": "email"}),
    )
    result = merge_pipelines(base, ours, theirs)
    assert result.clean
    assert [(c["name"], c["expression"]) for c in columns(result.document, "with_customer")] == [
        ("customer_id", "customers.customer_id"),
        ("name", "name"),
        ("segment", "segment"),
        ("order_id", "order_id"),
        ("revenue", "round(revenue, 2)"),
        ("email", "email"),
    ]


def test_list_item_conflicts_are_named_by_key() -> None:
    base = shop("customer_totals")
    ours = edited(
        base,
        lambda d: columns(d, "with_customer")[4].update(expression="revenue * 2"),
        lambda d: columns(d, "with_customer").pop(2),
    )
    theirs = edited(
        base,
        lambda d: columns(d, "with_customer")[4].update(expression="revenue * 3"),
        lambda d: columns(d, "with_customer")[2].update(expression="upper(region)"),
    )
    result = merge_pipelines(base, ours, theirs)
    assert [(c.path, c.reason, c.ours, c.theirs) for c in result.conflicts] == [
        (
            "/gems/with_customer/properties/columns/revenue/expression",
            "both changed the columns[revenue].expression",
            "revenue * 2",
            "revenue * 3",
        ),
        (
            "/gems/with_customer/properties/columns/region",
            "removed on one side, changed on the other",
            None,
            {"name": "region", "expression": "upper(region)"},
        ),
    ]
    final = resolve(result, base, ours, theirs, {c.path: "theirs" for c in result.conflicts})
    assert final == theirs


def test_a_reordered_list_keeps_the_reordering_and_the_other_sides_additions() -> None:
    base = shop("customer_totals")
    ours = edited(
        base,
        lambda d: columns(d, "with_customer").append({"name": "email", "expression": "email"}),
        lambda d: columns(d, "with_customer").insert(1, {"name": "tier", "expression": "tier"}),
    )
    theirs = edited(base, lambda d: columns(d, "with_customer").reverse())
    result = merge_pipelines(base, ours, theirs)
    assert result.clean
    assert [c["name"] for c in columns(result.document, "with_customer")] == [
        "revenue",
        "email",  # after the column it followed on our side
        "order_id",
        "region",
        "name",
        "customer_id",
        "tier",
    ]


def test_insertions_at_one_spot_put_ours_first() -> None:
    base = shop("customer_totals")
    ours = edited(
        base, lambda d: columns(d, "order_lines").append({"name": "a", "expression": "1"})
    )
    theirs = edited(
        base, lambda d: columns(d, "order_lines").append({"name": "b", "expression": "2"})
    )
    result = merge_pipelines(base, ours, theirs)
    assert [c["name"] for c in columns(result.document, "order_lines")][-2:] == ["a", "b"]
    assert [
        c["name"] for c in columns(merge_pipelines(base, theirs, ours).document, "order_lines")
    ][-2:] == ["b", "a"]


def test_different_reorderings_conflict_on_the_list() -> None:
    base = shop("customer_totals")
    ours = edited(base, lambda d: columns(d, "with_customer").reverse())
    theirs = edited(base, lambda d: columns(d, "with_customer").sort(key=lambda c: c["name"]))
    result = merge_pipelines(base, ours, theirs)
    names = [c["name"] for c in columns(base, "with_customer")]
    assert [(c.path, c.reason, c.base, c.ours, c.theirs) for c in result.conflicts] == [
        (
            "/gems/with_customer/properties/columns",
            "both reordered the columns",
            names,
            names[::-1],
            sorted(names),
        )
    ]
    assert (
        resolve(result, base, ours, theirs, {"/gems/with_customer/properties/columns": "theirs"})
        == theirs
    )


def test_lists_without_a_key_are_one_value() -> None:
    base = shop("customer_totals")
    ours = edited(base, set_property("by_customer", "group_by", [{"expression": "customer_id"}]))
    theirs = edited(base, set_property("by_customer", "group_by", [{"expression": "name"}]))
    result = merge_pipelines(base, ours, theirs)
    assert [(c.path, c.reason) for c in result.conflicts] == [
        ("/gems/by_customer/properties/group_by", "both changed the group_by")
    ]
    strings = shop("channel_report")
    result = merge_pipelines(
        strings,
        edited(strings, set_property("units_by_channel", "values", ["web", "store"])),
        edited(strings, set_property("units_by_channel", "values", ["web", "app"])),
    )
    assert [c.path for c in result.conflicts] == ["/gems/units_by_channel/properties/values"]


# ----------------------------------------------------------------------------- top level


def test_parameters_merge_by_name() -> None:
    base = shop("customer_totals")
    region = {"name": "region", "type": "string", "default": "EU"}
    ours = edited(base, lambda d: d["parameters"].append(region))
    theirs = edited(
        base,
        set_parameter("min_total", "default", 75),
        lambda d: d["parameters"].pop(1),
    )
    result = merge_pipelines(base, ours, theirs)
    assert result.clean
    assert result.document["parameters"] == [{**base["parameters"][0], "default": 75}, region]
    removed_vs_changed = merge_pipelines(
        base, theirs, edited(base, set_parameter("status", "default", "x"))
    )
    assert [(c.path, c.reason) for c in removed_vs_changed.conflicts] == [
        ("/parameters/status", "removed on one side, changed on the other")
    ]


def test_a_new_file_on_both_branches_merges_without_a_base() -> None:
    document = shop("top_products")
    assert merge_pipelines(None, document, document).document == document
    other = edited(
        document, set_property("top", "condition", "rank <= 5"), set_top("description", "x")
    )
    result = merge_pipelines(None, document, other)
    assert [(c.path, c.reason, c.base) for c in result.conflicts] == [
        ("/description", "both added the description with different values", None),
        ("/gems/top", "added on both sides with different content", None),
    ]


def test_merge_refuses_documents_it_cannot_merge() -> None:
    base = shop("top_products")
    with pytest.raises(ValidationError, match="the theirs document is not a valid pipeline"):
        merge_pipelines(base, base, {"name": ""})
    with pytest.raises(ValidationError, match="the base document has more than one gem 'top'"):
        merge_pipelines(edited(base, add_gem("top", "Limit", {})), base, base)


# ------------------------------------------------------------------------------ idempotence


VARIANTS: list[Callable[[Doc], Doc]] = [
    lambda d: d,
    lambda d: edited(d, set_top("description", "changed")),
    lambda d: edited(d, remove_gem(d["gems"][-1]["id"])),
    lambda d: edited(d, move(d["gems"][0]["id"], 5, 5), add_gem("extra", "Limit", {"count": 1})),
    lambda d: edited(d, set_property(d["gems"][1]["id"], "path", "data/x.csv")),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("variant", range(len(VARIANTS)))
def test_merging_a_change_with_itself_or_with_nothing_gives_that_change(
    name: str, variant: int
) -> None:
    base = shop(name)
    changed = VARIANTS[variant](base)
    for result in (
        merge_pipelines(base, changed, changed),
        merge_pipelines(base, base, changed),
        merge_pipelines(base, changed, base),
    ):
        assert result.clean
        assert result.document == changed
        assert_canonical(result.document)
    assert diff_pipelines(changed, merge_pipelines(base, base, changed).document).is_empty()


def test_merge_does_not_change_its_inputs() -> None:
    base = shop("customer_totals")
    ours = edited(base, set_property("shipped", "condition", "a"))
    theirs = edited(base, set_property("shipped", "condition", "b"), remove_gem("ranked"))
    frozen = copy.deepcopy((base, ours, theirs))
    result = merge_pipelines(base, ours, theirs)
    result.document["gems"].clear()
    assert (base, ours, theirs) == frozen
    assert merge_pipelines(base, ours, theirs).conflicts == result.conflicts


# ------------------------------------------------------------------------------ properties

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(alphabet="abcxyz =<>'0123456789", min_size=1, max_size=12)


def random_edits(
    data: st.DataObject, base: Doc, side: str, own: list[str], sources: list[str]
) -> Doc:
    """``base`` with random edits by one side, of the gems in ``own`` only.

    Each own gem may be left alone, have a property or its label set, be moved, have its first
    input fed from one of ``sources``, or be removed (with its connections); new gems (ids
    prefixed with the side) are fed from ``sources`` or from this side's new gems, so nothing
    the other side removes is connected to.
    """
    document = copy.deepcopy(base)
    for gem_id in own:
        action = data.draw(
            st.sampled_from(["keep", "property", "label", "move", "rewire", "remove"])
        )
        if action == "property":
            key = data.draw(st.sampled_from(["condition", "path", "note"]))
            set_property(gem_id, key, data.draw(TEXT))(document)
        elif action == "label":
            set_field(gem_id, "label", data.draw(TEXT))(document)
        elif action == "move":
            x, y = data.draw(st.tuples(st.integers(0, 2000), st.integers(0, 2000)))
            move(gem_id, x, y)(document)
        elif action == "rewire":
            feeds = [s for s in sources if s != gem_id and s in ids(document)]
            if feeds:
                document["connections"] = [
                    c for c in document["connections"] if (c["to"], c["port"]) != (gem_id, "in0")
                ]
                connect(data.draw(st.sampled_from(feeds)), gem_id)(document)
        elif action == "remove":
            remove_gem(gem_id)(document)
    feeds = [s for s in sources if s in ids(document)]
    for index in range(data.draw(st.integers(0, 2))):
        new_id = f"{side}_new_{index}"
        add_gem(new_id, "Filter", {"condition": data.draw(TEXT)})(document)
        if feeds:
            connect(data.draw(st.sampled_from(feeds)), new_id)(document)
        feeds.append(new_id)
    return document


@PROPERTY
@given(name=st.sampled_from(NAMES), data=st.data())
def test_edits_of_disjoint_gems_merge_cleanly_into_both(name: str, data: st.DataObject) -> None:
    base = shop(name)
    owner = {
        g["id"]: data.draw(st.sampled_from(["ours", "theirs", "nobody"])) for g in base["gems"]
    }
    nobody = [g for g, side in owner.items() if side == "nobody"]
    sides = {
        side: random_edits(
            data,
            base,
            side,
            [g for g, s in owner.items() if s == side],
            [*nobody, *(g for g, s in owner.items() if s == side)],
        )
        for side in ("ours", "theirs")
    }
    ours, theirs = sides["ours"], sides["theirs"]
    top_side = data.draw(st.sampled_from(["ours", "theirs"]))
    sides[top_side]["description"] = data.draw(TEXT)
    result = merge_pipelines(base, ours, theirs)
    assert result.clean, result.conflicts
    document = result.document
    assert_canonical(document)
    expected_gems = {
        g["id"]: g
        for g in [*base["gems"], *ours["gems"], *theirs["gems"]]
        if owner.get(g["id"]) in (None, "nobody")
    }
    for side, edited_doc in sides.items():
        expected_gems.update((g["id"], g) for g in edited_doc["gems"] if owner.get(g["id"]) == side)
    assert {g["id"]: g for g in document["gems"]} == expected_gems
    kept = [g for g in ids(ours) if g in expected_gems]
    assert ids(document) == kept + [g for g in ids(theirs) if g in expected_gems and g not in kept]
    assert links(document) == (links(base) & links(ours) & links(theirs)) | (
        (links(ours) | links(theirs)) - links(base)
    )
    assert document["description"] == sides[top_side]["description"]
    for edited_doc in (ours, theirs):
        assert merge_pipelines(base, edited_doc, edited_doc).document == edited_doc
        assert merge_pipelines(base, base, edited_doc).document == edited_doc
    merged = diff_pipelines(base, document)
    for edited_doc in (ours, theirs):
        own = diff_pipelines(base, edited_doc)
        assert all(change in merged.gems for change in own.gems)
        assert set(own.connections) <= set(merged.connections)


@PROPERTY
@given(name=st.sampled_from(NAMES), data=st.data())
def test_any_edits_merge_into_a_document_that_loads(name: str, data: st.DataObject) -> None:
    base = shop(name)
    everything = ids(base)
    ours = random_edits(data, base, "new", everything, everything)
    theirs = random_edits(data, base, "new", everything, everything)
    result = merge_pipelines(base, ours, theirs)
    paths = [c.path for c in result.conflicts]
    event(f"{min(len(paths), 3)} conflicts")
    assert len(paths) == len(set(paths))
    assert_canonical(result.document)
    choices: dict[str, Side] = {p: data.draw(st.sampled_from(["ours", "theirs"])) for p in paths}
    final = resolve(result, base, ours, theirs, choices)
    assert_canonical(final)
    present = set(ids(final))
    assert all(source in present and target in present for source, target, _ in links(final))
    assert resolve(result, base, ours, theirs, dict.fromkeys(paths, "ours")) == result.document
    assert merge_pipelines(base, final, final).document == final


# ------------------------------------------------------------------------ column descriptions


def describe_column(gem_id: str, name: str, text: str | None) -> Edit:
    """Set (or with None remove) a column description, leaving no empty ``columns``."""

    def edit(document: Doc) -> None:
        described = gem(document, gem_id).setdefault("columns", {})
        if text is None:
            described.pop(name, None)
        else:
            described[name] = {"description": text}
        if not described:
            del gem(document, gem_id)["columns"]

    return edit


def test_diff_names_each_described_column() -> None:
    base = shop("customer_totals")
    first = edited(base, describe_column("shipped", "amount", "in EUR"))
    changed = edited(
        first,
        describe_column("shipped", "amount", "in USD"),
        describe_column("shipped", "status/state", "x"),
    )
    removed = edited(first, describe_column("shipped", "amount", None))
    assert [(g.gem_id, g.fields) for g in diff_pipelines(base, first).gems] == [
        ("shipped", ["/columns/amount"])
    ]
    assert diff_pipelines(first, changed).gems[0].fields == [
        "/columns/amount/description",
        "/columns/status~1state",
    ]
    assert diff_pipelines(first, removed).gems[0].fields == ["/columns/amount"]
    assert diff_pipelines(removed, base).is_empty()
    assert "~ gem shipped (Filter): /columns/amount" in render_diff(diff_pipelines(base, first))


def test_descriptions_of_different_columns_of_one_gem_merge() -> None:
    base = shop("customer_totals")
    ours = edited(base, describe_column("shipped", "amount", "in EUR"))
    theirs = edited(
        base,
        describe_column("shipped", "status", "shipped or open"),
        set_property("shipped", "condition", "status = 'shipped'"),
    )
    result = merge_pipelines(base, ours, theirs)
    assert result.clean
    assert gem(result.document, "shipped")["columns"] == {
        "amount": {"description": "in EUR"},
        "status": {"description": "shipped or open"},
    }
    assert gem(result.document, "shipped")["properties"]["condition"] == "status = 'shipped'"
    assert_canonical(result.document)


def test_removing_every_column_description_merges_with_a_new_one() -> None:
    base = edited(shop("customer_totals"), describe_column("shipped", "amount", "in EUR"))
    ours = edited(base, describe_column("shipped", "amount", None))
    theirs = edited(base, describe_column("shipped", "status", "shipped or open"))
    result = merge_pipelines(base, ours, theirs)
    assert result.clean
    assert gem(result.document, "shipped")["columns"] == {
        "status": {"description": "shipped or open"}
    }
    both_removed = merge_pipelines(
        base, ours, edited(ours, set_property("shipped", "condition", "true"))
    )
    assert "columns" not in gem(both_removed.document, "shipped")
    assert_canonical(both_removed.document)
    # An edit elsewhere in the gem does not write an empty columns object either.
    plain = merge_pipelines(
        shop("customer_totals"),
        edited(shop("customer_totals"), set_field("shipped", "label", "Shipped")),
        edited(shop("customer_totals"), set_property("shipped", "condition", "true")),
    )
    assert "columns" not in gem(plain.document, "shipped")
    assert_canonical(plain.document)


def test_different_descriptions_of_one_column_conflict_at_that_column() -> None:
    base = edited(shop("customer_totals"), describe_column("shipped", "amount", "money"))
    ours = edited(base, describe_column("shipped", "amount", "in EUR"))
    theirs = edited(base, describe_column("shipped", "amount", "in USD"))
    result = merge_pipelines(base, ours, theirs)
    assert [(c.path, c.gem_id, c.base, c.ours, c.theirs) for c in result.conflicts] == [
        ("/gems/shipped/columns/amount/description", "shipped", "money", "in EUR", "in USD")
    ]
    final = resolve(result, base, ours, theirs, {result.conflicts[0].path: "theirs"})
    assert gem(final, "shipped")["columns"] == {"amount": {"description": "in USD"}}
    added = merge_pipelines(
        shop("customer_totals"),
        edited(shop("customer_totals"), describe_column("shipped", "amount", "in EUR")),
        edited(shop("customer_totals"), describe_column("shipped", "amount", "in USD")),
    )
    assert [c.path for c in added.conflicts] == ["/gems/shipped/columns/amount"]
