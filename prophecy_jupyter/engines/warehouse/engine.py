"""One engine for every SQL warehouse, over a DB-API connection; a `Driver` says what differs.

Statements are built as sqlglot ASTs and rendered in the warehouse's dialect by
`render`, so the project's rewrite rules apply to everything the engine sends. What the
warehouse cannot do itself, the engine does on this machine with DuckDB (see `local`):
it reads the files a query's Sources name and loads them into tables of the connection,
and writes file Targets from the rows it fetches back.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import glob
import hashlib
import json
import os
import re
import threading
import time
import urllib.parse
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pyarrow as pa
from sqlglot import exp

from prophecy_jupyter.compiler.dialects import render
from prophecy_jupyter.engines.base import FrameKind, PreviewResult, WriteSpec, comment_statements
from prophecy_jupyter.engines.duckdb import DuckDBEngine
from prophecy_jupyter.engines.files import FileSource, file_sources, replace_file_sources
from prophecy_jupyter.engines.warehouse.local import (
    LocalColumn,
    LocalRelation,
    arrow_table,
    read_file,
    read_frame,
)
from prophecy_jupyter.errors import Conflict, EngineError
from prophecy_jupyter.gems.base import quoted
from prophecy_jupyter.gems.sources import table_expression

DEFAULT_TIMEOUT = 5.0
"""Seconds a connection attempt may take before it is given up (option ``timeout_seconds``)."""
IDLE_CONNECTIONS = 2
"""Connections that closed sessions hand back to their engine for the next session, with
the files already loaded into them."""
INSERT_ROWS = 500
"""Rows per INSERT statement where a warehouse is loaded with statements."""
FAILURE_MEMORY = 2.0
"""Seconds a failed connection attempt is remembered: the burst of statements of one request
(a compile describes every Source) fails at once instead of each waiting again."""

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_ROWS = "__prophecy_rows"
Result = TypeVar("Result")


# -- secrets and connection attempts --------------------------------------------------------
def secret_fragments(values: Iterable[str]) -> tuple[str, ...]:
    """Every piece of text that would give a secret away: the value, its URL-encoded forms,
    the string values inside a JSON secret (a key file) and the lines of a PEM key."""
    found: set[str] = set()
    for value in values:
        if not value:
            continue
        found.update({value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)})
        found.update(line.strip() for line in value.splitlines() if len(line.strip()) >= 16)
        with contextlib.suppress(ValueError):
            found.update(s for s in _json_strings(json.loads(value)) if len(s) >= 8)
    return tuple(sorted(found, key=len, reverse=True))


def _json_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
        yield from (line.strip() for line in value.splitlines() if len(line.strip()) >= 16)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item)


def within(
    seconds: float, attempt: Callable[[], Result], discard: Callable[[Result], None]
) -> Result:
    """``attempt()``, given up with `TimeoutError` after ``seconds``; a result that arrives
    after that is handed to ``discard`` (a connection that opened too late is closed)."""
    lock = threading.Lock()
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            value = attempt()
        except BaseException as exc:
            outcome["error"] = exc
        else:
            with lock:
                late = outcome.get("abandoned", False)
                outcome["value"] = value
            if late:
                with contextlib.suppress(Exception):
                    discard(value)
        finally:
            done.set()

    threading.Thread(target=run, name="prophecy-connect", daemon=True).start()
    if not done.wait(seconds):
        with lock:
            if "value" not in outcome:
                outcome["abandoned"] = True
                raise TimeoutError
    if "error" in outcome:
        raise outcome["error"]
    value: Result = outcome["value"]
    return value


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__


# -- what differs between warehouses --------------------------------------------------------
class Driver(ABC):
    """A warehouse kind: how to connect, describe, load rows and cancel, and what its SQL
    can do. Holds the connection settings and secrets of one fabric."""

    kind: ClassVar[str]
    dialect: ClassVar[str]
    transactional_ddl: ClassVar[bool] = False
    """Whether DDL takes part in transactions, so a table can be swapped in atomically."""
    temporary_tables: ClassVar[bool] = True
    """Whether the warehouse has session-private tables; where it has not, the engine uses
    tables of the default schema that it drops when it closes."""
    arrays: ClassVar[bool] = False
    """Whether lists of scalars load as arrays (else as JSON text)."""
    comments: ClassVar[bool] = False
    """Whether a written table gets the pipeline's documentation as comments (``COMMENT ON
    TABLE``/``COLUMN``, in the write's transaction: needs `transactional_ddl`). Snowflake,
    Databricks and BigQuery do not have it yet: their tables are written without comments."""

    def __init__(self, fabric: str, secrets: Mapping[str, str], timeout: float) -> None:
        self.fabric = fabric
        self.timeout = timeout
        self._fragments = secret_fragments(secrets.values())

    @property
    def budget(self) -> float:
        """Seconds the driver's own connection timeouts and retries get: a little less than
        the engine waits, so that the driver's error (which says what went wrong) comes
        first when it gives up in time."""
        return 0.8 * self.timeout

    # connecting
    @property
    @abstractmethod
    def endpoint(self) -> str:
        """Where the warehouse is, for messages (never with a secret)."""

    @abstractmethod
    def connect(self) -> Any:
        """A new DB-API connection (called with the attempt bounded by ``timeout``)."""

    @abstractmethod
    def errors(self) -> tuple[type[BaseException], ...]:
        """The exceptions the driver raises for a failed statement."""

    def alive(self, connection: Any) -> bool:
        return True

    def close(self, connection: Any) -> None:
        connection.close()

    def cancel(self, connection: Any, cursor: Any) -> None:
        """Stop the statement running on ``connection`` (``cursor``, if known)."""
        if cursor is not None and hasattr(cursor, "cancel"):
            cursor.cancel()

    def cancelled(self, error: BaseException) -> bool:
        """Whether ``error`` is a statement stopped by `cancel`."""
        return False

    def message(self, error: BaseException) -> str:
        """The driver's message, one line, without any secret."""
        return self.scrub(first_line(error))

    def scrub(self, text: str) -> str:
        for fragment in self._fragments:
            text = text.replace(fragment, "***")
        return text

    # running
    def cursor(self, connection: Any) -> Any:
        return connection.cursor()

    def execute(self, cursor: Any, sql: str) -> None:
        cursor.execute(sql)

    def run(self, connection: Any, sql: str) -> None:
        """Run a statement whose result is not wanted."""
        cursor = self.cursor(connection)
        try:
            self.execute(cursor, sql)
        finally:
            cursor.close()

    def describe(self, connection: Any, sql: str) -> list[tuple[str, str]]:
        """Column names and types of ``sql``, a query that returns no rows."""
        cursor = self.cursor(connection)
        try:
            self.execute(cursor, sql)
            return self.columns(connection, cursor.description)
        finally:
            cursor.close()

    @abstractmethod
    def columns(self, connection: Any, description: Sequence[Any]) -> list[tuple[str, str]]:
        """Names and the warehouse's type names of a cursor's columns."""

    def begin(self, connection: Any) -> None:
        self.run(connection, "BEGIN")

    def commit(self, connection: Any) -> None:
        self.run(connection, "COMMIT")

    def rollback(self, connection: Any) -> None:
        self.run(connection, "ROLLBACK")

    # tables
    def temporary(self, name: str) -> exp.Table:
        """The table ``name`` among the connection's own tables."""
        return exp.Table(this=quoted(name))

    def qualified(self, connection: Any, table: exp.Table) -> exp.Table:
        """``table`` as the engine writes it (warehouses may resolve bare names elsewhere)."""
        return table

    @abstractmethod
    def exists_query(self, table: exp.Table) -> exp.Query:
        """A query counting the tables (and views) named ``table`` in the warehouse."""

    def column_type(self, dtype: exp.DataType) -> exp.DataType:
        """The warehouse's type for a column read here, given its portable type."""
        return dtype

    def json_value(self, value: exp.Expr) -> exp.Expr:
        """JSON text as a value of a JSON column."""
        return exp.ParseJSON(this=value)

    def load(
        self,
        connection: Any,
        table: exp.Table,
        columns: Sequence[LocalColumn],
        batches: Iterator[list[tuple[Any, ...]]],
    ) -> None:
        """Insert rows read here into ``table``: INSERT … SELECT over VALUES, ``INSERT_ROWS``
        rows a statement, every value a literal of the statement's syntax tree."""
        names = [quoted(c.name) for c in columns]
        pending: list[tuple[Any, ...]] = []

        def flush() -> None:
            if not pending:
                return
            values = exp.values(
                [tuple(_literal(v) for v in row) for row in pending],
                alias="v",
                columns=[f"c{i}" for i in range(len(columns))],
            )
            selects = []
            for i, column in enumerate(columns):
                value: exp.Expr = exp.column(f"c{i}", table="v")
                if column.json:
                    value = self.json_value(value)
                selects.append(exp.cast(value, self.column_type(column.type)))
            statement = exp.insert(exp.select(*selects).from_(values), table.copy(), columns=names)
            self.run(connection, render(statement, self.dialect))
            pending.clear()

        for batch in batches:
            for row in batch:
                pending.append(row)
                if len(pending) >= INSERT_ROWS:
                    flush()
        flush()


def _literal(value: Any) -> exp.Expr:
    """A value read here as a literal; the INSERT casts it to its column's type."""
    if value is None or isinstance(value, (bool, int, float, str, bytes, decimal.Decimal)):
        return exp.convert(value)
    if isinstance(value, datetime.datetime):
        return exp.Literal.string(value.isoformat(sep=" "))
    if isinstance(value, (datetime.date, datetime.time)):
        return exp.Literal.string(value.isoformat())
    if isinstance(value, (list, tuple, dict)):
        return exp.Literal.string(json.dumps(value, default=str))
    return exp.Literal.string(str(value))


# -- the engine -----------------------------------------------------------------------------
@dataclass
class _Link:
    """One open connection and what lives in it."""

    connection: Any
    files: dict[str, bool] = field(default_factory=dict)
    """Tables holding files: name → whether the rows are loaded (else the table is empty,
    which is all a describe needs)."""
    current: dict[tuple[str, str, bool, str], str] = field(default_factory=dict)
    """The table of each file reader (format, location, header, delimiter) in use, so the
    table of an earlier version of the file is dropped."""
    owned: set[str] = field(default_factory=set)
    """Tables of the default schema the engine made, where there are no temporary tables."""
    held: set[str] = field(default_factory=set)
    """Tables made for callers: materialized results, registered frames."""


@dataclass(frozen=True)
class _FileTable:
    source: FileSource
    location: str
    name: str

    @property
    def reader(self) -> tuple[str, str, bool, str]:
        return (self.source.format, self.location, self.source.header, self.source.delimiter)


class WarehouseEngine:
    """A SQL warehouse behind the engine interface, over its DB-API driver.

    The connection opens on first use (a fabric that cannot be reached fails then, within
    the driver's timeout, with a one-line error naming the fabric and the endpoint). Each
    `session` has a connection of its own, so that cancelling it stops only its work; a
    closed session hands its connection back for the next one, with the files loaded into
    it. Safe to share between threads: work on one connection runs one piece at a time.
    """

    def __init__(self, driver: Driver, root: Path | str | None = None) -> None:
        self.driver = driver
        self.name = driver.kind
        self.dialect = driver.dialect
        self.root = Path(root).resolve() if root is not None else Path.cwd()
        self._owner: WarehouseEngine | None = None
        self._described: dict[str, list[tuple[str, str]]] = {}
        self._failed: tuple[float, EngineError] | None = None
        self._start()

    def _start(self) -> None:
        self._lock = threading.RLock()  # one piece of work at a time on the connection
        self._guard = threading.Lock()  # the fields below, briefly
        self._link: _Link | None = None
        self._closed = False
        self._cursor: Any = None
        self._active = 0
        self._idle: list[_Link] = []

    # -- the connection ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _working(self) -> Iterator[_Link]:
        with self._lock:
            yield self._open()

    def _open(self) -> _Link:
        """The connection, opened (or taken from the idle ones) if needed; called with the
        work lock held."""
        with self._guard:
            if self._closed:
                raise EngineError(f"fabric '{self.driver.fabric}': the engine is closed")
            link = self._link
        if link is not None and self.driver.alive(link.connection):
            return link
        if link is not None:
            self._forget(link)
        link = self._owner._take_idle() if self._owner is not None else None
        if link is None:
            link = _Link(self._connect())
        with self._guard:
            self._link = link
        return link

    def _connect(self) -> Any:
        owner = self._owner or self
        failed = owner._failed
        if failed is not None and time.monotonic() - failed[0] < FAILURE_MEMORY:
            raise EngineError(str(failed[1]))
        try:
            connection = self._attempt()
        except EngineError as exc:
            owner._failed = (time.monotonic(), exc)
            raise
        owner._failed = None
        return connection

    def _attempt(self) -> Any:
        driver = self.driver
        where = f"fabric '{driver.fabric}': cannot connect to {driver.kind} at {driver.endpoint}"
        try:
            return within(driver.timeout, driver.connect, driver.close)
        except TimeoutError:
            raise EngineError(
                f"{where}: no answer within {driver.timeout:g} s "
                "(the fabric's option timeout_seconds)"
            ) from None
        except EngineError:
            raise
        except Exception as exc:  # drivers raise many kinds of errors while connecting
            raise EngineError(f"{where}: {driver.message(exc)}") from None

    def _forget(self, link: _Link) -> None:
        """Close a connection that broke; what lived in it is gone with it."""
        with self._guard:
            if self._link is link:
                self._link = None
        with contextlib.suppress(Exception):
            self.driver.close(link.connection)

    def _take_idle(self) -> _Link | None:
        with self._guard:
            while self._idle:
                link = self._idle.pop()
                if self.driver.alive(link.connection):
                    return link
        return None

    def _give_back(self, link: _Link) -> bool:
        with self._guard:
            if self._closed or len(self._idle) >= IDLE_CONNECTIONS:
                return False
            self._idle.append(link)
            return True

    # -- statements -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """The driver's errors as one-line `EngineError`s without secrets."""
        with self._guard:
            self._active += 1
        try:
            yield
        except self.driver.errors() as exc:
            if self.driver.cancelled(exc):
                raise EngineError("cancelled") from None
            link = self._link
            if link is not None and not self.driver.alive(link.connection):
                driver = self.driver
                raise EngineError(
                    f"fabric '{driver.fabric}': lost the connection to {driver.kind} at "
                    f"{driver.endpoint}: {driver.message(exc)}"
                ) from None
            raise EngineError(self.driver.message(exc)) from None
        finally:
            with self._guard:
                self._active -= 1

    def _sql(self, statement: exp.Expr | str) -> str:
        return statement if isinstance(statement, str) else render(statement, self.dialect)

    def _run(
        self, link: _Link, statement: exp.Expr | str
    ) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
        """Run a statement: its columns (name, type) and rows, if it returns any."""
        sql = self._sql(statement)
        with self._translated():
            cursor = self.driver.cursor(link.connection)
            with self._guard:
                self._cursor = cursor
            try:
                self.driver.execute(cursor, sql)
                if cursor.description is None:
                    return [], []
                columns = self.driver.columns(link.connection, cursor.description)
                return columns, [tuple(row) for row in cursor.fetchall()]
            finally:
                with self._guard:
                    self._cursor = None
                with contextlib.suppress(Exception):
                    cursor.close()

    def _scalar(self, link: _Link, query: exp.Query) -> Any:
        _, rows = self._run(link, query)
        return rows[0][0]

    def _count(self, link: _Link, table: exp.Table) -> int:
        return int(
            self._scalar(link, exp.select(exp.func("count", exp.Star())).from_(table.copy()))
        )

    # -- file sources -----------------------------------------------------------------------
    def _file_tables(self, query: exp.Expr) -> dict[FileSource, _FileTable]:
        """The table standing for each file a query reads, named after the file's contents
        (path, size, modification time) so that a changed file gets a new one."""
        try:
            sources = file_sources(query)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        tables = {}
        for source in sources:
            location = source.path
            if not _URL.match(location) and not Path(location).is_absolute():
                location = str(self.root / location)
            stamp = _stamp(location)
            key = repr((source.format, location, source.header, source.delimiter, stamp))
            digest = hashlib.sha256(key.encode()).hexdigest()[:24]
            tables[source] = _FileTable(source, location, f"__prophecy_file_{digest}")
        return tables

    def _with_files(self, query: exp.Query, tables: Mapping[FileSource, _FileTable]) -> exp.Query:
        if not tables:
            return query
        replaced = replace_file_sources(
            query, lambda source: exp.Table(this=quoted(tables[source].name))
        )
        assert isinstance(replaced, exp.Query)
        return replaced

    def _resolved(self, link: _Link, query: exp.Query, load: bool = True) -> exp.Query:
        """``query`` reading the tables its files are loaded into (or, without ``load``,
        empty tables of the same columns)."""
        tables = self._file_tables(query)
        for table in tables.values():
            self._file_table(link, table, load)
        return self._with_files(query, tables)

    def _file_table(self, link: _Link, table: _FileTable, load: bool) -> None:
        state = link.files.get(table.name)
        if state or (state is not None and not load):
            return
        stale = link.current.get(table.reader)
        if stale is not None and stale != table.name:
            self._drop_own(link, stale)
            link.files.pop(stale, None)
        with read_file(table.source, table.location, self.driver.arrays) as relation:
            if state is None:
                self._create_own(link, table.name, relation.columns)
                link.files[table.name] = False
                link.current[table.reader] = table.name
            if load:
                self._fill(link, table.name, relation)
                link.files[table.name] = True

    def _create_own(self, link: _Link, name: str, columns: Sequence[LocalColumn]) -> None:
        """An empty table of the connection (temporary where the warehouse has them)."""
        target = self._own(link, name)
        schema = exp.Schema(
            this=target,
            expressions=[
                exp.ColumnDef(this=quoted(c.name), kind=self.driver.column_type(c.type))
                for c in columns
            ],
        )
        self._run(link, exp.Create(this=schema, kind="TABLE", properties=self._temporary()))

    def _fill(self, link: _Link, name: str, relation: LocalRelation) -> None:
        try:
            with self._translated():
                self.driver.load(
                    link.connection, self._own(link, name), relation.columns, relation.batches()
                )
        except BaseException:
            # A load that stopped half-way must not be taken for the file's rows.
            link.files.pop(name, None)
            with contextlib.suppress(EngineError):
                self._drop_own(link, name)
            raise

    def _own(self, link: _Link, name: str) -> exp.Table:
        if not self.driver.temporary_tables:
            link.owned.add(name)
        return self.driver.temporary(name)

    def _temporary(self) -> exp.Properties | None:
        if not self.driver.temporary_tables:
            return None
        return exp.Properties(expressions=[exp.TemporaryProperty()])

    def _drop_own(self, link: _Link, name: str) -> None:
        self._run(link, _drop(self.driver.temporary(name), if_exists=True))
        link.owned.discard(name)

    # -- reading ----------------------------------------------------------------------------
    def describe(self, query: exp.Query) -> list[tuple[str, str]]:
        """Column names and types of a query, from the warehouse, without running it (the
        files it reads stand as empty tables). Queries that read no table (files and
        constants only, as the compiler's typed stand-ins) are memoised on their text."""
        tables = self._file_tables(query)
        resolved = self._with_files(query, tables)
        probe = exp.select(exp.Star()).from_(resolved.subquery("described")).limit(0)
        sql = self._sql(probe)
        own = {t.name.lower() for t in tables.values()}
        memoised = not _reads_tables(resolved, own)
        if memoised and sql in self._described:
            return list(self._described[sql])
        with self._working() as link:
            for table in tables.values():
                self._file_table(link, table, load=False)
            with self._translated():
                described = self.driver.describe(link.connection, sql)
        if memoised:
            if len(self._described) >= 4096:
                self._described.clear()
            self._described[sql] = described
        return list(described)

    def preview(self, query: exp.Query, limit: int = 100) -> PreviewResult:
        with self._working() as link:
            resolved = self._resolved(link, query)
            probe = exp.select(exp.Star()).from_(resolved.subquery("preview")).limit(limit + 1)
            columns, rows = self._run(link, probe)
        return PreviewResult(columns, rows[:limit], truncated=len(rows) > limit)

    def query(self, query: exp.Query) -> tuple[list[str], list[tuple[Any, ...]]]:
        """All rows of a query (for tests and small results)."""
        with self._working() as link:
            columns, rows = self._run(link, self._resolved(link, query))
        return [name for name, _ in columns], rows

    def table_exists(self, name: str) -> bool:
        """Whether ``[[catalog.]schema.]name`` is a table or view of the warehouse, names
        compared exactly as written (the engine quotes every name it writes)."""
        with self._working() as link:
            return bool(self._scalar(link, self.driver.exists_query(table_expression(name))))

    def _exists(self, link: _Link, table: exp.Table) -> bool:
        return bool(self._scalar(link, self.driver.exists_query(table)))

    def fetch(self, query: exp.Query, kind: FrameKind = "pandas") -> Any:
        table = self._arrow(query)
        try:
            if kind == "pandas":
                return table.to_pandas()
            if kind == "polars":
                import polars

                return polars.from_arrow(table)
        except ImportError:
            raise EngineError(f"{kind} results need {kind}: pip install {kind}") from None
        return table

    def _arrow(self, query: exp.Query) -> pa.Table:
        with self._working() as link:
            columns, rows = self._run(link, self._resolved(link, query))
        types = [_parsed_type(dtype, self.dialect) for _, dtype in columns]
        return arrow_table([name for name, _ in columns], types, rows)

    # -- writing ----------------------------------------------------------------------------
    def write(self, query: exp.Query, spec: WriteSpec) -> int:
        """Write a query's rows to a table or file as the Target asks; returns rows written.

        A table is built beside its target and swapped in: inside one transaction where
        the warehouse's DDL is transactional, else by one statement that replaces, appends
        or merges at once. A file is written here (see `_write_file`).

        The table's comments (``spec.table_comment``, ``spec.column_comments``) are set in
        the same transaction, with ``COMMENT ON``, where the driver has `Driver.comments`;
        elsewhere they are not written.
        """
        if spec.format != "table":
            return self._write_file(query, spec)
        assert spec.table is not None
        with self._working() as link:
            resolved = self._resolved(link, query)
            target = self.driver.qualified(link.connection, table_expression(spec.table))
            if self.driver.transactional_ddl:
                with self._transaction(link):
                    rows = self._swap(link, resolved, target, spec)
                    if self.driver.comments:
                        for statement in comment_statements(target, spec):
                            self._run(link, statement)
                    return rows
            return self._replace(link, resolved, target, spec)

    @contextlib.contextmanager
    def _transaction(self, link: _Link) -> Iterator[None]:
        with self._translated():
            self.driver.begin(link.connection)
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self.driver.rollback(link.connection)
            raise
        with self._translated():
            self.driver.commit(link.connection)

    def _stage(self, target: exp.Table) -> exp.Table:
        stage = target.copy()
        stage.set("this", quoted(f"__prophecy_stage_{uuid.uuid4().hex}"))
        return stage

    def _swap(self, link: _Link, query: exp.Query, target: exp.Table, spec: WriteSpec) -> int:
        """Inside a transaction: build the new rows beside the target, then rename them in
        (overwrite) or insert them (append, merge after deleting the rows they replace)."""
        exists = self._exists(link, target)
        if spec.mode == "error_if_exists" and exists:
            raise Conflict(f"table {spec.table} already exists (mode error_if_exists)")
        stage = self._stage(target)
        self._run(link, exp.Create(this=stage, kind="TABLE", expression=query))
        rows = self._count(link, stage)
        if spec.mode == "merge":
            # Checked whether or not the table exists yet, as the In-Memory fabric does.
            self._check_unique_keys(link, stage, spec.keys)
        if spec.mode == "merge" and exists:
            self._run(link, _delete_matching(target, stage, spec.keys))
        if exists and spec.mode in {"append", "merge"}:
            self._run(link, self._insert(link, target, stage))
            self._run(link, _drop(stage))
        else:
            if exists:
                self._run(link, _drop(target.copy()))
            self._run(
                link,
                exp.Alter(
                    this=stage,
                    kind="TABLE",
                    actions=[exp.AlterRename(this=exp.Table(this=target.this.copy()))],
                ),
            )
        return rows

    def _replace(self, link: _Link, query: exp.Query, target: exp.Table, spec: WriteSpec) -> int:
        """Without transactional DDL: build the new rows in a table of the engine's own, then
        one statement replaces the target with them, appends them or merges them."""
        exists = self._exists(link, target)
        if spec.mode == "error_if_exists" and exists:
            raise Conflict(f"table {spec.table} already exists (mode error_if_exists)")
        name = f"__prophecy_stage_{uuid.uuid4().hex}"
        stage = self._own(link, name)
        self._run(
            link,
            exp.Create(this=stage, kind="TABLE", expression=query, properties=self._temporary()),
        )
        try:
            rows = self._count(link, stage)
            if spec.mode == "merge":
                self._check_unique_keys(link, stage, spec.keys)
            if not exists or spec.mode in {"overwrite", "error_if_exists"}:
                self._run(
                    link,
                    exp.Create(
                        this=target.copy(),
                        kind="TABLE",
                        expression=exp.select(exp.Star()).from_(stage.copy()),
                        replace=spec.mode == "overwrite",
                    ),
                )
            elif spec.mode == "append":
                self._run(link, self._insert(link, target, stage))
            else:
                self._run(link, self._merge(link, target, stage, spec.keys))
        finally:
            with contextlib.suppress(EngineError):
                self._drop_own(link, name)
        return rows

    def _stage_columns(self, link: _Link, stage: exp.Table) -> list[exp.Identifier]:
        probe = exp.select(exp.Star()).from_(stage.copy()).limit(0)
        with self._translated():
            described = self.driver.describe(link.connection, self._sql(probe))
        return [quoted(name) for name, _ in described]

    def _insert(self, link: _Link, target: exp.Table, stage: exp.Table) -> exp.Insert:
        """INSERT of the stage's rows into the target, column by name."""
        names = self._stage_columns(link, stage)
        return exp.insert(
            exp.select(*(exp.column(n.copy()) for n in names)).from_(stage.copy()),
            target.copy(),
            columns=[n.copy() for n in names],
        )

    def _merge(
        self, link: _Link, target: exp.Table, stage: exp.Table, keys: Sequence[str]
    ) -> exp.Merge:
        names = self._stage_columns(link, stage)
        lowered = {k.lower() for k in keys}
        updates = [
            exp.EQ(this=exp.column(n.copy()), expression=exp.column(n.copy(), table="__new"))
            for n in names
            if n.name.lower() not in lowered
        ]
        whens = []
        if updates:
            whens.append(exp.When(matched=True, then=exp.Update(expressions=updates)))
        whens.append(
            exp.When(
                matched=False,
                then=exp.Insert(
                    this=exp.Tuple(expressions=[exp.column(n.copy()) for n in names]),
                    expression=exp.Tuple(
                        expressions=[exp.column(n.copy(), table="__new") for n in names]
                    ),
                ),
            )
        )
        return exp.Merge(
            this=exp.alias_(target.copy(), "__old", table=True),
            using=exp.alias_(stage.copy(), "__new", table=True),
            on=_keys_match(keys),
            whens=exp.Whens(expressions=whens),
        )

    def _check_unique_keys(self, link: _Link, stage: exp.Table, keys: Sequence[str]) -> None:
        key_columns = [exp.column(quoted(k)) for k in keys]
        dupes = exp.select(exp.func("count", exp.Star())).from_(
            exp.select(*key_columns)
            .from_(stage.copy())
            .group_by(*(k.copy() for k in key_columns))
            .having(exp.func("count", exp.Star()) > 1)
            .subquery("dupes")
        )
        if int(self._scalar(link, dupes)):
            raise EngineError(f"merge keys ({', '.join(keys)}) are not unique in the new data")

    def _write_file(self, query: exp.Query, spec: WriteSpec) -> int:
        """Fetch the rows and write the file here with DuckDB, as the In-Memory fabric
        writes it: beside the target, then renamed over it (merged with the old file
        first, for append and merge)."""
        assert spec.path is not None
        if spec.mode == "error_if_exists" and (self.root / spec.path).exists():
            raise Conflict(f"file {spec.path} already exists (mode error_if_exists)")
        rows = self._arrow(query)
        with DuckDBEngine(":memory:", root=self.root) as local:
            local.register_frame(_ROWS, rows)
            return local.write(exp.select(exp.Star()).from_(exp.Table(this=quoted(_ROWS))), spec)

    # -- tables for callers -----------------------------------------------------------------
    def materialize(self, name: str, query: exp.Query) -> int:
        """Store a query's rows as the connection's table ``name``; returns its row count."""
        with self._working() as link:
            resolved = self._resolved(link, query)
            table = self._own(link, name)
            self._run(
                link,
                exp.Create(
                    this=table, kind="TABLE", expression=resolved, properties=self._temporary()
                ),
            )
            link.held.add(name)
            return self._count(link, table)

    def drop_materialized(self, name: str) -> None:
        with self._working() as link:
            self._drop_own(link, name)
            link.held.discard(name)

    def register_frame(self, name: str, frame: Any) -> None:
        """Load a data frame (pandas, polars, Arrow) into the connection's table ``name``."""
        with self._working() as link, read_frame(frame, self.driver.arrays) as relation:
            self._drop_own(link, name)
            self._create_own(link, name, relation.columns)
            link.held.add(name)
            self._fill(link, name, relation)

    def unregister_frame(self, name: str) -> None:
        self.drop_materialized(name)

    # -- lifecycle --------------------------------------------------------------------------
    def session(self) -> WarehouseEngine:
        """Another engine on the same warehouse with a connection of its own (opened on first
        use, or one a closed session handed back); it shares the describe memo."""
        owner = self._owner or self
        clone = WarehouseEngine.__new__(WarehouseEngine)
        clone.driver = owner.driver
        clone.name = owner.name
        clone.dialect = owner.dialect
        clone.root = owner.root
        clone._owner = owner
        clone._described = owner._described
        clone._failed = None
        clone._start()
        return clone

    def cancel(self) -> None:
        """Stop the statement running on this engine's connection, if any."""
        with self._guard:
            link, cursor, active = self._link, self._cursor, self._active
        if link is not None and active:
            with contextlib.suppress(Exception):
                self.driver.cancel(link.connection, cursor)

    def close(self) -> None:
        """Close the connection (a session hands it back to its engine when it is clean)."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            link, self._link = self._link, None
            idle, self._idle = self._idle, []
        if link is not None and not self._hand_back(link):
            self._disconnect(link)
        for other in idle:
            self._disconnect(other)

    def _hand_back(self, link: _Link) -> bool:
        """Give a session's connection to its engine, without the tables made for callers;
        a connection still at work (closed from another thread) is not given."""
        owner = self._owner
        if owner is None or not self.driver.alive(link.connection):
            return False
        if not self._lock.acquire(blocking=False):
            return False
        try:
            for name in sorted(link.held):
                self._drop_own(link, name)
            link.held.clear()
        except EngineError:
            return False
        finally:
            self._lock.release()
        return owner._give_back(link)

    def _disconnect(self, link: _Link) -> None:
        with contextlib.suppress(Exception):
            for name in sorted(link.owned):
                self._run(link, _drop(self.driver.temporary(name), if_exists=True))
        with contextlib.suppress(Exception):
            self.driver.close(link.connection)

    def __enter__(self) -> WarehouseEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- helpers --------------------------------------------------------------------------------
def _stamp(location: str) -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime) of every file a path or glob names; empty for a URL."""
    if _URL.match(location):
        return ()
    paths = sorted(glob.glob(location)) if any(c in location for c in "*?[") else [location]
    stamps = []
    for path in paths:
        with contextlib.suppress(OSError):
            info = os.stat(path)
            stamps.append((path, info.st_size, info.st_mtime_ns))
    return tuple(stamps)


def _reads_tables(query: exp.Expr, own: set[str]) -> bool:
    """Whether a query reads a table of the warehouse (not a CTE, not one of ``own``)."""
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    return any(
        isinstance(table.this, exp.Identifier) and table.name.lower() not in ctes | own
        for table in query.find_all(exp.Table)
    )


def _parsed_type(name: str, dialect: str) -> exp.DataType | None:
    try:
        return exp.DataType.build(name, dialect=dialect, udt=True)
    except Exception:  # a type sqlglot does not know: its values are inferred
        return None


def _drop(table: exp.Table, if_exists: bool = False) -> exp.Drop:
    return exp.Drop(tables=[table], kind="TABLE", exists=if_exists)


def _keys_match(keys: Sequence[str]) -> exp.Expr:
    return exp.and_(
        *(
            exp.NullSafeEQ(
                this=exp.column(quoted(k), table="__new"),
                expression=exp.column(quoted(k), table="__old"),
            )
            for k in keys
        )
    )


def _delete_matching(target: exp.Table, stage: exp.Table, keys: Sequence[str]) -> exp.Delete:
    """DELETE of the target's rows whose keys the new rows have."""
    return exp.Delete(
        this=exp.alias_(target.copy(), "__old", table=True),
        where=exp.Where(
            this=exp.Exists(
                this=exp.select(exp.Literal.number(1))
                .from_(exp.alias_(stage.copy(), "__new", table=True))
                .where(_keys_match(keys))
            )
        ),
    )
