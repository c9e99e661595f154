"""The database connector and gems: against a real PostgreSQL (through SQLAlchemy and
psycopg, with password authentication), and at contract level for MySQL, SQL Server,
Oracle and Snowflake (the URL, the driver, the error when unreachable or not installed)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from prophecy_jupyter.automate.runner import run_pipeline
from prophecy_jupyter.compiler import compile_pipeline
from prophecy_jupyter.connections import Connection, ConnectionStore, ResolvedConnection
from prophecy_jupyter.connectors.database import (
    Database,
    DatabaseConnectorError,
    database_url,
)
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.fabrics import SecretStore
from prophecy_jupyter.model.project import Project, init_project
from tests.conftest import gem, make_pipeline, seed
from tests.pg_support import PostgresServer


def pg_connection(server: PostgresServer, password: str | None = None) -> ResolvedConnection:
    return ResolvedConnection(
        "crm",
        "database",
        {
            "dialect": "postgresql+psycopg",
            "host": server.host,
            "port": server.port,
            "database": server.dbname,
            "username": server.user,
            "connect_timeout": 5,
        },
        {"password": password if password is not None else server.password},
    )


def pg_rows(server: PostgresServer, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(
        host=server.socket_dir, port=server.port, user=server.superuser, dbname=server.dbname
    ) as conn:
        return list(conn.execute(sql).fetchall())


def pg_run(server: PostgresServer, *statements: str) -> None:
    with server.admin(server.dbname) as admin:
        for statement in statements:
            admin.execute(statement)
        admin.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {server.user}")


@pytest.fixture
def people(postgres_database: PostgresServer) -> PostgresServer:
    pg_run(
        postgres_database,
        "CREATE TABLE people (id integer NOT NULL PRIMARY KEY, name text, score numeric(6,2), "
        "born date)",
        "INSERT INTO people VALUES (1, 'ann', 10.5, '1990-01-02'), (2, 'bob', 7, NULL), "
        "(3, 'cy', NULL, '2001-12-31')",
        f"ALTER TABLE people OWNER TO {postgres_database.user}",
    )
    return postgres_database


def project_with(tmp_path: Path, connection: ResolvedConnection) -> tuple[Project, ConnectionStore]:
    project = init_project(tmp_path / "proj")
    store = ConnectionStore(project, SecretStore(tmp_path / "secrets.json"))
    store.put(
        Connection(
            name=connection.name,
            kind=connection.kind,
            options=connection.options,
            secrets=list(connection.secrets),
        ),
        dict(connection.secrets),
    )
    return project, store


# -- PostgreSQL, for real ---------------------------------------------------------------------
def test_read_a_table_typed_as_declared(people: PostgresServer) -> None:
    with Database(pg_connection(people)) as db:
        table = db.read_table("people")
        empty = db.read_table("public.people", limit=0)
    assert table.column_names == ["id", "name", "score", "born"]
    assert table.schema.field("id").type == pa.int32()
    assert table.schema.field("score").type == pa.decimal128(6, 2)
    assert table.schema.field("born").type == pa.date32()
    assert sorted(table.column("name").to_pylist()) == ["ann", "bob", "cy"]
    assert empty.num_rows == 0 and empty.schema == table.schema


def test_read_a_query_with_literal_text_that_looks_like_parameters(people: PostgresServer) -> None:
    with Database(pg_connection(people)) as db:
        table = db.read_sql(
            "SELECT name, '50%' AS pct, ':id' AS colon FROM people WHERE id = 1 ORDER BY 1"
        )
    assert table.to_pylist() == [{"name": "ann", "pct": "50%", "colon": ":id"}]


def test_source_gem_binds_parameters_as_literals(people: PostgresServer, tmp_path: Path) -> None:
    project, store = project_with(tmp_path, pg_connection(people))
    pipeline = make_pipeline(
        [
            gem(
                "src",
                "DatabaseSource",
                connection="crm",
                query="SELECT id, name FROM people WHERE name <> $who AND id >= $least ORDER BY id",
            )
        ],
        [],
        parameters=[
            {"name": "who", "type": "string", "default": "x'; DROP TABLE people; --"},
            {"name": "least", "type": "integer", "default": 2},
        ],
    )
    with DuckDBEngine(":memory:", root=project.root) as engine:
        compiled = compile_pipeline(pipeline, engine, connections=store.resolve)
        assert compiled.issues == []
        _, found = engine.query(compiled.query("src"))
    assert found == [(2, "bob"), (3, "cy")]
    assert len(pg_rows(people, "SELECT * FROM people")) == 3


def test_source_gem_refuses_anything_but_one_select(people: PostgresServer, tmp_path: Path) -> None:
    project, store = project_with(tmp_path, pg_connection(people))
    cases = {
        "SELECT 1;\nDELETE FROM people": ("multiple_statements", 1, 9),
        "DELETE FROM people": ("not_a_query", None, None),
        "SELECT pg_read_file('/etc/passwd')": ("forbidden_function", 1, 8),
        "SELECT * FROM people WHERE id = $nope": ("unknown_parameter", 1, 33),
        "SELECT FROM WHERE (": ("syntax", None, None),
    }
    with DuckDBEngine(":memory:", root=project.root) as engine:
        for text, (code, line, column) in cases.items():
            pipeline = make_pipeline(
                [gem("src", "DatabaseSource", connection="crm", query=text)], []
            )
            issues = compile_pipeline(pipeline, engine, connections=store.resolve).issues
            assert [(i.code, i.field) for i in issues] == [(code, "/gems/0/properties/query")], text
            if line is not None:
                assert (issues[0].line, issues[0].column) == (line, column), text
    assert len(pg_rows(people, "SELECT * FROM people")) == 3


def test_fetch_limit_bounds_what_a_compile_reads(people: PostgresServer, tmp_path: Path) -> None:
    project, store = project_with(tmp_path, pg_connection(people))
    pipeline = make_pipeline(
        [gem("src", "DatabaseSource", connection="crm", query="SELECT * FROM people")], []
    )
    with DuckDBEngine(":memory:", root=project.root) as engine:
        compiled = compile_pipeline(pipeline, engine, connections=store.resolve, fetch_limit=0)
        assert compiled.issues == []
        names, found = engine.query(compiled.query("src"))
    assert (names, found) == (["id", "name", "score", "born"], [])


def _write(
    server: PostgresServer, rows: pa.Table, mode: Any, batch_rows: int, keys: tuple[str, ...] = ()
) -> int:
    with Database(pg_connection(server), batch_rows=batch_rows) as db:
        return db.write_table("people", rows, mode, keys)


def people_rows(*rows: tuple[int | None, str]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.int64()),
            "name": pa.array([r[1] for r in rows], pa.string()),
        }
    )


def test_write_modes(people: PostgresServer) -> None:
    with Database(pg_connection(people)) as db:
        assert db.write_table("people", people_rows((7, "gus")), "overwrite") == 1
        assert pg_rows(people, "SELECT id, name FROM people") == [(7, "gus")]
        db.write_table("people", people_rows((8, "hal")), "append")
        assert pg_rows(people, "SELECT id FROM people ORDER BY id") == [(7,), (8,)]
        with pytest.raises(DatabaseConnectorError, match="already exists"):
            db.write_table("people", people_rows((9, "ivy")), "error_if_exists")
        db.write_table("fresh", people_rows((1, "a"), (2, "b")), "error_if_exists")
        assert pg_rows(people, "SELECT id, name FROM fresh ORDER BY id") == [(1, "a"), (2, "b")]
        db.write_table("people", people_rows((8, "hal2"), (10, "jo")), "merge", keys=["id"])
        assert pg_rows(people, "SELECT id, name FROM people ORDER BY id") == [
            (7, "gus"),
            (8, "hal2"),
            (10, "jo"),
        ]
        with pytest.raises(DatabaseConnectorError, match="unique"):
            db.write_table("people", people_rows((1, "a"), (1, "b")), "merge", keys=["id"])
        with pytest.raises(DatabaseConnectorError, match="no column 'other'"):
            db.write_table("people", pa.table({"other": [1]}), "append")


def test_overwrite_is_atomic_when_a_later_batch_fails(people: PostgresServer) -> None:
    before = pg_rows(people, "SELECT * FROM people ORDER BY id")
    # The fifth row breaks NOT NULL, in the third batch of two rows.
    bad = people_rows((10, "a"), (11, "b"), (12, "c"), (13, "d"), (None, "e"))
    with pytest.raises(DatabaseConnectorError, match="null value"):
        _write(people, bad, "overwrite", 2)
    assert pg_rows(people, "SELECT * FROM people ORDER BY id") == before
    with pytest.raises(DatabaseConnectorError):
        _write(people, bad, "merge", 2, ("id",))
    assert pg_rows(people, "SELECT * FROM people ORDER BY id") == before


def test_a_new_table_is_not_left_behind_by_a_failed_write(
    postgres_database: PostgresServer,
) -> None:
    rows = pa.table({"n": pa.array([1, 2**40], pa.int64()), "t": ["a", "b"]})
    with Database(pg_connection(postgres_database), batch_rows=1) as db:
        db.write_table("big", rows, "overwrite")  # BIGINT: fits
        pg_run(postgres_database, "CREATE TABLE small (n integer)")
        with pytest.raises(DatabaseConnectorError, match="out of range"):
            db.write_table("small", rows.select(["n"]), "append")
    assert pg_rows(postgres_database, "SELECT n FROM big ORDER BY n") == [(1,), (2**40,)]
    assert pg_rows(postgres_database, "SELECT count(*) FROM small") == [(0,)]


def test_wrong_password_is_a_clean_error_without_it(postgres_database: PostgresServer) -> None:
    wrong = "not-the-Password-123"
    with (
        Database(pg_connection(postgres_database, wrong)) as db,
        pytest.raises(DatabaseConnectorError) as raised,
    ):
        db.read_sql("SELECT 1")
    message = str(raised.value)
    assert "password authentication failed" in message
    assert wrong not in message and postgres_database.password not in message
    assert "Background on this error" not in message
    assert wrong not in repr(db) and wrong not in repr(db.url)


def test_pipeline_from_postgres_to_postgres_through_the_runner(
    people: PostgresServer, tmp_path: Path
) -> None:
    project, store = project_with(tmp_path, pg_connection(people))
    pipeline = make_pipeline(
        [
            gem("src", "DatabaseSource", connection="crm", table="people"),
            gem("big", "Filter", condition="id >= 2"),
            gem("out", "DatabaseTarget", connection="crm", table="copied", mode="overwrite"),
            seed("upd", [("id", "INTEGER"), ("name", "VARCHAR")], [[2, "bobby"], [4, "dee"]]),
            gem("merge", "DatabaseTarget", connection="crm", table="people", mode="merge",
                keys=["id"]),
        ],
        [("src", "big"), ("big", "out"), ("upd", "merge")],
    )  # fmt: skip
    with DuckDBEngine(":memory:", root=project.root) as engine:
        result = run_pipeline(pipeline, engine, connections=store.resolve)
    assert result.status == "succeeded", result.error
    assert result.gem("out").rows == 2 and result.gem("merge").rows == 2
    assert pg_rows(people, "SELECT id, name FROM copied ORDER BY id") == [(2, "bob"), (3, "cy")]
    assert pg_rows(people, "SELECT id, name FROM people ORDER BY id") == [
        (1, "ann"),
        (2, "bobby"),
        (3, "cy"),
        (4, "dee"),
    ]


def test_dynamic_input_queries_a_database_per_row(people: PostgresServer, tmp_path: Path) -> None:
    project, store = project_with(tmp_path, pg_connection(people))
    pipeline = make_pipeline(
        [
            seed("names", [("who", "VARCHAR")], [["ann"], ["cy"], ["x'; DROP TABLE people; --"]]),
            gem(
                "dyn",
                "DynamicInput",
                query="SELECT id, upper(name) AS loud FROM people WHERE name = {who}",
                connection="crm",
                origin_column="input_row",
            ),
        ],
        [("names", "dyn")],
    )
    with DuckDBEngine(":memory:", root=project.root) as engine:
        compiled = compile_pipeline(pipeline, engine, connections=store.resolve)
        assert compiled.issues == []
        _, found = engine.query(compiled.query("dyn"))
    assert sorted(found) == [(1, "ANN", 1), (3, "CY", 2)]
    assert len(pg_rows(people, "SELECT * FROM people")) == 3


def test_database_source_unreadable_table_is_an_issue(
    postgres_database: PostgresServer, tmp_path: Path
) -> None:
    project, store = project_with(tmp_path, pg_connection(postgres_database))
    pipeline = make_pipeline([gem("src", "DatabaseSource", connection="crm", table="nope")], [])
    with DuckDBEngine(":memory:", root=project.root) as engine:
        issues = compile_pipeline(pipeline, engine, connections=store.resolve).issues
    assert [(i.code, i.field) for i in issues] == [
        ("unreadable_source", "/gems/0/properties/table")
    ]
    assert "no table 'nope'" in issues[0].message


# -- other databases: contract level ----------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def other(dialect: str, **options: Any) -> ResolvedConnection:
    settings: dict[str, Any] = {"dialect": dialect, "username": "etl", "connect_timeout": 2}
    settings.update(options)
    return ResolvedConnection("other", "database", settings, {"password": "s3cr#t/pw"})


@pytest.mark.parametrize(
    ("dialect", "options", "rendered", "backend"),
    [
        (
            "mysql+pymysql",
            {"host": "db", "port": 3306, "database": "shop", "query.charset": "utf8mb4"},
            "mysql+pymysql://etl:***@db:3306/shop?charset=utf8mb4",
            "mysql",
        ),
        (
            "mssql+pyodbc",
            {"host": "db", "port": 1433, "database": "shop", "query.driver": "ODBC Driver 18"},
            "mssql+pyodbc://etl:***@db:1433/shop?driver=ODBC+Driver+18",
            "tsql",
        ),
        (
            "oracle+oracledb",
            {"host": "db", "port": 1521, "query.service_name": "ORCL"},
            "oracle+oracledb://etl:***@db:1521?service_name=ORCL",
            "oracle",
        ),
        (
            "snowflake",
            {"host": "acme-xy123", "database": "SHOP/PUBLIC", "query.warehouse": "WH"},
            "snowflake+snowflake://etl:***@acme-xy123/SHOP/PUBLIC?warehouse=WH",
            "snowflake",
        ),
    ],
)
def test_url_and_dialect_of_other_databases(
    dialect: str, options: dict[str, Any], rendered: str, backend: str
) -> None:
    connection = other(dialect, **options)
    url = database_url(connection)
    assert str(url) == rendered and repr(url) == rendered
    assert url.password == "s3cr#t/pw"
    db = Database(connection)
    assert db.dialect == backend
    assert "s3cr" not in repr(db)


@pytest.mark.parametrize("dialect", ["mysql+pymysql", "oracle+oracledb", "postgresql+psycopg"])
def test_unreachable_server_is_a_quick_clean_error(dialect: str) -> None:
    connection = other(dialect, host="127.0.0.1", port=_closed_port(), database="x")
    started = time.monotonic()
    with Database(connection) as db, pytest.raises(DatabaseConnectorError) as raised:
        db.check()
    assert time.monotonic() - started < 10
    message = str(raised.value)
    assert message.startswith("cannot connect to database 'other' (127.0.0.1): ")
    assert "s3cr" not in message and "Background" not in message


def test_missing_driver_names_the_extra_to_install() -> None:
    with (
        Database(other("mssql+pymssql", host="db")) as db,
        pytest.raises(DatabaseConnectorError, match=r"pip install 'prophecy-jupyter\[mssql\]'"),
    ):
        db.check()


def test_bad_connection_settings_are_clean_errors() -> None:
    with pytest.raises(DatabaseConnectorError, match="unknown database dialect 'db2'"):
        database_url(other("db2"))
    with pytest.raises(DatabaseConnectorError, match="needs a 'dialect' option"):
        database_url(ResolvedConnection("x", "database", {}, {}))
    with pytest.raises(DatabaseConnectorError, match="not a database"):
        database_url(ResolvedConnection("x", "http", {"dialect": "mysql"}, {}))
    with pytest.raises(DatabaseConnectorError, match="port must be a number"):
        database_url(other("mysql", port="33o6"))
