"""The cloud warehouses: Databricks SQL, BigQuery and Snowflake, through their own connectors.

Their connectors are optional packages, imported (as untyped modules) when a fabric is
opened. None of them has transactional DDL, so a table is replaced by one
``CREATE OR REPLACE TABLE … AS``, appended to by one INSERT and merged into by one MERGE;
files and data frames are loaded with INSERT statements of literal rows. Tables are written
without the pipeline's documentation as comments (`Driver.comments` is off): their writes
have no transaction to set them in.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from prophecy_jupyter.engines.warehouse.engine import Driver
from prophecy_jupyter.engines.warehouse.options import Settings
from prophecy_jupyter.errors import EngineError

if TYPE_CHECKING:
    from prophecy_jupyter.fabrics import Fabric

T = exp.DataType.Type
TEXT = exp.DataType.build("TEXT")
APPLICATION = "prophecy-jupyter"


def _information_schema(catalog: str | None) -> exp.Table:
    return exp.Table(
        this=exp.to_identifier("tables"),
        db=exp.to_identifier("information_schema"),
        catalog=exp.to_identifier(catalog, quoted=True) if catalog else None,
    )


def _count_where(source: exp.Table, *conditions: exp.Expr) -> exp.Query:
    return exp.select(exp.func("count", exp.Star())).from_(source).where(exp.and_(*conditions))


# -- Databricks -----------------------------------------------------------------------------
class DatabricksDriver(Driver):
    """A Databricks SQL warehouse. It has no temporary tables: the engine's own tables are
    tables of the default schema, dropped when the engine closes."""

    kind = "databricks"
    dialect = "databricks"
    temporary_tables = False

    def __init__(
        self,
        fabric: str,
        secrets: Mapping[str, str],
        timeout: float,
        module: Any,
        *,
        server_hostname: str,
        http_path: str,
        port: int,
        catalog: str | None,
        schema: str | None,
    ) -> None:
        super().__init__(fabric, secrets, timeout)
        self._sql = module
        self._token = secrets["access_token"]
        self.server_hostname = server_hostname
        self.http_path = http_path
        self.port = port
        self.catalog = catalog
        self.schema = schema

    @property
    def endpoint(self) -> str:
        return f"{self.server_hostname}:{self.port}"

    def connect(self) -> Any:
        return self._sql.connect(
            server_hostname=self.server_hostname,
            http_path=self.http_path,
            access_token=self._token,
            catalog=self.catalog,
            schema=self.schema,
            user_agent_entry=APPLICATION,
            enable_telemetry=False,
            _port=self.port,
            # Sockets may wait for results longer than a connection attempt may take; the
            # attempt itself is bounded by the engine.
            _socket_timeout=max(60.0, self.timeout),
            _retry_stop_after_attempts_count=2,
            _retry_stop_after_attempts_duration=self.budget,
            _retry_delay_min=0.1,
            _retry_delay_max=1.0,
        )

    def errors(self) -> tuple[type[BaseException], ...]:
        import urllib3

        return (self._sql.exc.Error, urllib3.exceptions.HTTPError, OSError)

    def alive(self, connection: Any) -> bool:
        return bool(getattr(connection, "open", True))

    def columns(self, connection: Any, description: Sequence[Any]) -> list[tuple[str, str]]:
        found = []
        for column in description:
            name, type_code = str(column[0]), str(column[1])
            precision, scale = column[4], column[5]
            if type_code.lower() == "decimal" and precision is not None:
                type_code = f"decimal({precision},{scale or 0})"
            found.append((name, type_code))
        return found

    def exists_query(self, table: exp.Table) -> exp.Query:
        schema = exp.Literal.string(table.db) if table.db else exp.func("current_schema")
        return _count_where(
            _information_schema(table.catalog or None),
            exp.func("lower", exp.column("table_schema")).eq(exp.func("lower", schema)),
            exp.func("lower", exp.column("table_name")).eq(
                exp.func("lower", exp.Literal.string(table.name))
            ),
        )

    def column_type(self, dtype: exp.DataType) -> exp.DataType:
        if dtype.this in {T.UUID, T.TIME, T.TIMETZ, T.INTERVAL, T.JSON}:
            return TEXT.copy()
        return dtype

    def json_value(self, value: exp.Expr) -> exp.Expr:
        return value


def databricks_driver(fabric: Fabric, secrets: Mapping[str, str]) -> DatabricksDriver:
    settings = Settings(
        fabric, secrets, ["server_hostname", "http_path", "port", "catalog", "schema"]
    )
    host = settings.required("server_hostname")
    path = settings.required("http_path")
    settings.required_secret("access_token")
    module = settings.module("databricks.sql")
    settings.module("databricks.sql.exc")
    return DatabricksDriver(
        fabric.name,
        settings.secrets,
        settings.timeout,
        module,
        server_hostname=host.removeprefix("https://").rstrip("/"),
        http_path=path,
        port=settings.integer("port", 443),
        catalog=settings.text("catalog"),
        schema=settings.text("schema"),
    )


# -- BigQuery -------------------------------------------------------------------------------
class _BigQueryConnection:
    """The DB-API connection with the client it runs on (dry runs describe queries)."""

    def __init__(self, client: Any, connection: Any) -> None:
        self.client = client
        self.connection = connection

    def cursor(self) -> Any:
        return self.connection.cursor()

    def close(self) -> None:
        self.connection.close()
        self.client.close()


class BigQueryDriver(Driver):
    """A BigQuery project; ``dataset`` is where bare table names resolve and where the
    engine's own tables go (BigQuery has temporary tables only inside scripts)."""

    kind = "bigquery"
    dialect = "bigquery"
    temporary_tables = False

    def __init__(
        self,
        fabric: str,
        secrets: Mapping[str, str],
        timeout: float,
        module: Any,
        *,
        project: str,
        dataset: str | None,
        location: str | None,
        endpoint: str | None,
    ) -> None:
        super().__init__(fabric, secrets, timeout)
        self._bigquery = module
        self._credentials_json = secrets.get("credentials_json")
        self.project = project
        self.dataset = dataset
        self.location = location
        self.api_endpoint = endpoint

    @property
    def endpoint(self) -> str:
        return self.api_endpoint or "bigquery.googleapis.com:443"

    def _credentials(self) -> Any:
        """The service account (or authorized user) of the secret, else Application
        Default Credentials; none at all against a custom endpoint (an emulator)."""
        auth = importlib.import_module("google.auth")
        anonymous = importlib.import_module("google.auth.credentials").AnonymousCredentials
        service_account = importlib.import_module("google.oauth2.service_account")
        authorized_user = importlib.import_module("google.oauth2.credentials")

        scopes = ["https://www.googleapis.com/auth/bigquery"]
        if self._credentials_json:
            try:
                info = json.loads(self._credentials_json)
            except ValueError:
                info = None
            kind = info.get("type") if isinstance(info, dict) else None
            if kind == "service_account":
                return service_account.Credentials.from_service_account_info(info, scopes=scopes)
            if kind == "authorized_user":
                return authorized_user.Credentials.from_authorized_user_info(info, scopes=scopes)
            raise ValueError(
                "the secret credentials_json is not the JSON key of a service account or "
                "an authorized user"
            )
        if self.api_endpoint:
            return anonymous()
        found, _ = auth.default(scopes=scopes)
        return found

    def connect(self) -> _BigQueryConnection:
        options = importlib.import_module("google.api_core.client_options")
        dbapi = importlib.import_module("google.cloud.bigquery.dbapi")
        bigquery = self._bigquery
        client = bigquery.Client(
            project=self.project,
            credentials=self._credentials(),
            location=self.location,
            client_options=options.ClientOptions(api_endpoint=self.api_endpoint)
            if self.api_endpoint
            else None,
        )
        try:
            # A dry run checks the credentials and the endpoint at once; one attempt, as
            # connecting is (statements keep the client's retries).
            client.query(
                "SELECT 1",
                job_config=bigquery.QueryJobConfig(dry_run=True),
                retry=None,
                job_retry=None,
                timeout=self.budget,
            )
        except BaseException:
            client.close()
            raise
        return _BigQueryConnection(client, dbapi.connect(client))

    def errors(self) -> tuple[type[BaseException], ...]:
        import google.api_core.exceptions
        import google.auth.exceptions
        import requests
        from google.cloud.bigquery import dbapi

        return (
            dbapi.Error,
            google.api_core.exceptions.GoogleAPIError,
            google.auth.exceptions.GoogleAuthError,
            requests.exceptions.RequestException,
            OSError,
        )

    def _job_config(self, **settings: Any) -> Any:
        if self.dataset:
            settings["default_dataset"] = f"{self.project}.{self.dataset}"
        return self._bigquery.QueryJobConfig(**settings)

    def execute(self, cursor: Any, sql: str) -> None:
        cursor.execute(sql, job_config=self._job_config())

    def describe(self, connection: Any, sql_text: str) -> list[tuple[str, str]]:
        """From a dry run: BigQuery types the query without running it."""
        job = connection.client.query(sql_text, job_config=self._job_config(dry_run=True))
        return [(field.name, _bigquery_type(field)) for field in job.schema]

    def columns(self, connection: Any, description: Sequence[Any]) -> list[tuple[str, str]]:
        return [(str(column[0]), str(column[1])) for column in description]

    def cancel(self, connection: Any, cursor: Any) -> None:
        job = getattr(cursor, "_query_job", None)
        if job is not None:
            job.cancel()

    def exists_query(self, table: exp.Table) -> exp.Query:
        dataset = table.db or self.dataset
        if not dataset:
            raise EngineError(
                f"fabric '{self.fabric}': table {table.name} names no dataset and the fabric "
                "has no option 'dataset'"
            )
        source = exp.Table(
            this=exp.to_identifier("TABLES"),
            db=exp.to_identifier("INFORMATION_SCHEMA"),
            catalog=exp.to_identifier(dataset, quoted=True),
        )
        return _count_where(source, exp.column("table_name").eq(exp.Literal.string(table.name)))

    def column_type(self, dtype: exp.DataType) -> exp.DataType:
        if dtype.this in {T.UUID, T.TIMETZ}:
            return TEXT.copy()
        return dtype


def _bigquery_type(field: Any) -> str:
    name = str(field.field_type)
    return f"ARRAY<{name}>" if field.mode == "REPEATED" else name


def bigquery_driver(fabric: Fabric, secrets: Mapping[str, str]) -> BigQueryDriver:
    settings = Settings(fabric, secrets, ["project", "dataset", "location", "endpoint"])
    project = settings.required("project")
    module = settings.module("google.cloud.bigquery")
    return BigQueryDriver(
        fabric.name,
        settings.secrets,
        settings.timeout,
        module,
        project=project,
        dataset=settings.text("dataset"),
        location=settings.text("location"),
        endpoint=settings.text("endpoint"),
    )


# -- Snowflake ------------------------------------------------------------------------------
SNOWFLAKE_CANCELLED = 604
"""Snowflake's error number for a statement cancelled while it ran."""


class SnowflakeDriver(Driver):
    """A Snowflake account: temporary tables of the session; DDL commits at once."""

    kind = "snowflake"
    dialect = "snowflake"

    def __init__(
        self,
        fabric: str,
        secrets: Mapping[str, str],
        timeout: float,
        module: Any,
        *,
        account: str,
        user: str,
        context: Mapping[str, str],
        host: str | None,
        port: int | None,
        protocol: str | None,
    ) -> None:
        super().__init__(fabric, secrets, timeout)
        self._connector = module
        self._password = secrets.get("password")
        self._private_key = secrets.get("private_key")
        self._passphrase = secrets.get("private_key_passphrase")
        self.account = account
        self.user = user
        self.context = dict(context)
        self.host = host
        self.port = port
        self.protocol = protocol

    @property
    def endpoint(self) -> str:
        host = self.host or f"{self.account}.snowflakecomputing.com"
        return f"{host}:{self.port or 443}"

    def _key(self) -> bytes:
        """The private key of the secret as the connector takes it (DER)."""
        from cryptography.hazmat.primitives import serialization

        assert self._private_key is not None
        passphrase = self._passphrase.encode() if self._passphrase else None
        try:
            key = serialization.load_pem_private_key(self._private_key.encode(), passphrase)
        except (ValueError, TypeError):
            raise ValueError("the secret private_key is not a PEM private key") from None
        return key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def connect(self) -> Any:
        settings: dict[str, Any] = {
            "account": self.account,
            "user": self.user,
            **self.context,
            "application": APPLICATION,
            "login_timeout": self.budget,
            "client_session_keep_alive": False,
        }
        if self._private_key:
            settings["private_key"] = self._key()
        else:
            settings["password"] = self._password
        for name, value in (("host", self.host), ("port", self.port), ("protocol", self.protocol)):
            if value is not None:
                settings[name] = value
        return self._connector.connect(**settings)

    def errors(self) -> tuple[type[BaseException], ...]:
        return (self._connector.errors.Error, OSError)

    def alive(self, connection: Any) -> bool:
        return not connection.is_closed()

    def cancelled(self, error: BaseException) -> bool:
        return getattr(error, "errno", None) == SNOWFLAKE_CANCELLED

    def cancel(self, connection: Any, cursor: Any) -> None:
        """Cancel the session's statements (the running cursor's query id is only known
        once it has finished)."""
        with connection.cursor() as other:
            other.execute("SELECT SYSTEM$CANCEL_ALL_QUERIES(%s)", (connection.session_id,))

    def describe(self, connection: Any, sql_text: str) -> list[tuple[str, str]]:
        """From the statement's metadata: Snowflake describes without running."""
        with connection.cursor() as cursor:
            return self.columns(connection, cursor.describe(sql_text) or [])

    def columns(self, connection: Any, description: Sequence[Any]) -> list[tuple[str, str]]:
        names = self._connector.constants.FIELD_ID_TO_NAME
        found = []
        for column in description:
            name, type_code, precision, scale = column[0], column[1], column[4], column[5]
            kind = str(names.get(type_code, type_code))
            if kind == "FIXED":
                kind = f"NUMBER({precision},{scale})" if precision is not None else "NUMBER"
            found.append((str(name), kind))
        return found

    def exists_query(self, table: exp.Table) -> exp.Query:
        schema = exp.Literal.string(table.db) if table.db else exp.CurrentSchema()
        return _count_where(
            _information_schema(table.catalog or None),
            exp.column("table_schema").eq(schema),
            exp.column("table_name").eq(exp.Literal.string(table.name)),
        )

    def column_type(self, dtype: exp.DataType) -> exp.DataType:
        if dtype.this in {T.UUID, T.INTERVAL}:
            return TEXT.copy()
        if dtype.this == T.TIMETZ:
            return exp.DataType.build("TIME")
        if dtype.this == T.JSON:
            return exp.DataType.build("VARIANT", dialect="snowflake")
        return dtype


def snowflake_driver(fabric: Fabric, secrets: Mapping[str, str]) -> SnowflakeDriver:
    settings = Settings(
        fabric,
        secrets,
        [
            "account", "user", "warehouse", "database", "schema", "role",
            "host", "port", "protocol",
        ],
    )  # fmt: skip
    account = settings.required("account")
    user = settings.required("user")
    if settings.secret("password") is None and settings.secret("private_key") is None:
        raise settings.error("the secret 'password' or 'private_key' needs a value")
    module = settings.module("snowflake.connector")
    settings.module("snowflake.connector.constants")
    context = {
        name: value
        for name in ("warehouse", "database", "schema", "role")
        if (value := settings.text(name)) is not None
    }
    port = settings.integer("port", 0) if "port" in fabric.options else None
    return SnowflakeDriver(
        fabric.name,
        settings.secrets,
        settings.timeout,
        module,
        account=account,
        user=user,
        context=context,
        host=settings.text("host"),
        port=port,
        protocol=settings.text("protocol"),
    )
