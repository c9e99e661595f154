"""The extension is enabled by installation and served by JupyterLab and Notebook 7 alike."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.test_server_support import shop_server

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_jupyter_lists_the_extension_as_enabled_and_valid(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "server", "extension", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path)},
    )
    output = ANSI.sub("", done.stdout + done.stderr)
    assert re.search(r"^\s*prophecy_jupyter enabled\s*$", output, re.MULTILINE), output
    assert re.search(r"^\s*prophecy_jupyter \S+ OK\s*$", output, re.MULTILINE), output


@pytest.mark.parametrize(
    ("app", "page"),
    [("jupyterlab", "lab"), ("notebook", "tree")],
    ids=["jupyterlab", "notebook7"],
)
def test_the_front_end_starts_and_serves_the_api(tmp_path: Path, app: str, page: str) -> None:
    with shop_server(tmp_path, app=app) as server:
        front = requests.get(f"{server.url}{page}", headers=server.headers, timeout=60)
        assert front.status_code == 200
        assert "text/html" in front.headers["Content-Type"]
        pipelines = requests.get(f"{server.api}/pipelines", headers=server.headers, timeout=60)
        assert pipelines.status_code == 200
        assert {"name": "customer_totals"} in pipelines.json()["pipelines"]
    log = server.log_text()
    assert "prophecy_jupyter | extension was successfully loaded" in log
