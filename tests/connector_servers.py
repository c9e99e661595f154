"""Real servers on 127.0.0.1 for the connector tests: S3 (moto's server), SFTP (asyncssh)
and SMTP (aiosmtpd), each on a free port, started and stopped by a fixture."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import asyncssh
import boto3
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from moto.server import ThreadedMotoServer

S3_KEY = "AKIAPROPHECYTEST"
S3_SECRET = "s3-secret-value-Zq9"
SFTP_USER = "ada"
SFTP_PASSWORD = "sftp-pass-W7x"
SMTP_USER = "mailer"
SMTP_PASSWORD = "smtp-pass-K3v"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- S3 -----------------------------------------------------------------------------------
@dataclass
class S3Server:
    endpoint: str
    bucket: str
    client: Any

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)

    def get(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def keys(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, request: pytest.FixtureRequest) -> Iterator[S3Server]:
    """An empty bucket of its own for each test, on the module's S3 server."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )
    bucket = "b-" + "".join(c for c in request.node.name.lower() if c.isalnum())[:50]
    client.create_bucket(Bucket=bucket)
    yield S3Server(s3_endpoint, bucket, client)
    client.close()


# -- SFTP ---------------------------------------------------------------------------------
@dataclass
class SFTPServer:
    port: int
    root: Path
    host_key: str
    """The server's public key as ``known_hosts`` spells it (``ssh-ed25519 AAAA…``)."""


_OPEN: set[Any] = set()
"""Server-side connections still open, closed when their server stops."""


class _PasswordServer(asyncssh.SSHServer):
    def connection_made(self, conn: Any) -> None:
        self.conn = conn
        _OPEN.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        _OPEN.discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == SFTP_USER and password == SFTP_PASSWORD


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SFTPServer]:
    """asyncssh's SFTP server over ``tmp_path/sftp`` (its ``/``), password sign-in, run on
    an event loop of its own in a background thread."""
    root = tmp_path / "sftp"
    root.mkdir()
    key = asyncssh.generate_private_key("ssh-ed25519")
    public = key.export_public_key().decode().split()
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    def sftp_factory(channel: Any) -> asyncssh.SFTPServer:
        return asyncssh.SFTPServer(channel, chroot=os.fsencode(root))

    async def start() -> None:
        holder["server"] = await asyncssh.listen(
            "127.0.0.1",
            port,
            server_host_keys=[key],
            server_factory=_PasswordServer,
            sftp_factory=sftp_factory,
        )
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10), "the SFTP server did not start"
    try:
        yield SFTPServer(port, root, f"{public[0]} {public[1]}")
    finally:

        async def stop() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()
            # Sessions whose clients have just hung up may still be winding down.
            for conn in list(_OPEN):
                conn.close()
                await conn.wait_closed()
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# -- SMTP ---------------------------------------------------------------------------------
@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: Message


@dataclass
class SMTPServer:
    port: int
    received: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class _Inbox:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_DATA(  # noqa: N802 (the name aiosmtpd calls)
        self, smtp: Any, session: Any, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        self.server.received.append(
            Received(
                str(envelope.mail_from),
                [str(r) for r in envelope.rcpt_tos],
                message_from_bytes(content),
            )
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    """aiosmtpd on a free port, requiring AUTH (LOGIN or PLAIN) with one user."""
    server = SMTPServer(free_port())

    def authenticate(
        smtp: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == SMTP_USER
            and data.password.decode() == SMTP_PASSWORD
        )
        if ok:
            server.logins.append(SMTP_USER)
        return AuthResult(success=ok, handled=False)

    controller = Controller(
        _Inbox(server),
        hostname="127.0.0.1",
        port=server.port,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
