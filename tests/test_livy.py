"""The Livy client and engine against a Livy-compatible server on local Spark (no mocks)."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from prophecy_jupyter.automate.runner import run_pipeline
from prophecy_jupyter.compiler import compile_pipeline
from prophecy_jupyter.compiler.preview import preview_gem
from prophecy_jupyter.engines.duckdb import DuckDBEngine
from prophecy_jupyter.engines.livy import LivyEngine, open_livy
from prophecy_jupyter.engines.livy_client import (
    LivyClient,
    LivyError,
    LivyHTTPError,
    LivySession,
    SessionFailed,
    SessionSpec,
    StatementCancelled,
    StatementFailed,
)
from prophecy_jupyter.errors import EngineError
from prophecy_jupyter.fabrics import Fabric, FabricStore, SecretStore, open_engine
from prophecy_jupyter.gems.sources import TargetProps, written_relation
from prophecy_jupyter.model import Project
from tests.livy_server import LivyServer
from tests.test_server_support import copy_shop

LONG_QUERY = "SELECT count(*) FROM range(0, 1000000000000, 1, 2)"


@pytest.fixture
def client(livy_server: str) -> Iterator[LivyClient]:
    livy = LivyClient(livy_server, poll_initial=0.02, poll_max=0.2)
    yield livy
    livy.close()


def spec(**settings: Any) -> SessionSpec:
    """Settings of a session no other test asks for."""
    return SessionSpec(name=f"test-{uuid.uuid4().hex[:8]}", **settings)


@pytest.fixture
def livy(client: LivyClient) -> Iterator[LivySession]:
    session = LivySession(client, spec(kind="pyspark"), start_timeout=60)
    yield session
    session.close()


# -- the client -----------------------------------------------------------------------------
def test_session_lifecycle(client: LivyClient, livy_test_server: LivyServer) -> None:
    created = client.create_session(spec(kind="sql", conf={"spark.sql.shuffle.partitions": "2"}))
    session_id = int(created["id"])
    assert created["state"] in {"not_started", "starting"}
    assert created["name"].startswith("test-")
    assert client.wait_session(session_id, timeout=30) == "idle"
    assert client.session(session_id)["state"] == "idle"
    listed = client.sessions()
    assert session_id in [s["id"] for s in listed]
    page = client.request("GET", "/sessions", params={"from": 0, "size": 1})
    assert len(page["sessions"]) == 1 and page["total"] == len(listed)
    client.delete_session(session_id)
    with pytest.raises(LivyHTTPError) as gone:
        client.session(session_id)
    assert gone.value.status == 404
    assert "not found" in str(gone.value)


def test_statement_text_and_table_results(livy: LivySession) -> None:
    text = livy.run("print('hello')\n21 * 2", "pyspark")
    assert text.text == "hello\n42"
    assert text.execution_count is not None
    table = livy.run(
        "SELECT 1 AS i, CAST(2 AS BIGINT) AS l, 1.5D AS d, CAST('12.30' AS DECIMAL(10,2)) AS m, "
        "'x' AS s, DATE'2024-02-29' AS day, TIMESTAMP'2024-01-05 10:11:12' AS ts, "
        "array(1, 2) AS a, named_struct('k', 1, 'v', 'b') AS st, map('k', 1) AS mp, "
        "X'01FF' AS bin, CAST(NULL AS STRING) AS n",
        "sql",
    )
    columns, rows = table.table()
    assert [(c.name, c.type) for c in columns] == [
        ("i", "int"),
        ("l", "bigint"),
        ("d", "double"),
        ("m", "decimal(10,2)"),
        ("s", "string"),
        ("day", "date"),
        ("ts", "timestamp"),
        ("a", "array<int>"),
        ("st", "struct<k:int,v:string>"),
        ("mp", "map<string,int>"),
        ("bin", "binary"),
        ("n", "string"),
    ]
    (row,) = rows
    assert row[:6] == (1, 2, 1.5, Decimal("12.30"), "x", dt.date(2024, 2, 29))
    assert isinstance(row[0], int) and isinstance(row[2], float)
    assert row[6].replace(tzinfo=None) == dt.datetime(2024, 1, 5, 10, 11, 12)
    assert row[7:] == ([1, 2], {"k": 1, "v": "b"}, {"k": 1}, b"\x01\xff", None)


def test_statement_error_is_one_line_with_the_remote_traceback_as_a_note(
    livy: LivySession, livy_test_server: LivyServer
) -> None:
    with pytest.raises(StatementFailed) as failed:
        livy.run("SELECT * FROM no_such_table", "sql")
    assert "AnalysisException" in failed.value.ename
    assert "TABLE_OR_VIEW_NOT_FOUND" in failed.value.evalue
    assert "\n" not in str(failed.value)
    assert str(failed.value).startswith("ExtendedAnalysisException: [TABLE_OR_VIEW_NOT_FOUND]")
    with pytest.raises(StatementFailed) as python:
        livy.run("1 / 0", "pyspark")
    assert (python.value.ename, str(python.value)) == (
        "ZeroDivisionError",
        "ZeroDivisionError: division by zero",
    )
    assert any("Traceback" in note for note in python.value.__notes__)
    # The session is still usable after a failed statement.
    assert livy.run("SELECT 7 AS x", "sql").table()[1] == [(7,)]


def test_cancel_a_running_statement(livy: LivySession, client: LivyClient) -> None:
    handle = livy.submit(LONG_QUERY, "sql")
    deadline = time.monotonic() + 20
    while client.statement(handle.session_id, handle.id)["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    threading.Timer(0.3, LivySession.cancel, [handle]).start()
    started = time.monotonic()
    with pytest.raises(StatementCancelled):
        livy.wait(handle)
    assert time.monotonic() - started < 10
    assert client.statement(handle.session_id, handle.id)["state"] == "cancelled"
    # A waiting statement is cancelled on the spot, through the REST call.
    assert livy.run("SELECT 1 AS one", "sql").table()[1] == [(1,)]
    assert client.wait_session(handle.session_id, timeout=10) == "idle"


def test_statement_timeout_cancels_it(client: LivyClient) -> None:
    session = LivySession(client, spec(kind="sql"), statement_timeout=1.0)
    try:
        started = time.monotonic()
        with pytest.raises(LivyError, match="did not finish within 1 s"):
            session.run(LONG_QUERY)
        assert time.monotonic() - started < 15
        assert session.run("SELECT 2 AS two").table()[1] == [(2,)]
    finally:
        session.close()


def test_logs_and_a_session_that_dies_while_starting(livy: LivySession, client: LivyClient) -> None:
    livy.run("SELECT 1", "sql")
    assert livy.id is not None
    lines = client.log(livy.id)
    assert any("is idle" in line for line in lines)
    assert client.log(livy.id, start=0, size=1) == lines[:1]
    doomed = LivySession(client, spec(kind="sql", executorMemory="999g"), start_timeout=30)
    with pytest.raises(SessionFailed) as failed:
        doomed.run("SELECT 1")
    message = str(failed.value)
    assert "\n" not in message
    assert failed.value.state == "dead"
    assert "is dead" in message and "executor memory" in message
    assert any("SparkContext" in line for line in failed.value.log)
    assert "Livy session log" in failed.value.__notes__[0]
    doomed.close()


def test_a_session_that_dies_is_replaced(
    livy: LivySession, client: LivyClient, livy_test_server: LivyServer
) -> None:
    livy.run("SELECT 1", "sql")
    first = livy.id
    assert first is not None
    running = livy.submit(LONG_QUERY, "sql")
    deadline = time.monotonic() + 20
    while client.statement(first, running.id)["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    threading.Timer(0.3, livy_test_server.kill, [first]).start()
    with pytest.raises(SessionFailed) as lost:
        livy.wait(running)
    message = str(lost.value)
    assert message.startswith(f"Livy session {first} is dead: ") and "driver was lost" in message
    assert "\n" not in message
    assert any("driver was lost" in line for line in lost.value.log)
    assert livy.id is None  # forgotten, and deleted, once found dead
    assert first not in [s["id"] for s in client.sessions()]
    assert livy.run("SELECT 3 AS three", "sql").table()[1] == [(3,)]
    assert livy.id is not None and livy.id != first
    second = livy.id
    livy_test_server.kill(second)  # between statements: the next one starts a new session
    assert livy.run("SELECT 4 AS four", "sql").table()[1] == [(4,)]
    assert livy.id not in (None, first, second)


def test_basic_auth_accepted_and_refused(livy_test_server: LivyServer) -> None:
    with LivyServer(livy_test_server.spark, users={"ann": "pa55-word"}, start_delay=0) as secured:
        good = LivyClient(secured.url, auth="basic", user="ann", password="pa55-word")
        session = LivySession(good, spec(kind="sql"))
        try:
            assert session.run("SELECT 'ok' AS s").table()[1] == [("ok",)]
            assert secured.session(session.id or 0).owner == "ann"
        finally:
            session.close()
        for bad in (
            LivyClient(secured.url, auth="basic", user="ann", password="wrong-pw"),
            LivyClient(secured.url),
        ):
            with pytest.raises(LivyHTTPError) as refused:
                bad.sessions()
            assert refused.value.status == 401
            assert str(refused.value) == f"Livy at {secured.url} refused the credentials (HTTP 401)"
            assert "wrong-pw" not in str(refused.value)


def test_requests_carry_the_csrf_header_livy_asks_for(livy_server: str, client: LivyClient) -> None:
    bare = requests.post(f"{livy_server}/sessions", json={"kind": "sql"}, timeout=10)
    assert bare.status_code == 400
    assert "CSRF" in bare.json()["msg"]
    created = client.create_session(spec(kind="sql"))  # the client sends X-Requested-By
    client.delete_session(int(created["id"]))


def test_unknown_ids_and_bad_bodies(client: LivyClient) -> None:
    with pytest.raises(LivyHTTPError) as unknown:
        client.statement(987654, 0)
    assert unknown.value.status == 404
    with pytest.raises(LivyHTTPError) as bad:
        client.request("POST", "/sessions", {"kind": "cobol"})
    assert bad.value.status == 400 and "kind" in str(bad.value)
    with pytest.raises(LivyHTTPError) as extra:
        client.request("POST", "/sessions", {"kind": "sql", "color": "red"})
    assert extra.value.status == 400 and "color" in str(extra.value)


def test_an_idle_session_with_the_same_settings_is_reused(client: LivyClient) -> None:
    settings = spec(kind="sql", conf={"spark.sql.shuffle.partitions": "3"})
    first = LivySession(client, settings)
    second = LivySession(client, settings)
    other = LivySession(client, SessionSpec(**{**settings.__dict__, "executorCores": 2}))
    try:
        first.run("SELECT 1")
        second.run("SELECT 2")
        assert second.id == first.id
        assert first.owned and not second.owned
        other.run("SELECT 3")
        assert other.id != first.id
        session_id = first.id
        second.close()  # found, not started, by it: left running
        assert client.session_state(session_id or 0) == "idle"
        first.close()
        assert session_id not in [s["id"] for s in client.sessions()]
    finally:
        for session in (first, second, other):
            session.close()


def test_an_idle_session_is_closed_after_the_idle_timeout(client: LivyClient) -> None:
    session = LivySession(client, spec(kind="sql"), idle_timeout=0.5)
    try:
        session.run("SELECT 1")
        first = session.id
        deadline = time.monotonic() + 10
        while first in [s["id"] for s in client.sessions()]:
            assert time.monotonic() < deadline, "the idle session was not deleted"
            time.sleep(0.1)
        assert session.id is None
        session.run("SELECT 1")  # started again on next use
        assert session.id not in (None, first)
    finally:
        session.close()


def test_kerberos_without_its_package_is_a_clear_error(livy_server: str) -> None:
    pytest.importorskip("requests")
    try:
        import requests_kerberos  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("requests-kerberos is installed")
    fabric = Fabric(name="kdc", kind="livy", options={"url": livy_server, "auth": "kerberos"})
    with pytest.raises(EngineError) as missing:
        open_engine(fabric)
    assert str(missing.value) == (
        "fabric 'kdc': Kerberos authentication for Livy needs requests-kerberos: "
        "pip install 'prophecy-jupyter[livy-kerberos]'"
    )


def test_fabric_options_are_checked(livy_server: str) -> None:
    def opened(options: dict[str, Any], secrets: dict[str, str] | None = None) -> str:
        fabric = Fabric(name="c", kind="livy", options=options, secrets=list(secrets or {}))
        with pytest.raises(EngineError) as refused:
            open_livy(fabric, secrets or {}, None)
        return str(refused.value)

    assert "url" in opened({})
    assert "unknown option 'colour'" in opened({"url": livy_server, "colour": "red"})
    assert "kind must be" in opened({"url": livy_server, "kind": "cobol"})
    assert "needs user" in opened({"url": livy_server, "auth": "basic"}, {"password": "x"})
    assert "unknown secret 'token'" in opened({"url": livy_server}, {"token": "t"})
    assert "whole number" in opened({"url": livy_server, "numExecutors": "many"})


# -- the engine -----------------------------------------------------------------------------
@pytest.fixture
def shop(tmp_path: Path) -> Project:
    return Project.open(copy_shop(tmp_path / "shop"))


@pytest.fixture
def livy_engine(shop: Project, livy_server: str, tmp_path: Path) -> Iterator[LivyEngine]:
    store = FabricStore(shop, SecretStore(tmp_path / "secrets.json"))
    store.put(
        Fabric(
            name="cluster",
            kind="livy",
            options={
                "url": livy_server,
                "database": f"shop_{uuid.uuid4().hex[:8]}",
                "spark.sql.shuffle.partitions": 2,
                "poll_max": 0.2,
            },
        )
    )
    engine = store.engine("cluster")
    assert isinstance(engine, LivyEngine)
    with engine:
        yield engine


def _sorted(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=repr)


def test_shop_pipelines_run_through_livy_as_on_duckdb(
    shop: Project, livy_engine: LivyEngine
) -> None:
    with DuckDBEngine(":memory:", root=shop.root) as duck:
        for name in ("customer_totals", "top_products"):
            pipeline = shop.load_pipeline(name)
            expected = run_pipeline(pipeline, duck)
            assert expected.status == "succeeded", expected.error
            result = run_pipeline(pipeline, livy_engine)
            assert result.status == "succeeded", result.error
            for gem in pipeline.gems:
                if gem.kind != "Target":
                    continue
                props = TargetProps.model_validate(gem.properties)
                _, want = duck.query(written_relation(props))
                _, got = livy_engine.query(written_relation(props))
                assert want, gem.id
                assert _sorted(got) == _sorted(want), gem.id
                assert result.gem(gem.id).rows == len(want)
    assert (shop.root / "output" / "top_products.parquet" / "_SUCCESS").is_file()


def test_preview_and_describe_through_livy(shop: Project, livy_engine: LivyEngine) -> None:
    pipeline = shop.load_pipeline("customer_totals")
    compiled = compile_pipeline(pipeline, livy_engine, dialect=livy_engine.dialect)
    compiled.raise_for_issues()
    described = livy_engine.describe(compiled.query("by_customer"))
    assert [n for n, _ in described] == ["customer_id", "name", "region", "orders", "total"]
    assert dict(described)["orders"] == "bigint"
    preview = preview_gem(compiled, livy_engine.session(), "shipped", 3)
    assert len(preview.rows) == 3 and preview.truncated
    status = [n for n, _ in preview.columns].index("status")
    assert {row[status] for row in preview.rows} == {"shipped"}


def test_engine_errors_are_one_line_and_sessions_cancel_alone(livy_engine: LivyEngine) -> None:
    from sqlglot import exp

    with pytest.raises(EngineError) as missing:
        livy_engine.query(exp.select("*").from_("no_such_table"))
    assert str(missing.value).startswith("[TABLE_OR_VIEW_NOT_FOUND]")
    assert "\n" not in str(missing.value)
    livy_engine.livy.run(f"CREATE TEMPORARY VIEW big AS SELECT id FROM range({10**12})", "sql")
    work = livy_engine.session()
    query = exp.select(exp.func("count", exp.Star())).from_("big")
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            work.query(query)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(1.0)
    work.cancel()
    worker.join(20)
    assert not worker.is_alive()
    assert [str(e) for e in outcome] == ["cancelled"]
    assert livy_engine.query(exp.select(exp.Literal.number(1).as_("one")))[1] == [(1,)]


def test_a_result_cut_short_by_livy_is_refused(livy_test_server: LivyServer) -> None:
    with LivyServer(livy_test_server.spark, max_rows=5, start_delay=0) as small:
        fabric = Fabric(name="small", kind="livy", options={"url": small.url, "max_rows": 5})
        with open_livy(fabric, {}, None) as engine:
            from sqlglot import exp

            engine.livy.run("CREATE TEMPORARY VIEW six AS SELECT id FROM range(6)", "sql")
            five = exp.select("id").from_("six").where("id < 5")
            assert len(engine.query(five)[1]) == 5
            with pytest.raises(EngineError, match="more rows than Livy returns"):
                engine.query(exp.select("id").from_("six"))
