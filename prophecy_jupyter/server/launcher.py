"""Start a real Jupyter server in a subprocess, on a free local port, with a token.

For tests, benchmarks and scripts that need the Studio API served exactly as a user gets it:
the same entry point (``jupyter_server``, ``jupyterlab`` or ``notebook``), the extension
enabled by its installed config, authentication on. Configuration and runtime folders are
private to the process so that a user's own ``~/.jupyter`` cannot change what is tested.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from prophecy_jupyter.server.handlers import API_PREFIX

CHROMIUM = Path(os.environ.get("PROPHECY_CHROMIUM", "/usr/bin/chromium"))
"""Debian's Chromium, which browser tests and benchmarks drive (never a downloaded build)."""

CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",  # as root, Chromium refuses to start with its sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # No calls home: this machine's network refuses them, many at a time.
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)
"""Chromium's command line for a headless run on a machine without a screen or a network."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess:
    """A Jupyter server over ``root``; use as a context manager, or `start` and `stop`.

    ``app`` is the module run with ``python -m``. Output (the server log) goes to
    ``log_path``. ``args`` are extra command-line options, ``env`` extra variables.
    """

    def __init__(
        self,
        root: Path,
        *,
        app: str = "jupyter_server",
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        token: str | None = None,
    ) -> None:
        self.root = root
        self.app = app
        self.args = list(args)
        self.env = dict(env or {})
        self.token = token or secrets.token_hex(16)
        self._home = Path(tempfile.mkdtemp(prefix="prophecy-jupyter-"))
        self.log_path = log_path or self._home / "server.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL, ending in ``/``."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api(self) -> str:
        """The Studio API's base URL, without a trailing ``/``."""
        return self.url.rstrip("/") + API_PREFIX

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def start(self, timeout: float = 90.0, attempts: int = 3) -> ServerProcess:
        """Start and wait until the server answers; a port taken meanwhile is retried."""
        for _ in range(attempts):
            self.port = free_port()
            if self._launch(timeout):
                return self
        raise RuntimeError(f"{self.app} did not start:\n{self.log_text()[-4000:]}")

    def _launch(self, timeout: float) -> bool:
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(self._home / "config"),
            "JUPYTER_RUNTIME_DIR": str(self._home / "runtime"),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        command = [
            sys.executable,
            "-m",
            self.app,
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_unauthenticated_access=False",
            f"--IdentityProvider.token={self.token}",
            *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
            *self.args,
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root
            )
        deadline = time.monotonic() + timeout
        # Extensions are loaded before the server listens, so any answer means the API is up.
        probe = urllib.request.Request(f"{self.url}api/status", headers=self.headers)
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(probe, timeout=5) as answer:
                    if answer.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        return False

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop the server as a user would (SIGTERM), killing it after ``timeout`` seconds;
        returns its exit status (negative: the signal that ended it)."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def close(self) -> None:
        """Stop the server and remove its private folders (the log too, unless it was given)."""
        self.stop()
        shutil.rmtree(self._home, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
