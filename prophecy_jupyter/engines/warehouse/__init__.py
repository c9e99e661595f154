"""SQL warehouse fabrics: PostgreSQL, Databricks SQL, BigQuery and Snowflake.

One engine, `WarehouseEngine`, runs the compiled statements on any of them through its
DB-API driver, rendered in the warehouse's dialect; a `Driver` per kind holds what differs.
Each ``open_*`` function makes the engine of a fabric from its options and secrets, as
``prophecy_jupyter.fabrics.ENGINE_OPENERS`` names them. Nothing connects until the engine's
first statement; a warehouse that cannot be reached fails then, within the fabric's
``timeout_seconds`` (default 5), with a one-line error naming the fabric and the endpoint.
Secrets (passwords, tokens, keys) are handed to the driver only: they never appear in an
error message, scrubbed from the driver's messages too.

- postgres: options host, port, dbname (or database), user, sslmode, schema; secret
  password.
- databricks: options server_hostname, http_path, port, catalog, schema; secret
  access_token.
- bigquery: options project, dataset, location, endpoint; secret credentials_json (a
  service account's or authorized user's JSON key), else Application Default Credentials.
- snowflake: options account, user, warehouse, database, schema, role, host, port,
  protocol; secret password, or private_key (PEM) with private_key_passphrase if it has one.

Every kind also takes ``timeout_seconds``. The drivers are optional packages
(``pip install 'prophecy-jupyter[postgres]'`` …), imported when a fabric is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from prophecy_jupyter.engines.warehouse.engine import Driver, WarehouseEngine
from prophecy_jupyter.engines.warehouse.options import Settings

if TYPE_CHECKING:
    from prophecy_jupyter.fabrics import Fabric
    from prophecy_jupyter.model.project import Project

__all__ = [
    "Driver",
    "WarehouseEngine",
    "open_bigquery",
    "open_databricks",
    "open_postgres",
    "open_snowflake",
]


def _root(project: Project | None, root: Path | str | None) -> Path | str | None:
    """Where relative file paths resolve: the given folder, else the project's."""
    if root is not None:
        return root
    return project.root if project is not None else None


def open_postgres(
    fabric: Fabric,
    secrets: Mapping[str, str],
    project: Project | None = None,
    *,
    root: Path | str | None = None,
) -> WarehouseEngine:
    """A PostgreSQL database (psycopg 3)."""
    settings = Settings(
        fabric, secrets, ["host", "port", "dbname", "database", "user", "sslmode", "schema"]
    )
    settings.module("psycopg")
    from prophecy_jupyter.engines.warehouse.postgres import PostgresDriver

    driver = PostgresDriver(
        fabric.name,
        settings.secrets,
        settings.timeout,
        host=settings.text("host", default="localhost") or "localhost",
        port=settings.integer("port", 5432),
        dbname=settings.text("dbname", "database"),
        user=settings.text("user"),
        sslmode=settings.text("sslmode"),
        schema=settings.text("schema"),
    )
    return WarehouseEngine(driver, _root(project, root))


def open_databricks(
    fabric: Fabric,
    secrets: Mapping[str, str],
    project: Project | None = None,
    *,
    root: Path | str | None = None,
) -> WarehouseEngine:
    """A Databricks SQL warehouse (databricks-sql-connector)."""
    from prophecy_jupyter.engines.warehouse.cloud import databricks_driver

    return WarehouseEngine(databricks_driver(fabric, secrets), _root(project, root))


def open_bigquery(
    fabric: Fabric,
    secrets: Mapping[str, str],
    project: Project | None = None,
    *,
    root: Path | str | None = None,
) -> WarehouseEngine:
    """A BigQuery project (google-cloud-bigquery's DB-API)."""
    from prophecy_jupyter.engines.warehouse.cloud import bigquery_driver

    return WarehouseEngine(bigquery_driver(fabric, secrets), _root(project, root))


def open_snowflake(
    fabric: Fabric,
    secrets: Mapping[str, str],
    project: Project | None = None,
    *,
    root: Path | str | None = None,
) -> WarehouseEngine:
    """A Snowflake account (snowflake-connector-python)."""
    from prophecy_jupyter.engines.warehouse.cloud import snowflake_driver

    return WarehouseEngine(snowflake_driver(fabric, secrets), _root(project, root))
