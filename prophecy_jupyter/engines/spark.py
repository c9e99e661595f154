"""Spark fabrics: pipelines run as Spark SQL on a local, standalone-cluster or Connect session.

`SparkSQLEngine` implements the engine protocol with nothing but Spark SQL text, sent through
one method, `SparkSQLEngine._run`; `SparkEngine` runs it on a PySpark `SparkSession` (classic
or Spark Connect), and an engine that reaches Spark another way (Livy's REST API) subclasses
the base and sends the same statements its own way.

- Queries are the compiler's ASTs rendered with `render(query, "spark")`.
- File Sources become temporary views, ``CREATE OR REPLACE TEMPORARY VIEW … USING csv
  OPTIONS (path …, header …, inferSchema 'true', sep …)`` (parquet and json likewise), named
  by a hash of the format, the path and the options; relative paths resolve under the
  engine's root (the project folder). A view is made again when its files change.
- ``describe`` asks Spark's analyser for the schema (nothing is run); ``preview`` fetches
  ``limit + 1`` rows.
- A table Target is built as a staging table (``CREATE TABLE … USING parquet AS``), counted,
  then swapped in: the old table is renamed aside, the new one renamed into place and only
  then the old one dropped; if anything fails before, the old table is untouched. ``append``
  inserts the staged rows (a failing query never reaches the target); ``merge`` builds the
  merged table (old rows whose keys are not in the new data, then the new rows) and swaps it
  in, refusing new data whose keys repeat.
- A table's comments (the pipeline's documentation, see `WriteSpec`) are set on the new table
  before it is swapped in (overwrite, merge: so a swapped-in table replaces the old one's
  comments), or on the target after the rows are inserted (append: Spark has no
  transactions, so a failure between the two leaves the new rows with the old comments).
- A file Target is a **directory** on Spark, as Spark writes files: ``output/orders.csv/``
  holds ``part-*.csv`` files (one per partition of the result, each with the header line)
  and a ``_SUCCESS`` marker. It is written to a hidden sibling directory
  (``.orders.csv.<hex>.tmp``) and renamed into place; an older target is renamed aside first
  and deleted after, so a run killed at any moment leaves the old or the new directory (or,
  in the instant between the two renames, the old one under its aside name). A Source reads
  such a directory back like a single file (and a single file, such as one DuckDB wrote, as
  well; writing replaces it with a directory). DuckDB reads the directory with a glob,
  ``read_csv('output/orders.csv/part-*.csv')``. CSV is written and read with ``"`` as both
  the quote and its escape (RFC 4180, as DuckDB writes it); JSON as one object per line,
  nulls included.
- `materialize` caches a temporary view (``CACHE TABLE … AS``); frames become temporary
  views; `session` hands out handles on the same Spark session whose statements carry a tag
  of their own, which `cancel` interrupts.
- `open_spark` makes the engine of a Spark fabric: see `spark_settings` for its options.

Differences with DuckDB worth knowing: Spark infers the fields of JSON objects in
alphabetical order; a headerless CSV's columns are ``_c0``, ``_c1``…; JSON Sources are JSON
lines (no top-level array); timestamps are ``TIMESTAMP_NTZ`` (no time zone, as DuckDB's
``TIMESTAMP``).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import glob
import hashlib
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time as time_module
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

from sqlglot import exp

from prophecy_jupyter.compiler.dialects import render
from prophecy_jupyter.engines.base import FrameKind, PreviewResult, WriteSpec, comment_statements
from prophecy_jupyter.engines.files import (
    FileFormat,
    FileSource,
    file_sources,
    replace_file_sources,
)
from prophecy_jupyter.errors import Conflict, EngineError
from prophecy_jupyter.gems.sources import table_expression

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from prophecy_jupyter.fabrics import Fabric
    from prophecy_jupyter.model.project import Project

DIALECT = "spark"

Columns = list[tuple[str, str]]
Rows = list[tuple[Any, ...]]

PRIVATE = "__prophecy"
"""Prefix of every table and view the engine makes for itself."""
JVM_OPTIONS = "-XX:+UseSerialGC"
"""Driver JVM flags of sessions started here (unless the fabric sets its own): the serial
collector starts a JVM seconds sooner on a small machine. (``-XX:TieredStopAtLevel=1``
shortens start-up a little more but, without the optimising compiler, runs heavy queries
several times slower: fit for tests on tiny data only.)"""
SESSION_CONF = {
    # DuckDB's TIMESTAMP has no time zone; so do the timestamps Spark infers and casts to.
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
"""SQL settings of every engine's Spark session (runtime settings, per session)."""

INTERRUPT_EVERY = 0.2
INTERRUPT_FOR = 5.0
"""How often and how long a cancelled session interrupts its statement (seconds)."""

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_SQLSTATE = re.compile(r"\s*SQLSTATE: \w+.*$")
_TABLE_FORMAT = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")
_GRPC_DETAILS = re.compile(r'details = "([^"]*)"')
_GRPC_STATUS = re.compile(r"status = StatusCode\.(\w+)")
_CONTEXT_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _string(value: str) -> str:
    """A Spark SQL string literal (backslash is Spark's escape character)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _table_sql(name: str) -> str:
    """``[[catalog.]schema.]table`` as quoted Spark SQL."""
    table = table_expression(name)
    parts = [table.catalog, table.db, table.name]
    return ".".join(_ident(p) for p in parts if p)


def _sibling(name: str, prefix: str) -> tuple[str, str]:
    """A fresh table name in the same schema as ``name``: (qualified SQL, bare name)."""
    table = table_expression(name)
    bare = f"{PRIVATE}_{prefix}_{uuid.uuid4().hex}"
    parts = [table.catalog, table.db, bare]
    return ".".join(_ident(p) for p in parts if p), bare


def _one_line(text: str) -> str:
    """The first line of an error, without its SQLSTATE; for a gRPC error (Spark Connect),
    its status and details."""
    details = _GRPC_DETAILS.search(text)
    if details is not None:
        status = _GRPC_STATUS.search(text)
        code = status.group(1).lower().replace("_", " ") if status else "error"
        return f"Spark Connect: {code}: {details.group(1)}"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return _SQLSTATE.sub("", lines[0]) if lines else ""


# -- files ------------------------------------------------------------------------------------


class FileSystem(Protocol):
    """What the engine does to files besides reading and writing them through Spark."""

    def exists(self, path: str) -> bool: ...

    def replace(self, staged: str, final: str) -> None:
        """Put the directory ``staged`` at ``final``, replacing what is there."""
        ...

    def remove(self, path: str) -> None: ...

    def stamp(self, path: str) -> object | None:
        """Something that changes when the files at ``path`` (a file, folder or glob) change,
        or ``None`` when that cannot be known cheaply."""
        ...


class LocalFileSystem:
    """The driver's own disk: local and standalone-cluster masters on one machine, a Connect
    server or Livy on the same host."""

    @staticmethod
    def _path(path: str) -> Path:
        return Path(path[len("file:") :] if path.startswith("file:") else path)

    def exists(self, path: str) -> bool:
        return os.path.lexists(self._path(path))

    def replace(self, staged: str, final: str) -> None:
        target = self._path(final)
        if not os.path.lexists(target):
            os.rename(self._path(staged), target)
            return
        aside = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
        os.rename(target, aside)
        try:
            os.rename(self._path(staged), target)
        except OSError:
            os.rename(aside, target)
            raise
        self.remove(str(aside))

    def remove(self, path: str) -> None:
        local = self._path(path)
        if local.is_dir() and not local.is_symlink():
            shutil.rmtree(local, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                local.unlink()

    def stamp(self, path: str) -> object | None:
        """(path, size, mtime) of every data file (hidden and ``_``-files skipped, as Spark
        skips them); empty when nothing is there."""
        local = str(self._path(path))
        matches = sorted(glob.glob(local)) if any(c in local for c in "*?[") else [local]
        stamps: list[tuple[str, int, int]] = []
        for match in matches:
            if os.path.isdir(match):
                for folder, subfolders, files in os.walk(match):
                    subfolders[:] = sorted(d for d in subfolders if not d.startswith((".", "_")))
                    for name in sorted(files):
                        if not name.startswith((".", "_")):
                            stamps.append(_stat(os.path.join(folder, name)))
            elif os.path.exists(match):
                stamps.append(_stat(match))
        return tuple(stamps)


def _stat(path: str) -> tuple[str, int, int]:
    info = os.stat(path)
    return path, info.st_size, info.st_mtime_ns


class HadoopFileSystem:
    """Any filesystem Hadoop reaches (HDFS, S3A, ABFS…) through a classic session's JVM."""

    def __init__(self, spark: SparkSession) -> None:
        self._jvm: Any = getattr(spark, "_jvm", None)
        context: Any = getattr(spark, "_jsc", None)
        self._conf: Any = context.hadoopConfiguration()

    def _resolve(self, path: str) -> tuple[Any, Any]:
        hadoop_path = self._jvm.org.apache.hadoop.fs.Path(path)
        return hadoop_path.getFileSystem(self._conf), hadoop_path

    def exists(self, path: str) -> bool:
        fs, hadoop_path = self._resolve(path)
        return bool(fs.exists(hadoop_path))

    def replace(self, staged: str, final: str) -> None:
        fs, target = self._resolve(final)
        _, source = self._resolve(staged)
        if fs.exists(target):
            aside = self._jvm.org.apache.hadoop.fs.Path(
                target.getParent(), f".{target.getName()}.{uuid.uuid4().hex}.old"
            )
            if not fs.rename(target, aside):
                raise OSError(f"cannot move {final} aside")
            if not fs.rename(source, target):
                fs.rename(aside, target)
                raise OSError(f"cannot rename {staged} to {final}")
            fs.delete(aside, True)
        elif not fs.rename(source, target):
            raise OSError(f"cannot rename {staged} to {final}")

    def remove(self, path: str) -> None:
        fs, hadoop_path = self._resolve(path)
        fs.delete(hadoop_path, True)

    def stamp(self, path: str) -> object | None:
        return None


# -- the engine over Spark SQL text -----------------------------------------------------------


class _Shared:
    """What an engine and its sessions share: the views it made in the Spark session."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.sources: dict[str, tuple[str, object | None]] = {}  # view → (location, stamp)
        self.described: dict[tuple[str, tuple[object, ...]], Columns] = {}
        self.materialized: set[str] = set()
        self.frames: set[str] = set()


class SparkSQLEngine:
    """The engine protocol through Spark SQL statements only, run by `_run`.

    A subclass provides `_run` (and, where it can, `_interrupt`, `_new_session`, a better
    `_describe_sql`, `register_frame` and `fetch`). ``root`` is where relative paths of file
    Sources and Targets resolve (the project folder); ``table_format`` is the data source of
    the tables Targets write (``parquet``, ``delta``…).
    """

    name = "spark"
    dialect = DIALECT

    def __init__(self, root: Path | str | None = None, *, table_format: str = "parquet") -> None:
        self.root = Path(root).resolve() if root is not None else Path.cwd()
        if not _TABLE_FORMAT.match(table_format):
            raise EngineError(f"invalid table format {table_format!r}")
        self.table_format = table_format
        self._shared = _Shared()
        self._owner: SparkSQLEngine | None = None
        self._closed = False
        self._cancelled = False

    # -- what a subclass provides ----------------------------------------------------------
    def _run(self, sql: str) -> tuple[Columns, Rows]:
        """Run one statement; its columns (name, Spark type) and rows as Python values.

        Raises `EngineError` with a one-line message when Spark refuses or fails it.
        """
        raise NotImplementedError

    def _interrupt(self) -> None:
        """Stop whatever this engine (or session) is running, if the transport allows it."""

    def _new_session(self) -> SparkSQLEngine | None:
        """A handle on the same Spark session that can be cancelled on its own, or ``None``."""
        return None

    def _filesystem(self, location: str) -> FileSystem:
        """The filesystem of a location the engine writes or watches."""
        if _URL.match(location) and not location.startswith("file:"):
            scheme = location.split(":", 1)[0]
            raise EngineError(
                f"this Spark engine cannot manage files on {scheme}: (only the local disk)"
            )
        return LocalFileSystem()

    def _describe_sql(self, sql: str) -> Columns:
        _, rows = self._execute(f"DESCRIBE QUERY {sql}")
        return [(str(r[0]), str(r[1])) for r in rows if r[0] and not str(r[0]).startswith("#")]

    # -- statements ------------------------------------------------------------------------
    def _execute(self, sql: str) -> tuple[Columns, Rows]:
        if self._closed:
            raise EngineError("the Spark engine is closed")
        if self._cancelled:
            raise EngineError("cancelled")
        return self._run(sql)

    def _count(self, relation: str) -> int:
        _, rows = self._execute(f"SELECT count(*) FROM {relation}")
        return int(rows[0][0])

    def _location(self, path: str) -> str:
        """A path of the pipeline as Spark must see it: relative paths under the root."""
        if _URL.match(path) or os.path.isabs(path):
            return path
        return str(self.root / path)

    def _source_view(self, source: FileSource) -> str:
        """The temporary view reading a file Source, made (again) when its files changed."""
        location = self._location(source.path)
        key = json.dumps([source.format, location, source.header, source.delimiter])
        view = f"{PRIVATE}_src_{hashlib.sha256(key.encode()).hexdigest()[:20]}"
        filesystem = self._filesystem(location)
        stamp = filesystem.stamp(location)
        with self._shared.lock:
            known = self._shared.sources.get(view)
            if known is not None and (stamp is None or known[1] == stamp):
                return view
            options: dict[str, str] = {"path": location}
            if source.format == "csv":
                options |= {
                    "header": "true" if source.header else "false",
                    "inferSchema": "true",
                    "sep": source.delimiter,
                    "quote": '"',
                    "escape": '"',
                }
            listed = ", ".join(f"{k} {_string(v)}" for k, v in options.items())
            self._execute(
                f"CREATE OR REPLACE TEMPORARY VIEW {_ident(view)} "
                f"USING {source.format} OPTIONS ({listed})"
            )
            self._shared.sources[view] = (location, stamp)
            return view

    def _forget_sources(self, location: str) -> None:
        """Drop the views over ``location`` (just rewritten or removed): Spark keeps the list
        of files a view read, so they are made afresh on next use."""
        with self._shared.lock:
            stale = [
                view
                for view, (path, _) in self._shared.sources.items()
                if path == location or path.startswith(location.rstrip("/") + "/")
            ]
            for view in stale:
                del self._shared.sources[view]
        for view in stale:
            with contextlib.suppress(EngineError):
                self._execute(f"DROP VIEW IF EXISTS {_ident(view)}")

    def _prepare(self, query: exp.Expr) -> tuple[str, tuple[object, ...] | None]:
        """Spark SQL of a query, its file Sources read from views; and, when it reads
        nothing but files, the stamps of those files (a key for memoising its schema)."""
        sources = file_sources(query)
        views = {source: self._source_view(source) for source in sources}
        if views:
            query = replace_file_sources(
                query, lambda s: exp.Table(this=exp.to_identifier(views[s], quoted=True))
            )
        sql = render(query, DIALECT)
        ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
        own = {v.lower() for v in views.values()}
        for table in query.find_all(exp.Table):
            name = table.name.lower()
            if isinstance(table.this, exp.Identifier) and not table.db and name in ctes | own:
                continue
            return sql, None
        with self._shared.lock:
            stamps = tuple(self._shared.sources[v][1] for v in views.values())
        if any(s is None for s in stamps) and views:
            return sql, None
        return sql, stamps

    # -- reading ---------------------------------------------------------------------------
    def describe(self, query: exp.Query) -> list[tuple[str, str]]:
        """Column names and Spark types of a query from the analyser: nothing is run.

        Queries over files (or over nothing) are memoised on their SQL and the files' stamps,
        so that recompiling after each edit asks Spark nothing.
        """
        sql, stamps = self._prepare(query)
        key = (sql, stamps) if stamps is not None else None
        if key is not None:
            with self._shared.lock:
                known = self._shared.described.get(key)
            if known is not None:
                return list(known)
        described = self._describe_sql(sql)
        if key is not None:
            with self._shared.lock:
                if len(self._shared.described) >= 4096:
                    self._shared.described.clear()
                self._shared.described[key] = described
        return list(described)

    def preview(self, query: exp.Query, limit: int = 100) -> PreviewResult:
        probe = exp.select(exp.Star()).from_(query.subquery("preview")).limit(limit + 1)
        columns, rows = self._execute(self._prepare(probe)[0])
        return PreviewResult(columns, rows[:limit], truncated=len(rows) > limit)

    def spark_sql(self, query: exp.Expr) -> str:
        """The Spark SQL the engine runs for a compiled query (file Sources as the views it
        makes for them, which this creates or refreshes)."""
        return self._prepare(query)[0]

    def query(self, query: exp.Query) -> tuple[list[str], list[tuple[Any, ...]]]:
        columns, rows = self._execute(self._prepare(query)[0])
        return [name for name, _ in columns], rows

    def table_exists(self, name: str) -> bool:
        """Whether ``[[catalog.]schema.]name`` is a table (not a temporary view); unqualified
        names are looked up in the session's current schema, ignoring case."""
        table = table_expression(name)
        where = ".".join(_ident(p) for p in (table.catalog, table.db) if p)
        statement = f"SHOW TABLES {'IN ' + where + ' ' if where else ''}LIKE {_string(table.name)}"
        try:
            _, rows = self._execute(statement)
        except EngineError as exc:
            if "SCHEMA_NOT_FOUND" in str(exc):
                return False
            raise
        return any(str(r[1]).lower() == table.name.lower() and not r[2] for r in rows)

    def _columns_of(self, relation: str) -> Columns:
        return self._describe_sql(f"SELECT * FROM {relation}")

    # -- writing ---------------------------------------------------------------------------
    def write(self, query: exp.Query, spec: WriteSpec) -> int:
        """Write a query's rows to a table or a file directory as the Target asks; returns
        the number of rows written."""
        sql = self._prepare(query)[0]
        if spec.format == "table":
            assert spec.table is not None
            return self._write_table(sql, spec.table, spec)
        try:
            return self._write_files(sql, spec)
        except OSError as exc:
            raise EngineError(f"cannot write {spec.path}: {exc.strerror or exc}") from None

    def _create_table(self, table: str, sql: str) -> None:
        self._execute(f"CREATE TABLE {table} USING {self.table_format} AS {sql}")

    def _drop_quietly(self, table: str) -> None:
        with contextlib.suppress(EngineError):
            self._execute(f"DROP TABLE IF EXISTS {table}")

    def _write_table(self, sql: str, name: str, spec: WriteSpec) -> int:
        target = _table_sql(name)
        exists = self.table_exists(name)
        if spec.mode == "error_if_exists" and exists:
            raise Conflict(f"table {name} already exists (mode error_if_exists)")
        stage, stage_name = _sibling(name, "stage")
        merged: str | None = None
        try:
            self._create_table(stage, sql)
            rows = self._count(stage)
            if spec.mode == "merge":
                # Checked whether or not the table exists yet: the same new data must not be
                # accepted on a first run and refused on the next.
                self._check_unique_keys(stage, spec.keys)
            if exists and spec.mode == "append":
                names = [n for n, _ in self._columns_of(stage)]
                listed = ", ".join(_ident(n) for n in names)
                self._execute(f"INSERT INTO {target} ({listed}) SELECT {listed} FROM {stage}")
                self._comment(name, table_expression(name).name, spec)
            elif exists and spec.mode == "merge":
                merged, merged_name = _sibling(name, "merge")
                self._create_table(merged, self._merge_sql(target, stage, spec.keys, name))
                self._comment(name, merged_name, spec)
                self._swap(merged, name, exists=True)
                merged = None
            else:
                self._comment(name, stage_name, spec)
                self._swap(stage, name, exists=exists)
                stage = ""
        finally:
            if stage:
                self._drop_quietly(stage)
            if merged:
                self._drop_quietly(merged)
        return rows

    def _comment(self, name: str, bare: str, spec: WriteSpec) -> None:
        """Give the table ``bare`` (in the schema of ``name``) the comments ``spec`` asks for:
        ``COMMENT ON TABLE`` and, as Spark has no ``COMMENT ON COLUMN``, ``ALTER TABLE …
        ALTER COLUMN … COMMENT`` for each described column."""
        table = table_expression(name)
        table.set("this", exp.to_identifier(bare, quoted=True))
        statements: list[exp.Expr] = [
            *comment_statements(table, dataclasses.replace(spec, column_comments={}))
        ]
        for column, text in spec.column_comments.items():
            change = exp.AlterColumn(
                this=exp.to_identifier(column, quoted=True), comment=exp.Literal.string(text)
            )
            statements.append(exp.Alter(this=table.copy(), kind="TABLE", actions=[change]))
        for statement in statements:
            self._execute(render(statement, "spark"))

    def _merge_sql(self, target: str, stage: str, keys: list[str], name: str) -> str:
        """The rows of ``target`` whose keys are not in ``stage``, then those of ``stage``,
        in the target's columns and types."""
        columns = self._columns_of(target)
        new_names = {n.lower() for n, _ in self._columns_of(stage)}
        extra = sorted(new_names - {n.lower() for n, _ in columns})
        if extra:
            raise EngineError(f"table {name} has no column {extra[0]} (mode merge)")
        matches = " AND ".join(f"__new.{_ident(k)} <=> __old.{_ident(k)}" for k in keys)
        old = ", ".join(f"__old.{_ident(n)}" for n, _ in columns)
        new = ", ".join(
            f"CAST(__new.{_ident(n)} AS {t}) AS {_ident(n)}"
            if n.lower() in new_names
            else f"CAST(NULL AS {t}) AS {_ident(n)}"
            for n, t in columns
        )
        return (
            f"SELECT {old} FROM {target} AS __old WHERE NOT EXISTS "
            f"(SELECT 1 FROM {stage} AS __new WHERE {matches}) "
            f"UNION ALL SELECT {new} FROM {stage} AS __new"
        )

    def _swap(self, stage: str, name: str, *, exists: bool) -> None:
        """Rename ``stage`` to ``name``; an existing table is renamed aside first and dropped
        only once the new one is in place (renamed back if that fails)."""
        new_name = _ident(table_expression(name).name)
        if not exists:
            self._execute(f"ALTER TABLE {stage} RENAME TO {new_name}")
            return
        aside, aside_name = _sibling(name, "old")
        self._execute(f"ALTER TABLE {_table_sql(name)} RENAME TO {_ident(aside_name)}")
        try:
            self._execute(f"ALTER TABLE {stage} RENAME TO {new_name}")
        except BaseException:
            with contextlib.suppress(EngineError):
                self._execute(f"ALTER TABLE {aside} RENAME TO {new_name}")
            raise
        self._drop_quietly(aside)

    def _check_unique_keys(self, stage: str, keys: list[str]) -> None:
        listed = ", ".join(_ident(k) for k in keys)
        dupes = self._count(
            f"(SELECT {listed} FROM {stage} GROUP BY {listed} HAVING count(*) > 1) AS dupes"
        )
        if dupes:
            raise EngineError(f"merge keys ({', '.join(keys)}) are not unique in the new data")

    def _write_files(self, sql: str, spec: WriteSpec) -> int:
        """Write the rows into a directory beside the target and rename it into place; with
        append or merge, the old files' rows and the new ones go through a staging table."""
        assert spec.path is not None and spec.format != "table"
        file_format: FileFormat = spec.format
        final = self._location(spec.path).rstrip("/")
        filesystem = self._filesystem(final)
        exists = filesystem.exists(final)
        if spec.mode == "error_if_exists" and exists:
            raise Conflict(f"file {spec.path} already exists (mode error_if_exists)")
        head, _, tail = final.rpartition("/")
        staged = f"{head}/.{tail}.{uuid.uuid4().hex}.tmp"
        options: dict[str, str] = {}
        if spec.format == "csv":
            options = {"header": "true" if spec.header else "false", "quote": '"', "escape": '"'}
        elif spec.format == "json":
            options = {"ignoreNullFields": "false"}
        listed = ", ".join(f"{k} {_string(v)}" for k, v in options.items())
        into = (
            f"INSERT OVERWRITE DIRECTORY {_string(staged)} USING {spec.format}"
            + (f" OPTIONS ({listed})" if listed else "")
            + " "
        )
        try:
            if exists and spec.mode in {"append", "merge"}:
                old = self._source_view(FileSource(file_format, final, spec.header))
                scratch_name = f"{PRIVATE}_file_{uuid.uuid4().hex}"
                scratch = _ident(scratch_name)
                self._create_table(scratch, f"SELECT * FROM {_ident(old)}")
                try:
                    rows = self._write_table(sql, scratch_name, spec)
                    self._execute(into + f"SELECT * FROM {scratch}")
                finally:
                    self._drop_quietly(scratch)
            else:
                if spec.mode == "merge":
                    self._check_unique_keys(f"({sql}) AS new", spec.keys)
                self._execute(into + sql)
                rows = self._count(
                    _ident(self._source_view(FileSource(file_format, staged, spec.header)))
                )
            filesystem.replace(staged, final)
        finally:
            self._forget_sources(staged)
            with contextlib.suppress(OSError, EngineError):
                if filesystem.exists(staged):
                    filesystem.remove(staged)
            self._forget_sources(final)
        return rows

    # -- session-private relations ---------------------------------------------------------
    def materialize(self, name: str, query: exp.Query) -> int:
        """Compute a query once into the cached temporary view ``name``; its row count."""
        view = _ident(name)
        self._execute(f"CACHE TABLE {view} AS {self._prepare(query)[0]}")
        with self._shared.lock:
            self._shared.materialized.add(name)
        return self._count(view)

    def drop_materialized(self, name: str) -> None:
        view = _ident(name)
        with contextlib.suppress(EngineError):
            self._execute(f"UNCACHE TABLE IF EXISTS {view}")
        self._execute(f"DROP VIEW IF EXISTS {view}")
        with self._shared.lock:
            self._shared.materialized.discard(name)

    def register_frame(self, name: str, frame: Any) -> None:
        """Make a data frame readable as the temporary view ``name``, its rows inlined in the
        statement (fit for the small frames of notebook cells)."""
        table = _arrow_table(frame)
        names = [str(n) for n in table.column_names]
        types = [_spark_type(f.type) for f in table.schema]
        if any(t is None for t in types):
            unknown = next(f for f, t in zip(table.schema, types, strict=True) if t is None)
            raise EngineError(f"cannot send column {unknown.name} ({unknown.type}) to Spark")
        aliases = [f"c{i}" for i in range(len(names))]
        projections = ", ".join(
            f"CAST({a} AS {t}) AS {_ident(n)}"
            for a, n, t in zip(aliases, names, types, strict=True)
        )
        rows = list(zip(*(column.to_pylist() for column in table.columns), strict=True))
        if rows:
            values = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
            body = f"SELECT {projections} FROM VALUES {values} AS t({', '.join(aliases)})"
        else:
            nulls = ", ".join(
                f"CAST(NULL AS {t}) AS {_ident(n)}" for n, t in zip(names, types, strict=True)
            )
            body = f"SELECT {nulls} WHERE false"
        self._execute(f"CREATE OR REPLACE TEMPORARY VIEW {_ident(name)} AS {body}")
        with self._shared.lock:
            self._shared.frames.add(name)

    def unregister_frame(self, name: str) -> None:
        self._execute(f"DROP VIEW IF EXISTS {_ident(name)}")
        with self._shared.lock:
            self._shared.frames.discard(name)

    def fetch(self, query: exp.Query, kind: FrameKind = "pandas") -> Any:
        columns, rows = self._execute(self._prepare(query)[0])
        try:
            import pyarrow as pa

            arrays = [
                pa.array([row[i] for row in rows], type=_arrow_type(t))
                for i, (_, t) in enumerate(columns)
            ]
            table = pa.Table.from_arrays(arrays, names=[n for n, _ in columns])
            return _frame_of(table, kind)
        except ImportError:
            package = "pyarrow" if kind == "arrow" else kind
            raise EngineError(f"{kind} results need {package}: pip install {package}") from None

    # -- lifecycle -------------------------------------------------------------------------
    def session(self) -> SparkSQLEngine:
        """A handle for one piece of work (a preview, a run) on the same Spark session: it
        sees the same views and tables, and `cancel` stops only its own statements."""
        handle = self._new_session()
        return handle if handle is not None else self

    def cancel(self) -> None:
        """Stop the running statement; a session stays cancelled (its next statements fail)."""
        if self._owner is not None:
            self._cancelled = True
        self._interrupt()

    def close(self) -> None:
        """Close a session; closing the engine also drops the views it made. The Spark
        session itself lives on (other engines of the same fabric may use it)."""
        if self._closed:
            return
        if self._owner is None:
            with self._shared.lock:
                views = [*self._shared.sources, *self._shared.frames]
                cached = list(self._shared.materialized)
                self._shared.sources.clear()
                self._shared.frames.clear()
                self._shared.materialized.clear()
            for name in cached:
                with contextlib.suppress(EngineError):
                    self._execute(f"UNCACHE TABLE IF EXISTS {_ident(name)}")
            for name in [*views, *cached]:
                with contextlib.suppress(EngineError):
                    self._execute(f"DROP VIEW IF EXISTS {_ident(name)}")
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- values between Python, Arrow and Spark SQL ---------------------------------------------


def _arrow_table(frame: Any) -> Any:
    """A pandas, polars or Arrow frame as an Arrow table."""
    import pyarrow as pa

    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, pa.RecordBatch):
        return pa.Table.from_batches([frame])
    module = type(frame).__module__.split(".")[0]
    if module == "polars":
        return frame.to_arrow()
    if module == "pandas":
        return pa.Table.from_pandas(frame, preserve_index=False)
    raise EngineError(f"cannot read {type(frame).__name__}: a pandas, polars or Arrow frame")


def _frame_of(table: Any, kind: FrameKind) -> Any:
    if kind == "arrow":
        return table
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    return table.to_pandas()


def _spark_type(arrow_type: Any) -> str | None:
    """The Spark SQL type of an Arrow type (``None`` for those a VALUES row cannot carry)."""
    import pyarrow.types as t

    checks: list[tuple[Callable[[Any], bool], str]] = [
        (t.is_boolean, "BOOLEAN"),
        (t.is_int8, "TINYINT"),
        (t.is_int16, "SMALLINT"),
        (t.is_int32, "INT"),
        (t.is_uint8, "SMALLINT"),
        (t.is_uint16, "INT"),
        (t.is_uint32, "BIGINT"),
        (t.is_int64, "BIGINT"),
        (t.is_uint64, "DECIMAL(20, 0)"),
        (t.is_float16, "FLOAT"),
        (t.is_float32, "FLOAT"),
        (t.is_float64, "DOUBLE"),
        (t.is_date, "DATE"),
        (t.is_null, "STRING"),
        (lambda x: t.is_string(x) or t.is_large_string(x), "STRING"),
        (lambda x: t.is_binary(x) or t.is_large_binary(x), "BINARY"),
    ]
    if t.is_dictionary(arrow_type):
        return _spark_type(arrow_type.value_type)
    for check, name in checks:
        if check(arrow_type):
            return name
    if t.is_decimal(arrow_type):
        return f"DECIMAL({arrow_type.precision}, {arrow_type.scale})"
    if t.is_timestamp(arrow_type):
        return "TIMESTAMP" if arrow_type.tz else "TIMESTAMP_NTZ"
    return None


def _literal(value: Any) -> str:
    """A Python value as a Spark SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "CAST('NaN' AS DOUBLE)"
        if math.isinf(value):
            return f"CAST('{'-' if value < 0 else ''}Infinity' AS DOUBLE)"
        return repr(value) + "D"
    if isinstance(value, Decimal):
        return f"{value}BD"
    if isinstance(value, datetime):
        kind = "TIMESTAMP" if value.tzinfo is not None else "TIMESTAMP_NTZ"
        return f"{kind} {_string(value.isoformat(sep=' '))}"
    if isinstance(value, date):
        return f"DATE {_string(value.isoformat())}"
    if isinstance(value, time):
        return _string(value.isoformat())
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    return _string(str(value))


_ARROW_TYPES = {
    "boolean": "bool_",
    "tinyint": "int8",
    "smallint": "int16",
    "int": "int32",
    "bigint": "int64",
    "float": "float32",
    "double": "float64",
    "string": "string",
    "binary": "binary",
    "date": "date32",
}


def _arrow_type(spark_type: str) -> Any:
    """The Arrow type of a Spark type name, or ``None`` to let Arrow infer it."""
    import pyarrow as pa

    name = spark_type.lower()
    if name in _ARROW_TYPES:
        return getattr(pa, _ARROW_TYPES[name])()
    decimal = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", name)
    if decimal:
        return pa.decimal128(int(decimal.group(1)), int(decimal.group(2)))
    if name == "timestamp_ntz":
        return pa.timestamp("us")
    if name.startswith(("varchar", "char")):
        return pa.string()
    return None


def _python(value: Any, row_type: Any) -> Any:
    """A value from a Spark row as plain Python: structs as dicts, arrays as lists."""
    if isinstance(value, row_type):
        return {k: _python(v, row_type) for k, v in value.asDict(recursive=False).items()}
    if isinstance(value, list):
        return [_python(v, row_type) for v in value]
    if isinstance(value, dict):
        return {k: _python(v, row_type) for k, v in value.items()}
    return value


def _plain_rows(rows: list[Any]) -> Rows:
    from pyspark.sql import Row

    nested = (Row, list, dict)
    return [tuple(_python(v, Row) if isinstance(v, nested) else v for v in row) for row in rows]


# -- the engine over a PySpark session --------------------------------------------------------


_quiet = threading.local()


class _QuietWhileRunning(logging.Filter):
    """Drop PySpark's logged tracebacks of statements the engine runs: their error reaches
    the caller as one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_quiet, "on", False)


_QUIET_FILTER = _QuietWhileRunning()


def _silence_context_loggers() -> None:
    with contextlib.suppress(ImportError):
        from pyspark.logger import PySparkLogger

        for name in _CONTEXT_LOGGERS:
            logger = PySparkLogger.getLogger(name)
            if _QUIET_FILTER not in logger.filters:
                logger.addFilter(_QUIET_FILTER)


class SparkEngine(SparkSQLEngine):
    """Spark SQL on a PySpark session (classic, or Spark Connect).

    The engine works in a session of its own (`SparkSession.newSession`: its own temporary
    views, current schema and SQL settings, the cluster and tables shared), with the
    runtime SQL settings of ``conf``; ``database`` makes it work in that schema (created if
    missing). Statements carry a tag per engine session, so `cancel` interrupts exactly that
    session's jobs. ``secrets`` are blotted out of error messages.
    """

    def __init__(
        self,
        spark: SparkSession,
        root: Path | str | None = None,
        *,
        database: str | None = None,
        table_format: str = "parquet",
        conf: Mapping[str, str] | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        super().__init__(root, table_format=table_format)
        _silence_context_loggers()
        self._secrets = tuple(s for s in secrets if s)
        self._tag = f"prophecy-{uuid.uuid4().hex}"
        self._active = 0
        with self._translated():
            self.spark = spark.newSession()
            _retry_briefly(self.spark)
            for key, value in {**SESSION_CONF, **(conf or {})}.items():
                if self.spark.conf.isModifiable(key):
                    self.spark.conf.set(key, value)
        self._hadoop: HadoopFileSystem | None = None
        self.database = database
        if database:
            self._execute(f"CREATE DATABASE IF NOT EXISTS {_ident(database)}")
            self._execute(f"USE {_ident(database)}")

    @property
    def remote(self) -> bool:
        """Whether the session is a Spark Connect client."""
        return _is_remote(self.spark)

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """Spark's errors as `EngineError` with a one-line message (secrets blotted out)."""
        from py4j.protocol import Py4JError  # type: ignore[import-untyped]
        from pyspark.errors import PySparkException

        _quiet.on = True
        try:
            yield
        except (PySparkException, Py4JError, ConnectionError) as exc:
            text = str(exc)
            if self._cancelled or (self._tag in text and "cancel" in text.lower()):
                raise EngineError("cancelled") from None
            message = _one_line(text) or type(exc).__name__
            for secret in self._secrets:
                message = message.replace(secret, "********")
            raise EngineError(message) from None
        finally:
            _quiet.on = False

    @contextlib.contextmanager
    def _tagged(self) -> Iterator[None]:
        """Spark jobs started inside (by this thread) carry this engine session's tag: an
        operation tag of a Connect session, a job tag of a classic SparkContext (whose
        cancelling, unlike a classic session's operation tags, reaches running jobs)."""
        self._active += 1
        remote = self.remote
        if remote:
            self.spark.addTag(self._tag)
        else:
            # Cancelling interrupts the tasks' threads, as Spark's Thrift server does, so
            # that they stop at once instead of at their next check.
            self.spark.sparkContext.setInterruptOnCancel(True)
            self.spark.sparkContext.addJobTag(self._tag)
        try:
            yield
        finally:
            if remote:
                self.spark.removeTag(self._tag)
            else:
                self.spark.sparkContext.removeJobTag(self._tag)
            self._active -= 1

    def _interrupt_tagged(self) -> None:
        with contextlib.suppress(Exception):
            if self.remote:
                self.spark.interruptTag(self._tag)
            else:
                self.spark.sparkContext.cancelJobsWithTag(self._tag)

    def _run(self, sql: str) -> tuple[Columns, Rows]:
        with self._translated(), self._tagged():
            frame = self.spark.sql(sql)
            fields = frame.schema.fields
            if self._cancelled:  # cancelled while Spark planned it: no job is started
                raise EngineError("cancelled")
            rows = frame.collect()
        columns = [(f.name, f.dataType.simpleString()) for f in fields]
        return columns, _plain_rows(rows)

    def _describe_sql(self, sql: str) -> Columns:
        if self._closed:
            raise EngineError("the Spark engine is closed")
        with self._translated():
            fields = self.spark.sql(sql).schema.fields
        return [(f.name, f.dataType.simpleString()) for f in fields]

    def _interrupt(self) -> None:
        """Interrupt the jobs of this engine session; a cancelled session goes on
        interrupting for a few seconds while a statement runs, as a statement that was
        still being planned starts its jobs only after the first interrupt."""
        self._interrupt_tagged()
        if self._cancelled and self._active:
            threading.Thread(target=self._keep_interrupting, daemon=True).start()

    def _keep_interrupting(self) -> None:
        for _ in range(int(INTERRUPT_FOR / INTERRUPT_EVERY)):
            time_module.sleep(INTERRUPT_EVERY)
            if not self._active:
                return
            self._interrupt_tagged()

    def _new_session(self) -> SparkEngine:
        handle = object.__new__(SparkEngine)
        handle.__dict__.update(self.__dict__)
        handle._owner = self
        handle._closed = False
        handle._cancelled = False
        handle._tag = f"prophecy-{uuid.uuid4().hex}"
        handle._active = 0
        return handle

    def _filesystem(self, location: str) -> FileSystem:
        if _URL.match(location) and not location.startswith("file:") and not self.remote:
            if self._hadoop is None:
                self._hadoop = HadoopFileSystem(self.spark)
            return self._hadoop
        return super()._filesystem(location)

    def register_frame(self, name: str, frame: Any) -> None:
        """Make a pandas, polars or Arrow frame readable as the temporary view ``name``
        (sent to Spark as Arrow)."""
        table = _arrow_table(frame)
        with self._translated():
            self.spark.createDataFrame(table).createOrReplaceTempView(name)
        with self._shared.lock:
            self._shared.frames.add(name)

    def fetch(self, query: exp.Query, kind: FrameKind = "pandas") -> Any:
        sql = self._prepare(query)[0]
        if self._closed:
            raise EngineError("the Spark engine is closed")
        try:
            with self._translated(), self._tagged():
                table = self.spark.sql(sql).toArrow()
            return _frame_of(table, kind)
        except ImportError:
            package = "pyarrow" if kind == "arrow" else kind
            raise EngineError(f"{kind} results need {package}: pip install {package}") from None


# -- fabrics --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SparkSettings:
    """How to reach Spark: a master URL (a local or standalone-cluster session in this
    process) or a Spark Connect URL, and the session's configuration."""

    master: str = "local[*]"
    remote: str | None = field(default=None, repr=False)  # may hold the Connect token
    app_name: str = "prophecy"
    conf: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold secrets

    def key(self) -> str:
        """A digest naming the session (secrets in the settings never appear in it)."""
        body = json.dumps([self.master, self.remote, self.app_name, list(self.conf)])
        return hashlib.sha256(body.encode()).hexdigest()


OPTIONS = frozenset(
    {"master", "remote", "app_name", "catalog", "warehouse", "database", "table_format"}
)
"""Fabric options of a Spark fabric besides ``spark.*`` settings."""

_SESSIONS: dict[str, SparkSession] = {}
_STARTED: list[SparkSession] = []  # those of `_SESSIONS` started here, not found running
_SESSIONS_LOCK = threading.Lock()


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def spark_settings(
    fabric: Fabric, secrets: Mapping[str, str], project: Project | None
) -> SparkSettings:
    """The session a fabric's options ask for.

    Options: ``master`` (``local[*]`` by default, ``local[N]``, ``spark://host:port``),
    ``remote`` (``sc://host:port``: Spark Connect, instead of a master), ``app_name``,
    ``catalog`` (``hive``, the default for a local or standalone session of a project: its
    tables are kept in ``.prophecy/spark/`` and outlive the process; or ``in-memory``),
    ``warehouse`` (the tables' folder, relative to the project), ``database``,
    ``table_format``, and any ``spark.*`` setting. Secrets: ``token`` (Spark Connect) and
    ``spark.*`` settings (passwords, keys) that must stay out of the project.
    """
    options = dict(fabric.options)
    unknown = sorted(k for k in options if k not in OPTIONS and not k.startswith("spark."))
    if unknown:
        raise EngineError(
            f"fabric '{fabric.name}': unknown option '{unknown[0]}' (options: "
            f"{', '.join(sorted(OPTIONS))} and spark.* settings)"
        )
    strange = sorted(k for k in secrets if k != "token" and not k.startswith("spark."))
    if strange:
        raise EngineError(
            f"fabric '{fabric.name}': unknown secret '{strange[0]}' (token, or spark.* settings)"
        )
    conf = {k: _text(v) for k, v in options.items() if k.startswith("spark.")}
    conf |= {k: v for k, v in secrets.items() if k.startswith("spark.")}
    remote = options.get("remote")
    app = _text(
        options.get("app_name") or f"prophecy-{project.config.name if project else 'jupyter'}"
    )
    if remote is not None:
        if "master" in options:
            raise EngineError(f"fabric '{fabric.name}': set either master or remote, not both")
        url = _text(remote)
        if not url.startswith("sc://"):
            raise EngineError(f"fabric '{fabric.name}': remote must be an sc://host:port URL")
        if "token" in secrets:
            url = url + ("" if "/" in url[len("sc://") :] else "/") + f";token={secrets['token']}"
        return SparkSettings(master="", remote=url, app_name=app, conf=tuple(sorted(conf.items())))
    master = _text(options.get("master", "local[*]"))
    if not (master.startswith(("local", "spark://", "yarn", "k8s://", "mesos://"))):
        raise EngineError(f"fabric '{fabric.name}': unknown master URL {master!r}")
    home = (project.root / ".prophecy" / "spark") if project is not None else _scratch_home()
    warehouse = options.get("warehouse")
    warehouse_dir = (
        (project.root / _text(warehouse) if project is not None else Path(_text(warehouse)))
        if warehouse
        else home / "warehouse"
    )
    catalog = _text(options.get("catalog", "hive" if project is not None else "in-memory"))
    if catalog not in {"hive", "in-memory"}:
        raise EngineError(f"fabric '{fabric.name}': catalog must be hive or in-memory")
    java = conf.get("spark.driver.extraJavaOptions", JVM_OPTIONS)
    defaults = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.warehouse.dir": str(warehouse_dir.resolve()),
        "spark.sql.catalogImplementation": catalog,
        "spark.driver.extraJavaOptions": f"{java} -Dderby.system.home={home.resolve()}",
    }
    if catalog == "hive":
        metastore = (home / "metastore_db").resolve()
        defaults["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
            f"jdbc:derby:;databaseName={metastore};create=true"
        )
    if master.startswith("local"):
        defaults["spark.sql.shuffle.partitions"] = str(2 * (os.cpu_count() or 1))
    merged = defaults | {k: v for k, v in conf.items() if k != "spark.driver.extraJavaOptions"}
    return SparkSettings(master=master, app_name=app, conf=tuple(sorted(merged.items())))


_SCRATCH: list[Path] = []


def _scratch_home() -> Path:
    """A folder for the tables of engines outside any project, removed at exit."""
    if not _SCRATCH:
        folder = Path(tempfile.mkdtemp(prefix="prophecy-spark-"))
        _SCRATCH.append(folder)
        atexit.register(shutil.rmtree, folder, True)
    return _SCRATCH[0]


@contextlib.contextmanager
def _main_module_with_spec() -> Iterator[None]:
    """Give ``__main__`` a module spec while the Connect client loads: it reads
    ``__main__.__spec__``, which IPython's user module (a notebook's ``__main__``) and
    pytest-xdist's workers lack, and would treat a ``None`` there as a doctest run and exit."""
    main = sys.modules.get("__main__")
    if main is None or hasattr(main, "__spec__"):
        yield
        return
    main.__spec__ = ModuleSpec("__main__", None)
    try:
        yield
    finally:
        del main.__spec__


def spark_session(settings: SparkSettings) -> SparkSession:
    """The Spark session of these settings, started on first use and reused after.

    A process has one classic SparkContext: a local or cluster session asked for while
    another one runs (a notebook's own ``spark``) is that one, untouched; the engines made
    on it apply the fabric's runtime SQL settings to their own sessions, while its start-up
    settings (master, warehouse, catalog) stay as they were.
    """
    key = settings.key()
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is not None and _alive(session):
            return session
        try:
            session, started = _start(settings)
        except EngineError:
            raise
        except Exception as exc:  # the JVM did not start, the server did not answer…
            message = _one_line(str(exc)) or type(exc).__name__
            if settings.remote and ";token=" in settings.remote:
                message = message.replace(settings.remote.split(";token=", 1)[1], "********")
            raise EngineError(f"cannot start Spark: {message}") from None
        _SESSIONS[key] = session
        if started:
            _STARTED.append(session)
        return session


def _is_remote(session: SparkSession) -> bool:
    """Whether a session is a Spark Connect client."""
    return type(session).__module__.startswith("pyspark.sql.connect")


def _alive(session: SparkSession) -> bool:
    if _is_remote(session):
        return not getattr(session, "is_stopped", False)
    context = getattr(session, "_sc", None)
    return context is not None and getattr(context, "_jsc", None) is not None


def _start(settings: SparkSettings) -> tuple[SparkSession, bool]:
    """A new Connect client session, or the process's classic session (started if needed);
    and whether it was started here.

    Connect sessions come from the Connect client's own builder, which does not mind a
    classic session running in the same process (PySpark's common builder refuses).
    """
    _silence_context_loggers()
    builder: Any
    if settings.remote is not None:
        with _main_module_with_spec():
            from pyspark.sql.connect.session import SparkSession as RemoteSession

            builder = RemoteSession.builder.remote(settings.remote)
            for key, value in settings.conf:
                builder = builder.config(key, value)
            remote: SparkSession = builder.create()
        _retry_briefly(remote)
        return remote, True
    from pyspark.sql import SparkSession

    running = SparkSession.getActiveSession() or SparkSession._instantiatedSession
    if running is not None and _alive(running):
        return running, False  # as it is: its settings are its owner's (a notebook's ``spark``)
    if settings.master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(settings.master).appName(settings.app_name)
    for key, value in settings.conf:
        builder = builder.config(key, value)
    session: SparkSession = builder.getOrCreate()
    return session, True


CONNECT_RETRIES = 4
"""Retries of a Spark Connect call the server did not answer (about 10 s in all, where the
client's own policy keeps trying for 10 minutes)."""


def _retry_briefly(session: SparkSession) -> None:
    """Make a Connect session give up on an unreachable server within seconds."""
    if not _is_remote(session):
        return
    client: Any = getattr(session, "client", None)
    from pyspark.sql.connect.client.retries import DefaultPolicy

    client.set_retry_policies(
        [DefaultPolicy(max_retries=CONNECT_RETRIES, initial_backoff=250, max_backoff=4000)]
    )


def stop_spark_sessions() -> None:
    """Stop every session `spark_session` started (engines using them stop working); a
    session it found running is left to its owner."""
    with _SESSIONS_LOCK:
        sessions = list(_STARTED)
        _STARTED.clear()
        _SESSIONS.clear()
    for session in sessions:
        with contextlib.suppress(Exception):
            session.stop()


def open_spark(fabric: Fabric, secrets: Mapping[str, str], project: Project | None) -> SparkEngine:
    """The engine of a Spark fabric: a new engine over the fabric's shared session."""
    settings = spark_settings(fabric, secrets, project)
    session = spark_session(settings)
    root = project.root if project is not None else None
    database = fabric.options.get("database")
    return SparkEngine(
        session,
        root,
        database=_text(database) if database else None,
        table_format=_text(fabric.options.get("table_format", "parquet")),
        conf={k: v for k, v in settings.conf if k.startswith("spark.sql.")},
        secrets=tuple(secrets.values()),
    )
