"""The HTTP connector and the RestApi gem against a real local HTTP server (in a thread):
every pagination style, authentication, errors and timeouts; secrets never in messages."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from prophecy_jupyter.automate.runner import run_pipeline
from prophecy_jupyter.compiler import compile_pipeline
from prophecy_jupyter.connections import Connection, ConnectionStore, ResolvedConnection
from prophecy_jupyter.connectors.http import (
    HttpClient,
    HttpConnectorError,
    Pagination,
    lookup,
    records_table,
)
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.fabrics import SecretStore
from prophecy_jupyter.model.project import init_project
from tests.conftest import gem, make_pipeline

TOKEN = "tok-Very-Secret-42"
ITEMS = [{"id": i, "name": f"item{i}", "meta": {"even": i % 2 == 0}} for i in range(1, 8)]


@dataclass
class Api:
    """What the test server saw, and where it listens."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    api: Api

    def log_message(self, *args: Any) -> None:  # keep the test output quiet
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.api.requests.append(
            {"method": method, "path": parts.path, "query": query, "headers": dict(self.headers),
             "body": body}
        )  # fmt: skip
        path = parts.path
        if path == "/basic":
            expected = "Basic " + base64.b64encode(b"etl:pw-Secret-9").decode()
            if self.headers.get("Authorization") != expected:
                self._send(401, {"error": "bad credentials"})
                return
            self._send(200, [{"ok": True}])
            return
        if path == "/keyed":
            if self.headers.get("X-Api-Key") != TOKEN:
                self._send(403, {"error": "no key"})
                return
            self._send(200, {"data": ITEMS[:2]})
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, {"error": "unauthorized", "echo": self.headers.get("Authorization")})
            return
        if path == "/v1/page":
            page, size = int(query.get("page", 1)), int(query.get("per_page", 3))
            self._send(200, {"results": ITEMS[(page - 1) * size : page * size]})
        elif path == "/v1/offset":
            offset, limit = int(query["offset"]), int(query["limit"])
            self._send(200, {"items": ITEMS[offset : offset + limit]})
        elif path == "/v1/cursor":
            start = int(query.get("after", 0))
            chunk = ITEMS[start : start + 3]
            following = start + 3 if start + 3 < len(ITEMS) else None
            self._send(200, {"data": chunk, "meta": {"next": following}})
        elif path == "/v1/link":
            page = int(query.get("p", 1))
            links = {}
            if page * 2 < len(ITEMS):
                links["Link"] = f'<{self.api.url}/v1/link?p={page + 1}>; rel="next"'
            self._send(200, ITEMS[(page - 1) * 2 : page * 2], links)
        elif path == "/v1/evil-link":
            self._send(200, [{"a": 1}], {"Link": '<http://elsewhere.invalid/x>; rel="next"'})
        elif path == "/v1/endless":
            self._send(200, {"data": [{"n": 1}], "meta": {"next": "again"}})
        elif path == "/v1/search":
            self._send(200, {"hits": [{"q": (body or {}).get("q"), "tag": query.get("tag")}]})
        elif path == "/v1/boom":
            self._send(503, {"error": f"upstream down, token was {TOKEN}"})
        elif path == "/v1/slow":
            time.sleep(2)
            self._send(200, [])
        elif path == "/v1/html":
            self._send(200, b"<html>hi</html>")
        elif path == "/v1/mixed":
            self._send(200, [{"v": 1, "t": [1, 2]}, {"v": "two", "extra": None}, {"v": 3.5}])
        else:
            self._send(404, {"error": "not found"})


@pytest.fixture
def api() -> Iterator[Api]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Api(f"http://127.0.0.1:{server.server_address[1]}")
    Handler.api = state
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def connection(api: Api, **options: Any) -> ResolvedConnection:
    settings: dict[str, Any] = {"base_url": api.url, "timeout_seconds": 1}
    settings.update(options)
    return ResolvedConnection("billing", "http", settings, {"token": TOKEN})


def client(api: Api, **options: Any) -> HttpClient:
    return HttpClient.from_connection(connection(api, **options))


def ids(records: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in records]


def test_page_number_pagination(api: Api) -> None:
    paging = Pagination(style="page", page_param="page", size_param="per_page", size=3)
    with client(api) as http:
        records = http.records("GET", "v1/page", records_path="results", pagination=paging)
    assert ids(records) == list(range(1, 8))
    assert [r["query"] for r in api.requests] == [
        {"page": "1", "per_page": "3"},
        {"page": "2", "per_page": "3"},
        {"page": "3", "per_page": "3"},
    ]
    assert all(r["headers"]["Authorization"] == f"Bearer {TOKEN}" for r in api.requests)


def test_offset_limit_pagination(api: Api) -> None:
    paging = Pagination(style="offset", size=4)
    with client(api) as http:
        records = http.records("GET", "/v1/offset", records_path="$.items", pagination=paging)
    assert ids(records) == list(range(1, 8))
    assert [r["query"]["offset"] for r in api.requests] == ["0", "4"]


def test_cursor_pagination(api: Api) -> None:
    paging = Pagination(style="cursor", cursor_param="after", cursor_path="meta.next")
    with client(api) as http:
        records = http.records("GET", "v1/cursor", records_path="data", pagination=paging)
    assert ids(records) == list(range(1, 8))
    assert [r["query"].get("after") for r in api.requests] == [None, "3", "6"]


def test_link_header_pagination(api: Api) -> None:
    with client(api) as http:
        records = http.records("GET", "v1/link", pagination=Pagination(style="link"))
    assert ids(records) == list(range(1, 8))
    assert [r["query"].get("p") for r in api.requests] == [None, "2", "3", "4"]


def test_a_limit_stops_asking_for_pages(api: Api) -> None:
    with client(api) as http:
        records = http.records("GET", "v1/link", pagination=Pagination(style="link"), limit=3)
    assert ids(records) == [1, 2, 3] and len(api.requests) == 2


def test_max_pages_guard_is_an_error(api: Api) -> None:
    paging = Pagination(style="cursor", cursor_path="meta.next", max_pages=5)
    with client(api) as http, pytest.raises(HttpConnectorError, match="max_pages=5"):
        http.records("GET", "v1/endless", records_path="data", pagination=paging)
    assert len(api.requests) == 5


def test_requests_stay_on_the_connections_origin(api: Api) -> None:
    with client(api) as http:
        with pytest.raises(HttpConnectorError, match="outside"):
            http.records("GET", "v1/evil-link", pagination=Pagination(style="link"))
        with pytest.raises(HttpConnectorError, match="relative"):
            http.url("http://elsewhere.invalid/steal")
        with pytest.raises(HttpConnectorError, match="relative"):
            http.url("//elsewhere.invalid/steal")


def test_post_with_json_body_params_and_headers(api: Api) -> None:
    with client(api, **{"header.X-Team": "data"}) as http:
        records = http.records(
            "POST", "v1/search", {"tag": "new"}, {"X-Trace": "t1"}, {"q": "lamps"}, "hits"
        )
    assert records == [{"q": "lamps", "tag": "new"}]
    seen = api.requests[0]
    assert seen["body"] == {"q": "lamps"}
    assert seen["headers"]["X-Team"] == "data" and seen["headers"]["X-Trace"] == "t1"


def test_api_key_header_and_basic_auth(api: Api) -> None:
    keyed = ResolvedConnection(
        "k", "http", {"base_url": api.url, "auth": "header"}, {"api_key": TOKEN}
    )
    with HttpClient.from_connection(keyed) as http:
        assert len(http.records("GET", "keyed", records_path="data")) == 2
    basic = ResolvedConnection(
        "b", "http", {"base_url": api.url, "auth": "basic", "username": "etl"},
        {"password": "pw-Secret-9"},
    )  # fmt: skip
    with HttpClient.from_connection(basic) as http:
        assert http.records("GET", "basic") == [{"ok": True}]
    wrong = ResolvedConnection(
        "b", "http", {"base_url": api.url, "auth": "basic", "username": "etl"},
        {"password": "pw-Wrong-7"},
    )  # fmt: skip
    with HttpClient.from_connection(wrong) as http, pytest.raises(HttpConnectorError) as raised:
        http.records("GET", "basic")
    assert raised.value.status == 401 and "pw-Wrong-7" not in str(raised.value)


def test_errors_are_clean_and_hold_no_secret(api: Api) -> None:
    with client(api) as http:
        with pytest.raises(HttpConnectorError) as server_error:
            http.records("GET", "v1/boom")
        with pytest.raises(HttpConnectorError) as missing:
            http.records("GET", "v1/nothing-here")
        with pytest.raises(HttpConnectorError, match="not JSON"):
            http.records("GET", "v1/html")
        with pytest.raises(HttpConnectorError, match="no records at 'nope'"):
            http.records("GET", "v1/boom".replace("boom", "page"), records_path="nope")
    assert server_error.value.status == 503
    assert "answered 503" in str(server_error.value)
    assert TOKEN not in str(server_error.value) and "***" in str(server_error.value)
    assert missing.value.status == 404 and "answered 404 Not Found" in str(missing.value)
    unauthorized = ResolvedConnection("x", "http", {"base_url": api.url}, {"token": "wrong-Tok-1"})
    with HttpClient.from_connection(unauthorized) as http, pytest.raises(HttpConnectorError) as e:
        http.records("GET", "v1/page")
    assert e.value.status == 401 and "wrong-Tok-1" not in str(e.value)


def test_timeout_is_short_and_clean(api: Api) -> None:
    started = time.monotonic()
    with (
        client(api, timeout_seconds=0.3) as http,
        pytest.raises(HttpConnectorError, match=r"timed out after 0\.3 s"),
    ):
        http.records("GET", "v1/slow")
    assert time.monotonic() - started < 1.5


def test_unreachable_host_is_a_clean_error() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conn = ResolvedConnection(
        "x", "http", {"base_url": f"http://127.0.0.1:{port}"}, {"token": TOKEN}
    )
    with HttpClient.from_connection(conn) as http, pytest.raises(HttpConnectorError) as raised:
        http.records("GET", "v1/page")
    assert "ConnectionError" in str(raised.value) and TOKEN not in str(raised.value)


def test_connection_settings_are_checked() -> None:
    with pytest.raises(HttpConnectorError, match="base_url"):
        HttpClient.from_connection(ResolvedConnection("x", "http", {"base_url": "ftp://h"}, {}))
    with pytest.raises(HttpConnectorError, match="needs the secret 'token'"):
        HttpClient.from_connection(
            ResolvedConnection("x", "http", {"base_url": "http://h", "auth": "bearer"}, {})
        )
    with pytest.raises(HttpConnectorError, match="not http"):
        HttpClient.from_connection(ResolvedConnection("x", "database", {}, {}))
    made = HttpClient.from_connection(
        ResolvedConnection("x", "http", {"base_url": "http://h"}, {"token": TOKEN})
    )
    assert TOKEN not in repr(made)


def test_records_become_columns_with_nested_values_as_json() -> None:
    table = records_table([{"v": 1, "t": [1, 2]}, {"v": "two", "extra": None}, {"v": 3.5}])
    assert table.column_names == ["v", "t", "extra"]
    assert table.column("v").to_pylist() == ["1", "two", "3.5"]
    assert table.column("t").to_pylist() == ["[1, 2]", None, None]
    typed = records_table(ITEMS[:2])
    assert str(typed.schema.field("id").type) == "int64"
    assert typed.column("meta").to_pylist() == ['{"even": false}', '{"even": true}']
    assert lookup({"a": {"b": [{"c": 5}]}}, "$.a.b[0].c") == 5
    assert lookup({"a": 1}, "a.b") is None


def project_store(tmp_path: Path, api: Api) -> ConnectionStore:
    project = init_project(tmp_path / "proj")
    store = ConnectionStore(project, SecretStore(tmp_path / "secrets.json"))
    store.put(
        Connection(
            name="billing",
            kind="http",
            options={"base_url": api.url + "/v1", "timeout_seconds": 2},
            secrets=["token"],
        ),
        {"token": TOKEN},
    )
    return store


def test_rest_api_gem_in_a_pipeline_through_the_runner(api: Api, tmp_path: Path) -> None:
    store = project_store(tmp_path, api)
    pipeline = make_pipeline(
        [
            gem(
                "items",
                "RestApi",
                connection="billing",
                path="cursor",
                records="data",
                pagination={"style": "cursor", "cursor_param": "after", "cursor_path": "meta.next"},
            ),
            gem("evens", "Filter", condition="json_extract(meta, '$.even')::BOOLEAN"),
            gem("out", "Target", table="even_items", mode="overwrite"),
        ],
        [("items", "evens"), ("evens", "out")],
    )
    with DuckDBEngine(":memory:", root=store.project.root) as engine:
        result = run_pipeline(pipeline, engine, connections=store.resolve)
        assert result.status == "succeeded", result.error
        _, found = engine.query(
            compile_pipeline(
                make_pipeline([gem("s", "Source", format="table", table="even_items")], []), engine
            ).query("s")
        )
    assert sorted(r[0] for r in found) == [2, 4, 6]
    assert result.gem("out").rows == 3


def test_rest_api_gem_issues_and_parameters(api: Api, tmp_path: Path) -> None:
    store = project_store(tmp_path, api)
    with DuckDBEngine(":memory:", root=store.project.root) as engine:
        failing = make_pipeline([gem("r", "RestApi", connection="billing", path="boom")], [])
        issues = compile_pipeline(failing, engine, connections=store.resolve).issues
        assert [(i.code, i.field) for i in issues] == [
            ("unreadable_source", "/gems/0/properties/path")
        ]
        assert TOKEN not in issues[0].message
        unknown = make_pipeline([gem("r", "RestApi", connection="nope")], [])
        issues = compile_pipeline(unknown, engine, connections=store.resolve).issues
        assert [i.code for i in issues] == ["unknown_connection"]
        searching = make_pipeline(
            [
                gem("r", "RestApi", connection="billing", method="POST", path="search",
                    params={"tag": "$tag"}, body={"q": "x"}, records="hits"),
            ],
            [],
            parameters=[{"name": "tag", "type": "string", "default": "fresh"}],
        )  # fmt: skip
        compiled = compile_pipeline(searching, engine, connections=store.resolve)
        assert compiled.issues == []
        assert engine.query(compiled.query("r"))[1] == [("x", "fresh")]


# -- SharePoint (Microsoft Graph) and Tableau: contract level ---------------------------------
class Contract(BaseHTTPRequestHandler):
    """Speaks the endpoints the SharePoint and Tableau clients call, and records them."""

    seen: list[dict[str, Any]]
    base: str

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self, method: str) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append(
            {"method": method, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        return body

    def do_POST(self) -> None:
        body = self._record("POST")
        if self.path == "/tenant-1/oauth2/v2.0/token":
            form = parse_qs(body.decode())
            if form.get("client_secret") != ["cs-Secret-5"]:
                self._reply(401, b'{"error": "invalid_client"}')
                return
            self._reply(200, json.dumps({"access_token": "graph-Token-7"}).encode())
        elif self.path == "/api/3.21/auth/signin":
            creds = json.loads(body)["credentials"]
            if creds["personalAccessTokenSecret"] != "pat-Secret-3":
                self._reply(401, b'{"error": {"summary": "Signin Error"}}')
                return
            answer = {"credentials": {"token": "sess-Token-1", "site": {"id": "site-9"}}}
            self._reply(200, json.dumps(answer).encode())
        elif self.path.startswith("/api/3.21/sites/site-9/datasources"):
            if self.headers.get("X-Tableau-Auth") != "sess-Token-1":
                self._reply(401, b"{}")
                return
            self._reply(201, json.dumps({"datasource": {"id": "ds-1", "name": "sales"}}).encode())
        elif self.path == "/api/3.21/auth/signout":
            self._reply(204, b"")
        else:
            self._reply(404, b"{}")

    def do_GET(self) -> None:
        self._record("GET")
        if self.path == "/graph/sites/site,1,2/drive/root:/Reports/Q1%20sales.csv:/content":
            if self.headers.get("Authorization") != "Bearer graph-Token-7":
                self._reply(401, b"{}")
                return
            self._reply(302, b"", {"Location": f"{self.base}/download/abc?sig=xyz"})
        elif self.path == "/download/abc?sig=xyz":
            self._reply(200, b"id,amount\n1,10\n")
        else:
            self._reply(404, b"{}")


@pytest.fixture
def contract() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Contract)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    Contract.seen, Contract.base = [], base
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield base, Contract.seen
    finally:
        server.shutdown()
        server.server_close()


def test_sharepoint_reads_a_file_through_graph(
    contract: tuple[str, list[dict[str, Any]]],
) -> None:
    from prophecy_jupyter.connectors.sharepoint import SharePoint

    base, seen = contract
    options: dict[str, Any] = {
        "tenant_id": "tenant-1",
        "client_id": "app-1",
        "site_id": "site,1,2",
        "token_url": f"{base}/tenant-1/oauth2/v2.0/token",
        "graph_url": f"{base}/graph",
    }
    site = SharePoint(
        ResolvedConnection("sp", "sharepoint", options, {"client_secret": "cs-Secret-5"})
    )
    assert site.read_file("Reports/Q1 sales.csv") == b"id,amount\n1,10\n"
    token, content, download = seen
    assert parse_qs(token["body"].decode())["grant_type"] == ["client_credentials"]
    assert content["headers"]["Authorization"] == "Bearer graph-Token-7"
    assert "Authorization" not in download["headers"]  # the token stays with Graph
    assert "cs-Secret-5" not in repr(site)
    with pytest.raises(HttpConnectorError) as raised:
        SharePoint(
            ResolvedConnection("sp", "sharepoint", options, {"client_secret": "wrong-Secret-0"})
        ).read_file("Reports/Q1 sales.csv")
    assert raised.value.status == 401 and "wrong-Secret-0" not in str(raised.value)
    with pytest.raises(HttpConnectorError, match="not a file path"):
        site.read_file("../etc")


def test_tableau_publishes_an_extract(
    contract: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    from prophecy_jupyter.connectors.tableau import Tableau

    base, seen = contract
    options: dict[str, Any] = {"server_url": base, "site": "finance", "token_name": "etl"}
    tableau = Tableau(ResolvedConnection("tb", "tableau", options, {"token": "pat-Secret-3"}))
    extract = tmp_path / "sales.csv"
    extract.write_bytes(b"id,amount\n1,10\n")
    assert tableau.publish(extract, "sales", "proj-1") == {"id": "ds-1", "name": "sales"}
    signin, upload, signout = seen
    assert json.loads(signin["body"])["credentials"]["site"] == {"contentUrl": "finance"}
    assert upload["path"] == "/api/3.21/sites/site-9/datasources?overwrite=true"
    assert upload["headers"]["X-Tableau-Auth"] == "sess-Token-1"
    assert upload["headers"]["Content-Type"].startswith("multipart/mixed; boundary=")
    assert b'name="tableau_datasource"; filename="sales.csv"' in upload["body"]
    assert b"id,amount\n1,10\n" in upload["body"]
    assert b'"project": {"id": "proj-1"}' in upload["body"]
    assert b"pat-Secret-3" not in upload["body"]
    assert signout["headers"]["X-Tableau-Auth"] == "sess-Token-1"
    wrong = Tableau(ResolvedConnection("tb", "tableau", options, {"token": "bad-Secret-8"}))
    with pytest.raises(HttpConnectorError) as raised:
        wrong.publish(extract, "sales", "proj-1")
    assert raised.value.status == 401 and "bad-Secret-8" not in str(raised.value)
    with pytest.raises(HttpConnectorError, match=r"only \.hyper and \.csv"):
        tableau.publish(tmp_path / "x.xlsx", "x", "proj-1")
