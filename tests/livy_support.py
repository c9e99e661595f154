"""A Livy-compatible REST server backed by local PySpark, for testing the real Livy client.

``livy_server`` is the URL of one such server for the whole test process (CSRF protection
on, as production Livy servers have it), ``livy_test_server`` the server object itself (to
end a session as a cluster would, or to look at the requests it received). The server runs
on the process's local Spark session (`local_spark_session`), started on first use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.spark_support import local_spark_session

if TYPE_CHECKING:
    from tests.livy_server import LivyServer

__all__ = ["livy_server", "livy_test_server"]


@pytest.fixture(scope="session")
def livy_test_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivyServer]:
    """A Livy-compatible server in a thread on 127.0.0.1 and a free port."""
    from tests.livy_server import LivyServer

    spark = local_spark_session(tmp_path_factory.mktemp("livy") / "warehouse")
    with LivyServer(spark, csrf=True, start_delay=0.2) as server:
        yield server


@pytest.fixture(scope="session")
def livy_server(livy_test_server: LivyServer) -> str:
    """The URL of the Livy-compatible test server (``http://127.0.0.1:PORT``)."""
    return livy_test_server.url
