"""PostgreSQL through psycopg 3: transactional DDL, temporary tables, COPY for loading."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql
from sqlglot import exp

from prophecy_jupyter.engines.warehouse.engine import Driver
from prophecy_jupyter.engines.warehouse.local import LocalColumn
from prophecy_jupyter.gems.base import quoted

T = exp.DataType.Type
CANCEL_WAIT = 5.0
_SPELLED = re.compile(r"^(?P<name>[a-z0-9_]+)(?P<rest>(\(.*\))?(\[\])*)$")
TYPE_NAMES = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
    "varchar": "character varying",
    "bpchar": "character",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "time": "time without time zone",
    "timetz": "time with time zone",
    "varbit": "bit varying",
}
"""psycopg's names of built-in types as PostgreSQL itself writes them (``format_type``)."""


class PostgresDriver(Driver):
    """A PostgreSQL database: the connection runs in autocommit mode, and a write is one
    explicit transaction, DDL included, so a table is swapped in atomically together with
    its comments (``COMMENT ON``)."""

    kind = "postgres"
    dialect = "postgres"
    transactional_ddl = True
    comments = True
    arrays = True

    def __init__(
        self,
        fabric: str,
        secrets: Mapping[str, str],
        timeout: float,
        *,
        host: str,
        port: int,
        dbname: str | None,
        user: str | None,
        sslmode: str | None = None,
        schema: str | None = None,
    ) -> None:
        super().__init__(fabric, secrets, timeout)
        self.host = host
        self.port = port
        self.dbname = dbname
        self.user = user
        self.sslmode = sslmode
        self.schema = schema
        self._password = secrets.get("password")
        self._type_names: dict[int, str] = {}

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self) -> psycopg.Connection[Any]:
        settings: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "password": self._password,
            "sslmode": self.sslmode,
            # libpq waits at least 2 s; the engine gives up at ``timeout`` in any case.
            "connect_timeout": max(2, math.floor(self.budget)),
            "application_name": "prophecy-jupyter",
        }
        connection = psycopg.connect(
            autocommit=True, **{k: v for k, v in settings.items() if v is not None}
        )
        if self.schema:
            path = sql.Identifier(self.schema).as_string(connection)
            connection.execute("SELECT set_config('search_path', %s, false)", [path])
        return connection

    def errors(self) -> tuple[type[BaseException], ...]:
        return (psycopg.Error,)

    def alive(self, connection: Any) -> bool:
        return not connection.closed

    def cancel(self, connection: Any, cursor: Any) -> None:
        connection.cancel_safe(timeout=CANCEL_WAIT)

    def cancelled(self, error: BaseException) -> bool:
        return isinstance(error, psycopg.errors.QueryCanceled)

    def columns(self, connection: Any, description: Sequence[Any]) -> list[tuple[str, str]]:
        return [(column.name, self._type_name(connection, column)) for column in description]

    def _type_name(self, connection: Any, column: psycopg.Column) -> str:
        """The type as PostgreSQL spells it (``integer``, ``numeric(10,2)``, ``text[]``);
        types psycopg does not know (enums, extensions' types) are looked up once."""
        shown = column.type_display
        if not shown.isdigit():
            spelled = _SPELLED.match(shown)
            if spelled is None or spelled["name"] not in TYPE_NAMES:
                return shown
            name, rest = TYPE_NAMES[spelled["name"]], spelled["rest"]
            # ``timestamp(3)`` stays: PostgreSQL puts the precision inside the words.
            return shown if "(" in rest and " " in name else name + rest
        oid = int(shown)
        if oid not in self._type_names:
            row = connection.execute("SELECT format_type(%s, NULL)", [oid]).fetchone()
            self._type_names[oid] = str(row[0]) if row and row[0] else "unknown"
        return self._type_names[oid]

    def temporary(self, name: str) -> exp.Table:
        # Qualified, so that a table of the same name in the schema is never touched.
        return exp.Table(this=quoted(name), db=exp.to_identifier("pg_temp"))

    def qualified(self, connection: Any, table: exp.Table) -> exp.Table:
        """A bare name written into the current schema explicitly: as a bare name it could
        resolve to a temporary table first."""
        if table.args.get("db") is not None:
            return table
        row = connection.execute("SELECT current_schema()").fetchone()
        if not row or row[0] is None:
            raise psycopg.ProgrammingError("no schema to write into (check the search_path)")
        qualified = table.copy()
        qualified.set("db", quoted(str(row[0])))
        return qualified

    def exists_query(self, table: exp.Table) -> exp.Query:
        schema = exp.Literal.string(table.db) if table.db else exp.CurrentSchema()
        conditions = [
            exp.column("table_schema").eq(schema),
            exp.column("table_name").eq(exp.Literal.string(table.name)),
        ]
        if table.catalog:
            conditions.append(exp.column("table_catalog").eq(exp.Literal.string(table.catalog)))
        return (
            exp.select(exp.func("count", exp.Star()))
            .from_(exp.table_("tables", db="information_schema"))
            .where(exp.and_(*conditions))
        )

    def column_type(self, dtype: exp.DataType) -> exp.DataType:
        if dtype.this == T.JSON:
            return exp.DataType.build("JSONB")
        return dtype

    def json_value(self, value: exp.Expr) -> exp.Expr:
        return exp.cast(value, "JSONB", dialect=self.dialect)

    def load(
        self,
        connection: Any,
        table: exp.Table,
        columns: Sequence[LocalColumn],
        batches: Iterator[list[tuple[Any, ...]]],
    ) -> None:
        """COPY FROM STDIN: one statement, so a load that fails leaves no row behind."""
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(*(part.name for part in table.parts)),
            sql.SQL(", ").join(sql.Identifier(c.name) for c in columns),
        )
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for batch in batches:
                for row in batch:
                    copy.write_row(row)
