"""A local Spark session shared by the tests of one process (the JVM starts in seconds).

`local_spark_session` is a plain function, for anything that needs a local PySpark session
of its own (a test server backed by Spark); the ``spark`` fixture is one such session for the
whole test process, and ``spark_engine`` a `SparkEngine` on it rooted in the test's folder,
working in a schema of its own so that tests never see each other's tables.

PySpark is imported only when a fixture is used: collecting tests stays fast.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from prophecy_jupyter.engines.spark import SparkEngine

__all__ = ["free_port", "local_spark_session", "spark", "spark_engine"]

JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def local_spark_session(
    warehouse: Path, *, master: str = "local[2]", hive: bool = False
) -> SparkSession:
    """A local SparkSession for tests: ``master`` threads, no UI or progress bars, two
    shuffle partitions, tables in ``warehouse`` (Derby's files and log there too with
    ``hive``), the fast-start JVM flags, bound to 127.0.0.1.

    A process has one SparkContext: a second call returns the running session.
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    warehouse.mkdir(parents=True, exist_ok=True)
    builder = (
        SparkSession.builder.master(master)
        .appName("prophecy-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.warehouse.dir", str(warehouse.resolve()))
        .config(
            "spark.driver.extraJavaOptions",
            f"{JVM_OPTIONS} -Dderby.system.home={warehouse.resolve()}",
        )
    )
    if hive:
        metastore = (warehouse / "metastore_db").resolve()
        builder = builder.enableHiveSupport().config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={metastore};create=true",
        )
    session: SparkSession = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """The test process's Spark session, stopped when the tests end."""
    session = local_spark_session(tmp_path_factory.mktemp("spark") / "warehouse")
    yield session
    session.stop()


@pytest.fixture
def spark_engine(spark: SparkSession, tmp_path: Path) -> Iterator[SparkEngine]:
    """A SparkEngine rooted in ``tmp_path``, in a schema of its own."""
    from prophecy_jupyter.engines.spark import SparkEngine

    with SparkEngine(spark, root=tmp_path, database=f"test_{uuid.uuid4().hex[:12]}") as engine:
        yield engine
