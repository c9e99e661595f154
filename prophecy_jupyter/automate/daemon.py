"""`prophecy automate`: keep schedules firing with no JupyterLab open, and serve the
orchestration API to clients, the CLI and other machines.

The daemon is a headless Jupyter server (`jupyter_server.serverapp.ServerApp`, started in
this process) with only the ``prophecy_jupyter`` extension loaded, rather than a web server
of its own, because that makes it the same thing the Studio talks to:

- the same authentication: Jupyter's token (``Authorization: token …``) and authorizer,
  so a client needs one credential scheme whichever server it reaches;
- the same routes and handlers: ``/prophecy/api/v1/automate/…`` come from the extension's
  route table, so the API cannot drift between the daemon and JupyterLab (and the Studio
  API is there too, for scripts);
- the same code path: loading the extension makes the root's `Automate` and starts its
  loop, exactly as a JupyterLab does. Several of them over one root are safe: the store's
  lease lets one scheduler fire at a time and another take over when it stops.

What it adds: a token of its own when none is given (printed once, with the URL), no
browser, no other extensions, a root folder and a port that do not move, and a clean stop
on SIGTERM and SIGINT: the server stops answering, the Automate loop's `stop` gives up the
lease, and workers of running runs (processes in sessions of their own) finish and record
their ends by themselves.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from prophecy_jupyter.automate.store import STORE_ENV
from prophecy_jupyter.errors import EngineError, NotFound, ProphecyError

log = logging.getLogger(__name__)

TOKEN_ENV = "PROPHECY_AUTOMATE_TOKEN"
DEFAULT_IP = "127.0.0.1"
DEFAULT_PORT = 8765
EXTENSION = "prophecy_jupyter"


@dataclass(frozen=True)
class DaemonSettings:
    root: Path
    ip: str = DEFAULT_IP
    port: int = DEFAULT_PORT
    token: str | None = None
    max_workers: int = 2


def resolve_token(given: str | None) -> tuple[str, bool]:
    """The token to require: ``given``, else ``$PROPHECY_AUTOMATE_TOKEN``, else a new
    random one; and whether it was made here (only then is it shown)."""
    token = given or os.environ.get(TOKEN_ENV) or ""
    if token.strip():
        return token.strip(), False
    return secrets.token_urlsafe(24), True


def _other_extensions() -> dict[str, bool]:
    """Every server extension the Jupyter configuration enables, switched off: the daemon
    serves the orchestration API, not JupyterLab, notebooks or terminals."""
    from jupyter_core.paths import jupyter_config_path
    from jupyter_server.extension.config import ExtensionConfigManager

    manager = ExtensionConfigManager(read_config_path=jupyter_config_path())
    found: dict[str, bool] = manager.get_jpserver_extensions()  # type: ignore[no-untyped-call]
    return {name: False for name in found if name != EXTENSION}


def server_argv(settings: DaemonSettings, token: str) -> list[str]:
    """The ServerApp options of the daemon. Given as command-line options, so that they
    win over any Jupyter configuration file (files would otherwise move the port or the
    root under the clients' feet)."""
    argv = [
        f"--ServerApp.root_dir={settings.root}",
        f"--ServerApp.ip={settings.ip}",
        f"--ServerApp.port={settings.port}",
        # A taken port is an error: clients are told one port, Jupyter would try others.
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_unauthenticated_access=False",
        "--ServerApp.terminals_enabled=False",
        # An extension that fails to load is a daemon that cannot do its one job: stop.
        "--ServerApp.reraise_server_extension_failures=True",
        f"--IdentityProvider.token={token}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Jupyter refuses root to protect a desktop user's browser session; a daemon in a
        # container or under a service manager commonly is root, and opens no browser.
        argv.append("--ServerApp.allow_root=True")
    return argv


def serve(
    settings: DaemonSettings,
    announce: Callable[[str], None] = print,
) -> int:
    """Run the daemon until SIGTERM or SIGINT; returns the process's exit status.

    ``announce`` gets the lines a user needs to connect (the URL, and the token when it
    was generated here) once the server listens."""
    from jupyter_server.serverapp import ServerApp

    root = settings.root.expanduser().resolve()
    if not root.is_dir():
        raise NotFound(f"no folder {root} to serve")
    if settings.max_workers < 1:
        raise ProphecyError("max workers must be at least 1")
    token, generated = resolve_token(settings.token)
    # The extension reads it when it makes its `Automate`, before the first round.
    os.environ["PROPHECY_AUTOMATE_MAX_WORKERS"] = str(settings.max_workers)
    extensions = {**_other_extensions(), EXTENSION: True}
    app = ServerApp.instance(jpserver_extensions=extensions)
    # The "open this file" page embeds the token; the daemon has no browser to open it.
    app.no_browser_open_file = True
    try:
        try:
            app.initialize(
                argv=server_argv(DaemonSettings(root, settings.ip, settings.port), token),
                find_extensions=False,
            )
        except SystemExit as exc:  # Jupyter exits on a bad option or a port it cannot bind
            started = getattr(app, "web_app", None)
            if started is not None and "prophecy_automate" in started.settings:
                started.settings["prophecy_automate"].stop()
            raise EngineError(
                f"the server could not start on {settings.ip}:{settings.port} (see the log above)"
            ) from exc
        automate = app.web_app.settings.get("prophecy_automate")
        if automate is None:
            raise EngineError(f"the {EXTENSION} server extension did not load")

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("prophecy automate: signal %d, stopping", signum)
            app.stop(from_signal=True)

        # Both signals stop at once: Jupyter's own SIGINT handler asks for confirmation
        # on a terminal, which a daemon (or its service manager) cannot give.
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        url = f"http://{_host(settings.ip)}:{app.port}{app.base_url}".rstrip("/")
        store = automate.store.url if automate.store.url.startswith("sqlite") else None
        announce(f"Prophecy Automate serving {root}")
        announce(f"  url:   {url}  (orchestration API: {url}/prophecy/api/v1/automate/)")
        announce(f"  store: {store or '$' + STORE_ENV}")
        if generated:
            announce(f"  token: {token}  (made now: --token or ${TOKEN_ENV} keeps one)")
        announce(f"  clients: PROPHECY_URL={url} PROPHECY_TOKEN=<the token> prophecy runs list")
        sys.stdout.flush()
        try:
            app.start()
        finally:
            automate.stop()
        return 0
    finally:
        ServerApp.clear_instance()


def _host(ip: str) -> str:
    """A connectable host for the URL shown (a wildcard address is not one)."""
    if ip in {"", "0.0.0.0"}:
        return "127.0.0.1"
    if ip == "::":
        return "[::1]"
    return f"[{ip}]" if ":" in ip else ip
