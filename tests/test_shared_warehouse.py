"""One project warehouse shared by several processes: engines take turns on the DuckDB file.

Real processes on real files: a second Python process driving its own `DuckDBEngine`, and a
real Jupyter server, IPython magics and the ``prophecy`` CLI on one copy of the shop.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import requests
from IPython.core.interactiveshell import InteractiveShell
from sqlglot import exp

from prophecy_jupyter.engines import DuckDBEngine, WriteSpec
from prophecy_jupyter.engines.duckdb import LOCK_WAIT_AGAIN
from prophecy_jupyter.errors import Cancelled, EngineError
from prophecy_jupyter.fabrics import SecretStore
from prophecy_jupyter.workspace import Workspace
from tests.test_magics import duckdb_engine, extensions, table
from tests.test_server_support import copy_shop, shop_server

REPO = Path(__file__).resolve().parent.parent
WAIT = 120.0
"""Seconds any one step may take before the test gives up on it (none should come close)."""

CHILD = """
import json
import sys

from sqlglot import exp

from prophecy_jupyter.engines import DuckDBEngine, WriteSpec
from prophecy_jupyter.errors import EngineError


def append(engine, who):
    query = exp.select(exp.Literal.string(who).as_("who"))
    engine.write(query, WriteSpec(format="table", mode="append", table="log"))
    _, rows = engine.query(exp.select("who").from_("log").order_by("rowid"))
    return [row[0] for row in rows]


database, release_after, lock_wait = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
engine = DuckDBEngine(database, release_after=release_after, lock_wait=lock_wait)
session = None
for line in sys.stdin:
    command, _, argument = line.strip().partition(" ")
    try:
        if command == "log":
            reply = json.dumps(append(engine, argument))
        elif command == "hold":
            session = engine.session()
            reply = "holding"
        else:
            append(session, argument)
            session.close()
            session = None
            reply = "finished"
    except EngineError as exc:
        reply = f"error: {exc}"
    print(reply, flush=True)
if session is not None:
    session.close()
engine.close()
"""
"""A second process with an engine on ``database``, driven by one command per line:
``log WHO`` appends WHO to the table ``log`` and replies with every name logged so far;
``hold`` opens a session (the file stays held) and ``finish WHO`` appends WHO through it,
then closes it, as a long operation would end. An `EngineError` is the reply ``error: …``."""


class Child:
    """The `CHILD` process, answering each command with one line."""

    def __init__(self, database: Path, release_after: float, lock_wait: float = WAIT) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(database), str(release_after), str(lock_wait)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        self.pid = self.process.pid
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put("")

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        try:
            reply = self._lines.get(timeout=WAIT)
        except queue.Empty:
            reply = ""
        assert reply, f"no answer to {command!r}: {self.errors()}"
        return reply

    def errors(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            code = self.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        assert typ is not None or code == 0, self.errors()


def append(engine: DuckDBEngine, who: str) -> list[str]:
    """Append ``who`` to the table ``log`` and return every name logged so far, in order."""
    query = exp.select(exp.Literal.string(who).as_("who"))
    engine.write(query, WriteSpec(format="table", mode="append", table="log"))
    _, rows = engine.query(exp.select("who").from_("log").order_by("rowid"))
    return [row[0] for row in rows]


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.02)


# -- engines in two processes ----------------------------------------------------------------


def test_engines_in_two_processes_take_turns_writing_and_reading_one_file(
    tmp_path: Path,
) -> None:
    database = tmp_path / "warehouse.duckdb"
    expected: list[str] = []
    with (
        Child(database, release_after=0.2) as child,
        DuckDBEngine(str(database), root=tmp_path, release_after=0.2) as engine,
    ):
        for turn in range(3):
            expected.append(f"parent-{turn}")
            assert append(engine, f"parent-{turn}") == expected
            expected.append(f"child-{turn}")
            assert json.loads(child.ask(f"log child-{turn}")) == expected


def test_a_process_working_on_the_file_makes_the_other_wait_until_it_is_done(
    tmp_path: Path,
) -> None:
    database = tmp_path / "warehouse.duckdb"
    with Child(database, release_after=0.2) as child:
        assert json.loads(child.ask("log first")) == ["first"]
        assert child.ask("hold") == "holding"
        with (
            DuckDBEngine(str(database), root=tmp_path) as engine,
            ThreadPoolExecutor(max_workers=1) as pool,
        ):
            waiting = pool.submit(append, engine, "parent")
            with (
                DuckDBEngine(str(database), root=tmp_path, lock_wait=0) as probe,
                pytest.raises(EngineError, match="in use by another process"),
            ):
                probe.query(exp.select(exp.Literal.number(1)))
            assert child.ask("finish child") == "finished"
            assert waiting.result(timeout=WAIT) == ["first", "child", "parent"]


def test_a_holder_that_never_lets_go_is_a_clear_error_after_the_wait(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    with Child(database, release_after=0.2) as child:
        assert child.ask("hold") == "holding"
        engine = DuckDBEngine(str(database), root=tmp_path, lock_wait=3.2)
        with pytest.raises(EngineError) as raised:
            append(engine, "parent")
        message = str(raised.value)
        assert f"the database {database} is in use by another process (PID {child.pid})" in (
            message
        )
        assert "not released within 3.2 s" in message
        assert not engine.holding
        # Right after giving up, the next statement waits less: a holder that just did not
        # let go is unlikely to within the whole wait again, and a compile has many.
        with pytest.raises(EngineError, match=rf"not released within {LOCK_WAIT_AGAIN:g} s"):
            append(engine, "parent")
        assert child.ask("finish child") == "finished"
        assert append(engine, "parent") == ["child", "parent"]
        engine.close()


def test_an_idle_engine_lets_go_of_the_file_and_reopens_it_on_next_use(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    with DuckDBEngine(str(database), root=tmp_path, release_after=0.05) as engine:
        engine.connection.execute("CREATE TABLE kept AS SELECT 42 AS answer")
        eventually(lambda: not engine.holding, "let go of the file")
        with Child(database, release_after=0.05) as child:
            assert json.loads(child.ask("log child")) == ["child"]
        assert engine.connection.execute("SELECT answer FROM kept").fetchall() == [(42,)]
        assert append(engine, "parent") == ["child", "parent"]


def test_a_session_keeps_the_file_until_it_is_closed(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    with DuckDBEngine(str(database), root=tmp_path, release_after=0.05) as engine:
        session = engine.session()
        assert append(session, "session") == ["session"]
        with Child(database, release_after=0.05, lock_wait=0.5) as child:
            refused = child.ask("log child")
            assert refused.startswith("error: ")
            assert f"in use by another process (PID {os.getpid()})" in refused
            session.close()
            assert json.loads(child.ask("log child")) == ["session", "child"]


# -- the server's core while another process holds the file ----------------------------------


def test_a_run_and_a_preview_waiting_for_the_file_can_be_cancelled_meanwhile(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    copy_shop(root / "shop")
    database = root / "shop" / ".prophecy" / "warehouse.duckdb"
    workspace = Workspace(root, SecretStore(tmp_path / "secrets.json"))
    outcome: list[BaseException | object] = []

    def preview() -> None:
        try:
            outcome.append(workspace.preview("shop", "customer_totals", b'{"gem": "ranked"}'))
        except BaseException as exc:
            outcome.append(exc)

    try:
        with Child(database, release_after=0.2) as child:
            assert child.ask("hold") == "holding"
            run = workspace.start_run("shop", b'{"pipeline": "customer_totals"}')
            eventually(lambda: workspace.runs.get(run["id"])["status"] == "running", "ran")
            assert workspace.runs.cancel(run["id"])["status"] == "running"
            previewing = threading.Thread(target=preview)
            previewing.start()
            eventually(lambda: workspace.previews.running_count() == 1, "previewed")
            assert workspace.cancel_preview("shop", "customer_totals")
            assert child.ask("finish child") == "finished"
            previewing.join(timeout=WAIT)
        assert isinstance(outcome[0], Cancelled)
        eventually(lambda: workspace.runs.get(run["id"])["status"] != "running", "finished")
        assert workspace.runs.get(run["id"])["status"] == "cancelled"
        shown = workspace.preview("shop", "customer_totals", b'{"gem": "ranked", "limit": 1}')
        assert len(shown.rows) == 1
    finally:
        workspace.close()


# -- the Studio server, a notebook and the CLI on one project --------------------------------


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """``(api, project)``: a request function to a real Studio server, and its project."""
    with shop_server(tmp_path) as server, requests.Session() as http:
        http.headers.update(server.headers)

        def api(method: str, path: str, **kwargs: Any) -> requests.Response:
            kwargs.setdefault("timeout", WAIT)
            response = http.request(method, server.api + path, **kwargs)
            assert response.status_code < 400, (response.text, server.log_text()[-4000:])
            return response

        yield api, server.root


@pytest.fixture
def notebook(studio: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An IPython shell with the magics, working in the Studio's project."""
    monkeypatch.chdir(studio[1])
    shell = InteractiveShell.instance()
    shell.reset(new_session=False)  # type: ignore[no-untyped-call]
    extensions(shell).load_extension("prophecy_jupyter")
    yield shell
    extensions(shell).unload_extension("prophecy_jupyter")


def test_the_studio_a_notebook_and_the_cli_share_one_project_warehouse(
    studio: tuple[Any, Path], notebook: InteractiveShell
) -> None:
    api, project = studio
    preview = {"gem": "ranked", "limit": 5}

    shown = api("POST", "/pipelines/customer_totals/preview", json=preview).json()
    assert len(shown["rows"]) == 5

    cell = "%%prophecy\nSELECT count(*) AS n FROM customer_totals.ranked"
    ranked = table(notebook, cell).rows[0][0]
    assert ranked > 5

    run = api("POST", "/runs", json={"pipeline": "customer_totals"}).json()
    deadline = time.monotonic() + WAIT
    while run["status"] not in {"succeeded", "failed", "cancelled"}:
        assert time.monotonic() < deadline, run
        time.sleep(0.05)
        run = api("GET", f"/runs/{run['id']}").json()
    assert (run["status"], run["error"]) == ("succeeded", None)

    written = table(notebook, "%%prophecy\nSELECT count(*) AS n FROM customer_totals")
    assert written.rows == [(ranked,)]

    best = "SELECT customer_id, total FROM customer_totals ORDER BY total DESC, customer_id LIMIT 3"
    saved = table(notebook, f"%%prophecy --save best\n{best}").rows
    assert len(saved) == 3
    engine = duckdb_engine(notebook)
    eventually(lambda: not engine.holding, "let go of the warehouse")
    reread = "%%prophecy\nSELECT * FROM best ORDER BY total DESC, customer_id"
    assert table(notebook, reread).rows == saved

    cli = subprocess.run(
        [str(Path(sys.executable).with_name("prophecy")), "run", "customer_totals"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr

    again = api("POST", "/pipelines/customer_totals/preview", json=preview).json()
    assert again["rows"] == shown["rows"]
    assert table(notebook, reread).rows == saved
