"""The Studio REST API over HTTP, against a real Jupyter server on a copy of the shop example."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from prophecy_jupyter.server.launcher import ServerProcess
from tests.test_server_support import copy_shop, shop_server

SLOW_QUERY = (
    "SELECT sum(hash(a.range + b.range)) AS n FROM range(100000000) AS a, range(100000000) AS b"
)
"""10^16 rows to hash: nothing but a cancel ends it."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("api")
    with shop_server(base, args=["--ServerApp.log_level=DEBUG"]) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update(server.headers)
        yield session


@pytest.fixture
def api(server: ServerProcess, http: requests.Session) -> Callable[..., requests.Response]:
    """``api("POST", "/pipelines", json=…)``: a request to the Studio API, authenticated."""

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 120)
        return http.request(method, server.api + path, **kwargs)

    return call


def error_of(response: requests.Response) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert {"code", "message"} <= set(error)
    return error


def scratch_pipeline(name: str, query: str = "SELECT 1 AS n") -> dict[str, Any]:
    return {
        "version": 1,
        "name": name,
        "gems": [
            {"id": "q", "kind": "SQLStatement", "properties": {"query": query}},
            {"id": "out", "kind": "Target", "properties": {"table": f"{name}_out"}},
        ],
        "connections": [{"from": "q", "to": "out"}],
    }


def wait_for(read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> Any:
    deadline = time.monotonic() + 120
    while True:
        current = read()
        if done(current):
            return current
        assert time.monotonic() < deadline, current
        time.sleep(0.02)


# -- catalog and projects ------------------------------------------------------------------


def test_the_gem_catalog_lists_every_kind_with_its_property_schema(api: Any) -> None:
    response = api("GET", "/gems")
    assert response.status_code == 200
    kinds = {g["kind"]: g for g in response.json()["gems"]}
    assert {"Source", "Filter", "Join", "Aggregate", "Target", "SQLStatement"} <= set(kinds)
    assert "path" in kinds["Source"]["properties_schema"]["properties"]


def test_the_root_is_the_shop_project(api: Any) -> None:
    assert api("GET", "/projects").json() == {
        "projects": [
            {"path": "", "name": "shop", "default_fabric": "in-memory", "dialect": "duckdb"}
        ]
    }
    info = api("GET", "/project").json()
    assert info["name"] == "shop"
    assert "customer_totals" in info["pipelines"]
    assert api("GET", "/pipelines").json()["pipelines"][0] == {"name": "channel_report"}


# -- documents and ETags -------------------------------------------------------------------


def test_a_pipeline_is_created_read_updated_and_deleted_with_etags(api: Any) -> None:
    created = api("POST", "/pipelines", json=scratch_pipeline("etags"))
    assert created.status_code == 201
    assert created.headers["Location"].endswith("/prophecy/api/v1/pipelines/etags")
    etag = created.headers["ETag"]

    read = api("GET", "/pipelines/etags")
    assert read.status_code == 200
    assert read.headers["ETag"] == etag
    document = read.json()

    edited = api(
        "PUT",
        "/pipelines/etags",
        json={**document, "description": "one"},
        headers={"If-Match": etag},
    )
    assert edited.status_code == 200
    assert edited.json()["description"] == "one"
    new_etag = edited.headers["ETag"]
    assert new_etag != etag

    stale = api(
        "PUT",
        "/pipelines/etags",
        json={**document, "description": "two"},
        headers={"If-Match": etag},
    )
    assert stale.status_code == 412
    assert error_of(stale)["code"] == "precondition_failed"
    missing = api("PUT", "/pipelines/etags", json=document)
    assert missing.status_code == 428
    assert error_of(missing)["code"] == "precondition_required"
    assert api("GET", "/pipelines/etags").json()["description"] == "one"

    assert api("DELETE", "/pipelines/etags").status_code == 428
    assert api("DELETE", "/pipelines/etags", headers={"If-Match": etag}).status_code == 412
    deleted = api("DELETE", "/pipelines/etags", headers={"If-Match": new_etag})
    assert deleted.status_code == 204
    assert api("GET", "/pipelines/etags").status_code == 404


def test_an_edit_on_disk_changes_the_etag(api: Any, server: ServerProcess) -> None:
    api("POST", "/pipelines", json=scratch_pipeline("on_disk"))
    etag = api("GET", "/pipelines/on_disk").headers["ETag"]
    file = server.root / "pipelines" / "on_disk.pipeline.json"
    file.write_text(file.read_text().replace("SELECT 1", "SELECT 2"))
    document = api("GET", "/pipelines/on_disk").json()
    refused = api("PUT", "/pipelines/on_disk", json=document, headers={"If-Match": etag})
    assert refused.status_code == 412


def test_a_rename_moves_the_pipeline_and_answers_its_new_location(
    api: Any, server: ServerProcess
) -> None:
    etag = api("POST", "/pipelines", json=scratch_pipeline("before")).headers["ETag"]
    renamed = api(
        "POST", "/pipelines/before/rename", json={"name": "after"}, headers={"If-Match": etag}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "after"
    assert renamed.headers["Location"].endswith("/prophecy/api/v1/pipelines/after")
    file = server.root / "pipelines" / "after.pipeline.json"
    assert renamed.headers["ETag"] == api("GET", "/pipelines/after").headers["ETag"]
    assert json.loads(file.read_text())["name"] == "after"
    assert not (server.root / "pipelines" / "before.pipeline.json").exists()
    assert api("GET", "/pipelines/before").status_code == 404


def test_a_rename_follows_the_rules_of_writes(api: Any) -> None:
    etag = api("POST", "/pipelines", json=scratch_pipeline("stays")).headers["ETag"]

    def rename(new: Any, **headers: str) -> requests.Response:
        response: requests.Response = api(
            "POST", "/pipelines/stays/rename", json={"name": new}, headers=headers
        )
        return response

    assert error_of(rename("x"))["code"] == "precondition_required"
    assert rename("x").status_code == 428
    assert rename("x", **{"If-Match": '"stale"'}).status_code == 412
    taken = rename("customer_totals", **{"If-Match": etag})
    assert taken.status_code == 409
    assert error_of(taken)["code"] == "conflict"
    for bad in ["../x", ".x", "a/b", 5, None]:
        refused = rename(bad, **{"If-Match": etag})
        assert refused.status_code == 422, bad
        assert error_of(refused)["field"] == "/name"
    missing = api("POST", "/pipelines/ghost/rename", json={"name": "x"}, headers={"If-Match": "*"})
    assert missing.status_code == 404
    assert api("GET", "/pipelines/stays").headers["ETag"] == etag


def test_creating_an_existing_pipeline_is_a_conflict(api: Any) -> None:
    document = api("GET", "/pipelines/customer_totals").json()
    response = api("POST", "/pipelines", json=document)
    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"


def test_a_malformed_document_lists_its_issues(api: Any) -> None:
    response = api("POST", "/pipelines", json={"name": "x", "gems": [{"id": "1 bad"}]})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid"
    assert {i["field"] for i in error["issues"]} >= {"/gems/0/id", "/gems/0/kind"}


# -- confinement ---------------------------------------------------------------------------


@pytest.mark.parametrize("project", ["..", "../..", "/etc", "/", "sub/../..", "..\\.."])
def test_a_project_path_leaving_the_root_is_refused(api: Any, project: str) -> None:
    response = api("GET", "/pipelines", params={"project": project})
    assert response.status_code == 422
    assert error_of(response)["field"] == "project"


def test_a_symlink_out_of_the_root_is_refused(
    api: Any, server: ServerProcess, tmp_path: Path
) -> None:
    copy_shop(tmp_path / "outside")
    (server.root / "escape").symlink_to(tmp_path / "outside")
    response = api("GET", "/pipelines", params={"project": "escape"})
    assert response.status_code == 422
    assert "outside the server root" in error_of(response)["message"]


def test_a_sibling_folder_sharing_the_roots_prefix_is_outside(
    api: Any, server: ServerProcess
) -> None:
    sibling = server.root.parent / f"{server.root.name}-evil"
    copy_shop(sibling)
    (server.root / "evil").symlink_to(sibling)
    response = api("GET", "/pipelines", params={"project": "evil"})
    assert response.status_code == 422


@pytest.mark.parametrize("name", ["..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", ".hidden", "a%00b"])
def test_a_pipeline_name_that_is_not_a_plain_file_name_is_refused(api: Any, name: str) -> None:
    response = api("GET", f"/pipelines/{name}")
    assert response.status_code == 422
    assert error_of(response)["field"] == "name"


def test_a_source_outside_the_root_cannot_be_previewed(api: Any) -> None:
    draft = {
        "name": "leak",
        "gems": [
            {"id": "src", "kind": "Source", "properties": {"format": "csv", "path": "/etc/passwd"}}
        ],
    }
    response = api("POST", "/pipelines/leak/preview", json={"pipeline": draft, "gem": "src"})
    assert response.status_code == 422
    assert error_of(response)["gem_id"] == "src"


def test_validate_answers_the_path_issues_of_excel_and_xml_gems(api: Any) -> None:
    rows = {"format": "seed", "columns": [{"name": "id", "type": "INTEGER"}], "rows": [[1]]}
    draft = {
        "name": "files",
        "gems": [
            {"id": "book", "kind": "Source", "properties": {"format": "excel", "path": "no.xlsx"}},
            {"id": "feed", "kind": "Source", "properties": {"format": "xml", "path": "/etc/x"}},
            {"id": "rows", "kind": "Source", "properties": rows},
            {
                "id": "out",
                "kind": "Target",
                "properties": {"format": "excel", "path": "data/orders.csv/out.xlsx"},
            },
        ],
        "connections": [{"from": "rows", "to": "out"}],
    }
    response = api("POST", "/pipelines/files/validate", json={"pipeline": draft})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    report = response.json()
    assert report["valid"] is False
    assert sorted((i["code"], i["gem_id"], i["field"]) for i in report["issues"]) == [
        ("path", "feed", "/gems/1/properties/path"),
        ("path", "out", "/gems/3/properties/path"),
        ("unreadable_source", "book", "/gems/0/properties/path"),
    ]
    assert all(i["severity"] == "error" and i["message"] for i in report["issues"])
    saved = {**draft, "name": "files_missing", "gems": draft["gems"][:1]}
    assert api("POST", "/pipelines", json=saved).status_code == 201
    refused = api("POST", "/runs", json={"pipeline": "files_missing"})
    assert refused.status_code == 422
    error = error_of(refused)
    assert (error["gem_id"], error["field"]) == ("book", "/gems/0/properties/path")
    assert error["issues"][0]["message"] == "'no.xlsx' does not exist"


def test_a_misspelt_query_argument_is_refused_rather_than_ignored(api: Any) -> None:
    response = api("GET", "/pipelines", params={"projetc": "elsewhere"})
    assert response.status_code == 422
    assert error_of(response)["field"] == "projetc"


# -- validate, compile, preview ------------------------------------------------------------


def test_validate_returns_every_issue_of_a_draft(api: Any) -> None:
    draft = {
        "name": "draft",
        "gems": [
            {"id": "a", "kind": "Nope"},
            {"id": "b", "kind": "Source", "properties": {"format": "csv"}},
        ],
    }
    response = api("POST", "/pipelines/draft/validate", json={"pipeline": draft})
    assert response.status_code == 200
    report = response.json()
    assert report["valid"] is False
    assert {i["gem_id"] for i in report["issues"]} == {"a", "b"}
    assert set(report["columns"]) == set()  # neither gem could be built
    clean = api("POST", "/pipelines/customer_totals/validate").json()
    assert (clean["valid"], clean["issues"]) == (True, [])
    assert clean["columns"]["by_customer"][:2] == [
        {"name": "customer_id", "type": "BIGINT"},
        {"name": "name", "type": "VARCHAR"},
    ]


def test_validate_gives_the_columns_of_a_drafts_gems_for_completion(api: Any) -> None:
    document = api("GET", "/pipelines/customer_totals").json()
    shipped = next(g for g in document["gems"] if g["id"] == "shipped")
    shipped["properties"]["condition"] = "status = "  # being typed
    report = api("POST", "/pipelines/customer_totals/validate", json={"pipeline": document}).json()
    assert report["valid"] is False
    assert "shipped" not in report["columns"]
    assert "order_id" in [c["name"] for c in report["columns"]["orders"]]


def test_validate_of_500_gems_stays_well_under_a_second(api: Any) -> None:
    gems: list[dict[str, Any]] = [
        {
            "id": "g0",
            "kind": "Source",
            "properties": {
                "format": "seed",
                "columns": [{"name": "n", "type": "INTEGER"}, {"name": "s", "type": "VARCHAR"}],
                "rows": [[1, "a"]],
            },
        }
    ]
    for i in range(1, 500):
        gems.append({"id": f"g{i}", "kind": "Filter", "properties": {"condition": f"n > {i}"}})
    draft = {
        "name": "wide",
        "gems": gems,
        "connections": [{"from": f"g{i - 1}", "to": f"g{i}"} for i in range(1, 500)],
    }
    api("POST", "/pipelines/wide/validate", json={"pipeline": draft})  # warm up
    timings = []
    for _ in range(3):  # the best of three, as other tests may be busy on the machine
        started = time.perf_counter()
        report = api("POST", "/pipelines/wide/validate", json={"pipeline": draft}).json()
        timings.append(time.perf_counter() - started)
    assert report["valid"] is True
    assert len(report["columns"]) == 500
    assert min(timings) < 1.0, timings


def test_compile_writes_any_dialect(api: Any) -> None:
    response = api("POST", "/pipelines/customer_totals/compile", json={"dialect": "spark"})
    assert response.status_code == 200
    (statement,) = response.json()["statements"]
    assert statement["gem_id"] == "customer_totals"
    assert "`by_customer` AS (" in statement["sql"]
    unknown = api("POST", "/pipelines/customer_totals/compile", json={"dialect": "cobol"})
    assert unknown.status_code == 422
    assert error_of(unknown)["field"] == "/dialect"


def test_preview_returns_the_first_rows_with_their_types(api: Any) -> None:
    response = api(
        "POST",
        "/pipelines/customer_totals/preview",
        json={"gem": "ranked", "limit": 2, "parameters": {"min_total": 100}},
    )
    assert response.status_code == 200
    result = response.json()
    assert len(result["rows"]) == 2
    assert result["truncated"] is True
    assert result["columns"][0] == {"name": "customer_id", "type": "BIGINT"}
    assert (
        api("POST", "/pipelines/customer_totals/preview", json={"gem": "nope"}).status_code == 404
    )
    too_many = api(
        "POST", "/pipelines/customer_totals/preview", json={"gem": "ranked", "limit": -1}
    )
    assert too_many.status_code == 422


def sql_draft(query: str) -> dict[str, Any]:
    return {
        "pipeline": {
            "name": "adhoc",
            "gems": [{"id": "q", "kind": "SQLStatement", "properties": {"query": query}}],
        },
        "gem": "q",
    }


def test_a_statement_the_engine_refuses_is_a_422_naming_the_engine(api: Any) -> None:
    draft = sql_draft("SELECT CAST(s AS INTEGER) AS n FROM (VALUES ('1'), ('x')) AS t(s)")
    response = api("POST", "/pipelines/adhoc/preview", json=draft)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "engine_error"
    assert "Conversion Error" in error["message"]


def test_values_json_cannot_spell_arrive_as_strings(api: Any) -> None:
    response = api("POST", "/pipelines/adhoc/preview", json=sql_draft("SELECT 1/0 AS n"))
    assert response.status_code == 200
    assert response.json()["rows"] == [["inf"]]


def test_a_running_preview_is_cancelled_by_delete(api: Any) -> None:
    draft = {
        "name": "slow",
        "gems": [{"id": "big", "kind": "SQLStatement", "properties": {"query": SLOW_QUERY}}],
    }
    answers: list[requests.Response] = []
    thread = threading.Thread(
        target=lambda: answers.append(
            api("POST", "/pipelines/slow/preview", json={"pipeline": draft, "gem": "big"})
        )
    )
    thread.start()
    wait_for(lambda: api("DELETE", "/pipelines/slow/preview").json(), lambda r: r["cancelled"])
    thread.join(timeout=120)
    (answer,) = answers
    assert answer.status_code == 409
    assert error_of(answer)["code"] == "cancelled"


def test_cancel_requests_are_served_while_many_previews_are_busy(api: Any) -> None:
    """More endless previews than the server has threads for quick calls: each can still be
    cancelled."""
    names = [f"busy_{i}" for i in range(7)]
    answers: dict[str, requests.Response] = {}

    def preview(name: str) -> None:
        answers[name] = api("POST", f"/pipelines/{name}/preview", json=sql_draft(SLOW_QUERY))

    threads = [threading.Thread(target=preview, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    pending = set(names)
    deadline = time.monotonic() + 120
    while pending:
        assert time.monotonic() < deadline, pending
        for name in sorted(pending):
            if api("DELETE", f"/pipelines/{name}/preview").json()["cancelled"]:
                pending.discard(name)
    for thread in threads:
        thread.join(timeout=120)
    assert {name: answers[name].status_code for name in names} == dict.fromkeys(names, 409)


# -- runs ----------------------------------------------------------------------------------


def test_a_run_returns_an_id_at_once_and_reports_each_gem(api: Any, server: ServerProcess) -> None:
    started = api("POST", "/runs", json={"pipeline": "customer_totals", "mode": "staged"})
    assert started.status_code == 202
    run = started.json()
    assert run["status"] in {"queued", "running"}
    location = started.headers["Location"]
    assert location.endswith(f"/prophecy/api/v1/runs/{run['id']}")
    done = wait_for(
        lambda: requests.get(
            f"{server.url.rstrip('/')}{location}", headers=server.headers, timeout=60
        ).json(),
        lambda r: r["status"] not in {"queued", "running"},
    )
    assert done["status"] == "succeeded", done
    rows = {g["gem_id"]: g["rows"] for g in done["gems"]}
    assert rows["customer_totals"] == rows["ranked"] > 0
    assert all(g["status"] == "succeeded" for g in done["gems"])
    assert run["id"] in [r["id"] for r in api("GET", "/runs").json()["runs"]]


def test_a_failing_run_names_the_gem_and_the_error(api: Any) -> None:
    bad = scratch_pipeline("bad_cast", "SELECT CAST('x' AS INTEGER) AS n")
    assert api("POST", "/pipelines", json=bad).status_code == 201
    run = api("POST", "/runs", json={"pipeline": "bad_cast"}).json()
    done = wait_for(
        lambda: api("GET", f"/runs/{run['id']}").json(),
        lambda r: r["status"] not in {"queued", "running"},
    )
    assert done["status"] == "failed"
    failed = [g for g in done["gems"] if g["status"] == "failed"]
    assert [g["gem_id"] for g in failed] == ["out"]
    assert "Conversion Error" in failed[0]["error"]


def test_a_running_run_can_be_cancelled(api: Any) -> None:
    assert (
        api("POST", "/pipelines", json=scratch_pipeline("slow_run", SLOW_QUERY)).status_code == 201
    )
    run = api("POST", "/runs", json={"pipeline": "slow_run"}).json()
    wait_for(lambda: api("GET", f"/runs/{run['id']}").json(), lambda r: r["status"] == "running")
    cancelling = api("POST", f"/runs/{run['id']}/cancel")
    assert cancelling.status_code == 202
    done = wait_for(
        lambda: api("GET", f"/runs/{run['id']}").json(),
        lambda r: r["status"] not in {"queued", "running"},
    )
    assert done["status"] == "cancelled"


def test_run_records_name_their_pipeline_fabric_status_and_times(api: Any) -> None:
    run = api("POST", "/runs", json={"pipeline": "top_products"}).json()
    assert run["fabric"] == "in-memory"
    wait_for(
        lambda: api("GET", f"/runs/{run['id']}").json(),
        lambda r: r["status"] not in {"queued", "running"},
    )
    listed = next(r for r in api("GET", "/runs").json()["runs"] if r["id"] == run["id"])
    assert listed["pipeline"] == "top_products"
    assert listed["fabric"] == "in-memory"
    assert listed["status"] == "succeeded"
    assert listed["created"] and listed["seconds"] >= 0


def test_previews_and_runs_take_the_fabric_to_use(api: Any) -> None:
    scratch = {"kind": "duckdb", "options": {"database": ".prophecy/scratch.duckdb"}}
    assert api("PUT", "/fabrics/scratch", json=scratch).status_code == 200
    run = api("POST", "/runs", json={"pipeline": "customer_totals", "fabric": "scratch"}).json()
    assert run["fabric"] == "scratch"
    done = wait_for(
        lambda: api("GET", f"/runs/{run['id']}").json(),
        lambda r: r["status"] not in {"queued", "running"},
    )
    assert done["status"] == "succeeded", done
    preview = sql_draft("SELECT count(*) AS n FROM customer_totals")
    preview["pipeline"]["gems"] = [
        {"id": "q", "kind": "Source", "properties": {"format": "table", "table": "customer_totals"}}
    ]
    shown = api("POST", "/pipelines/adhoc/preview", json={**preview, "fabric": "scratch"})
    assert shown.status_code == 200, shown.text
    assert shown.json()["rows"]


def test_an_unknown_fabric_or_one_without_an_engine_is_refused(api: Any) -> None:
    body = {"gem": "ranked", "fabric": "nowhere"}
    for path, request in [
        ("/pipelines/customer_totals/preview", body),
        ("/runs", {"pipeline": "customer_totals", "fabric": "nowhere"}),
    ]:
        unknown = api("POST", path, json=request)
        assert unknown.status_code == 404
        assert "nowhere" in error_of(unknown)["message"]
    closed = {"kind": "postgres", "options": {"host": "127.0.0.1", "port": 1, "dbname": "x"}}
    assert api("PUT", "/fabrics/lake", json=closed).status_code == 200
    unreachable = api(
        "POST", "/pipelines/customer_totals/preview", json={"gem": "ranked", "fabric": "lake"}
    )
    assert unreachable.status_code == 422
    assert "cannot connect to postgres at 127.0.0.1:1" in json.dumps(unreachable.json())


def test_an_unknown_run_or_pipeline_is_not_found(api: Any) -> None:
    assert api("GET", f"/runs/{'0' * 32}").status_code == 404
    assert api("POST", f"/runs/{'0' * 32}/cancel").status_code == 404
    assert api("POST", "/runs", json={"pipeline": "nope"}).status_code == 404


# -- fabrics and secrets -------------------------------------------------------------------


def test_a_fabric_secret_never_appears_in_a_response_or_the_log(
    api: Any, server: ServerProcess
) -> None:
    secret = "pw-7f3a91c2-never-echo"
    fabric = {
        "kind": "postgres",
        "options": {"host": "db.internal", "port": 5432},
        "secrets": {"password": secret},
    }
    responses = [api("PUT", "/fabrics/warehouse", json=fabric)]
    assert responses[0].status_code == 200
    assert responses[0].json()["secrets"] == {"password": "********"}
    responses += [
        api("GET", "/fabrics/warehouse"),
        api("GET", "/fabrics"),
        api("GET", "/project"),
        api("PUT", "/fabrics/warehouse", json={**fabric, "secrets": {"password": "********"}}),
        api("PUT", "/fabrics/warehouse", json={**fabric, "surprise": secret}),
        api("PUT", "/fabrics/warehouse", json={**fabric, "options": {"password": [secret]}}),
        api("PUT", "/fabrics/warehouse", json={**fabric, "secrets": {"password": [secret]}}),
        api("PUT", "/fabrics/warehouse", data=json.dumps(fabric)[:-1]),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 422, 422, 422, 422]
    assert api("GET", "/fabrics/warehouse").json()["secrets"] == {"password": "********"}
    for response in responses:
        assert secret not in response.text
    assert secret not in server.log_text()
    assert secret not in (server.root / "fabrics" / "warehouse.yml").read_text()


def test_a_fabric_test_tries_the_connection(api: Any, server: ServerProcess) -> None:
    works = api("POST", "/fabrics/in-memory/test")
    assert works.status_code == 200
    result = works.json()
    assert result["ok"] is True
    assert isinstance(result["message"], str) and isinstance(result["seconds"], float)

    secret = "pw-5be1-never-echo"
    fabric = {"kind": "postgres", "secrets": {"password": secret, "token": None}}
    assert api("PUT", "/fabrics/reporting", json=fabric).status_code == 200
    missing = api("POST", "/fabrics/reporting/test")
    assert missing.status_code == 200
    assert missing.json()["ok"] is False
    assert "'token'" in missing.json()["message"]
    fabric["secrets"] = {"password": "********", "token": "tok-9f2"}
    fabric["options"] = {"host": "127.0.0.1", "port": 1, "dbname": "reports"}
    assert api("PUT", "/fabrics/reporting", json=fabric).status_code == 200
    unavailable = api("POST", "/fabrics/reporting/test").json()
    assert unavailable["ok"] is False
    assert "cannot connect to postgres at 127.0.0.1:1" in unavailable["message"]
    assert secret not in missing.text + json.dumps(unavailable) + server.log_text()

    assert api("POST", "/fabrics/ghost/test").status_code == 404
    assert api("POST", "/fabrics/in-memory/test", json={"x": 1}).status_code == 422


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"{", b"\xff\xfe", b"[]", b"null", b"[" * 50_000, b'{"gem": NaN}', b'{"limit": 1e999}'],
)
def test_a_body_that_is_not_a_json_object_is_a_422_not_a_500(
    api: Any, server: ServerProcess, body: bytes
) -> None:
    for path in [
        "/pipelines/customer_totals/preview",
        "/pipelines/customer_totals/validate",
        "/pipelines/customer_totals/compile",
        "/pipelines/customer_totals/rename",
        "/pipelines",
        "/runs",
        "/fabrics/x",
        "/fabrics/in-memory/test",
    ]:
        method = "PUT" if path == "/fabrics/x" else "POST"
        headers = {"Content-Type": "application/json", "If-Match": "*"}
        response = api(method, path, data=body, headers=headers)
        assert response.status_code == 422, (path, response.text)
        assert error_of(response)["code"] == "invalid"
    assert "Traceback" not in server.log_text()


def test_an_unsupported_method_is_a_json_405_naming_the_allowed_ones(api: Any) -> None:
    response = api("PATCH", "/pipelines/customer_totals")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, PUT, DELETE"


# -- shutdown ------------------------------------------------------------------------------


def test_the_server_stops_cleanly_while_a_run_and_a_preview_are_busy(tmp_path: Path) -> None:
    with shop_server(tmp_path) as server, requests.Session() as session:
        session.headers.update(server.headers)
        url = server.api
        session.post(f"{url}/pipelines", json=scratch_pipeline("endless", SLOW_QUERY), timeout=60)
        run = session.post(f"{url}/runs", json={"pipeline": "endless"}, timeout=60).json()

        def preview() -> None:
            with contextlib.suppress(requests.ConnectionError):
                requests.post(
                    f"{url}/pipelines/endless/preview",
                    json={"gem": "q"},
                    headers=server.headers,
                    timeout=120,
                )

        thread = threading.Thread(target=preview, daemon=True)
        thread.start()
        wait_for(
            lambda: session.get(f"{url}/runs/{run['id']}", timeout=60).json(),
            lambda r: r["status"] == "running",
        )
        assert server.stop() == 0
        thread.join(timeout=60)
    warehouse = duckdb.connect(str(server.root / ".prophecy" / "warehouse.duckdb"))
    warehouse.close()
    assert "Traceback" not in server.log_text()


def test_an_unpaired_surrogate_is_refused_and_never_breaks_the_answer(api: Any) -> None:
    body = b'{"kind": "postgres", "options": {"host": "\\udc00"}, "\\ud800": 1}'
    response = api("PUT", "/fabrics/odd", data=body)
    assert response.status_code == 422
    assert "\\ud800" in response.text  # escaped, so the answer stays valid UTF-8
    response = api("PUT", "/fabrics/odd", data=body.replace(b', "\\ud800": 1', b""))
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid"


def test_a_failed_git_command_is_a_409_with_gits_reason(tmp_path: Path) -> None:
    with shop_server(tmp_path) as running, requests.Session() as http:
        http.headers.update(running.headers)
        assert http.post(running.api + "/vcs/init", timeout=60).ok
        missing = tmp_path / "no-such-remote.git"
        assert http.post(running.api + "/vcs/remote", json={"url": str(missing)}, timeout=60).ok
        answer = http.post(running.api + "/vcs/pull", json={}, timeout=60)
    assert answer.status_code == 409
    error = error_of(answer)
    assert error["code"] == "git_error"
    assert error["message"].startswith("git ")
