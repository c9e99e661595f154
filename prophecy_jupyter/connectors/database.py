"""Databases through SQLAlchemy: read a table or a query into Arrow, write Arrow rows to a
table in one transaction.

A ``database`` connection names a SQLAlchemy dialect and driver and where the server is:

.. code-block:: yaml

    name: crm
    kind: database
    options:
      dialect: postgresql+psycopg   # mysql+pymysql, mssql+pyodbc, oracle+oracledb, snowflake…
      host: db.internal
      port: 5432
      database: crm
      username: reporting
      connect_timeout: 10           # seconds; short, so a wrong host fails fast
      query.sslmode: require        # query.<key>: options of the driver, in the URL's query
    secrets: [password]

The URL is built with `sqlalchemy.engine.URL.create` from the parts, so the password is never
pasted into a string (a URL hides it in its ``repr``), and every message that leaves this
module is scrubbed of the connection's secret values, since drivers sometimes echo what they
were given.
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib.util
import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine

from prophecy_jupyter.connections import ResolvedConnection
from prophecy_jupyter.errors import ProphecyError

WriteMode = Literal["overwrite", "append", "error_if_exists", "merge"]

DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_BATCH_ROWS = 5000
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")


class DatabaseConnectorError(ProphecyError):
    """A database could not be reached, read or written; the message holds no secret."""

    code = "database"


@dataclass(frozen=True)
class Backend:
    """What is known of one SQLAlchemy backend: the sqlglot dialect its SQL is written in,
    the keyword its driver takes a connect timeout under, and the package extra that
    installs its default driver."""

    sqlglot: str
    timeout_arg: str | None
    extra: str
    transactional_ddl: bool


BACKENDS: dict[str, Backend] = {
    "postgresql": Backend("postgres", "connect_timeout", "postgres", True),
    "mysql": Backend("mysql", "connect_timeout", "mysql", False),
    "mariadb": Backend("mysql", "connect_timeout", "mysql", False),
    "mssql": Backend("tsql", "timeout", "mssql", True),
    "oracle": Backend("oracle", "tcp_connect_timeout", "oracle", False),
    "snowflake": Backend("snowflake", "login_timeout", "snowflake", False),
    "sqlite": Backend("sqlite", "timeout", "", True),
    "duckdb": Backend("duckdb", None, "", True),
}

DRIVER_MODULES: dict[str, str] = {
    "psycopg": "psycopg",
    "psycopg2": "psycopg2",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "pymysql": "pymysql",
    "mysqldb": "MySQLdb",
    "mysqlconnector": "mysql.connector",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
    "oracledb": "oracledb",
    "cx_oracle": "cx_Oracle",
    "snowflake": "snowflake.sqlalchemy",
    "pysqlite": "sqlite3",
    "duckdb": "duckdb_engine",
}
"""The module each driver name imports, to tell a missing driver from a broken server."""

DEFAULT_DRIVERS = {
    "postgresql": "psycopg",
    "mysql": "pymysql",
    "mariadb": "pymysql",
    "mssql": "pyodbc",
    "oracle": "oracledb",
    "snowflake": "snowflake",
    "sqlite": "pysqlite",
    "duckdb": "duckdb",
}


def backend_of(dialect: str) -> tuple[str, str]:
    """``postgresql+psycopg`` → (``postgresql``, ``psycopg``), with the default driver when
    the dialect names none."""
    name, _, driver = dialect.partition("+")
    name = name.strip().lower()
    if name not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise DatabaseConnectorError(f"unknown database dialect '{dialect}' (known: {known})")
    return name, (driver.strip().lower() or DEFAULT_DRIVERS[name])


def sqlglot_dialect(connection: ResolvedConnection) -> str:
    """The sqlglot dialect SQL for this connection is parsed and written in."""
    name, _ = backend_of(str(connection.option("dialect", "")))
    return BACKENDS[name].sqlglot


def database_url(connection: ResolvedConnection) -> URL:
    """The SQLAlchemy URL of a ``database`` connection, built from its parts (never by
    pasting the password into a string)."""
    if connection.kind != "database":
        raise DatabaseConnectorError(
            f"connection '{connection.name}' is a {connection.kind} connection, not a database"
        )
    dialect = connection.option("dialect")
    if not isinstance(dialect, str) or not dialect:
        raise DatabaseConnectorError(
            f"connection '{connection.name}' needs a 'dialect' option, e.g. postgresql+psycopg"
        )
    name, driver = backend_of(dialect)
    port = connection.option("port")
    if port is not None and (isinstance(port, bool) or not str(port).isdigit()):
        raise DatabaseConnectorError(f"connection '{connection.name}': port must be a number")
    query = {
        key.removeprefix("query."): str(value)
        for key, value in sorted(connection.options.items())
        if key.startswith("query.")
    }
    text = {
        key: None if connection.option(key) is None else str(connection.option(key))
        for key in ("host", "database", "username")
    }
    return URL.create(
        f"{name}+{driver}",
        username=text["username"],
        password=connection.secrets.get("password"),
        host=text["host"],
        port=int(port) if port is not None else None,
        database=text["database"],
        query=query,
    )


def scrub(message: str, secrets: Mapping[str, str]) -> str:
    """``message`` with every secret value (and its URL-quoted spelling) masked."""
    from urllib.parse import quote, quote_plus

    for value in secrets.values():
        if len(value) >= 3:
            for spelling in {value, quote(value, safe=""), quote_plus(value)}:
                message = message.replace(spelling, "***")
    return message


def _driver_missing(name: str, driver: str) -> DatabaseConnectorError | None:
    module = DRIVER_MODULES.get(driver)
    if module is None:
        return None
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    extra = BACKENDS[name].extra
    hint = f"pip install 'prophecy-jupyter[{extra}]'" if extra else f"pip install {module}"
    return DatabaseConnectorError(f"the {name}+{driver} driver is not installed: {hint}")


class Database:
    """One ``database`` connection: a SQLAlchemy engine made on first use, closed by
    `close` (or by leaving a ``with`` block)."""

    def __init__(self, connection: ResolvedConnection, batch_rows: int = DEFAULT_BATCH_ROWS):
        self.connection = connection
        self.url = database_url(connection)
        self.backend_name, self.driver = backend_of(self.url.drivername)
        self.backend = BACKENDS[self.backend_name]
        self.batch_rows = batch_rows
        self._engine: Engine | None = None

    def __repr__(self) -> str:
        return f"Database({self.connection.name!r}, {self.url!r})"

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def dialect(self) -> str:
        """The sqlglot dialect of this database's SQL."""
        return self.backend.sqlglot

    def connect_timeout(self) -> float:
        raw = self.connection.option("connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        try:
            seconds = float(raw)
        except (TypeError, ValueError):
            raise DatabaseConnectorError(
                f"connection '{self.connection.name}': connect_timeout must be a number"
            ) from None
        return max(seconds, 0.1)

    def engine(self) -> Engine:
        if self._engine is None:
            missing = _driver_missing(self.backend_name, self.driver)
            if missing is not None:
                raise missing
            connect_args: dict[str, Any] = {}
            if self.backend.timeout_arg is not None:
                seconds = self.connect_timeout()
                # Most drivers take whole seconds; oracledb and sqlite take fractions.
                whole = self.backend.timeout_arg != "tcp_connect_timeout"
                value = max(1, round(seconds)) if whole else seconds
                connect_args[self.backend.timeout_arg] = value
            try:
                self._engine = sa.create_engine(
                    self.url, connect_args=connect_args, pool_pre_ping=True
                )
            except (sa_exc.SQLAlchemyError, ImportError, ValueError, TypeError) as exc:
                raise self._error("cannot open", exc) from None
        return self._engine

    def _error(self, doing: str, exc: BaseException) -> DatabaseConnectorError:
        """A clean error: the driver's own words (not SQLAlchemy's boilerplate and echoed
        statement), without any secret."""
        if isinstance(exc, ImportError):
            missing = _driver_missing(self.backend_name, self.driver)
            if missing is not None:
                return missing
        original = getattr(exc, "orig", None)
        text = str(original if original is not None else exc).strip()
        text = text.split("\n(Background on this error")[0].split("\n[SQL:")[0].strip()
        text = " ".join(text.split())[:600] or type(exc).__name__
        where = self.url.host or self.url.database or self.backend_name
        message = f"{doing} database '{self.connection.name}' ({where}): {text}"
        return DatabaseConnectorError(scrub(message, self.connection.secrets))

    @contextmanager
    def _connected(self, doing: str) -> Iterator[Connection]:
        try:
            with self.engine().connect() as conn:
                yield conn
        except DatabaseConnectorError:
            raise
        except (sa_exc.SQLAlchemyError, OSError, ImportError) as exc:
            raise self._error(doing, exc) from None
        except Exception as exc:  # drivers raise their own types past SQLAlchemy's wrapping
            raise self._error(doing, exc) from None

    def check(self) -> None:
        """Connect and run nothing: whether the server answers and the login works."""
        with self._connected("cannot connect to"):
            pass

    # -- reading ---------------------------------------------------------------------------
    def read_sql(self, sql: str) -> pa.Table:
        """Every row of one SELECT, written in this database's dialect, as an Arrow table.

        The text is sent as it is (no bind-parameter processing), so callers bind values as
        literals in the SQL they render, never by pasting text."""
        with self._connected("cannot read from") as conn:
            # No parameters at all: the driver must not read % or : in literals as markers.
            result = conn.execution_options(no_parameters=True).exec_driver_sql(sql)
            description = result.cursor.description if result.cursor is not None else None
            names = list(result.keys())
            rows = result.fetchall()
        dbapi = getattr(self.engine().dialect, "dbapi", None)
        types = [
            _fallback_type(dbapi, description[i][1] if description else None)
            for i in range(len(names))
        ]
        return _arrow([tuple(r) for r in rows], names, types)

    def read_table(self, table: str, limit: int | None = None) -> pa.Table:
        """Every row of ``[schema.]table`` (at most ``limit``), typed as the table is."""
        with self._connected("cannot read from") as conn:
            reflected = self._reflect(conn, table)
            if reflected is None:
                raise DatabaseConnectorError(
                    f"database '{self.connection.name}' has no table '{table}'"
                )
            query = sa.select(reflected)
            if limit is not None:
                query = query.limit(limit)
            rows = conn.execute(query).fetchall()
        names = [c.name for c in reflected.columns]
        types = [_arrow_type(c.type) for c in reflected.columns]
        return _arrow([tuple(r) for r in rows], names, types)

    def _reflect(self, conn: Connection, table: str) -> sa.Table | None:
        schema, name = _split(table)
        if not sa.inspect(conn).has_table(name, schema=schema):
            return None
        return sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)

    # -- writing ---------------------------------------------------------------------------
    def write_table(
        self,
        table: str,
        rows: pa.Table,
        mode: WriteMode = "overwrite",
        keys: Sequence[str] = (),
    ) -> int:
        """Write ``rows`` to ``[schema.]table`` in one transaction; returns the row count.

        - overwrite: the table's rows are deleted and ``rows`` inserted, in one
          transaction; the table's definition (types, constraints, grants, indexes) stays.
          A failure on any batch rolls back, leaving the old rows.
        - append: ``rows`` are inserted.
        - error_if_exists: refuses to touch an existing table.
        - merge: rows whose ``keys`` match an incoming row are replaced by it, others kept,
          new keys inserted (delete-then-insert on the keys, so no unique constraint is
          needed on the table).

        A missing table is created from the rows' Arrow types (nested values as JSON text),
        in the same transaction where the database's DDL is transactional.
        """
        if not TABLE_NAME.match(table):
            raise DatabaseConnectorError(f"'{table}' is not a [schema.]table name")
        if mode == "merge":
            self._check_keys(rows, keys)
        with self._connected("cannot write to") as conn:
            existing = self._reflect(conn, table)
            conn.rollback()  # end the transaction reflecting began, before the writing one
            if existing is not None and mode == "error_if_exists":
                raise DatabaseConnectorError(
                    f"table '{table}' already exists in database '{self.connection.name}'"
                )
            if existing is None and not self.backend.transactional_ddl:
                # DDL commits at once here: the new table is made first, empty.
                existing = self._new_table(table, rows.schema)
                with conn.begin():
                    existing.create(conn)
            with conn.begin():
                if existing is None:
                    existing = self._new_table(table, rows.schema)
                    existing.create(conn)
                self._check_columns(existing, rows.schema, table)
                if mode == "overwrite":
                    conn.execute(existing.delete())
                elif mode == "merge":
                    self._delete_keys(conn, existing, rows, keys)
                self._insert(conn, existing, rows)
        return int(rows.num_rows)

    @staticmethod
    def _new_table(table: str, schema: pa.Schema) -> sa.Table:
        schema_name, name = _split(table)
        return sa.Table(
            name,
            sa.MetaData(),
            *(sa.Column(f.name, _sql_type(f.type)) for f in schema),
            schema=schema_name,
        )

    @staticmethod
    def _check_columns(target: sa.Table, schema: pa.Schema, table: str) -> None:
        known = {c.name.lower() for c in target.columns}
        extra = [f.name for f in schema if f.name.lower() not in known]
        if extra:
            raise DatabaseConnectorError(
                f"table '{table}' has no column {', '.join(repr(e) for e in extra)}"
            )

    @staticmethod
    def _check_keys(rows: pa.Table, keys: Sequence[str]) -> None:
        if not keys:
            raise DatabaseConnectorError("merge needs at least one key column")
        names = {n.lower(): n for n in rows.column_names}
        missing = [k for k in keys if k.lower() not in names]
        if missing:
            raise DatabaseConnectorError(f"merge key column(s) not in the rows: {missing}")
        columns = [rows.column(names[k.lower()]).to_pylist() for k in keys]
        seen: set[tuple[Any, ...]] = set()
        for key in zip(*columns, strict=True):
            if key in seen:
                raise DatabaseConnectorError(
                    f"merge keys must be unique in the rows written; {key!r} repeats"
                )
            seen.add(key)

    def _delete_keys(
        self, conn: Connection, target: sa.Table, rows: pa.Table, keys: Sequence[str]
    ) -> None:
        by_name = {c.name.lower(): c for c in target.columns}
        names = {n.lower(): n for n in rows.column_names}
        condition = sa.and_(
            *(by_name[k.lower()] == sa.bindparam(f"__key_{i}") for i, k in enumerate(keys))
        )
        statement = target.delete().where(condition)
        for batch in rows.select([names[k.lower()] for k in keys]).to_batches(self.batch_rows):
            values = [
                {f"__key_{i}": v for i, v in enumerate(row.values())} for row in batch.to_pylist()
            ]
            if values:
                conn.execute(statement, values)

    def _insert(self, conn: Connection, target: sa.Table, rows: pa.Table) -> None:
        by_name = {c.name.lower(): c.name for c in target.columns}
        renamed = rows.rename_columns([by_name[n.lower()] for n in rows.column_names])
        nested = {f.name for f in renamed.schema if _is_nested(f.type)}
        for batch in renamed.to_batches(self.batch_rows):
            values = batch.to_pylist()
            if nested:
                for row in values:
                    for name in nested:
                        if row[name] is not None:
                            row[name] = json.dumps(row[name], default=str)
            if values:
                conn.execute(target.insert(), values)


def _split(table: str) -> tuple[str | None, str]:
    schema, _, name = table.rpartition(".")
    return (schema or None), name


def _is_nested(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_struct(dtype)
        or pa.types.is_list(dtype)
        or pa.types.is_large_list(dtype)
        or pa.types.is_map(dtype)
    )


def _sql_type(dtype: pa.DataType) -> sa.types.TypeEngine[Any]:
    """The column type a new table gets for an Arrow type."""
    if pa.types.is_boolean(dtype):
        return sa.Boolean()
    if pa.types.is_integer(dtype):
        return sa.BigInteger() if dtype.bit_width > 32 else sa.Integer()
    if pa.types.is_floating(dtype):
        return sa.Float()
    if pa.types.is_decimal(dtype):
        return sa.Numeric(dtype.precision, dtype.scale)
    if pa.types.is_timestamp(dtype):
        return sa.DateTime(timezone=dtype.tz is not None)
    if pa.types.is_date(dtype):
        return sa.Date()
    if pa.types.is_time(dtype):
        return sa.Time()
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return sa.LargeBinary()
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or _is_nested(dtype):
        return sa.Text()
    return sa.Text()


def _arrow_type(sql_type: sa.types.TypeEngine[Any]) -> pa.DataType | None:
    """The Arrow type of a reflected column, or None to infer it from the values."""
    if isinstance(sql_type, sa.Boolean):
        return pa.bool_()
    if isinstance(sql_type, sa.SmallInteger):
        return pa.int16()
    if isinstance(sql_type, sa.BigInteger):
        return pa.int64()
    if isinstance(sql_type, sa.Integer):
        return pa.int32()
    if isinstance(sql_type, sa.Float):
        return pa.float64()
    if isinstance(sql_type, sa.Numeric):
        precision, scale = sql_type.precision, sql_type.scale
        if precision is not None and 0 < precision <= 38:
            return pa.decimal128(precision, scale or 0)
        return None
    if isinstance(sql_type, sa.DateTime):
        return pa.timestamp("us", tz="UTC" if sql_type.timezone else None)
    if isinstance(sql_type, sa.Date):
        return pa.date32()
    if isinstance(sql_type, sa.Time):
        return pa.time64("us")
    if isinstance(sql_type, sa.LargeBinary):
        return pa.binary()
    if isinstance(sql_type, sa.String):
        return pa.string()
    return None


def _fallback_type(dbapi: Any, type_code: Any) -> pa.DataType | None:
    """A column type from the driver's description, for columns with no value to infer
    it from (an empty result): the PEP 249 type objects say string, number or date."""
    if dbapi is None or type_code is None:
        return None
    for attribute, dtype in (
        ("NUMBER", pa.float64()),
        ("DATETIME", pa.timestamp("us")),
        ("BINARY", pa.binary()),
        ("STRING", pa.string()),
    ):
        marker = getattr(dbapi, attribute, None)
        try:
            if marker is not None and type_code == marker:
                return dtype
        except Exception:  # a driver's type object may refuse an odd comparison
            continue
    return None


def _arrow(
    rows: list[tuple[Any, ...]], names: list[str], types: Sequence[pa.DataType | None]
) -> pa.Table:
    """Rows as an Arrow table: each column typed as declared where known, else inferred
    from its values, else (no value at all) the driver's hint or text. Values Arrow cannot
    hold as they are (mixed types, unknown objects) become text."""
    arrays = []
    fields = []
    for index, name in enumerate(names):
        values = [row[index] for row in rows]
        declared = types[index] if index < len(types) else None
        array = _array(values, declared)
        arrays.append(array)
        fields.append(pa.field(name, array.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _array(values: list[Any], declared: pa.DataType | None) -> pa.Array:
    if declared is not None:
        try:
            return pa.array(values, type=declared)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
    if all(v is None for v in values):
        return pa.array(values, type=declared or pa.string())
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([None if v is None else _text(v) for v in values], type=pa.string())


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    if isinstance(value, (dt.date, dt.time, decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def open_database(connection: ResolvedConnection) -> Database:
    """The `Database` of a ``database`` connection (nothing is contacted yet)."""
    return Database(connection)
