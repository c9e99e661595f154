"""Real Git remotes for the version-control tests: a bare repository on disk, and a smart
HTTP server, ``git http-backend`` run as CGI by a small threaded Python HTTP server on
127.0.0.1 that requires HTTP basic authentication with a token.

Git talks to these exactly as it talks to a hosting service, so clones, fetches and pushes
go through the same credential handling (askpass, 401 challenges) users meet.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

GIT_HTTP_BACKEND = "http-backend"


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` (a test's own repository) and return its output."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def bare_remote(path: Path, branch: str = "main") -> Path:
    """An empty bare repository at ``path``, as a hosting service creates one."""
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "--bare", f"--initial-branch={branch}")
    return path


@dataclass
class HttpGitServer:
    """``git http-backend`` over the bare repositories in ``root``, behind basic auth."""

    root: Path
    token: str
    username: str = "alice"
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(method, path with query, authenticated user or None) of every request."""

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the tests assert on `requests` instead."""

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _user(self) -> str | None:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return None
                try:
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except ValueError:
                    return None
                return user if password == server.token and user else None

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks: list[bytes] = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _serve(self) -> None:
                user = self._user()
                server.requests.append((self.command, self.path, user))
                body = self._body() if self.command == "POST" else b""
                if user is None:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                parts = urlsplit(self.path)
                env = {
                    "PATH": os.environ.get("PATH", ""),
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "GIT_CONFIG_NOSYSTEM": "1",
                    "REMOTE_USER": user,
                    "REMOTE_ADDR": "127.0.0.1",
                    "PATH_INFO": parts.path,
                    "QUERY_STRING": parts.query,
                    "REQUEST_METHOD": self.command,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                }
                for name in ("Content-Encoding", "Git-Protocol"):
                    if name in self.headers:
                        env["HTTP_" + name.upper().replace("-", "_")] = self.headers[name]
                done = subprocess.run(
                    ["git", GIT_HTTP_BACKEND],
                    input=body,
                    env=env,
                    capture_output=True,
                    check=False,
                    timeout=60,
                )
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                if not _:
                    head, _, payload = done.stdout.partition(b"\n\n")
                status = 200
                headers: list[tuple[str, str]] = []
                for line in head.decode("latin-1").splitlines():
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, name: str) -> str:
        """The clone URL of repository ``name`` (a bare repository under `root`)."""
        return f"http://127.0.0.1:{self.port}/{name}"

    def create(self, name: str) -> Path:
        """A new empty repository ``name`` on the server."""
        return bare_remote(self.root / name)

    def __enter__(self) -> HttpGitServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Git and the secret store of the test's own: a global configuration naming an
    author (nothing of the machine's configuration applies), and secrets in ``tmp_path``."""
    config = tmp_path / "gitconfig"
    config.write_text(
        "[user]\n\tname = Test Author\n\temail = author@example.com\n"
        "[init]\n\tdefaultBranch = main\n"
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("PROPHECY_SECRETS_FILE", str(tmp_path / "user" / "secrets.json"))
    for name in list(os.environ):
        if name.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_", "PROPHECY_SECRET_GIT")):
            monkeypatch.delenv(name)
    return config


@pytest.fixture
def http_git(tmp_path: Path) -> Iterator[HttpGitServer]:
    """A running HTTP Git server over ``tmp_path/served`` requiring a token."""
    root = tmp_path / "served"
    root.mkdir()
    with HttpGitServer(root, token="tok-" + base64.b32encode(os.urandom(10)).decode()) as server:
        yield server
