"""The In-Memory fabric: embedded DuckDB, the default engine that needs no set-up.

Statements are built as sqlglot ASTs and rendered in DuckDB's dialect; names and paths from
the pipeline enter them as identifiers and literals, never as pasted text. Every write is
staged and swapped inside one transaction (tables) or written beside and renamed (files), so
a run killed at any instant leaves each target as it was before or as it is after. A table's
comments (the pipeline's documentation, see `WriteSpec`) are set in the same transaction.

A database file admits one process at a time, and the Studio server, notebook kernels and
the CLI all work on the same project warehouse; so an engine holds the file only while it
works and lets go of it soon after (see `DuckDBEngine`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from prophecy_jupyter.compiler.expressions import function_name
from prophecy_jupyter.engines.base import (
    FrameKind,
    PreviewResult,
    WriteSpec,
    comment_statements,
)
from prophecy_jupyter.errors import Conflict, EngineError
from prophecy_jupyter.gems.sources import file_reader, table_expression

DIALECT = "duckdb"

# Table functions whose first argument is a file path (or glob) that may be relative.
FILE_READERS = frozenset(
    {
        "read_csv",
        "read_csv_auto",
        "read_parquet",
        "parquet_scan",
        "read_json",
        "read_json_auto",
        "read_ndjson",
        "read_ndjson_auto",
    }
)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HOLDER_PID = re.compile(r"\(PID (\d+)\)")

MEMORY_DATABASE = ":memory:"
RELEASE_AFTER = 1.5
"""Seconds a database file stays open after its last use: a burst of work (a compile's
describes, a cell's statements, a click after a click) reuses one connection, and another
process waiting for the file gets it soon after."""
LOCK_WAIT = 15.0
"""Seconds to keep trying to open a database file another process holds: long enough for
that process to finish a preview or a short run and let go, short enough to report a holder
that never does."""
LOCK_WAIT_AGAIN = 2 * RELEASE_AFTER
"""Seconds to wait, instead, within ``lock_wait`` of having given up: enough for a holder
that has just finished to let go."""


def _message(error: Exception) -> str:
    """DuckDB's message without its multi-line context noise."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class DuckDBEngine:
    """One DuckDB database, reused for describes, previews and runs.

    A database file is held only while the engine works on it, so that other processes
    (the Studio server, notebook kernels, the CLI) can take turns on the same warehouse:
    the connection opens on first use and closes once it has been idle for
    ``release_after`` seconds with nothing living in it — no statement running (a
    transaction never outlasts the engine call that opened it), no `session`, no
    `materialize`d table, no registered frame. The next use opens it again; while another
    process holds the file, opening retries for up to ``lock_wait`` seconds before it fails.
    An in-memory database (or ``release_after=None``) keeps its connection until `close`.
    Describes stay memoised across reopenings. Safe to share between threads.
    """

    name = "duckdb"
    dialect = DIALECT

    def __init__(
        self,
        database: str = MEMORY_DATABASE,
        root: Path | str | None = None,
        threads: int | None = None,
        *,
        release_after: float | None = RELEASE_AFTER,
        lock_wait: float = LOCK_WAIT,
    ) -> None:
        self.database = database
        self.root = Path(root).resolve() if root is not None else Path.cwd()
        # A pipeline of N gems nests N CTEs; DuckDB's default depth limit (1000) would cap
        # pipelines far below what the canvas allows.
        config: dict[str, Any] = {
            "file_search_path": str(self.root),
            "max_expression_depth": 20_000,
            # A name the catalog lacks must not resolve to a Python variable of whichever
            # frame happens to run the statement; data frames are registered by name instead.
            "python_enable_replacements": False,
        }
        if threads:
            config["threads"] = threads
        if database != MEMORY_DATABASE:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        self._config = config
        self.release_after = None if database == MEMORY_DATABASE else release_after
        self.lock_wait = lock_wait
        self._owner: DuckDBEngine | None = None
        self._described: dict[tuple[str, tuple[tuple[str, int, int], ...]], list[tuple[str, str]]]
        self._described = {}
        self._start(None)

    def _start(self, connection: duckdb.DuckDBPyConnection | None) -> None:
        # One piece of work at a time runs on the connection (statements of a write, a
        # result being fetched); the guard protects the fields below it, briefly.
        self._lock = threading.RLock()
        self._guard = threading.Lock()
        self._connection = connection
        self._closed = False
        self._busy = 0
        self._holders: set[object] = set()
        self._idle_since = time.monotonic()
        self._timer: threading.Timer | None = None
        self._gave_up_at: float | None = None

    # -- the connection ---------------------------------------------------------------------
    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection (opened again if it was let go), for a statement run now.

        It may be let go once idle again, so work spanning several statements goes through
        the engine's methods or a `session`, which keep it open while they use it.
        """
        with self._guard:
            connection = self._open()
            self._idle_since = time.monotonic()
            self._schedule_release()
            return connection

    @property
    def holding(self) -> bool:
        """Whether the engine has its database open (and, for a file, locked) right now."""
        return self._connection is not None

    @contextlib.contextmanager
    def _working(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The connection, for work that runs alone on it and keeps it open until done."""
        with self._lock:
            with self._guard:
                connection = self._open()
                self._busy += 1
            try:
                yield connection
            finally:
                with self._guard:
                    self._busy -= 1
                    self._idle_since = time.monotonic()
                    self._schedule_release()

    def _open(self) -> duckdb.DuckDBPyConnection:
        """The open connection, connecting if needed (called with the guard held)."""
        if self._closed:
            raise EngineError(f"the engine of {self.database} is closed")
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Connect, retrying with backoff while another process holds the file.

        Within ``lock_wait`` seconds of having given up, the wait is `LOCK_WAIT_AGAIN` at
        most: one request may take many statements (a compile describes every source), and
        each must not wait the whole time again for a holder that just did not let go.
        """
        started = time.monotonic()
        recently = self._gave_up_at is not None and started - self._gave_up_at < self.lock_wait
        wait = min(self.lock_wait, LOCK_WAIT_AGAIN) if recently else self.lock_wait
        deadline = started + wait
        pause = 0.01
        while True:
            try:
                connection = duckdb.connect(self.database, config=self._config)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise EngineError(f"cannot open {self.database}: {_message(exc)}") from None
                left = deadline - time.monotonic()
                if left <= 0:
                    if not recently:
                        self._gave_up_at = time.monotonic()
                    pid = _HOLDER_PID.search(str(exc))
                    holder = f" (PID {pid.group(1)})" if pid else ""
                    raise EngineError(
                        f"the database {self.database} is in use by another process{holder} "
                        f"and was not released within {wait:g} s; close that "
                        "process or configure another database file"
                    ) from None
                time.sleep(min(pause, left))
                pause = min(pause * 2, 0.25)
            else:
                self._gave_up_at = None
                return connection

    def _hold(self, holder: object) -> None:
        """Keep the connection open for ``holder`` (something that lives in it)."""
        with self._guard:
            self._holders.add(holder)

    def _let_go(self, holder: object) -> None:
        with self._guard:
            self._holders.discard(holder)
            self._idle_since = time.monotonic()
            self._schedule_release()

    def _schedule_release(self) -> None:
        """Check back once the connection may have been idle long enough (guard held)."""
        if self.release_after is not None and self._timer is None:
            self._check_after(self.release_after)

    def _check_after(self, seconds: float) -> None:
        if self._connection is None or self._closed:
            return
        self._timer = threading.Timer(seconds, self._release_if_idle)
        self._timer.daemon = True
        self._timer.start()

    def _release_if_idle(self) -> None:
        """Close the connection if nothing uses it and it has been idle long enough; work
        that ends later schedules another check."""
        with self._guard:
            self._timer = None
            if self._connection is None or self._busy or self._holders:
                return
            assert self.release_after is not None
            left = self._idle_since + self.release_after - time.monotonic()
            if left > 0:
                self._check_after(left)
                return
            connection, self._connection = self._connection, None
            connection.close()

    # -- reading --------------------------------------------------------------------------
    def _execute(self, statement: exp.Expr | str, params: list[Any] | None = None) -> _Result:
        """Run a statement; called inside `_working`, whose result it may be fetched in."""
        if isinstance(statement, str):
            sql = statement
        else:
            sql = self._rooted(statement).sql(dialect=DIALECT)
        with self._working() as connection, _translated():
            return _Result(connection.execute(sql, params or []))

    def _rooted(self, statement: exp.Expr) -> exp.Expr:
        """The statement, or a copy whose relative file paths are made absolute under the root.

        DuckDB looks a relative path up in the process's working directory before it tries
        ``file_search_path``, so a same-named file wherever the server happened to start
        would be read instead of the project's own.
        """
        if not any(_relative_path(node) for node in statement.find_all(exp.Func)):
            return statement
        rooted = statement.copy()
        for node in list(rooted.find_all(exp.Func)):
            literal = _relative_path(node)
            if literal is not None:
                literal.replace(exp.Literal.string(str(self.root / literal.name)))
        return rooted

    def describe(self, query: exp.Query) -> list[tuple[str, str]]:
        """Column names and types of a query, from DuckDB's binder (no data is read).

        Queries over files only are memoised on their SQL and the files' size and modification
        time: recompiling after each edit, as an editor does, then costs no file sniffing,
        while a changed file is described afresh. Queries naming tables are never memoised,
        as tables may change under the same name.
        """
        statement = self._rooted(exp.Describe(this=query))
        stamp = _file_stamp(statement)
        key = (statement.sql(dialect=DIALECT), stamp) if stamp is not None else None
        if key is not None and key in self._described:
            return list(self._described[key])
        with self._working():
            rows = self._execute(statement).fetchall()
        described = [(str(r[0]), str(r[1])) for r in rows]
        if key is not None:
            if len(self._described) >= 4096:
                self._described.clear()
            self._described[key] = described
        return list(described)

    def preview(self, query: exp.Query, limit: int = 100) -> PreviewResult:
        probe = exp.select(exp.Star()).from_(query.subquery("preview")).limit(limit + 1)
        with self._working():
            cursor = self._execute(probe)
            columns = [(str(d[0]), str(d[1])) for d in cursor.description]
            rows = cursor.fetchall()
        return PreviewResult(columns, rows[:limit], truncated=len(rows) > limit)

    def query(self, query: exp.Query) -> tuple[list[str], list[tuple[Any, ...]]]:
        """All rows of a query (for tests and small results)."""
        with self._working():
            cursor = self._execute(query)
            return [str(d[0]) for d in cursor.description], cursor.fetchall()

    def table_exists(self, name: str) -> bool:
        """Whether ``[[catalog.]schema.]name`` exists, matched as DuckDB resolves names.

        Unqualified parts mean the current database and schema (not any attached database
        or the temp catalog), and names compare case-insensitively as DuckDB's identifiers do.
        """
        table = table_expression(name)

        def same(column: str, part: str, default: str) -> exp.Expr:
            wanted = exp.Literal.string(part) if part else exp.func(default)
            return exp.func("lower", exp.column(column)).eq(exp.func("lower", wanted))

        where = exp.and_(
            same("database_name", table.catalog, "current_database"),
            same("schema_name", table.db, "current_schema"),
            same("table_name", table.name, ""),
        )
        probe = (
            exp.select(exp.func("count", exp.Star()))
            .from_(exp.Table(this=exp.Anonymous(this="duckdb_tables")))
            .where(where)
        )
        with self._working():
            return bool(self._execute(probe).fetchone()[0])

    # -- writing --------------------------------------------------------------------------
    def write(self, query: exp.Query, spec: WriteSpec) -> int:
        """Write a query's rows to a table or file as the Target asks; returns rows written."""
        with self._working():
            if spec.format == "table":
                assert spec.table is not None
                return self._in_transaction(lambda: self._write_documented(query, spec))
            try:
                return self._in_transaction(lambda: self._write_file(query, spec))
            except OSError as exc:  # the folder cannot be made, the rename is refused, …
                raise EngineError(f"cannot write {spec.path}: {exc.strerror or exc}") from None

    def _in_transaction(self, work: Any) -> int:
        """Run ``work`` in one transaction, which keeps the connection open until it ends."""
        with self._working() as connection:
            self._execute("BEGIN TRANSACTION")
            try:
                result = int(work())
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    connection.execute("ROLLBACK")
                raise
            self._execute("COMMIT")
            return result

    def _write_documented(self, query: exp.Query, spec: WriteSpec) -> int:
        """Write the table, then comment it (in the same transaction, so a failed write
        changes neither its rows nor its comments)."""
        assert spec.table is not None
        rows = self._write_table(query, spec.table, spec)
        for statement in comment_statements(table_expression(spec.table), spec):
            self._execute(statement)
        return rows

    def _write_table(self, query: exp.Query, name: str, spec: WriteSpec) -> int:
        target = table_expression(name)
        exists = self.table_exists(name)
        if spec.mode == "error_if_exists" and exists:
            raise Conflict(f"table {name} already exists (mode error_if_exists)")
        stage = table_expression(name)
        stage.set("this", exp.to_identifier(f"__prophecy_stage_{uuid.uuid4().hex}", quoted=True))
        temporary = _temporary() if stage.catalog.lower() == "temp" else None
        self._execute(exp.Create(this=stage, kind="TABLE", expression=query, properties=temporary))
        rows = int(
            self._execute(exp.select(exp.func("count", exp.Star())).from_(stage)).fetchone()[0]
        )
        if spec.mode == "merge":
            # Checked whether or not the table exists yet: the same new data must not be
            # accepted on a first run and refused on the next.
            self._check_unique_keys(stage, spec.keys)
        if spec.mode == "merge" and exists:
            matches = exp.and_(
                *(
                    exp.NullSafeEQ(
                        this=exp.column(exp.to_identifier(k, quoted=True), table="__new"),
                        expression=exp.column(exp.to_identifier(k, quoted=True), table="__old"),
                    )
                    for k in spec.keys
                )
            )
            self._execute(
                exp.Delete(
                    this=exp.alias_(target.copy(), "__old", table=True),
                    where=exp.Where(
                        this=exp.Exists(
                            this=exp.select(exp.Literal.number(1))
                            .from_(exp.alias_(stage.copy(), "__new", table=True))
                            .where(matches)
                        )
                    ),
                )
            )
        if exists and spec.mode in {"append", "merge"}:
            self._execute(
                exp.Insert(
                    this=target.copy(),
                    expression=exp.select(exp.Star()).from_(stage.copy()),
                    by_name=True,
                )
            )
            self._execute(_drop(stage.copy()))
        else:
            if exists:
                self._execute(_drop(target.copy()))
            self._execute(
                exp.Alter(
                    this=stage.copy(),
                    kind="TABLE",
                    actions=[exp.AlterRename(this=exp.Table(this=target.this.copy()))],
                )
            )
        return rows

    def _check_unique_keys(self, stage: exp.Table, keys: list[str]) -> None:
        key_columns = [exp.column(exp.to_identifier(k, quoted=True)) for k in keys]
        dupes = exp.select(exp.func("count", exp.Star())).from_(
            exp.select(*key_columns)
            .from_(stage.copy())
            .group_by(*(k.copy() for k in key_columns))
            .having(exp.func("count", exp.Star()) > 1)
            .subquery("dupes")
        )
        if int(self._execute(dupes).fetchone()[0]):
            raise EngineError(f"merge keys ({', '.join(keys)}) are not unique in the new data")

    def _write_file(self, query: exp.Query, spec: WriteSpec) -> int:
        """Build the file's new rows in a temporary table (merging with the old file when the
        mode asks), copy them to a file beside the target and rename it over the target."""
        assert spec.path is not None
        final = (self.root / spec.path).resolve()
        if spec.mode == "error_if_exists" and final.exists():
            raise Conflict(f"file {spec.path} already exists (mode error_if_exists)")
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        scratch_name = f"temp.main.__prophecy_file_{uuid.uuid4().hex}"
        scratch = table_expression(scratch_name)
        try:
            if final.exists() and spec.mode in {"append", "merge"}:
                existing = exp.select(exp.Star()).from_(
                    file_reader(spec.format, str(final), spec.header)
                )
                self._execute(
                    exp.Create(
                        this=scratch.copy(),
                        kind="TABLE",
                        expression=existing,
                        properties=_temporary(),
                    )
                )
            rows = self._write_table(query, scratch_name, spec)
            params = [exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var(spec.format))]
            if spec.format == "csv":
                params.append(
                    exp.CopyParameter(
                        this=exp.var("HEADER"), expression=exp.Boolean(this=spec.header)
                    )
                )
            self._execute(
                exp.Copy(
                    this=exp.select(exp.Star()).from_(scratch.copy()).subquery(),
                    kind=False,
                    files=[exp.Literal.string(str(temp))],
                    params=params,
                )
            )
            self._execute(_drop(scratch.copy()))
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, final)
            return rows
        finally:
            temp.unlink(missing_ok=True)

    def materialize(self, name: str, query: exp.Query) -> int:
        """Store a query's rows in a temporary table ``name``; returns its row count.

        The table lives in the connection, which therefore stays open until
        `drop_materialized` drops it.
        """
        table = exp.to_table(exp.to_identifier(name, quoted=True).sql(DIALECT), dialect=DIALECT)
        with self._working():
            self._execute(
                exp.Create(this=table, kind="TABLE", expression=query, properties=_temporary())
            )
            self._hold(("table", name))
            count = exp.select(exp.func("count", exp.Star())).from_(table.copy())
            return int(self._execute(count).fetchone()[0])

    def drop_materialized(self, name: str) -> None:
        table = exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier("temp"))
        with self._working():
            self._execute(_drop(table, if_exists=True))
            self._let_go(("table", name))

    # -- data frames ----------------------------------------------------------------------
    def register_frame(self, name: str, frame: Any) -> None:
        """Make ``frame`` readable as ``name``; the connection stays open until
        `unregister_frame`, as the registration lives in it."""
        with self._working() as connection:
            try:
                connection.register(name, frame)
            except duckdb.Error as exc:
                raise EngineError(f"cannot read {type(frame).__name__}: {_message(exc)}") from None
            self._hold(("frame", name))

    def unregister_frame(self, name: str) -> None:
        with self._working() as connection:
            connection.unregister(name)
            self._let_go(("frame", name))

    def fetch(self, query: exp.Query, kind: FrameKind = "pandas") -> Any:
        sql = self._rooted(query).sql(dialect=DIALECT)
        with self._working() as connection:
            try:
                relation = connection.sql(sql)
                if kind == "pandas":
                    return relation.df()
                if kind == "polars":
                    return relation.pl()
                return relation.to_arrow_table()
            except duckdb.Error as exc:
                raise EngineError(_message(exc)) from None
            except ImportError:
                package = "pyarrow" if kind == "arrow" else kind
                raise EngineError(f"{kind} results need {package}: pip install {package}") from None

    # -- lifecycle ------------------------------------------------------------------------
    def session(self) -> DuckDBEngine:
        """Another engine on the same database with a connection of its own.

        `cancel` interrupts whatever statement a connection is running, so work that may be
        cancelled on its own (a preview, a run) needs its own connection: cancelling it then
        cannot stop a statement of someone else's that happens to hold the shared one. The
        session sees the same tables and settings, shares the describe memo, and costs no
        more than a cursor; close it when done. The database stays open while it lives.
        """
        owner = self._owner or self
        clone = DuckDBEngine.__new__(DuckDBEngine)
        clone.database = owner.database
        clone.root = owner.root
        clone._config = owner._config
        clone.release_after = None
        clone.lock_wait = owner.lock_wait
        clone._owner = owner
        clone._described = owner._described
        with owner._guard:
            clone._start(owner._open().cursor())
            owner._holders.add(clone)
        return clone

    def cancel(self) -> None:
        """Interrupt the statement running on this engine's connection, if any."""
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(duckdb.Error):
                connection.interrupt()

    def close(self) -> None:
        """Close the connection for good; a session lets its database go."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
        if self._owner is not None:
            self._owner._let_go(self)

    def __enter__(self) -> DuckDBEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """DuckDB's errors as `EngineError` (an interrupt as ``cancelled``)."""
    try:
        yield
    except duckdb.InterruptException:
        raise EngineError("cancelled") from None
    except duckdb.Error as exc:
        raise EngineError(_message(exc)) from None


class _Result:
    """A statement's result, whose rows raise `EngineError` like the statement does.

    Results stream: rows are computed as they are fetched, so an interrupt or a value that
    does not cast can surface from ``fetchall`` rather than from ``execute``.
    """

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @property
    def description(self) -> Any:
        return self._cursor.description

    def fetchall(self) -> list[tuple[Any, ...]]:
        with _translated():
            rows: list[tuple[Any, ...]] = self._cursor.fetchall()
            return rows

    def fetchone(self) -> Any:
        with _translated():
            return self._cursor.fetchone()


def _relative_path(node: exp.Func) -> exp.Literal | None:
    """The path literal of a file-reading table function, if it is relative to the project."""
    if function_name(node) not in FILE_READERS:
        return None
    first = node.expressions[0] if isinstance(node, exp.Anonymous) and node.expressions else None
    path = first if first is not None else node.this
    if not isinstance(path, exp.Literal) or not path.is_string:
        return None
    if _URL.match(path.name) or Path(path.name).is_absolute():
        return None
    return path


def _file_stamp(statement: exp.Expr) -> tuple[tuple[str, int, int], ...] | None:
    """(path, size, mtime) of every file a statement reads, or ``None`` if it reads anything
    else too (a table, a URL, a path that isn't a literal): such a statement is not memoised."""
    stamps: list[tuple[str, int, int]] = []
    for table in statement.find_all(exp.Table):
        reader = table.this
        if not isinstance(reader, exp.Func) or function_name(reader) not in FILE_READERS:
            return None
        args = reader.expressions if isinstance(reader, exp.Anonymous) else [reader.this]
        first = args[0] if args else None
        if not isinstance(first, exp.Literal) or not first.is_string or _URL.match(first.name):
            return None
        is_glob = any(char in first.name for char in "*?[")
        matches = sorted(glob.glob(first.name)) if is_glob else [first.name]
        for path in matches:
            try:
                info = os.stat(path)
            except OSError:
                return None
            stamps.append((path, info.st_size, info.st_mtime_ns))
    return tuple(stamps) if stamps else None


def _temporary() -> exp.Properties:
    return exp.Properties(expressions=[exp.TemporaryProperty()])


def _drop(table: exp.Table, if_exists: bool = False) -> exp.Drop:
    return exp.Drop(tables=[table], kind="TABLE", exists=if_exists)
