"""The SQL warehouse engines.

PostgreSQL is tested against a real server (`tests.pg_support`): every Target of the shop
example gives the rows DuckDB gives, and the engine's own contract holds (describe without
running, previews, write modes, atomic writes, file Sources loaded from this machine, data
frames, sessions, cancel, secrets kept out of messages and logs).

Databricks, BigQuery and Snowflake are tested here at the connection-error level only,
offline, against endpoints that cannot be reached (a closed port of 127.0.0.1, a host that
does not resolve, a port that never answers): each fails within seconds with one line that
names the fabric and the endpoint and holds no secret. Their SQL is tested by golden files
elsewhere.
"""

from __future__ import annotations

import datetime
import decimal
import json
import logging
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlglot import exp

from prophecy_jupyter.automate.runner import RunResult, run_compiled
from prophecy_jupyter.compiler import compile_pipeline
from prophecy_jupyter.compiler.dialects import dialect_issues
from prophecy_jupyter.engines import DuckDBEngine, WriteSpec
from prophecy_jupyter.engines.warehouse import (
    WarehouseEngine,
    open_bigquery,
    open_databricks,
    open_postgres,
    open_snowflake,
)
from prophecy_jupyter.errors import Conflict, EngineError
from prophecy_jupyter.fabrics import Fabric
from prophecy_jupyter.gems.sources import file_reader, table_expression
from prophecy_jupyter.model import Pipeline, load_pipeline
from prophecy_jupyter.model.project import Project
from tests.pg_support import PostgresServer
from tests.test_server_support import SHOP, copy_shop

TEXT_TO_COLUMNS = (
    "TextToColumns: DuckDB's string_split(x, ' ')[n] is written with SPLIT, which PostgreSQL "
    "does not have (its split_part(x, ' ', n) gives '' past the last part, not NULL)"
)
REFUSED_ON_POSTGRES = {("channel_report", "returns_by_reason")}
"""Targets PostgreSQL refuses with an issue naming the gem (see KNOWN_TRAPS for why)."""

KNOWN_TRAPS = {
    'syntax error at or near "["': TEXT_TO_COLUMNS,
    "function split(text, unknown) does not exist": TEXT_TO_COLUMNS,
    "is jsonb, not a list": (
        "FlattenSchema: a JSON file's STRUCT and LIST OF STRUCT columns have no PostgreSQL "
        "type; they load as jsonb, which FlattenSchema cannot explode"
    ),
}
"""Constructs of the shop example that PostgreSQL does not run as written, by the error they
give: they are for the dialect rules to rewrite or refuse, not for the engine to patch."""


# -- helpers --------------------------------------------------------------------------------
def sql(text: str) -> exp.Query:
    """A query as the compiler builds them (DuckDB-flavoured)."""
    query: exp.Expr = exp.maybe_parse(text, dialect="duckdb")
    assert isinstance(query, exp.Query)
    return query


def reading(path: str, fmt: str = "csv") -> exp.Query:
    """``SELECT *`` of a file Source, as the compiler writes it."""
    return exp.select(exp.Star()).from_(file_reader(fmt, path))


def table(name: str) -> exp.Query:
    return exp.select(exp.Star()).from_(table_expression(name))


def spec(name: str, mode: str = "overwrite", keys: Sequence[str] = ()) -> WriteSpec:
    return WriteSpec(format="table", mode=mode, table=name, keys=list(keys))  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says anything."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def normal(value: Any) -> Any:
    """A value as both engines should agree on it: numbers as floats (DuckDB's HUGEINT and
    PostgreSQL's numeric sums alike), text as text."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, decimal.Decimal)):
        return float(value)
    return value


def sort_key(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(
        (0, "") if v is None else (1, f"{v:.4f}") if isinstance(v, float) else (2, str(v))
        for v in row
    )


def assert_same_rows(
    expected: tuple[list[str], list[tuple[Any, ...]]],
    actual: tuple[list[str], list[tuple[Any, ...]]],
) -> None:
    """Same columns, same rows in any order, floats equal to a relative 1e-9."""
    assert actual[0] == expected[0]
    left = sorted(([normal(v) for v in row] for row in expected[1]), key=sort_key)
    right = sorted(([normal(v) for v in row] for row in actual[1]), key=sort_key)
    assert len(right) == len(left)
    for want, got in zip(left, right, strict=True):
        for a, b in zip(want, got, strict=True):
            if isinstance(a, float) and isinstance(b, float):
                assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (want, got)
            else:
                assert a == b, (want, got)


# -- the shop example, target by target -----------------------------------------------------
def shop_targets() -> list[tuple[str, str]]:
    found = []
    for path in sorted((SHOP / "pipelines").glob("*.pipeline.json")):
        document = json.loads(path.read_text())
        found += [(document["name"], g["id"]) for g in document["gems"] if g["kind"] == "Target"]
    return found


def target_pipeline(root: Path, name: str, target: str) -> Pipeline:
    """The pipeline cut down to one Target and its ancestors: each Target on its own."""
    document = json.loads((root / "pipelines" / f"{name}.pipeline.json").read_text())
    keep, frontier = {target}, [target]
    while frontier:
        current = frontier.pop()
        for connection in document["connections"]:
            if connection["to"] == current and connection["from"] not in keep:
                keep.add(connection["from"])
                frontier.append(connection["from"])
    document["gems"] = [g for g in document["gems"] if g["id"] in keep]
    document["connections"] = [c for c in document["connections"] if c["to"] in keep]
    return load_pipeline(document)


def written(engine: DuckDBEngine | WarehouseEngine, root: Path, props: Any) -> Any:
    """What a Target wrote: the table's rows, or the file's rows as DuckDB reads it."""
    if props.format == "table":
        return engine.query(table(props.table))
    with duckdb.connect() as local:
        reader = exp.select(exp.Star()).from_(file_reader(props.format, str(root / props.path)))
        result = local.execute(reader.sql(dialect="duckdb"))
        return [d[0] for d in result.description], result.fetchall()


def limited_input(compiled: Any, target: str) -> str | None:
    """The input of a Limit that feeds the Target, where the Target's rows may be any N rows
    of it (no order on the way): two engines may rightly write different ones."""
    (upstream,) = compiled.gems[target].inputs
    if compiled.gems[upstream].gem.kind != "Limit":
        return None
    (source,) = compiled.gems[upstream].inputs
    return str(source)


def assert_rows_among(rows: Sequence[Sequence[Any]], pool: Sequence[Sequence[Any]]) -> None:
    def key(row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(round(v, 6) if isinstance(v, float) else v for v in map(normal, row))

    available = Counter(key(row) for row in pool)
    for row in rows:
        assert available[key(row)] > 0, row
        available[key(row)] -= 1


def known_trap(message: str) -> str | None:
    return next((why for text, why in KNOWN_TRAPS.items() if text in message), None)


@pytest.mark.parametrize(("name", "target"), shop_targets())
def test_every_shop_target_writes_on_postgres_what_it_writes_on_duckdb(
    postgres_database: PostgresServer, tmp_path: Path, name: str, target: str
) -> None:
    roots = {kind: tmp_path / kind for kind in ("duckdb", "postgres")}
    for root in roots.values():
        copy_shop(root)
    dialect = Project.open(roots["postgres"]).config.dialect
    pipeline = target_pipeline(roots["duckdb"], name, target)
    with (
        DuckDBEngine(":memory:", root=roots["duckdb"]) as duck,
        postgres_database.engine(roots["postgres"]) as pg,
    ):
        expected = compile_pipeline(pipeline, duck, dialect=dialect)
        assert expected.issues == []
        assert run_compiled(expected, duck).status == "succeeded"
        # The pipeline's expressions are the project's SQL (DuckDB's), rendered for PostgreSQL.
        compiled = compile_pipeline(pipeline, pg, dialect=dialect)
        refusals = [*compiled.issues, *dialect_issues(compiled, pg.dialect)]
        if (name, target) in REFUSED_ON_POSTGRES:
            # Refused before running, naming the gem: never a different answer.
            assert refusals, f"{name}.{target} is no longer refused on postgres"
            assert all(issue.gem_id for issue in refusals)
            assert known_trap("; ".join(str(issue) for issue in refusals))
            return
        assert [str(issue) for issue in refusals] == []
        result: RunResult = run_compiled(compiled, pg)
        assert result.status == "succeeded", result.error
        props = compiled.target_properties(target)
        want = written(duck, roots["duckdb"], props)
        got = written(pg, roots["postgres"], props)
        sampled = limited_input(compiled, target)
        if sampled is None:
            assert_same_rows(want, got)
        else:  # any N rows of the Limit's input are right, on either engine
            assert got[0] == want[0] and len(got[1]) == len(want[1])
            assert_rows_among(got[1], duck.query(expected.query(sampled))[1])


# -- reading --------------------------------------------------------------------------------
def test_password_authentication_admits_the_right_password_only(
    postgres_database: PostgresServer, tmp_path: Path
) -> None:
    with postgres_database.engine(tmp_path) as engine:
        assert engine.query(sql("SELECT current_user AS who")) == (["who"], [("prophecy",)])
    wrong = "not-the-password-" + postgres_database.password[:6]
    fabric = postgres_database.fabric("warehouse")
    with (
        open_postgres(fabric, {"password": wrong}, None, root=tmp_path) as engine,
        pytest.raises(EngineError) as caught,
    ):
        engine.query(sql("SELECT 1"))
    message = str(caught.value)
    assert message.startswith(
        f"fabric 'warehouse': cannot connect to postgres at 127.0.0.1:{postgres_database.port}: "
    )
    assert "password authentication failed" in message
    assert wrong not in message and "\n" not in message


def test_describe_types_a_query_without_running_it(postgres_engine: WarehouseEngine) -> None:
    postgres_engine.write(sql("SELECT 1 AS x"), spec("ones"))
    failing = sql(
        "SELECT 1 // (x - x) AS boom, CAST(1.5 AS DECIMAL(10, 2)) AS price, 'a' AS label, "
        "DATE '2024-01-02' AS day, TIMESTAMP '2024-01-02 03:04:05' AS at, x > 0 AS flag, "
        "[1, 2] AS pair FROM ones"
    )
    assert postgres_engine.describe(failing) == [
        ("boom", "numeric"),
        ("price", "numeric(10,2)"),
        ("label", "text"),
        ("day", "date"),
        ("at", "timestamp without time zone"),
        ("flag", "boolean"),
        ("pair", "integer[]"),
    ]
    with pytest.raises(EngineError, match="division by zero"):
        postgres_engine.query(failing)


def test_a_file_source_is_described_from_its_columns_and_loaded_when_read(
    postgres_engine: WarehouseEngine, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "orders.csv").write_text(
        "id,amount,day,note\n1,2.50,2024-01-01,x\n2,,2024-02-01,\n"
    )
    orders = reading("data/orders.csv")
    assert postgres_engine.describe(orders) == [
        ("id", "bigint"),
        ("amount", "double precision"),
        ("day", "date"),
        ("note", "text"),
    ]
    assert postgres_engine.query(orders)[1] == [
        (1, 2.5, datetime.date(2024, 1, 1), "x"),
        (2, None, datetime.date(2024, 2, 1), None),
    ]


def test_a_changed_file_is_loaded_again(postgres_engine: WarehouseEngine, tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("n\n1\n")
    total = exp.select(exp.func("sum", exp.column("n")).as_("total")).from_(
        file_reader("csv", "n.csv")
    )
    assert postgres_engine.query(total)[1] == [(1,)]
    path.write_text("n\n1\n2\n40\n")
    assert postgres_engine.query(total)[1] == [(43,)]


def test_nested_json_loads_as_jsonb_and_lists_of_scalars_as_arrays(
    postgres_engine: WarehouseEngine, tmp_path: Path
) -> None:
    (tmp_path / "r.json").write_text(
        '{"id": 1, "tags": ["a", "b"], "who": {"name": "x"}, "items": [{"q": 1}]}\n'
    )
    rows = reading("r.json", "json")
    assert postgres_engine.describe(rows) == [
        ("id", "bigint"),
        ("tags", "text[]"),
        ("who", "jsonb"),
        ("items", "jsonb"),
    ]
    assert postgres_engine.query(rows)[1] == [(1, ["a", "b"], {"name": "x"}, [{"q": 1}])]


def test_preview_shows_the_first_rows_with_postgres_types(postgres_engine: WarehouseEngine) -> None:
    numbers = sql("SELECT n, n * 1.5 AS half FROM generate_series(1, 10) AS t(n) ORDER BY n")
    preview = postgres_engine.preview(numbers, limit=3)
    assert preview.columns == [("n", "bigint"), ("half", "numeric")]
    assert preview.rows == [
        (1, decimal.Decimal("1.5")),
        (2, decimal.Decimal("3.0")),
        (3, decimal.Decimal("4.5")),
    ]
    assert preview.truncated
    assert not postgres_engine.preview(numbers, limit=10).truncated


def test_fetch_gives_typed_frames(postgres_engine: WarehouseEngine) -> None:
    query = sql(
        "SELECT 1 AS n, 'a' AS s, CAST(2.25 AS DECIMAL(6, 2)) AS d, DATE '2024-01-02' AS day"
    )
    arrow = postgres_engine.fetch(query, "arrow")
    assert arrow.schema == pa.schema(
        [("n", pa.int32()), ("s", pa.string()), ("d", pa.decimal128(6, 2)), ("day", pa.date32())]
    )
    assert postgres_engine.fetch(query, "pandas").to_dict("records") == [
        {"n": 1, "s": "a", "d": decimal.Decimal("2.25"), "day": datetime.date(2024, 1, 2)}
    ]
    assert postgres_engine.fetch(query, "polars").row(0) == (
        1, "a", decimal.Decimal("2.25"), datetime.date(2024, 1, 2)
    )  # fmt: skip


def test_a_registered_frame_is_a_table_of_the_connection(postgres_engine: WarehouseEngine) -> None:
    frame = pd.DataFrame({"region": ["east", "west"], "target": [10.5, 20.0]})
    postgres_engine.register_frame("targets", frame)
    assert postgres_engine.query(sql("SELECT * FROM targets ORDER BY region"))[1] == [
        ("east", 10.5),
        ("west", 20.0),
    ]
    assert not postgres_engine.table_exists("targets")
    postgres_engine.unregister_frame("targets")
    with pytest.raises(EngineError, match='relation "targets" does not exist'):
        postgres_engine.query(sql("SELECT * FROM targets"))


def test_materialized_tables_belong_to_their_session(postgres_engine: WarehouseEngine) -> None:
    with postgres_engine.session() as session:
        assert session.materialize("step", sql("SELECT * FROM generate_series(1, 4) AS t(n)")) == 4
        assert session.query(sql("SELECT count(*) AS c FROM step"))[1] == [(4,)]
        with pytest.raises(EngineError, match="does not exist"):
            postgres_engine.query(sql("SELECT * FROM step"))
        session.drop_materialized("step")
        with pytest.raises(EngineError, match="does not exist"):
            session.query(sql("SELECT * FROM step"))


def test_a_closed_session_hands_its_connection_to_the_next_clean(
    postgres_database: PostgresServer, postgres_engine: WarehouseEngine
) -> None:
    def backends() -> set[int]:
        with postgres_database.admin() as admin:
            rows = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND usename = %s",
                [postgres_database.dbname, postgres_database.user],
            ).fetchall()
        return {row[0] for row in rows}

    with postgres_engine.session() as first:
        first.materialize("leftover", sql("SELECT 1 AS n"))
        used = backends()
    with postgres_engine.session() as second:
        with pytest.raises(EngineError, match="does not exist"):
            second.query(sql("SELECT * FROM leftover"))
        assert backends() == used and len(used) == 1


def test_cancel_stops_the_running_statement_of_a_session_only(
    postgres_engine: WarehouseEngine,
) -> None:
    session = postgres_engine.session()
    errors: list[Exception] = []

    def run() -> None:
        try:
            session.query(
                sql("SELECT count(*) AS c FROM range(100000) AS a(x), range(100000) AS b(y)")
            )
        except EngineError as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    started = time.monotonic()
    worker.start()
    time.sleep(0.3)
    session.cancel()
    worker.join(10)
    assert [str(e) for e in errors] == ["cancelled"]
    assert time.monotonic() - started < 5
    assert postgres_engine.query(sql("SELECT 1 AS one"))[1] == [(1,)]
    session.close()


# -- writing --------------------------------------------------------------------------------
def test_table_modes(postgres_engine: WarehouseEngine) -> None:
    first = sql("SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS t(id, v)")
    assert postgres_engine.write(first, spec("items")) == 2
    assert postgres_engine.table_exists("items")
    assert postgres_engine.table_exists("public.items")
    assert not postgres_engine.table_exists("other.items")
    assert postgres_engine.write(sql("SELECT 3 AS id, 'c' AS v"), spec("items", "append")) == 1
    # Appends match columns by name, not position.
    postgres_engine.write(sql("SELECT 'd' AS v, 4 AS id"), spec("items", "append"))
    merged = sql("SELECT * FROM (VALUES (2, 'B'), (5, 'e')) AS t(id, v)")
    assert postgres_engine.write(merged, spec("items", "merge", ["id"])) == 2
    assert sorted(postgres_engine.query(table("items"))[1]) == [
        (1, "a"), (2, "B"), (3, "c"), (4, "d"), (5, "e")
    ]  # fmt: skip
    with pytest.raises(Conflict, match="already exists"):
        postgres_engine.write(first, spec("items", "error_if_exists"))
    assert postgres_engine.write(first, spec("fresh", "error_if_exists")) == 2
    assert postgres_engine.write(sql("SELECT 9 AS id"), spec("items")) == 1
    assert postgres_engine.query(table("items")) == (["id"], [(9,)])


def test_merge_refuses_repeated_keys_and_changes_nothing(postgres_engine: WarehouseEngine) -> None:
    postgres_engine.write(sql("SELECT 1 AS id, 'a' AS v"), spec("items"))
    twice = sql("SELECT * FROM (VALUES (1, 'x'), (1, 'y')) AS t(id, v)")
    with pytest.raises(EngineError, match=r"merge keys \(id\) are not unique"):
        postgres_engine.write(twice, spec("items", "merge", ["id"]))
    assert postgres_engine.query(table("items"))[1] == [(1, "a")]


def stage_tables(engine: WarehouseEngine) -> list[tuple[Any, ...]]:
    return engine.query(
        sql("SELECT table_name FROM information_schema.tables WHERE table_name LIKE '__prophecy%'")
    )[1]


def test_a_failing_write_leaves_the_old_table(postgres_engine: WarehouseEngine) -> None:
    postgres_engine.write(sql("SELECT * FROM generate_series(1, 3) AS t(n)"), spec("numbers"))
    failing = sql("SELECT 10 // (n - 2) AS n FROM generate_series(1, 3) AS t(n)")
    for mode in ("overwrite", "append"):
        with pytest.raises(EngineError, match="division by zero"):
            postgres_engine.write(failing, spec("numbers", mode))
        assert postgres_engine.query(table("numbers")) == (["n"], [(1,), (2,), (3,)])
    assert stage_tables(postgres_engine) == []


def test_a_write_swaps_the_table_in_one_transaction(
    postgres_database: PostgresServer, postgres_engine: WarehouseEngine
) -> None:
    """Another connection sees the old rows or the new ones, never a missing table."""
    postgres_engine.write(sql("SELECT 1 AS n"), spec("swapped"))
    seen: set[Any] = set()
    stop = threading.Event()

    def watch() -> None:
        with psycopg_connect(postgres_database) as other:
            while not stop.is_set():
                seen.add(other.execute("SELECT max(n) FROM swapped").fetchone()[0])

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for value in range(2, 12):
            postgres_engine.write(exp.select(exp.Literal.number(value).as_("n")), spec("swapped"))
    finally:
        stop.set()
        watcher.join(10)
    assert seen <= set(range(1, 12)) and seen


def test_the_schema_option_is_where_bare_names_resolve(
    postgres_database: PostgresServer, tmp_path: Path
) -> None:
    with postgres_database.admin(postgres_database.dbname) as admin:
        admin.execute("CREATE SCHEMA analytics AUTHORIZATION prophecy")
    with postgres_database.engine(tmp_path, schema="analytics") as engine:
        engine.write(sql("SELECT 1 AS n"), spec("facts"))
        assert engine.table_exists("facts") and engine.table_exists("analytics.facts")
        assert not engine.table_exists("public.facts")
        assert engine.query(table("analytics.facts"))[1] == [(1,)]


def psycopg_connect(server: PostgresServer) -> Any:
    import psycopg

    return psycopg.connect(
        host=server.host, port=server.port, user=server.user, password=server.password,
        dbname=server.dbname, autocommit=True,
    )  # fmt: skip


def test_file_targets_are_written_here(postgres_engine: WarehouseEngine, tmp_path: Path) -> None:
    rows = sql("SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS t(id, v)")
    out = WriteSpec(format="csv", mode="overwrite", path="out/rows.csv")
    assert postgres_engine.write(rows, out) == 2
    assert (tmp_path / "out" / "rows.csv").read_text() == "id,v\n1,a\n2,b\n"
    assert (
        postgres_engine.write(
            sql("SELECT 3 AS id, 'c' AS v"), WriteSpec("csv", "append", path="out/rows.csv")
        )
        == 1
    )
    assert (tmp_path / "out" / "rows.csv").read_text().splitlines()[-1] == "3,c"
    with pytest.raises(Conflict, match="already exists"):
        postgres_engine.write(rows, WriteSpec("csv", "error_if_exists", path="out/rows.csv"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["rows.csv"]


# -- connections and secrets ----------------------------------------------------------------
def test_the_password_never_appears_in_errors_or_logs(
    postgres_database: PostgresServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = postgres_database.password
    messages = []
    with postgres_database.engine(tmp_path) as engine:
        # PostgreSQL quotes the bad value in its message: the engine blanks it out.
        with pytest.raises(EngineError) as caught:
            engine.query(sql(f"SELECT CAST('{password}' AS INTEGER) AS n"))
        messages.append(str(caught.value))
        assert 'invalid input syntax for type integer: "***"' in messages[-1]
    fabric = postgres_database.fabric("warehouse", port=closed_port())
    with open_postgres(fabric, {"password": password}, None, root=tmp_path) as engine:
        with pytest.raises(EngineError) as caught:
            engine.query(sql("SELECT 1"))
        messages.append(str(caught.value))
    assert all(password not in m for m in messages), messages
    assert password not in caplog.text


def test_a_refused_connection_names_the_fabric_and_the_address(tmp_path: Path) -> None:
    port = closed_port()
    fabric = Fabric(name="warehouse", kind="postgres", options={"host": "127.0.0.1", "port": port})
    started = time.monotonic()
    with (
        open_postgres(fabric, {"password": "s3cret-value"}, None, root=tmp_path) as engine,
        pytest.raises(EngineError) as caught,
    ):
        engine.preview(sql("SELECT 1 AS one"))
    assert time.monotonic() - started < 3
    message = str(caught.value)
    assert message.startswith(
        f"fabric 'warehouse': cannot connect to postgres at 127.0.0.1:{port}: "
    )
    assert "Connection refused" in message and "s3cret-value" not in message


def test_a_server_that_never_answers_times_out(silent_port: int, tmp_path: Path) -> None:
    fabric = Fabric(
        name="warehouse",
        kind="postgres",
        options={"host": "127.0.0.1", "port": silent_port, "timeout_seconds": 1},
    )
    started = time.monotonic()
    with open_postgres(fabric, {}, None, root=tmp_path) as engine:
        with pytest.raises(EngineError, match=r"no answer within 1 s \(the fabric's option"):
            engine.query(sql("SELECT 1"))
        assert time.monotonic() - started < 2
        # The next statements of the same burst (a compile's describes) fail at once.
        again = time.monotonic()
        with pytest.raises(EngineError, match="no answer within 1 s"):
            engine.describe(sql("SELECT 1 AS one"))
        assert time.monotonic() - again < 0.5


def test_a_lost_connection_is_named_and_the_next_statement_reconnects(
    postgres_database: PostgresServer, postgres_engine: WarehouseEngine
) -> None:
    postgres_engine.register_frame("gone", pd.DataFrame({"n": [1]}))
    with postgres_database.admin() as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND usename = %s",
            [postgres_database.dbname, postgres_database.user],
        )
    with pytest.raises(EngineError) as caught:
        postgres_engine.query(sql("SELECT 1 AS one"))
    assert str(caught.value).startswith(
        f"fabric 'test-postgres': lost the connection to postgres at "
        f"127.0.0.1:{postgres_database.port}: "
    )
    assert postgres_engine.query(sql("SELECT 1 AS one"))[1] == [(1,)]
    with pytest.raises(EngineError, match='relation "gone" does not exist'):
        postgres_engine.query(sql("SELECT * FROM gone"))


def test_unknown_options_are_refused_without_echoing_values(tmp_path: Path) -> None:
    fabric = Fabric(name="warehouse", kind="postgres", options={"password": "oops-secret"})
    with pytest.raises(EngineError) as caught:
        open_postgres(fabric, {}, None, root=tmp_path)
    assert str(caught.value).startswith("fabric 'warehouse': unknown option 'password'")
    assert "oops-secret" not in str(caught.value)


# -- cloud warehouses: connection errors only -----------------------------------------------
SECRET = "TOP-SECRET-8f3a9c2e71"


def service_account(token_uri: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "analytics",
            "private_key_id": SECRET,
            "private_key": pem,
            "client_email": "runner@analytics.iam.gserviceaccount.com",
            "client_id": "1234567890",
            "token_uri": token_uri,
        }
    )


def cloud_cases() -> list[Any]:
    refused, nowhere = closed_port(), "no-such-host.invalid"
    return [
        pytest.param(
            open_databricks,
            {"server_hostname": "127.0.0.1", "port": refused, "http_path": "/sql/1.0/w/x"},
            {"access_token": SECRET},
            f"127.0.0.1:{refused}",
            id="databricks-closed-port",
        ),
        pytest.param(
            open_databricks,
            {"server_hostname": nowhere, "http_path": "/sql/1.0/w/x"},
            {"access_token": SECRET},
            f"{nowhere}:443",
            id="databricks-unknown-host",
        ),
        pytest.param(
            open_snowflake,
            {
                "account": "acme",
                "user": "etl",
                "host": "127.0.0.1",
                "port": refused,
                "protocol": "http",
                "warehouse": "wh",
            },
            {"password": SECRET},
            f"127.0.0.1:{refused}",
            id="snowflake-closed-port",
        ),
        pytest.param(
            open_snowflake,
            {"account": "acme", "user": "etl", "host": nowhere},
            {"password": SECRET},
            f"{nowhere}:443",
            id="snowflake-unknown-host",
        ),
        pytest.param(
            open_bigquery,
            {"project": "analytics", "dataset": "shop", "endpoint": f"http://127.0.0.1:{refused}"},
            {},
            f"http://127.0.0.1:{refused}",
            id="bigquery-closed-port",
        ),
        pytest.param(
            open_bigquery,
            {"project": "analytics", "dataset": "shop"},
            {"credentials_json": service_account(f"http://127.0.0.1:{refused}/token")},
            "bigquery.googleapis.com:443",
            id="bigquery-token-endpoint-closed",
        ),
    ]


@pytest.mark.parametrize(("opener", "options", "secrets", "endpoint"), cloud_cases())
def test_an_unreachable_cloud_warehouse_fails_fast_naming_the_endpoint_and_no_secret(
    opener: Any,
    options: dict[str, Any],
    secrets: dict[str, str],
    endpoint: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    kind = opener.__name__.removeprefix("open_")
    fabric = Fabric(
        name="cloud", kind=kind, options={**options, "timeout_seconds": 3}, secrets=list(secrets)
    )
    started = time.monotonic()
    with (
        opener(fabric, secrets, None, root=tmp_path) as engine,  # connects lazily
        pytest.raises(EngineError) as caught,
    ):
        engine.query(sql("SELECT 1 AS one"))
    assert time.monotonic() - started < 4
    message = str(caught.value)
    assert message.startswith(f"fabric 'cloud': cannot connect to {kind} at {endpoint}: ")
    assert "\n" not in message and "Traceback" not in message
    for secret in secrets.values():
        for piece in (
            (secret, *json.loads(secret).values()) if secret.startswith("{") else (secret,)
        ):
            assert str(piece) not in message or len(str(piece)) < 8
    assert SECRET not in message and SECRET not in caplog.text


def test_a_cloud_warehouse_that_never_answers_times_out(silent_port: int, tmp_path: Path) -> None:
    fabric = Fabric(
        name="cloud",
        kind="databricks",
        options={
            "server_hostname": "127.0.0.1",
            "port": silent_port,
            "http_path": "/sql/1.0/w/x",
            "timeout_seconds": 1,
        },
    )
    started = time.monotonic()
    with (
        open_databricks(fabric, {"access_token": SECRET}, None, root=tmp_path) as engine,
        pytest.raises(EngineError, match=r"cannot connect to databricks at 127\.0\.0\.1:"),
    ):
        engine.query(sql("SELECT 1"))
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("opener", "options", "message"),
    [
        (open_databricks, {"http_path": "/p"}, "databricks needs the option 'server_hostname'"),
        (open_snowflake, {"account": "a", "user": "u"}, "'password' or 'private_key'"),
        (open_bigquery, {"dataset": "d"}, "bigquery needs the option 'project'"),
        (open_postgres, {"timeout_seconds": "soon"}, "'timeout_seconds' must be a number"),
    ],
)
def test_settings_are_checked_when_a_fabric_is_opened(
    opener: Any, options: dict[str, Any], message: str
) -> None:
    kind = opener.__name__.removeprefix("open_")
    with pytest.raises(EngineError, match=message):
        opener(Fabric(name="cloud", kind=kind, options=options), {})
