"""A throwaway PostgreSQL server per test process, from the machine's PostgreSQL 15 binaries.

The cluster lives in a temporary folder (data, log and Unix socket), listens on a free port
of 127.0.0.1 with ``fsync`` off, and is stopped at once (``-m immediate``) when the tests of
the process end. Its superuser ``postgres`` logs in without a password (trust), while the
role the tests connect as, ``prophecy``, must give its password (SCRAM over TCP), so that
every engine test goes through real password authentication.

- `postgres`: the server (session-scoped): host, port, user, password, dbname.
- `postgres_database`: a database of its own for one test, dropped after it.
- `postgres_engine`: a Postgres engine on that database whose relative paths resolve in
  the test's ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from prophecy_jupyter.engines.warehouse import WarehouseEngine, open_postgres
from prophecy_jupyter.fabrics import Fabric

__all__ = ["PostgresServer", "postgres", "postgres_database", "postgres_engine"]

BINARIES = Path(os.environ.get("PROPHECY_PG_BIN", "/usr/lib/postgresql/15/bin"))
SYSTEM_USER = "postgres"
"""PostgreSQL refuses to run as root: a root test process runs the server as this user."""
SUPERUSER = "postgres"
ROLE = "prophecy"


@dataclasses.dataclass(frozen=True)
class PostgresServer:
    """How to reach the test server (or one database of it) as the password role."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    socket_dir: str
    superuser: str = SUPERUSER

    def fabric(self, name: str = "test-postgres", **options: str | int | float) -> Fabric:
        """A postgres fabric for this database; its secret is `secrets`."""
        settings: dict[str, str | int | float | bool] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "timeout_seconds": 5,
        }
        settings.update(options)
        return Fabric(name=name, kind="postgres", options=settings, secrets=["password"])

    def secrets(self) -> dict[str, str]:
        return {"password": self.password}

    def engine(self, root: Path, **options: str | int | float) -> WarehouseEngine:
        """A Postgres engine on this database, relative paths resolving in ``root``."""
        return open_postgres(
            self.fabric("test-postgres", **options), self.secrets(), None, root=root
        )

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """A superuser connection in autocommit mode (over the Unix socket, trusted)."""
        return psycopg.connect(
            host=self.socket_dir, port=self.port, user=self.superuser, dbname=dbname,
            autocommit=True,
        )  # fmt: skip


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", SYSTEM_USER, "--", *command]
    return command


def _run(command: list[str]) -> None:
    done = subprocess.run(
        _as_server_user(command), capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[:1])} failed: {done.stderr.strip()[-2000:]}")


def _start(folder: Path, data: Path) -> int:
    """Start the cluster on a free port of 127.0.0.1; returns the port."""
    log = folder / "log"
    for _ in range(5):  # another process may take the free port first
        port = _free_port()
        options = (
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        try:
            _run(
                [str(BINARIES / "pg_ctl"), "-D", str(data), "-w", "-t", "60",
                 "-l", str(log), "-o", options, "start"]
            )  # fmt: skip
        except RuntimeError:
            continue
        return port
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"PostgreSQL did not start: {tail}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 cluster for this test process, with the password role ``prophecy``
    owning the database ``prophecy``; skipped where the server binaries are missing."""
    if not (BINARIES / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {BINARIES}")
    # Not under pytest's base temp folder, which is private to root: the server user must
    # reach the data and socket folders.
    folder = Path(tempfile.mkdtemp(prefix="prophecy-pg-"))
    data = folder / "data"
    try:
        if os.geteuid() == 0:
            shutil.chown(folder, SYSTEM_USER)
        _run(
            [str(BINARIES / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust",
             "-E", "UTF8", "--no-sync", "--locale=C"]
        )  # fmt: skip
        # The superuser is trusted; everyone else logs in with a password over TCP.
        (data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {SUPERUSER} 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        password = secrets.token_urlsafe(18)
        server = PostgresServer(
            "127.0.0.1", _start(folder, data), ROLE, password, ROLE, str(folder)
        )
        with server.admin() as admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(password)
                )
            )
            admin.execute(sql.SQL("CREATE DATABASE {0} OWNER {0}").format(sql.Identifier(ROLE)))
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                _run([str(BINARIES / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres: PostgresServer) -> Iterator[PostgresServer]:
    """A fresh database, owned by the password role, for one test; dropped after it (with
    any connection a test left open)."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    with postgres.admin() as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(ROLE)
            )
        )
    try:
        yield dataclasses.replace(postgres, dbname=name)
    finally:
        with postgres.admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def postgres_engine(postgres_database: PostgresServer, tmp_path: Path) -> Iterator[WarehouseEngine]:
    """A Postgres engine on a fresh database, relative paths resolving in ``tmp_path``."""
    with postgres_database.engine(tmp_path) as engine:
        yield engine
