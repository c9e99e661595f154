"""The Studio's Jupyter server extension: the REST API under ``/prophecy/api/v1/``.

``pip install`` enables it (``jupyter-config/``); `prophecy_jupyter._load_jupyter_server_extension`
calls `load_extension`, which gives the server one `Workspace` over its ``root_dir`` and
registers the handlers of `ROUTES`. The API is described in ``openapi.yaml`` beside this file.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_server.utils import url_path_join

from prophecy_jupyter.automate.service import Automate
from prophecy_jupyter.server.ai_handlers import AI_ROUTES
from prophecy_jupyter.server.automate_handlers import AUTOMATE_ROUTES
from prophecy_jupyter.server.handlers import API_PREFIX, AUTH_RESOURCE, ProphecyHandler
from prophecy_jupyter.server.handlers import ROUTES as STUDIO_ROUTES
from prophecy_jupyter.server.vcs_handlers import VCS_ROUTES
from prophecy_jupyter.workspace import Workspace

ROUTES: tuple[tuple[str, type[ProphecyHandler]], ...] = (
    STUDIO_ROUTES + AUTOMATE_ROUTES + VCS_ROUTES + AI_ROUTES
)
"""Every route of the API (the Studio's, the orchestration API's, version control's and the
AI copilot's), as the path templates of ``openapi.yaml``."""

OPENAPI_SPEC = Path(__file__).with_name("openapi.yaml")

__all__ = ["API_PREFIX", "AUTH_RESOURCE", "OPENAPI_SPEC", "ROUTES", "load_extension", "url_pattern"]


def url_pattern(template: str) -> str:
    """A route template (``/pipelines/{name}``) as a tornado pattern with named groups."""
    return re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)


def at_shutdown(callback: Callable[[], None]) -> None:
    """Call ``callback`` when the server process ends, before it waits for worker threads.

    A preview or run may be inside a statement that takes hours; the interpreter joins worker
    threads before it runs `atexit` handlers, so it would wait for that statement forever.
    The hook that runs before the join (the one `concurrent.futures` uses for its own
    executors) lets the workspace interrupt its statements first and then close each
    warehouse cleanly. Jupyter offers no shutdown hook to extensions that are not apps.
    """
    register = getattr(threading, "_register_atexit", None)
    (register or atexit.register)(callback)


def max_workers() -> int:
    """How many runs Automate executes at once: ``$PROPHECY_AUTOMATE_MAX_WORKERS``, else 2."""
    configured = os.environ.get("PROPHECY_AUTOMATE_MAX_WORKERS", "2")
    return max(1, int(configured)) if configured.isdigit() else 2


def load_extension(server_app: Any) -> None:
    workspace = Workspace(server_app.root_dir)
    automate = Automate(workspace.root, max_workers=max_workers())
    workspace.runs.store = automate.store
    web_app = server_app.web_app
    web_app.settings["prophecy_workspace"] = workspace
    web_app.settings["prophecy_automate"] = automate
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(
        ".*$",
        [(url_path_join(base_url, API_PREFIX, url_pattern(t)), h) for t, h in ROUTES],
    )
    at_shutdown(workspace.close)
    at_shutdown(automate.stop)
    # Schedules fire while any server (or the `prophecy automate` daemon) of the root is up.
    automate.start()
    server_app.log.info(
        "prophecy_jupyter | Studio API at %s over %s",
        url_path_join(base_url, API_PREFIX),
        workspace.root,
    )
