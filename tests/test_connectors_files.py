"""The file connector, the Directory and Email gems, against real servers on this machine:
local folders, S3 (moto's server), SFTP (asyncssh) and SMTP (aiosmtpd). GCS and Azure have
no local server here: their connection arguments and their failure on an unreachable
endpoint are checked."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prophecy_jupyter.automate.runner import run_pipeline
from prophecy_jupyter.compiler import compile_pipeline
from prophecy_jupyter.connections import Connection, ConnectionStore, ResolvedConnection
from prophecy_jupyter.connectors import files as connector
from prophecy_jupyter.connectors.files import (
    FileOptions,
    connection_url,
    filesystem_arguments,
    list_entries,
    local_store,
    open_store,
    read_table,
    write_table,
)
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.errors import Conflict, EngineError
from prophecy_jupyter.fabrics import SecretStore
from prophecy_jupyter.gems.registry import gem_kinds
from prophecy_jupyter.model.project import Project, init_project
from tests.conftest import chain, gem, make_pipeline, seed

# The servers' fixtures (s3, sftp, smtp) are found by pytest where they are imported.
from tests.connector_servers import *  # noqa: F403
from tests.connector_servers import (
    S3_KEY,
    S3_SECRET,
    SFTP_PASSWORD,
    SFTP_USER,
    SMTP_PASSWORD,
    SMTP_USER,
    S3Server,
    SFTPServer,
    SMTPServer,
    free_port,
)

# The SMTP server signs in over plain text on the loopback interface, which it warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

FORMATS = ["csv", "parquet", "json", "excel", "xml"]
PEOPLE = pa.table(
    {
        "id": pa.array([1, 2, 3], pa.int64()),
        "name": ["ann", "bob", None],
        "score": [1.5, 2.25, 3.0],
    }
)


def rows(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda r: str(r.get("id")))


# -- projects and connections -------------------------------------------------------------
@pytest.fixture
def project(tmp_path: Path) -> Project:
    return init_project(tmp_path / "proj", "proj")


@pytest.fixture
def store(project: Project, tmp_path: Path) -> ConnectionStore:
    return ConnectionStore(project, SecretStore(tmp_path / "user" / "secrets.json"))


@pytest.fixture
def engine(project: Project) -> Iterator[DuckDBEngine]:
    with DuckDBEngine(":memory:", root=project.root) as eng:
        yield eng


def s3_connection(store: ConnectionStore, s3: S3Server, name: str = "lake") -> None:
    store.put(
        Connection(
            name=name,
            kind="files",
            options={
                "protocol": "s3",
                "bucket": s3.bucket,
                "endpoint_url": s3.endpoint,
                "region": "us-east-1",
            },
            secrets=["key", "secret"],
        ),
        {"key": S3_KEY, "secret": S3_SECRET},
    )


def sftp_connection(
    store: ConnectionStore, sftp: SFTPServer, password: str = SFTP_PASSWORD, **options: Any
) -> None:
    store.put(
        Connection(
            name="box",
            kind="files",
            options={
                "protocol": "sftp",
                "host": "127.0.0.1",
                "port": sftp.port,
                "username": SFTP_USER,
                "root": "/drop",
                "timeout": 10,
                **options,
            },
            secrets=["password"],
        ),
        {"password": password},
    )


def run_ok(pipeline: Any, engine: DuckDBEngine, store: ConnectionStore) -> dict[str, int | None]:
    result = run_pipeline(pipeline, engine, connections=store.resolve)
    assert result.status == "succeeded", result.error
    return {g.gem_id: g.rows for g in result.gems}


def issues(pipeline: Any, engine: DuckDBEngine, store: ConnectionStore) -> list[str]:
    return [
        f"{i.field}: {i.message}"
        for i in compile_pipeline(pipeline, engine, connections=store.resolve).issues
    ]


# -- local files, every format ------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_local_files_round_trip_in_every_format(tmp_path: Path, fmt: str) -> None:
    folder = local_store(tmp_path)
    assert write_table(folder, f"out/people.{fmt}", fmt, PEOPLE) == 3  # type: ignore[arg-type]
    back = read_table(folder, f"out/people.{fmt}", fmt)  # type: ignore[arg-type]
    assert rows(back) == rows(PEOPLE)
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"people.{fmt}"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_append_keeps_the_old_rows_and_error_if_exists_refuses(tmp_path: Path, fmt: str) -> None:
    folder = local_store(tmp_path)
    write_table(folder, f"p.{fmt}", fmt, PEOPLE.slice(0, 1))  # type: ignore[arg-type]
    assert write_table(folder, f"p.{fmt}", fmt, PEOPLE.slice(1), "append") == 2  # type: ignore[arg-type]
    assert rows(read_table(folder, f"p.{fmt}", fmt)) == rows(PEOPLE)  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="already exists"):
        write_table(folder, f"p.{fmt}", fmt, PEOPLE, "error_if_exists")  # type: ignore[arg-type]
    assert len(read_table(folder, f"p.{fmt}", fmt)) == 3  # type: ignore[arg-type]


def test_files_written_by_other_tools_read_as_they_look(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "first"
    extra = book.create_sheet("orders")
    for row in (["order", "when", "amount"], [1, dt.datetime(2025, 3, 1), 9.5], [2, None, 4]):
        extra.append(row)
    book.save(tmp_path / "book.xlsx")
    (tmp_path / "feed.xml").write_text(
        '<?xml version="1.0"?><feed><meta/><items>'
        '<item id="1"><name>ann</name><ok>true</ok></item>'
        '<item id="2"><name>bob</name><ok>false</ok></item></items></feed>'
    )
    (tmp_path / "array.json").write_text('[{"a": 1, "b": {"c": "x"}}, {"a": 2, "b": null}]')
    folder = local_store(tmp_path)
    excel = read_table(folder, "book.xlsx", "excel", FileOptions(sheet="orders"))
    assert excel.to_pylist() == [
        {"order": 1, "when": dt.datetime(2025, 3, 1), "amount": 9.5},
        {"order": 2, "when": None, "amount": 4.0},
    ]
    xml = read_table(folder, "feed.xml", "xml", FileOptions(row_path="/feed/items/item"))
    assert xml.to_pylist() == [
        {"id": 1, "name": "ann", "ok": True},
        {"id": 2, "name": "bob", "ok": False},
    ]
    assert read_table(folder, "array.json", "json").to_pylist() == [
        {"a": 1, "b": {"c": "x"}},
        {"a": 2, "b": None},
    ]
    with pytest.raises(EngineError, match="no sheet 'missing' \\(sheets: first, orders\\)"):
        read_table(folder, "book.xlsx", "excel", FileOptions(sheet="missing"))


def test_xml_reading_expands_no_entities(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    (tmp_path / "evil.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<r><row><v>&x;</v></row></r>"
    )
    table = read_table(local_store(tmp_path), "evil.xml", "xml")
    assert "TOP-SECRET" not in json.dumps(table.to_pylist())


def test_a_glob_reads_every_matching_file_as_one_table(tmp_path: Path) -> None:
    for month in (1, 2, 3):
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"sales_{month}.csv").write_text(f"month,amount\n{month},{month * 10}\n")
    (tmp_path / "in" / "notes.txt").write_text("not a sale")
    table = read_table(local_store(tmp_path), "in/sales_*.csv", "csv")
    assert sorted(table.column("amount").to_pylist()) == [10, 20, 30]
    with pytest.raises(EngineError, match=r"no file in the project folder matches 'in/x\*\.csv'"):
        read_table(local_store(tmp_path), "in/x*.csv", "csv")


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    folder = local_store(tmp_path)
    write_table(folder, "book.xlsx", "excel", PEOPLE)
    before = (tmp_path / "book.xlsx").read_bytes()
    # openpyxl refuses control characters in a cell, half way through the rows.
    bad = pa.table({"id": [1, 2], "name": ["fine", "bell\x07"], "score": [1.0, 2.0]})
    with pytest.raises(EngineError, match=r"cannot write 'book\.xlsx'"):
        write_table(folder, "book.xlsx", "excel", bad)
    assert (tmp_path / "book.xlsx").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["book.xlsx"]


def test_a_writer_failing_after_some_bytes_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = local_store(tmp_path)
    write_table(folder, "p.parquet", "parquet", PEOPLE)
    before = (tmp_path / "p.parquet").read_bytes()

    def breaks_half_way(table: pa.Table, sink: Any, options: FileOptions) -> None:
        sink.write(b"PAR1 partial bytes")
        raise OSError("disk full")

    monkeypatch.setitem(connector._WRITERS, "parquet", breaks_half_way)
    with pytest.raises(EngineError, match="OSError: disk full"):
        write_table(folder, "p.parquet", "parquet", PEOPLE.slice(0, 1))
    assert (tmp_path / "p.parquet").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.parquet"]


def test_nested_columns_become_json_text_in_flat_formats(tmp_path: Path) -> None:
    nested = pa.table({"id": [1], "tags": [["a", "b"]], "point": [{"x": 1, "y": 2}]})
    folder = local_store(tmp_path)
    write_table(folder, "n.csv", "csv", nested)
    assert list(csv.reader(io.StringIO((tmp_path / "n.csv").read_text()))) == [
        ["id", "tags", "point"],
        ["1", '["a", "b"]', '{"x": 1, "y": 2}'],
    ]
    write_table(folder, "n.json", "json", nested)
    assert json.loads((tmp_path / "n.json").read_text()) == {
        "id": 1,
        "tags": ["a", "b"],
        "point": {"x": 1, "y": 2},
    }


# -- pipelines over local files ------------------------------------------------------------
def test_local_excel_and_xml_through_sources_and_targets(
    engine: DuckDBEngine, project: Project, store: ConnectionStore
) -> None:
    pipeline = make_pipeline(
        [
            seed("people", [("id", "INTEGER"), ("name", "VARCHAR")], [[1, "ann"], [2, "bob"]]),
            gem("xlsx", "Target", format="excel", path="out/people.xlsx", sheet="people"),
            gem("xml", "Target", format="xml", path="out/people.xml", row_tag="person"),
        ],
        [("people", "xlsx"), ("people", "xml")],
    )
    assert run_ok(pipeline, engine, store) == {"people": None, "xlsx": 2, "xml": 2}
    assert (
        b"<person><id>1</id><name>ann</name></person>"
        in (project.root / "out" / "people.xml").read_bytes()
    )
    book = openpyxl.load_workbook(project.root / "out" / "people.xlsx")
    assert book.sheetnames == ["people"]
    back = make_pipeline(
        [
            gem("a", "Source", format="excel", path="out/people.xlsx", sheet="people"),
            gem("b", "Source", format="xml", path="out/people.xml", row_path="//person"),
            gem(
                "j",
                "Join",
                joins=[{"condition": "a.id = b.id"}],
                columns=[
                    {"name": "id", "expression": "a.id"},
                    {"name": "name", "expression": "b.name"},
                ],
            ),
            gem("out", "Target", format="csv", path="out/joined.csv"),
        ],
        [("a", "j", "in0"), ("b", "j", "in1"), ("j", "out")],
    )
    assert issues(back, engine, store) == []
    run_ok(back, engine, store)
    assert (project.root / "out" / "joined.csv").read_text().splitlines() == [
        "id,name",
        "1,ann",
        "2,bob",
    ]


def test_local_csv_without_a_connection_stays_a_duckdb_reader(
    engine: DuckDBEngine, project: Project, store: ConnectionStore
) -> None:
    (project.root / "data").mkdir(exist_ok=True)
    (project.root / "data" / "p.csv").write_text("id,name\n1,ann\n")
    compiled = compile_pipeline(
        chain(gem("src", "Source", format="csv", path="data/p.csv")), engine
    )
    assert compiled.issues == []
    assert "read_csv('data/p.csv'" in compiled.sql("src", pretty=False).lower()


def test_local_paths_must_stay_inside_the_project(
    engine: DuckDBEngine, project: Project, store: ConnectionStore, tmp_path: Path
) -> None:
    (tmp_path / "outside.xml").write_text("<r><row><a>1</a></row></r>")
    for path in ("../outside.xml", str(tmp_path / "outside.xml")):
        found = issues(chain(gem("src", "Source", format="xml", path=path)), engine, store)
        assert found == [f"/gems/0/properties/path: {path!r} is outside the project folder"]
    found = issues(
        chain(
            seed("s", [("a", "INTEGER")], [[1]]),
            gem("out", "Target", format="excel", path="../x.xlsx"),
        ),
        engine,
        store,
    )
    assert found == ["/gems/1/properties/path: '../x.xlsx' is outside the project folder"]


def test_merge_through_the_connector_is_refused_on_the_mode_field(
    engine: DuckDBEngine, store: ConnectionStore
) -> None:
    pipeline = chain(
        seed("s", [("a", "INTEGER")], [[1]]),
        gem("out", "Target", format="excel", path="x.xlsx", mode="merge", keys=["a"]),
    )
    assert issues(pipeline, engine, store) == [
        "/gems/1/properties/mode: merge is not available for excel files: "
        "use overwrite, append or error_if_exists"
    ]


# -- S3 -----------------------------------------------------------------------------------
def test_s3_source_target_and_glob_through_a_connection(
    engine: DuckDBEngine, store: ConnectionStore, s3: S3Server
) -> None:
    s3_connection(store, s3)
    s3.put("in/2024/orders_1.csv", b"id,amount\n1,10\n2,20\n")
    s3.put("in/2024/orders_2.csv", b"id,amount\n3,30\n")
    s3.put("in/2024/readme.txt", b"not rows")
    pipeline = make_pipeline(
        [
            gem("orders", "Source", format="csv", path="in/2024/orders_*.csv", connection="lake"),
            gem("big", "Filter", condition="amount >= 20"),
            gem("out", "Target", format="parquet", path="out/big.parquet", connection="lake"),
            gem("all", "Target", format="json", path="out/all.json", connection="lake"),
        ],
        [("orders", "big"), ("big", "out"), ("orders", "all")],
    )
    counts = run_ok(pipeline, engine, store)
    assert (counts["out"], counts["all"]) == (2, 3)
    written = pq.read_table(io.BytesIO(s3.get("out/big.parquet")))
    assert sorted(written.column("id").to_pylist()) == [2, 3]
    lines = s3.get("out/all.json").decode().splitlines()
    assert sorted(json.loads(line)["amount"] for line in lines) == [10, 20, 30]
    assert s3.keys() == [
        "in/2024/orders_1.csv",
        "in/2024/orders_2.csv",
        "in/2024/readme.txt",
        "out/all.json",
        "out/big.parquet",
    ]
    # a second run appends to the JSON file rather than replacing it
    again = make_pipeline(
        [
            gem("orders", "Source", format="csv", path="in/2024/orders_1.csv", connection="lake"),
            gem(
                "all",
                "Target",
                format="json",
                path="out/all.json",
                connection="lake",
                mode="append",
            ),
        ],
        [("orders", "all")],
    )
    assert run_ok(again, engine, store)["all"] == 2
    assert len(s3.get("out/all.json").decode().splitlines()) == 5


def test_s3_wrong_credentials_fail_cleanly_without_the_secret(
    engine: DuckDBEngine, store: ConnectionStore, s3: S3Server
) -> None:
    s3.put("a.csv", b"x\n1\n")
    store.put(
        Connection(
            name="bad",
            kind="files",
            options={"protocol": "s3", "bucket": "no-such-bucket", "endpoint_url": s3.endpoint},
            secrets=["key", "secret"],
        ),
        {"key": "AKIAWRONG", "secret": "wrong-secret-Pp0"},
    )
    found = issues(
        chain(gem("src", "Source", format="csv", path="a.csv", connection="bad")), engine, store
    )
    assert len(found) == 1 and found[0].startswith("/gems/0/properties/path: cannot read source")
    assert "wrong-secret-Pp0" not in found[0]
    text = (store.folder / "bad.yml").read_text()
    assert "wrong-secret-Pp0" not in text and "AKIAWRONG" not in text


def test_directory_over_s3(engine: DuckDBEngine, store: ConnectionStore, s3: S3Server) -> None:
    s3_connection(store, s3)
    s3.put("in/a.csv", b"x\n1\n")
    s3.put("in/deeper/b.csv", b"x\n2\n")
    s3.put("in/c.txt", b"hello")
    listing = chain(gem("ls", "Directory", path="in", connection="lake", pattern="*.csv"))
    compiled = compile_pipeline(listing, engine, connections=store.resolve)
    assert compiled.issues == []
    _, found = engine.query(compiled.query("ls"))
    assert [(r[0], r[1], r[2], r[4]) for r in found] == [("a.csv", "in/a.csv", 4, "file")]
    assert isinstance(found[0][3], dt.datetime)
    recursive = chain(gem("ls", "Directory", path="in", connection="lake", recursive=True))
    compiled = compile_pipeline(recursive, engine, connections=store.resolve)
    _, found = engine.query(compiled.query("ls"))
    assert sorted((r[1], r[4]) for r in found) == [
        ("in/a.csv", "file"),
        ("in/c.txt", "file"),
        ("in/deeper", "directory"),
        ("in/deeper/b.csv", "file"),
    ]


# -- SFTP ---------------------------------------------------------------------------------
def test_sftp_pipeline_reads_from_s3_and_writes_over_sftp(
    engine: DuckDBEngine, store: ConnectionStore, s3: S3Server, sftp: SFTPServer
) -> None:
    s3_connection(store, s3)
    sftp_connection(store, sftp, host_key=sftp.host_key)
    s3.put("people.json", b'{"id": 1, "name": "ann"}\n{"id": 2, "name": "bob"}\n')
    pipeline = make_pipeline(
        [
            gem("people", "Source", format="json", path="people.json", connection="lake"),
            gem("xlsx", "Target", format="excel", path="out/people.xlsx", connection="box"),
            gem("csv", "Target", format="csv", path="out/people.csv", connection="box"),
        ],
        [("people", "xlsx"), ("people", "csv")],
    )
    assert run_ok(pipeline, engine, store) == {"people": None, "xlsx": 2, "csv": 2}
    out = sftp.root / "drop" / "out"
    assert sorted(p.name for p in out.iterdir()) == ["people.csv", "people.xlsx"]
    assert (out / "people.csv").read_text().splitlines() == ['"id","name"', '1,"ann"', '2,"bob"']
    sheet = openpyxl.load_workbook(out / "people.xlsx").active
    assert sheet is not None
    assert [list(r) for r in sheet.iter_rows(values_only=True)] == [
        ["id", "name"],
        [1, "ann"],
        [2, "bob"],
    ]
    # and back: a Source over SFTP and a Directory listing of it
    back = make_pipeline(
        [
            gem("xlsx", "Source", format="excel", path="out/people.xlsx", connection="box"),
            gem("ls", "Directory", path="out", connection="box"),
        ],
        [],
    )
    compiled = compile_pipeline(back, engine, connections=store.resolve)
    assert compiled.issues == []
    assert engine.query(compiled.query("xlsx"))[1] == [(1, "ann"), (2, "bob")]
    names = sorted((r[0], r[4]) for r in engine.query(compiled.query("ls"))[1])
    assert names == [("people.csv", "file"), ("people.xlsx", "file")]


def test_sftp_overwrite_replaces_the_file_atomically(
    store: ConnectionStore, sftp: SFTPServer
) -> None:
    sftp_connection(store, sftp)
    with open_store(store.resolve("box")) as remote:
        write_table(remote, "p.csv", "csv", PEOPLE)
        write_table(remote, "p.csv", "csv", PEOPLE.slice(0, 1))
        with pytest.raises(EngineError):
            write_table(remote, "p.xlsx", "excel", pa.table({"a": ["\x07"]}))
    assert (sftp.root / "drop" / "p.csv").read_text().splitlines() == [
        '"id","name","score"',
        '1,"ann",1.5',
    ]
    assert sorted(p.name for p in (sftp.root / "drop").iterdir()) == ["p.csv"]


def test_sftp_wrong_password_is_a_clean_error_without_the_password(
    engine: DuckDBEngine, store: ConnectionStore, sftp: SFTPServer
) -> None:
    sftp_connection(store, sftp, password="not-the-password-Xy1")
    with pytest.raises(EngineError) as raised:
        open_store(store.resolve("box"))
    message = str(raised.value)
    assert "\n" not in message and "not-the-password-Xy1" not in message
    assert message.startswith("connection 'box': cannot connect: AuthenticationException")
    found = issues(
        chain(gem("src", "Source", format="csv", path="x.csv", connection="box")), engine, store
    )
    assert len(found) == 1 and found[0].startswith("/gems/0/properties/connection:")
    assert "not-the-password-Xy1" not in found[0]


def test_sftp_refuses_a_server_whose_host_key_is_not_the_pinned_one(
    store: ConnectionStore, sftp: SFTPServer
) -> None:
    sftp_connection(store, sftp, host_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKey")
    with pytest.raises(EngineError, match=r"host key .* is not the host_key the connection names"):
        open_store(store.resolve("box"))


# -- Directory, locally ------------------------------------------------------------------------
def test_directory_lists_local_folders(
    engine: DuckDBEngine, project: Project, store: ConnectionStore
) -> None:
    data = project.root / "data"
    (data / "2025").mkdir(parents=True)
    (data / "a.csv").write_text("x\n1\n")
    (data / "b.json").write_text("{}")
    (data / "2025" / "c.csv").write_text("x\n")

    def listing(**props: Any) -> list[tuple[Any, ...]]:
        compiled = compile_pipeline(
            chain(gem("ls", "Directory", **props)), engine, connections=store.resolve
        )
        assert compiled.issues == [], compiled.issues
        assert [(c.name, c.type) for c in compiled.columns("ls")] == [
            ("name", "VARCHAR"),
            ("path", "VARCHAR"),
            ("size", "BIGINT"),
            ("modified", "TIMESTAMP"),
            ("type", "VARCHAR"),
        ]
        return sorted(engine.query(compiled.query("ls"))[1])

    flat = listing(path="data")
    assert [(r[0], r[1], r[2], r[4]) for r in flat] == [
        ("2025", "data/2025", None, "directory"),
        ("a.csv", "data/a.csv", 4, "file"),
        ("b.json", "data/b.json", 2, "file"),
    ]
    assert abs(flat[1][3] - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < dt.timedelta(minutes=5)
    deep = listing(path="data", recursive=True, pattern="*.csv")
    assert sorted(r[1] for r in deep) == ["data/2025/c.csv", "data/a.csv"]
    for bad in ("..", "/etc", "data/../../x"):
        found = issues(chain(gem("ls", "Directory", path=bad)), engine, store)
        assert found == [f"/gems/0/properties/path: {bad!r} is outside the project folder"]
    missing = issues(chain(gem("ls", "Directory", path="nope")), engine, store)
    assert missing == [
        "/gems/0/properties/path: 'nope' in the project folder is not a folder (not found)"
    ]


def test_connection_paths_may_not_leave_the_root(
    engine: DuckDBEngine, store: ConnectionStore, s3: S3Server
) -> None:
    s3_connection(store, s3)
    found = issues(chain(gem("ls", "Directory", path="../other", connection="lake")), engine, store)
    assert found == ["/gems/0/properties/path: path '../other' leaves the connection's root ('..')"]


def test_a_connection_of_another_kind_or_none_is_an_issue_on_the_connection(
    engine: DuckDBEngine, store: ConnectionStore
) -> None:
    store.put(Connection(name="mail", kind="smtp", options={"host": "x", "from": "a@b.c"}))
    src = chain(gem("src", "Source", format="csv", path="a.csv", connection="mail"))
    assert issues(src, engine, store) == [
        "/gems/0/properties/connection: connection 'mail' is a smtp connection; "
        "a file needs a files connection"
    ]
    unknown = chain(gem("src", "Source", format="csv", path="a.csv", connection="nope"))
    assert issues(unknown, engine, store) == [
        "/gems/0/properties/connection: project 'proj' has no connection 'nope'"
    ]


# -- Email ----------------------------------------------------------------------------------
def smtp_connection(
    store: ConnectionStore, smtp: SMTPServer, password: str = SMTP_PASSWORD
) -> None:
    store.put(
        Connection(
            name="mail",
            kind="smtp",
            options={
                "host": "127.0.0.1",
                "port": smtp.port,
                "from": "robot@shop.test",
                "timeout": 10,
            },
            secrets=["username", "password"],
        ),
        {"username": SMTP_USER, "password": password},
    )


def test_email_sends_the_rows_as_csv_and_html(
    engine: DuckDBEngine, store: ConnectionStore, smtp: SMTPServer
) -> None:
    smtp_connection(store, smtp)
    pipeline = chain(
        seed("s", [("id", "INTEGER"), ("name", "VARCHAR")], [[1, "ann"], [2, "<b>bob</b>"]]),
        gem(
            "mail",
            "Email",
            connection="mail",
            to=["ops@shop.test"],
            cc=["boss@shop.test"],
            subject="Daily rows",
            body="Here they are.",
            rows_as="both",
            attachment_name="daily.csv",
        ),
    )
    assert run_ok(pipeline, engine, store)["mail"] == 2
    assert smtp.logins == [SMTP_USER]
    [received] = smtp.received
    assert received.sender == "robot@shop.test"
    assert received.recipients == ["ops@shop.test", "boss@shop.test"]
    assert received.message["Subject"] == "Daily rows"
    assert received.message["Cc"] == "boss@shop.test"
    parts = {part.get_content_type(): part for part in received.message.walk()}
    attachment = parts["text/csv"]
    assert attachment.get_filename() == "daily.csv"
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert list(csv.reader(io.StringIO(payload.decode()))) == [
        ["id", "name"],
        ["1", "ann"],
        ["2", "<b>bob</b>"],
    ]
    html_payload = parts["text/html"].get_payload(decode=True)
    assert isinstance(html_payload, bytes)
    assert "<td>&lt;b&gt;bob&lt;/b&gt;</td>" in html_payload.decode()
    text_payload = parts["text/plain"].get_payload(decode=True)
    assert isinstance(text_payload, bytes) and "Here they are." in text_payload.decode()


def test_email_with_a_wrong_password_fails_the_run_without_the_password(
    engine: DuckDBEngine, store: ConnectionStore, smtp: SMTPServer
) -> None:
    smtp_connection(store, smtp, password="wrong-mail-pass-Qq4")
    pipeline = chain(
        seed("s", [("id", "INTEGER")], [[1]]),
        gem("mail", "Email", connection="mail", to=["ops@shop.test"], subject="x"),
    )
    result = run_pipeline(pipeline, engine, connections=store.resolve)
    assert result.status == "failed"
    assert result.error is not None and "SMTPAuthenticationError" in result.error
    assert "wrong-mail-pass-Qq4" not in result.error
    assert smtp.received == []


def test_email_properties_are_checked_before_the_run(
    engine: DuckDBEngine, store: ConnectionStore, smtp: SMTPServer
) -> None:
    smtp_connection(store, smtp)
    pipeline = chain(
        seed("s", [("id", "INTEGER")], [[1]]),
        gem("mail", "Email", connection="mail", to=["ops@shop.test", "nobody"], subject="a\nb"),
    )
    assert issues(pipeline, engine, store) == [
        "/gems/1/properties/to/1: 'nobody' is not an email address",
        "/gems/1/properties/subject: the subject must be one line",
    ]


# -- GCS and Azure: the arguments, and an unreachable endpoint --------------------------------
def closed_port() -> int:
    port = free_port()
    with socket.socket() as probe:  # nothing listens there: connecting is refused
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return port


def test_gcs_connection_arguments() -> None:
    key = {"type": "service_account", "private_key": "-----BEGIN gcs-secret-Hh2"}
    conn = ResolvedConnection(
        "g",
        "files",
        {"protocol": "gcs", "bucket": "data", "root": "raw", "project": "p1", "timeout": 5},
        {"token": json.dumps(key)},
    )
    protocol, kwargs = filesystem_arguments(conn)
    assert protocol == "gcs"
    assert kwargs == {
        "timeout": 5.0,
        "requests_timeout": 5.0,
        "project": "p1",
        "token": key,
        "skip_instance_cache": True,
    }
    assert "gcs-secret-Hh2" not in repr(conn)
    bad = ResolvedConnection("g", "files", {"protocol": "gcs", "bucket": "b"}, {"token": "nope"})
    with pytest.raises(EngineError, match="must be a service account's JSON key"):
        filesystem_arguments(bad)


def test_azure_connection_arguments() -> None:
    conn = ResolvedConnection(
        "a",
        "files",
        {"protocol": "abfs", "container": "c", "account_name": "acct", "timeout": 7},
        {"sas_token": "sv=2024&sig=az-secret-Jj5"},
    )
    protocol, kwargs = filesystem_arguments(conn)
    assert protocol == "abfs"
    assert kwargs == {
        "connection_timeout": 7.0,
        "read_timeout": 7.0,
        "account_name": "acct",
        "sas_token": "sv=2024&sig=az-secret-Jj5",
        "skip_instance_cache": True,
    }
    keyed = ResolvedConnection(
        "a",
        "files",
        {"protocol": "abfs", "container": "c", "account_name": "acct"},
        {"account_key": "a2V5"},
    )
    _, kwargs = filesystem_arguments(keyed)
    assert "account_key" not in kwargs
    assert kwargs["credential"].named_key == ("acct", "a2V5")


def test_s3_and_sftp_connection_arguments() -> None:
    s3_args = filesystem_arguments(
        ResolvedConnection(
            "s",
            "files",
            {"protocol": "s3", "bucket": "b", "region": "eu-west-1", "timeout": 4, "retries": 2},
            {"key": "K", "secret": "S"},
        )
    )
    assert s3_args == (
        "s3",
        {
            "config_kwargs": {
                "connect_timeout": 4.0,
                "read_timeout": 4.0,
                "retries": {"max_attempts": 2},
            },
            "client_kwargs": {"region_name": "eu-west-1"},
            "key": "K",
            "secret": "S",
            "skip_instance_cache": True,
        },
    )
    protocol, sftp_args = filesystem_arguments(
        ResolvedConnection(
            "f", "files", {"protocol": "sftp", "host": "h", "username": "u"}, {"password": "p"}
        )
    )
    assert protocol == "sftp"
    assert sftp_args["host"] == "h" and sftp_args["port"] == 22
    assert (sftp_args["username"], sftp_args["password"]) == ("u", "p")
    assert (sftp_args["look_for_keys"], sftp_args["allow_agent"]) == (False, False)
    with pytest.raises(EngineError, match="protocol must be one of file, s3, gcs, abfs, sftp"):
        filesystem_arguments(ResolvedConnection("x", "files", {"protocol": "ftp"}))


@pytest.mark.parametrize(
    ("options", "secrets"),
    [
        ({"protocol": "gcs", "bucket": "b", "anonymous": True}, {}),
        (
            {"protocol": "abfs", "container": "c", "account_name": "acct"},
            {"account_key": "c2VjcmV0LUtrNg=="},
        ),
    ],
    ids=["gcs", "azure"],
)
def test_an_unreachable_cloud_endpoint_fails_fast_and_cleanly(
    options: dict[str, Any], secrets: dict[str, str]
) -> None:
    port = closed_port()
    endpoint = (
        {"endpoint_url": f"http://127.0.0.1:{port}"}
        if options["protocol"] == "gcs"
        else {"account_host": f"127.0.0.1:{port}"}
    )
    conn = ResolvedConnection("cloud", "files", {**options, **endpoint, "timeout": 2}, secrets)
    started = time.monotonic()
    with pytest.raises(EngineError) as raised:
        read_table(open_store(conn), "x.csv", "csv")
    assert time.monotonic() - started < 15
    message = str(raised.value)
    assert message == "cannot read 'x.csv': connection 'cloud' did not answer within 2 s"
    with pytest.raises(EngineError, match="did not answer within 2 s"):
        list_entries(open_store(conn), ".")


# -- the catalog ----------------------------------------------------------------------------------
def test_new_gems_are_in_the_catalog_with_described_properties() -> None:
    kinds = gem_kinds()
    for kind in ("Directory", "Email", "Source", "Target"):
        schema = kinds[kind].describe()["properties_schema"]
        undocumented = [
            name for name, spec in schema["properties"].items() if not spec.get("description")
        ]
        assert undocumented == [], (kind, undocumented)
    assert kinds["Email"].describe()["has_output"] is False
    assert kinds["Directory"].describe()["inputs"] == {"min": 0, "max": 0}


# -- Automate: a file trigger watching a bucket ------------------------------------------------
def test_a_file_trigger_fires_once_for_each_object_arriving_in_a_bucket(
    project: Project,
    store: ConnectionStore,
    s3: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prophecy_jupyter.automate.scheduler import Scheduled, Scheduler
    from prophecy_jupyter.automate.schedules import Schedule
    from prophecy_jupyter.automate.store import RunFilter, Store

    monkeypatch.setenv("PROPHECY_SECRETS_FILE", str(store.secrets.path))
    s3_connection(store, s3)
    watch = Schedule.model_validate(
        {
            "name": "landing",
            "pipeline": "load",
            "triggers": [
                {"type": "file", "path": "landing/*.csv", "connection": "lake", "poll_seconds": 0}
            ],
        }
    )
    runs = Store(f"sqlite:///{tmp_path / 'automate.sqlite'}")
    entry = Scheduled("proj", watch, "in-memory")
    scheduler = Scheduler(runs, lambda: [entry], project.root.parent)
    s3.put("landing/old.csv", b"x\n1\n")
    scheduler.tick()  # first sight: what is already there has not arrived
    assert runs.list_runs(RunFilter(trigger="file")) == []
    s3.put("landing/new.csv", b"x\n2\n")
    s3.put("landing/readme.txt", b"not data")
    s3.put("elsewhere/other.csv", b"x\n3\n")
    assert len(scheduler.tick().fired) == 1
    assert scheduler.tick().fired == []
    fired = sorted(r.parameters["trigger_file"] for r in runs.list_runs(RunFilter(trigger="file")))
    assert fired == ["landing/new.csv"]
    runs.close()


def test_connection_urls_carry_no_secret_and_stay_inside_the_root(tmp_path: Path) -> None:
    def url(protocol: str, spark: bool = False, **options: Any) -> str | None:
        connection = ResolvedConnection(
            "lake", "files", {"protocol": protocol, **options}, {"secret_key": "s3cr3t"}
        )
        return connection_url(connection, "data/x.csv", tmp_path, spark=spark)

    assert url("s3", bucket="b", root="raw") == "s3://b/raw/data/x.csv"
    assert url("s3", spark=True, bucket="b", root="raw") == "s3a://b/raw/data/x.csv"
    assert url("gcs", spark=True, bucket="b") == "gs://b/data/x.csv"
    assert url("abfs", container="c") == "abfs://c/data/x.csv"
    assert url("abfs", spark=True, container="c") is None  # the account is not known
    assert (
        url("abfs", spark=True, container="c", account_name="acct")
        == "abfss://c@acct.dfs.core.windows.net/data/x.csv"
    )
    assert url("sftp", host="h", port=2222, root="/srv") == "sftp://h:2222/srv/data/x.csv"
    assert url("file", root="lake") == f"{(tmp_path / 'lake').resolve().as_posix()}/data/x.csv"
    assert "s3cr3t" not in repr([url("s3", bucket="b"), url("sftp", host="h")])
    with pytest.raises(EngineError):
        connection_url(
            ResolvedConnection("lake", "files", {"protocol": "s3", "bucket": "b"}, {}),
            "../outside.csv",
        )
