"""The server's core, without a server: confinement, ETags, documents, previews, runs, fabrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prophecy_jupyter.errors import (
    Cancelled,
    Conflict,
    EngineError,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    ValidationError,
)
from prophecy_jupyter.fabrics import MASK, SecretStore
from prophecy_jupyter.model import init_project
from prophecy_jupyter.workspace import (
    Workspace,
    confine,
    etag_matches,
    etag_of,
)
from tests.test_server_support import copy_shop

SLOW_QUERY = (
    "SELECT sum(hash(a.range + b.range)) AS n FROM range(100000000) AS a, range(100000000) AS b"
)
"""10^16 rows to hash: nothing but a cancel ends it."""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A server root holding the shop project at ``shop`` and an empty one at ``team/sales``."""
    base = tmp_path / "root"
    copy_shop(base / "shop")
    init_project(base / "team" / "sales", name="sales")
    return base


@pytest.fixture
def workspace(root: Path, tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace(root, SecretStore(tmp_path / "secrets.json"))
    yield ws
    ws.close()


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def slow_pipeline(name: str = "slow", target: bool = False) -> dict[str, Any]:
    gems: list[dict[str, Any]] = [
        {"id": "big", "kind": "SQLStatement", "properties": {"query": SLOW_QUERY}}
    ]
    connections = []
    if target:
        gems.append({"id": "out", "kind": "Target", "properties": {"table": "slow_out"}})
        connections.append({"from": "big", "to": "out"})
    return {"version": 1, "name": name, "gems": gems, "connections": connections}


def wait_until(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_the_core_imports_nothing_of_the_web_server() -> None:
    probe = (
        "import sys, prophecy_jupyter.workspace; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'tornado', 'jupyter_server'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- confinement ---------------------------------------------------------------------------


@pytest.mark.parametrize("relative", ["", ".", "shop", "shop/", "./shop//pipelines", "new/folder"])
def test_confine_accepts_paths_below_the_root(root: Path, relative: str) -> None:
    resolved = confine(root.resolve(), relative)
    assert resolved.is_relative_to(root.resolve())


@pytest.mark.parametrize(
    "relative",
    [
        "..",
        "../root",
        "shop/../..",
        "shop/../../etc",
        "/etc",
        "/",
        "C:/Windows",
        "a\\..\\b",
        "a\x00",
    ],
)
def test_confine_refuses_absolute_paths_dot_dot_and_odd_characters(
    root: Path, relative: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        confine(root.resolve(), relative, "project")
    assert caught.value.issues[0].field == "project"


def test_confine_refuses_a_symlink_leading_out_of_the_root(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    with pytest.raises(ValidationError, match="outside the server root"):
        confine(root.resolve(), "escape")


def test_confine_refuses_a_sibling_whose_name_starts_with_the_roots(
    root: Path, tmp_path: Path
) -> None:
    sibling = tmp_path / "root-evil"
    sibling.mkdir()
    (root / "evil").symlink_to(sibling)
    assert str(sibling).startswith(str(root))
    with pytest.raises(ValidationError, match="outside the server root"):
        confine(root.resolve(), "evil")


def test_confine_follows_a_symlink_that_stays_inside(root: Path) -> None:
    (root / "alias").symlink_to(root / "shop")
    assert confine(root.resolve(), "alias") == (root / "shop").resolve()


def test_a_project_reached_through_an_escaping_symlink_is_refused(
    workspace: Workspace, tmp_path: Path
) -> None:
    copy_shop(tmp_path / "elsewhere")
    (workspace.root / "linked").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValidationError):
        workspace.pipelines("linked")


def test_a_pipelines_folder_linked_out_of_the_root_is_refused(
    workspace: Workspace, tmp_path: Path
) -> None:
    project = workspace.root / "team" / "sales"
    shutil.rmtree(project / "pipelines")
    (tmp_path / "stolen").mkdir()
    (tmp_path / "stolen" / "secret.pipeline.json").write_text("{}")
    (project / "pipelines").symlink_to(tmp_path / "stolen")
    with pytest.raises(ValidationError):
        workspace.pipelines("team/sales")
    with pytest.raises(ValidationError):
        workspace.read_pipeline("team/sales", "secret")


# -- projects ------------------------------------------------------------------------------


def test_projects_are_found_anywhere_below_the_root(workspace: Workspace) -> None:
    found = {p["path"]: p["name"] for p in workspace.projects()}
    assert found == {"shop": "shop", "team/sales": "sales"}


def test_a_path_inside_a_project_names_that_project(workspace: Workspace) -> None:
    assert workspace.project("shop/pipelines").config.name == "shop"
    assert workspace.project("shop/pipelines/customer_totals.pipeline.json").config.name == "shop"


def test_a_folder_outside_any_project_is_not_found(workspace: Workspace) -> None:
    (workspace.root / "notes").mkdir()
    with pytest.raises(NotFound):
        workspace.project("notes")
    with pytest.raises(NotFound):
        workspace.project("missing")


def test_project_info_lists_pipelines_and_fabrics(workspace: Workspace) -> None:
    info = workspace.project_info("shop")
    assert info["path"] == "shop"
    assert "customer_totals" in info["pipelines"]
    assert info["fabrics"] == ["in-memory"]


def test_a_warehouse_file_outside_the_root_is_refused(workspace: Workspace) -> None:
    config = workspace.root / "team" / "sales" / "prophecy_project.yml"
    config.write_text("name: sales\ndatabase: ../../../warehouse.duckdb\n")
    with pytest.raises(ValidationError, match="outside the server root"):
        workspace.validate("team/sales", "anything", body({"pipeline": slow_pipeline()}))
    assert not (workspace.root.parent / "warehouse.duckdb").exists()


# -- ETags ---------------------------------------------------------------------------------


def test_etag_matching_follows_if_match_rules() -> None:
    current = etag_of(b"content")
    assert etag_matches(current, current)
    assert etag_matches(f'"other", {current}', current)
    assert etag_matches("*", current)
    assert not etag_matches(etag_of(b"older"), current)
    assert not etag_matches(f"W/{current}", current)


def test_reading_a_pipeline_gives_the_etag_of_its_file(workspace: Workspace) -> None:
    document, etag = workspace.read_pipeline("shop", "customer_totals")
    assert document["name"] == "customer_totals"
    content = (workspace.root / "shop" / "pipelines" / "customer_totals.pipeline.json").read_bytes()
    assert etag == etag_of(content)


def test_an_update_with_the_current_etag_is_saved_and_gets_a_new_etag(
    workspace: Workspace,
) -> None:
    document, etag = workspace.read_pipeline("shop", "customer_totals")
    document["description"] = "edited"
    saved, new_etag = workspace.update_pipeline("shop", "customer_totals", body(document), etag)
    assert saved["description"] == "edited"
    assert new_etag != etag
    assert workspace.read_pipeline("shop", "customer_totals") == (saved, new_etag)


def test_an_update_with_a_stale_etag_is_refused_and_writes_nothing(workspace: Workspace) -> None:
    document, etag = workspace.read_pipeline("shop", "customer_totals")
    document["description"] = "first"
    workspace.update_pipeline("shop", "customer_totals", body(document), etag)
    document["description"] = "second"
    with pytest.raises(PreconditionFailed):
        workspace.update_pipeline("shop", "customer_totals", body(document), etag)
    assert workspace.read_pipeline("shop", "customer_totals")[0]["description"] == "first"


def test_an_update_without_if_match_is_refused(workspace: Workspace) -> None:
    document, _ = workspace.read_pipeline("shop", "customer_totals")
    with pytest.raises(PreconditionRequired):
        workspace.update_pipeline("shop", "customer_totals", body(document), None)
    with pytest.raises(PreconditionRequired):
        workspace.delete_pipeline("shop", "customer_totals", None)


def test_concurrent_updates_with_the_same_etag_let_exactly_one_win(workspace: Workspace) -> None:
    document, etag = workspace.read_pipeline("shop", "customer_totals")
    outcomes: list[str] = []

    def edit(text: str) -> None:
        try:
            workspace.update_pipeline(
                "shop", "customer_totals", body({**document, "description": text}), etag
            )
            outcomes.append("saved")
        except PreconditionFailed:
            outcomes.append("refused")

    threads = [threading.Thread(target=edit, args=(f"edit {i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["saved"]


def test_a_document_saved_under_another_name_is_refused(workspace: Workspace) -> None:
    document, etag = workspace.read_pipeline("shop", "customer_totals")
    with pytest.raises(ValidationError) as caught:
        workspace.update_pipeline("shop", "customer_totals", body({**document, "name": "x"}), etag)
    assert caught.value.issues[0].field == "/name"


def test_creating_writes_the_file_atomically_and_refuses_an_existing_name(
    workspace: Workspace,
) -> None:
    document, etag = workspace.create_pipeline("team/sales", body(slow_pipeline("fresh")))
    folder = workspace.root / "team" / "sales" / "pipelines"
    assert [p.name for p in folder.iterdir()] == ["fresh.pipeline.json"]  # no temporary file left
    assert etag == etag_of((folder / "fresh.pipeline.json").read_bytes())
    with pytest.raises(Conflict):
        workspace.create_pipeline("team/sales", body(document))


def test_a_pipeline_name_that_is_not_a_file_name_is_refused(workspace: Workspace) -> None:
    for name in ["../evil", "a/b", ".hidden", "x" * 200]:
        with pytest.raises(ValidationError):
            workspace.create_pipeline("team/sales", body(slow_pipeline(name)))
        with pytest.raises(ValidationError):
            workspace.read_pipeline("shop", name)


def test_deleting_needs_the_current_etag(workspace: Workspace) -> None:
    _, etag = workspace.read_pipeline("shop", "top_products")
    with pytest.raises(PreconditionFailed):
        workspace.delete_pipeline("shop", "top_products", etag_of(b"stale"))
    workspace.delete_pipeline("shop", "top_products", etag)
    with pytest.raises(NotFound):
        workspace.read_pipeline("shop", "top_products")


# -- renames -------------------------------------------------------------------------------


def test_a_rename_moves_the_file_and_renames_the_document(workspace: Workspace) -> None:
    folder = workspace.root / "shop" / "pipelines"
    before = sorted(p.name for p in folder.iterdir())
    _, etag = workspace.read_pipeline("shop", "top_products")
    document, new_etag = workspace.rename_pipeline(
        "shop", "top_products", body({"name": "best_sellers"}), etag
    )
    assert document["name"] == "best_sellers"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*(n for n in before if n != "top_products.pipeline.json"), "best_sellers.pipeline.json"]
    )
    assert workspace.read_pipeline("shop", "best_sellers") == (document, new_etag)
    with pytest.raises(NotFound):
        workspace.read_pipeline("shop", "top_products")
    assert workspace.validate("shop", "best_sellers", b"") == []


def test_renaming_onto_an_existing_pipeline_is_a_conflict_and_changes_nothing(
    workspace: Workspace,
) -> None:
    folder = workspace.root / "shop" / "pipelines"
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(Conflict):
        workspace.rename_pipeline("shop", "top_products", body({"name": "customer_totals"}), "*")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files


def test_a_rename_needs_the_current_etag(workspace: Workspace) -> None:
    request = body({"name": "renamed"})
    with pytest.raises(PreconditionRequired):
        workspace.rename_pipeline("shop", "top_products", request, None)
    with pytest.raises(PreconditionFailed):
        workspace.rename_pipeline("shop", "top_products", request, etag_of(b"stale"))
    with pytest.raises(NotFound):
        workspace.rename_pipeline("shop", "nothing", request, "*")
    assert not (workspace.root / "shop" / "pipelines" / "renamed.pipeline.json").exists()


@pytest.mark.parametrize(
    "request_body",
    [{"name": "../evil"}, {"name": ".hidden"}, {"name": 3}, {}, {"name": "a", "x": 1}],
)
def test_a_rename_to_an_invalid_name_is_refused(workspace: Workspace, request_body: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        workspace.rename_pipeline("shop", "top_products", body(request_body), "*")
    assert caught.value.issues[0].field in {"/name", "/x"}
    workspace.read_pipeline("shop", "top_products")


def test_renaming_to_the_same_name_keeps_the_pipeline(workspace: Workspace) -> None:
    document, etag = workspace.read_pipeline("shop", "top_products")
    again = workspace.rename_pipeline("shop", "top_products", body({"name": "top_products"}), etag)
    assert again == (document, etag)


# -- validate and compile ------------------------------------------------------------------


def test_validate_reports_every_issue_of_a_draft(workspace: Workspace) -> None:
    draft = {
        "version": 1,
        "name": "draft",
        "gems": [
            {"id": "a", "kind": "Nope"},
            {"id": "b", "kind": "Source", "properties": {"format": "csv"}},
            {"id": "c", "kind": "Limit", "properties": {"count": 1}},
        ],
        "connections": [{"from": "ghost", "to": "c"}],
    }
    issues = workspace.validate("shop", "draft", body({"pipeline": draft}))
    assert {i.gem_id for i in issues} >= {"a", "b"}
    assert any("ghost" in i.message for i in issues)


def test_validate_reports_a_malformed_draft_as_issues(workspace: Workspace) -> None:
    issues = workspace.validate("shop", "draft", body({"pipeline": {"gems": 3}}))
    assert {i.field for i in issues} >= {"/name", "/gems"}


def test_validate_of_the_saved_pipeline_is_clean(workspace: Workspace) -> None:
    assert workspace.validate("shop", "customer_totals", b"") == []


def test_the_validation_report_gives_every_gems_columns(workspace: Workspace) -> None:
    report = workspace.validation_report("shop", "customer_totals", b"")
    assert (report["valid"], report["issues"]) == (True, [])
    document, _ = workspace.read_pipeline("shop", "customer_totals")
    assert set(report["columns"]) == {g["id"] for g in document["gems"]}
    compiled = workspace.compile("shop", "customer_totals", body({"gem": "by_customer"}))
    expected = compiled["statements"][0]["columns"]
    assert report["columns"]["by_customer"] == [
        {"name": c["name"], "type": c["type"]} for c in expected
    ]
    assert {"name": "order_id", "type": "BIGINT"} in report["columns"]["orders"]


def test_the_validation_report_leaves_out_gems_that_could_not_be_built(
    workspace: Workspace,
) -> None:
    draft = {
        "name": "draft",
        "gems": [
            _seed("src"),
            {"id": "bad", "kind": "Filter", "properties": {"condition": "nope > 1"}},
            {"id": "after", "kind": "Limit", "properties": {"count": 1}},
            {"id": "fine", "kind": "Limit", "properties": {"count": 1}},
        ],
        "connections": [
            {"from": "src", "to": "bad"},
            {"from": "bad", "to": "after"},
            {"from": "src", "to": "fine"},
        ],
    }
    report = workspace.validation_report("shop", "draft", body({"pipeline": draft}))
    assert report["valid"] is False
    assert [i["gem_id"] for i in report["issues"]] == ["bad"]
    assert report["columns"] == {
        "src": [{"name": "n", "type": "INTEGER"}],
        "fine": [{"name": "n", "type": "INTEGER"}],
    }
    unreadable = workspace.validation_report("shop", "draft", body({"pipeline": {"gems": 3}}))
    assert unreadable["columns"] == {}


def test_compile_renders_any_dialect_and_any_gem(workspace: Workspace) -> None:
    result = workspace.compile("shop", "customer_totals", body({"dialect": "spark"}))
    assert [s["gem_id"] for s in result["statements"]] == ["customer_totals"]
    assert "`customers`" in result["statements"][0]["sql"]
    one = workspace.compile("shop", "customer_totals", body({"gem": "shipped"}))
    assert one["dialect"] == "duckdb"
    assert [c["name"] for c in one["statements"][0]["columns"]][:1] == ["order_id"]


@pytest.mark.parametrize(
    "request_body",
    [{"dialect": "klingon"}, {"dialect": None}, {"gem": 3}, {"extra": 1}, [], "text"],
)
def test_compile_refuses_a_malformed_request(workspace: Workspace, request_body: Any) -> None:
    with pytest.raises(ValidationError):
        workspace.compile("shop", "customer_totals", body(request_body))


def test_a_body_that_is_not_json_is_a_validation_error(workspace: Workspace) -> None:
    for raw in [b"{", b"\xff\xfe", b"[" * 100_000, b'{"limit": NaN}', b'{"limit": 1e999}']:
        with pytest.raises(ValidationError):
            workspace.compile("shop", "customer_totals", raw)


def test_sources_and_targets_outside_the_root_are_refused(workspace: Workspace) -> None:
    for path in ["../../etc/passwd", "/etc/passwd", "file:///etc/passwd", "data/../../x.csv"]:
        draft = {
            "name": "leak",
            "gems": [
                {"id": "src", "kind": "Source", "properties": {"format": "csv", "path": path}}
            ],
        }
        issues = workspace.validate("shop", "leak", body({"pipeline": draft}))
        assert [(i.code, i.gem_id, i.field) for i in issues if i.code == "path"] == [
            ("path", "src", "/gems/0/properties/path")
        ], path
        with pytest.raises(ValidationError):
            workspace.preview("shop", "leak", body({"pipeline": draft, "gem": "src"}))


def test_remote_sources_are_left_to_the_engine(workspace: Workspace) -> None:
    draft = {
        "name": "remote",
        "gems": [
            {
                "id": "src",
                "kind": "Source",
                "properties": {"format": "parquet", "path": "s3://bucket/data.parquet"},
            }
        ],
    }
    project = workspace.project("shop")
    pipeline_issues = workspace.path_issues(project, _load(draft))
    assert pipeline_issues == []


def _load(document: dict[str, Any]) -> Any:
    from prophecy_jupyter.model import load_pipeline

    return load_pipeline(document)


# -- the files gems read and write, in every format ---------------------------------------

FILE_DATA = {"excel": "data/book.xlsx", "xml": "data/feed.xml"}
"""A file of each connector format that the shop project holds in these tests."""


def _file_formats() -> list[str]:
    """Every file format a Source or Target accepts, read from their properties."""
    from typing import get_args

    from prophecy_jupyter.gems.sources import SourceProps, TargetProps

    accepted = {
        fmt
        for props in (SourceProps, TargetProps)
        for fmt in get_args(props.model_fields["format"].annotation)
    }
    return sorted(accepted - {"table", "seed"})


def _with_connector_files(root: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["id", "name"])
    sheet.append([1, "ann"])
    book.save(root / "shop" / FILE_DATA["excel"])
    (root / "shop" / FILE_DATA["xml"]).write_text(
        "<rows><row><id>1</id><name>ann</name></row></rows>", encoding="utf-8"
    )


def _reading(fmt: str, path: str, **extra: Any) -> dict[str, Any]:
    source = {"id": "src", "kind": "Source", "properties": {"format": fmt, "path": path, **extra}}
    return {"name": "files", "gems": [source]}


def _writing(fmt: str, path: str) -> dict[str, Any]:
    rows = {"format": "seed", "columns": [{"name": "id", "type": "INTEGER"}], "rows": [[1]]}
    return {
        "name": "files",
        "gems": [
            {"id": "rows", "kind": "Source", "properties": rows},
            {"id": "out", "kind": "Target", "properties": {"format": fmt, "path": path}},
        ],
        "connections": [{"from": "rows", "to": "out"}],
    }


def _path_issues(workspace: Workspace, draft: dict[str, Any]) -> list[tuple[str, str, str]]:
    issues = workspace.path_issues(workspace.project("shop"), _load(draft))
    return [(i.code, i.gem_id or "", i.field or "") for i in issues]


def _refused_at_once(workspace: Workspace, draft: dict[str, Any], match: str) -> None:
    """Preview and run both refuse ``draft`` before anything is read or queued."""
    gem = draft["gems"][-1]["id"]
    with pytest.raises(ValidationError, match=match):
        workspace.preview("shop", "files", body({"pipeline": draft, "gem": gem}))
    saved = {**draft, "name": f"files_{abs(hash(json.dumps(draft)))}"}
    workspace.create_pipeline("shop", body(saved))
    with pytest.raises(ValidationError, match=match):
        workspace.start_run("shop", body({"pipeline": saved["name"]}))
    assert workspace.list_runs("shop") == []


def test_every_file_format_of_sources_and_targets_is_checked(workspace: Workspace) -> None:
    formats = _file_formats()
    assert {"csv", "parquet", "json", "excel", "xml"} <= set(formats)
    for fmt in formats:
        assert _path_issues(workspace, _reading(fmt, "/etc/passwd")) == [
            ("path", "src", "/gems/0/properties/path")
        ], fmt
        assert _path_issues(workspace, _writing(fmt, "/tmp/out")) == [
            ("path", "out", "/gems/1/properties/path")
        ], fmt


@pytest.mark.parametrize("fmt", ["excel", "xml"])
def test_a_missing_excel_or_xml_source_is_refused_before_the_run(
    workspace: Workspace, fmt: str
) -> None:
    draft = _reading(fmt, f"data/missing.{fmt}")
    [issue] = workspace.path_issues(workspace.project("shop"), _load(draft))
    assert (issue.code, issue.gem_id, issue.field) == (
        "unreadable_source",
        "src",
        "/gems/0/properties/path",
    )
    assert issue.message == f"'data/missing.{fmt}' does not exist"
    # Validation says it once, though the gem itself finds the file missing too.
    issues = workspace.validate("shop", "files", body({"pipeline": draft}))
    assert [(i.code, i.field) for i in issues] == [("unreadable_source", "/gems/0/properties/path")]
    _refused_at_once(workspace, draft, "does not exist")


@pytest.mark.parametrize("fmt", ["excel", "xml"])
@pytest.mark.parametrize(
    "path", ["../../etc/passwd", "data/../../x", "/etc/passwd", "file:///etc/passwd", "out/f"]
)
def test_excel_and_xml_paths_outside_the_root_are_refused(
    workspace: Workspace, root: Path, tmp_path: Path, fmt: str, path: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("<rows/>", encoding="utf-8")
    (root / "shop" / "out").symlink_to(outside)
    for draft, gem, index in [(_reading(fmt, path), "src", 0), (_writing(fmt, path), "out", 1)]:
        [issue] = workspace.path_issues(workspace.project("shop"), _load(draft))
        assert (issue.code, issue.gem_id, issue.field) == (
            "path",
            gem,
            f"/gems/{index}/properties/path",
        )
        assert issue.message == f"{path!r} is outside the server root"
        issues = workspace.validate("shop", "files", body({"pipeline": draft}))
        assert [(i.code, i.field) for i in issues if i.code == "path"] == [
            ("path", f"/gems/{index}/properties/path")
        ]
        _refused_at_once(workspace, draft, "outside")


@pytest.mark.parametrize("fmt", ["excel", "xml", "csv"])
def test_a_target_whose_folder_cannot_exist_is_refused(workspace: Workspace, fmt: str) -> None:
    draft = _writing(fmt, "data/orders.csv/out.file")
    expected = [("path", "out", "/gems/1/properties/path")]
    assert _path_issues(workspace, draft) == expected
    report = workspace.validation_report("shop", "files", body({"pipeline": draft}))
    assert report["valid"] is False
    assert [(i["code"], i["field"]) for i in report["issues"]] == [expected[0][::2]]
    assert "'data/orders.csv' is a file, not a folder" in report["issues"][0]["message"]
    _refused_at_once(workspace, draft, "is a file, not a folder")
    assert _path_issues(workspace, _writing(fmt, "data")) == expected


@pytest.mark.parametrize("fmt", ["excel", "xml"])
def test_excel_and_xml_pipelines_inside_the_project_have_no_issue(
    workspace: Workspace, root: Path, fmt: str
) -> None:
    _with_connector_files(root)
    (root / "shop" / "linked").symlink_to(root / "shop" / "data")
    for draft in [
        _reading(fmt, FILE_DATA[fmt]),
        _reading(fmt, f"linked/{FILE_DATA[fmt].split('/')[-1]}"),
        _reading(fmt, "data/*" + FILE_DATA[fmt][-4:]),
        _writing(fmt, f"output/new/folder/out.{fmt}"),
    ]:
        assert _path_issues(workspace, draft) == [], draft
        assert workspace.validate("shop", "files", body({"pipeline": draft})) == [], draft
    workspace.create_pipeline("shop", body(_writing(fmt, f"output/run/out.{fmt}")))
    run = workspace.start_run("shop", body({"pipeline": "files"}))
    wait_until(lambda: workspace.runs.get(run["id"])["status"] not in {"queued", "running"})
    assert workspace.runs.get(run["id"])["status"] == "succeeded"
    assert (root / "shop" / "output" / "run" / f"out.{fmt}").is_file()


def test_a_glob_must_match_a_file_inside_the_root(
    workspace: Workspace, root: Path, tmp_path: Path
) -> None:
    assert _path_issues(workspace, _reading("csv", "data/orders*.csv")) == []
    assert _path_issues(workspace, _reading("csv", "data/nothing*.csv")) == [
        ("unreadable_source", "src", "/gems/0/properties/path")
    ]
    (tmp_path / "secret.csv").write_text("a\n1\n", encoding="utf-8")
    (root / "shop" / "data" / "zz_secret.csv").symlink_to(tmp_path / "secret.csv")
    assert _path_issues(workspace, _reading("csv", "data/*.csv")) == [
        ("path", "src", "/gems/0/properties/path")
    ]


def test_files_reached_through_a_connection_are_not_local_paths(workspace: Workspace) -> None:
    for fmt in ["excel", "xml", "csv"]:
        draft = _reading(fmt, "nowhere/missing.file", connection="remote")
        assert _path_issues(workspace, draft) == []
    lister = {"id": "ls", "kind": "Directory", "properties": {"path": "x", "connection": "r"}}
    assert _path_issues(workspace, {"name": "files", "gems": [lister]}) == []


def test_directory_and_dynamic_input_paths_are_checked(workspace: Workspace) -> None:
    def lister(path: str) -> dict[str, Any]:
        return {
            "name": "files",
            "gems": [{"id": "ls", "kind": "Directory", "properties": {"path": path}}],
        }

    assert _path_issues(workspace, lister(".")) == []
    assert _path_issues(workspace, lister("data")) == []
    assert _path_issues(workspace, lister("../..")) == [("path", "ls", "/gems/0/properties/path")]
    assert _path_issues(workspace, lister("nowhere")) == [
        ("unreadable_source", "ls", "/gems/0/properties/path")
    ]
    dynamic: dict[str, Any] = {
        "name": "files",
        "gems": [
            {
                "id": "each",
                "kind": "DynamicInput",
                "properties": {"mode": "file", "path": "../../{region}.csv"},
            }
        ],
    }
    assert _path_issues(workspace, dynamic) == [("path", "each", "/gems/0/properties/path")]
    dynamic["gems"][0]["properties"]["path"] = "data/{region}.csv"  # filled in per row
    assert _path_issues(workspace, dynamic) == []


# -- previews ------------------------------------------------------------------------------


def test_preview_returns_the_first_rows_of_a_gem(workspace: Workspace) -> None:
    result = workspace.preview("shop", "customer_totals", body({"gem": "ranked", "limit": 3}))
    assert len(result.rows) == 3
    assert result.truncated
    assert [name for name, _ in result.columns][:2] == ["customer_id", "name"]


def _preview_in_background(
    workspace: Workspace, request_body: bytes, outcome: list[BaseException | object]
) -> threading.Thread:
    def work() -> None:
        try:
            outcome.append(workspace.preview("shop", "slow", request_body))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def _preview_running(workspace: Workspace) -> bool:
    return workspace.previews.running_count() > 0


def test_a_cancel_request_interrupts_a_running_preview(workspace: Workspace) -> None:
    outcome: list[BaseException | object] = []
    request_body = body({"pipeline": slow_pipeline(), "gem": "big"})
    thread = _preview_in_background(workspace, request_body, outcome)
    wait_until(lambda: _preview_running(workspace))
    assert workspace.cancel_preview("shop", "slow")
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert isinstance(outcome[0], Cancelled)
    assert not workspace.cancel_preview("shop", "slow")


def test_a_newer_preview_of_the_same_pipeline_replaces_the_running_one(
    workspace: Workspace,
) -> None:
    outcome: list[BaseException | object] = []
    slow = body({"pipeline": slow_pipeline(), "gem": "big"})
    thread = _preview_in_background(workspace, slow, outcome)
    wait_until(lambda: _preview_running(workspace))
    quick = {"pipeline": {**slow_pipeline(), "gems": [_seed("big")]}, "gem": "big"}
    newer = workspace.preview("shop", "slow", body(quick))
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert isinstance(outcome[0], Cancelled)
    assert newer.rows == [(1,)]


def _seed(gem_id: str) -> dict[str, Any]:
    return {
        "id": gem_id,
        "kind": "Source",
        "properties": {
            "format": "seed",
            "columns": [{"name": "n", "type": "INTEGER"}],
            "rows": [[1]],
        },
    }


def test_cancelling_one_preview_leaves_other_work_on_the_project_running(
    workspace: Workspace,
) -> None:
    outcome: list[BaseException | object] = []
    thread = _preview_in_background(
        workspace, body({"pipeline": slow_pipeline(), "gem": "big"}), outcome
    )
    wait_until(lambda: _preview_running(workspace))
    assert workspace.validate("shop", "customer_totals", b"") == []
    other = workspace.preview("shop", "customer_totals", body({"gem": "orders", "limit": 1}))
    assert len(other.rows) == 1
    workspace.cancel_preview("shop", "slow")
    thread.join(timeout=60)
    assert isinstance(outcome[0], Cancelled)


def test_preview_of_a_missing_gem_is_not_found(workspace: Workspace) -> None:
    with pytest.raises(NotFound):
        workspace.preview("shop", "customer_totals", body({"gem": "nope"}))


@pytest.mark.parametrize("limit", [-1, 10_001, 2.5, True, "10", None])
def test_preview_refuses_a_bad_limit(workspace: Workspace, limit: Any) -> None:
    with pytest.raises(ValidationError):
        workspace.preview("shop", "customer_totals", body({"gem": "orders", "limit": limit}))


# -- runs ----------------------------------------------------------------------------------


def finished_run(workspace: Workspace, run_id: str) -> dict[str, Any]:
    wait_until(lambda: workspace.runs.get(run_id)["status"] in {"succeeded", "failed", "cancelled"})
    return workspace.runs.get(run_id)


def test_a_run_starts_queued_and_reports_every_gem(workspace: Workspace) -> None:
    run = workspace.start_run("shop", body({"pipeline": "customer_totals", "mode": "staged"}))
    assert run["status"] in {"queued", "running"}
    assert run["fabric"] == "in-memory"
    done = finished_run(workspace, run["id"])
    assert done["status"] == "succeeded", done
    gems = {g["gem_id"]: g for g in done["gems"]}
    assert gems["customer_totals"]["rows"] > 0
    assert all(g["status"] == "succeeded" and g["rows"] is not None for g in gems.values())
    assert done["started"] is not None and done["finished"] is not None


def test_an_invalid_pipeline_fails_with_its_issues(workspace: Workspace) -> None:
    workspace.create_pipeline(
        "team/sales",
        body({"name": "broken", "gems": [{"id": "a", "kind": "Filter"}]}),
    )
    run = workspace.start_run("team/sales", body({"pipeline": "broken"}))
    done = finished_run(workspace, run["id"])
    assert done["status"] == "failed"
    assert done["issues"] and done["issues"][0]["gem_id"] == "a"


def test_a_failing_statement_fails_the_run_with_the_gems_error(workspace: Workspace) -> None:
    workspace.create_pipeline(
        "team/sales",
        body(
            {
                "name": "bad_cast",
                "gems": [
                    {
                        "id": "q",
                        "kind": "SQLStatement",
                        "properties": {"query": "SELECT CAST('x' AS INTEGER) AS n"},
                    },
                    {"id": "out", "kind": "Target", "properties": {"table": "bad"}},
                ],
                "connections": [{"from": "q", "to": "out"}],
            }
        ),
    )
    done = finished_run(
        workspace, workspace.start_run("team/sales", body({"pipeline": "bad_cast"}))["id"]
    )
    assert done["status"] == "failed"
    assert {g["gem_id"]: g["status"] for g in done["gems"]}["out"] == "failed"
    assert done["error"]


def test_cancelling_a_running_run_interrupts_it(workspace: Workspace) -> None:
    workspace.create_pipeline("team/sales", body(slow_pipeline(target=True)))
    run = workspace.start_run("team/sales", body({"pipeline": "slow"}))
    wait_until(lambda: workspace.runs.get(run["id"])["status"] == "running")
    workspace.runs.cancel(run["id"])
    done = finished_run(workspace, run["id"])
    assert done["status"] == "cancelled"
    assert {g["status"] for g in done["gems"]} <= {"skipped", "failed"}


def test_runs_of_one_project_queue_and_a_queued_run_cancels_at_once(
    workspace: Workspace,
) -> None:
    workspace.create_pipeline("team/sales", body(slow_pipeline(target=True)))
    first = workspace.start_run("team/sales", body({"pipeline": "slow"}))
    second = workspace.start_run("team/sales", body({"pipeline": "slow"}))
    wait_until(lambda: workspace.runs.get(first["id"])["status"] == "running")
    assert workspace.runs.get(second["id"])["status"] == "queued"
    assert workspace.runs.cancel(second["id"])["status"] == "cancelled"
    workspace.runs.cancel(first["id"])
    assert finished_run(workspace, first["id"])["status"] == "cancelled"
    assert workspace.runs.get(second["id"])["started"] is None


def test_runs_are_listed_newest_first_and_by_project(workspace: Workspace) -> None:
    older = workspace.start_run("shop", body({"pipeline": "top_products"}))
    newer = workspace.start_run("shop", body({"pipeline": "customer_totals"}))
    for run in (older, newer):
        finished_run(workspace, run["id"])
    assert [r["id"] for r in workspace.list_runs("shop")] == [newer["id"], older["id"]]
    assert workspace.list_runs("team/sales") == []


@pytest.mark.parametrize(
    "request_body",
    [
        {},
        {"pipeline": 3},
        {"pipeline": "customer_totals", "mode": "turbo"},
        {"pipeline": "customer_totals", "parameters": {"min_total": [1]}},
        {"pipeline": "customer_totals", "fabric": 3},
        {"pipeline": "customer_totals", "fabric": "../x"},
    ],
)
def test_a_malformed_run_request_is_refused(workspace: Workspace, request_body: Any) -> None:
    with pytest.raises(ValidationError):
        workspace.start_run("shop", body(request_body))


def test_an_unknown_run_is_not_found(workspace: Workspace) -> None:
    with pytest.raises(NotFound):
        workspace.runs.get("0" * 32)
    with pytest.raises(NotFound):
        workspace.runs.cancel("0" * 32)


# -- fabrics -------------------------------------------------------------------------------


def test_fabric_secrets_are_written_but_only_ever_read_masked(
    workspace: Workspace, tmp_path: Path
) -> None:
    secret = "s3cr3t-value-123"
    view = workspace.put_fabric(
        "shop",
        "warehouse",
        body(
            {
                "kind": "postgres",
                "options": {"host": "db.internal", "port": 5432},
                "secrets": {"password": secret, "token": None},
            }
        ),
    )
    assert view["secrets"] == {"password": MASK, "token": None}
    assert workspace.fabric("shop", "warehouse") == view
    listed = workspace.fabrics("shop")
    assert [f["name"] for f in listed] == ["in-memory", "warehouse"]
    assert secret not in json.dumps(listed)
    assert secret in (tmp_path / "secrets.json").read_text()
    assert secret not in (workspace.root / "shop" / "fabrics" / "warehouse.yml").read_text()


def test_writing_back_a_read_fabric_keeps_its_secrets(workspace: Workspace, tmp_path: Path) -> None:
    workspace.put_fabric(
        "shop", "pg", body({"kind": "postgres", "secrets": {"password": "keep-me"}})
    )
    read = workspace.fabric("shop", "pg")
    read.pop("name")
    workspace.put_fabric("shop", "pg", body({**read, "description": "edited"}))
    assert "keep-me" in (tmp_path / "secrets.json").read_text()
    workspace.put_fabric("shop", "pg", body({"kind": "postgres", "secrets": {}}))
    assert "keep-me" not in (tmp_path / "secrets.json").read_text()
    assert workspace.fabric("shop", "pg")["secrets"] == {}


@pytest.mark.parametrize(
    "request_body",
    [
        {"kind": "oracle"},
        {},
        {"kind": "postgres", "secrets": {"password": 5}},
        {"kind": "postgres", "secrets": ["password"]},
        {"kind": "postgres", "options": {"nested": {"a": 1}}},
        {"kind": "postgres", "extra": True},
    ],
)
def test_a_malformed_fabric_is_refused(workspace: Workspace, request_body: Any) -> None:
    with pytest.raises(ValidationError):
        workspace.put_fabric("shop", "pg", body(request_body))


def test_the_in_memory_fabric_cannot_be_replaced_or_deleted(workspace: Workspace) -> None:
    with pytest.raises(ValidationError):
        workspace.put_fabric("shop", "in-memory", body({"kind": "duckdb"}))
    with pytest.raises(ValidationError):
        workspace.delete_fabric("shop", "in-memory")
    with pytest.raises(NotFound):
        workspace.delete_fabric("shop", "ghost")


def test_an_unpaired_surrogate_in_a_body_is_refused_before_it_reaches_a_file(
    workspace: Workspace,
) -> None:
    raw = b'{"kind": "postgres", "options": {"host": "\\ud800"}}'
    with pytest.raises(ValidationError, match="surrogate"):
        workspace.put_fabric("shop", "pg", raw)
    assert not (workspace.root / "shop" / "fabrics").exists()


# -- other fabrics for previews and runs, connection tests ---------------------------------


def test_previews_and_runs_use_the_fabric_they_name(workspace: Workspace) -> None:
    workspace.put_fabric(
        "shop", "scratch", body({"kind": "duckdb", "options": {"database": "scratch.duckdb"}})
    )
    run = workspace.start_run("shop", body({"pipeline": "customer_totals", "fabric": "scratch"}))
    assert run["fabric"] == "scratch"
    assert finished_run(workspace, run["id"])["status"] == "succeeded"
    assert (workspace.root / "shop" / "scratch.duckdb").is_file()
    draft = {
        "name": "reader",
        "gems": [
            {
                "id": "t",
                "kind": "Source",
                "properties": {"format": "table", "table": "customer_totals"},
            }
        ],
    }
    request = {"pipeline": draft, "gem": "t", "limit": 1}
    shown = workspace.preview("shop", "reader", body({**request, "fabric": "scratch"}))
    assert len(shown.rows) == 1
    with pytest.raises(ValidationError):  # the default warehouse has no such table
        workspace.preview("shop", "reader", body(request))
    assert len(workspace._engines) == 2  # one per fabric, kept
    workspace.preview("shop", "reader", body({**request, "fabric": "scratch"}))
    assert len(workspace._engines) == 2


def test_a_preview_or_run_on_an_unknown_fabric_is_not_found(workspace: Workspace) -> None:
    with pytest.raises(NotFound, match="ghost"):
        workspace.preview("shop", "customer_totals", body({"gem": "orders", "fabric": "ghost"}))
    with pytest.raises(NotFound, match="ghost"):
        workspace.start_run("shop", body({"pipeline": "customer_totals", "fabric": "ghost"}))


def test_a_preview_on_a_fabric_that_cannot_connect_says_where_it_tried(
    workspace: Workspace,
) -> None:
    options = {"host": "127.0.0.1", "port": 1, "dbname": "shop", "user": "etl"}
    workspace.put_fabric("shop", "pg", body({"kind": "postgres", "options": options}))
    with pytest.raises((EngineError, ValidationError), match="cannot connect to postgres at"):
        workspace.preview("shop", "customer_totals", body({"gem": "orders", "fabric": "pg"}))


def test_testing_the_in_memory_fabric_runs_a_statement(workspace: Workspace) -> None:
    result = workspace.test_fabric("shop", "in-memory")
    assert result["ok"] is True, result
    assert "SELECT 1" in result["message"]
    assert 0 <= result["seconds"] < 60


def test_testing_a_fabric_reports_what_keeps_it_from_working(workspace: Workspace) -> None:
    secret = "never-shown-4711"
    workspace.put_fabric(
        "shop",
        "pg",
        body(
            {
                "kind": "postgres",
                "options": {"host": "127.0.0.1", "port": 1, "dbname": "shop", "user": "etl"},
                "secrets": {"password": secret, "token": None},
            }
        ),
    )
    missing = workspace.test_fabric("shop", "pg")
    assert missing["ok"] is False
    assert "'token'" in missing["message"] and "'password'" not in missing["message"]
    workspace.put_fabric(
        "shop",
        "pg",
        body(
            {
                "kind": "postgres",
                "options": {"host": "127.0.0.1", "port": 1, "dbname": "shop", "user": "etl"},
                "secrets": {"password": MASK},
            }
        ),
    )
    unavailable = workspace.test_fabric("shop", "pg")
    assert unavailable["ok"] is False
    assert "cannot connect to postgres" in unavailable["message"]
    assert secret not in json.dumps([missing, unavailable])
    workspace.put_fabric(
        "shop", "away", body({"kind": "duckdb", "options": {"database": "../../away.duckdb"}})
    )
    away = workspace.test_fabric("shop", "away")
    assert away["ok"] is False
    assert "outside the server root" in away["message"]
    (workspace.root / "shop" / "folder.duckdb").mkdir()
    workspace.put_fabric(
        "shop", "folder", body({"kind": "duckdb", "options": {"database": "folder.duckdb"}})
    )
    assert workspace.test_fabric("shop", "folder")["ok"] is False
    workspace.put_fabric(
        "shop", "in-file", body({"kind": "duckdb", "options": {"database": "data/orders.csv/x"}})
    )
    in_file = workspace.test_fabric("shop", "in-file")
    assert in_file["ok"] is False
    assert "cannot open data/orders.csv/x" in in_file["message"]
    with pytest.raises(EngineError, match="cannot open"):
        workspace.preview("shop", "customer_totals", body({"gem": "orders", "fabric": "in-file"}))
    with pytest.raises(NotFound):
        workspace.test_fabric("shop", "ghost")
    with pytest.raises(ValidationError):
        workspace.test_fabric("shop", "in-memory", body({"extra": 1}))
