"""The Studio in a real browser: JupyterLab served over a copy of the shop example, driven by
Playwright in Debian's headless Chromium.

One JupyterLab and one browser per test process (each xdist worker has its own); each test
gets a fresh browser context (no cookies, no local storage), a workspace of its own, and the
shop's pipeline files as they are in ``examples/shop``. Every step a test names is saved as
``tests/artifacts/browser/<test>/NN-<step>.png``, and what the page logged to its console
as ``console.txt`` beside them. A test fails if the page raised an uncaught error.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.sync_api import (
    Browser,
    Locator,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)

from prophecy_jupyter.server.launcher import CHROMIUM, CHROMIUM_ARGS, ServerProcess
from tests.test_server_support import SHOP, copy_shop

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "browser"
VIEWPORT: ViewportSize = {"width": 1500, "height": 950}
# JupyterLab's first page load compiles a few MB of JavaScript: slow on a busy 2-core machine.
PAGE_LOAD_MS = 90_000
STEP_MS = 20_000

T = TypeVar("T")

expect.set_options(timeout=STEP_MS)


class Lab:
    """The running JupyterLab: its server, and the folder it serves (``shop`` is the project)."""

    def __init__(self, server: ServerProcess, root: Path) -> None:
        self.server = server
        self.root = root
        self.shop = root / "shop"

    def workspace_url(self, path: str = "") -> str:
        """A new, empty workspace that shows ``path`` (a folder or a file) once loaded."""
        tree = f"/tree/{path}" if path else ""
        return f"{self.server.url}lab/workspaces/w{uuid.uuid4().hex[:12]}{tree}"

    def restore_shop(self) -> None:
        """Put the shop's pipeline files back as they are in the repository."""
        pipelines = self.shop / "pipelines"
        originals = {p.name: p for p in (SHOP / "pipelines").glob("*.pipeline.json")}
        for path in pipelines.iterdir():
            if path.is_dir():  # .ipynb_checkpoints, left by a save
                shutil.rmtree(path)
            elif path.name not in originals:
                path.unlink()
        for name, original in originals.items():
            shutil.copyfile(original, pipelines / name)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    copy_shop(root / "shop")
    settings = base / "settings"
    # No news or update toast over the page.
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8"
    )
    env = {
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "PROPHECY_SECRETS_FILE": str(base / "secrets.json"),
    }
    # The application object is reachable from the page, so that a test can read the
    # commands every extension registered.
    args = ["--LabApp.expose_app_in_browser=True"]
    server = ServerProcess(root, app="jupyterlab", args=args, env=env, log_path=base / "server.log")
    with server:
        yield Lab(server, root)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # launch() gives the browser a fresh, temporary user data directory.
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: scripts/setup installs Debian's chromium")
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
    )
    yield browser
    browser.close()


class Studio:
    """One test's browser page on the lab, with the steps it saved as screenshots."""

    def __init__(self, page: Page, lab: Lab, artifacts: Path) -> None:
        self.page = page
        self.lab = lab
        self.artifacts = artifacts
        self.errors: list[str] = []
        self.failed_checks: list[str] = []
        self._step = 0
        self.console: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"{error.name}: {error.message}"))
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))

    def open(self, path: str = "") -> None:
        """Load JupyterLab in a new workspace; with a file ``path``, wait for its editor."""
        url = f"{self.lab.workspace_url(path)}?reset&token={self.lab.server.token}"
        self.page.goto(url, timeout=PAGE_LOAD_MS)
        self.page.locator("#jp-main-dock-panel").wait_for(timeout=PAGE_LOAD_MS)
        if path.endswith(".pipeline.json"):
            self.editor.wait_for(timeout=PAGE_LOAD_MS)

    def check(self, what: str, expectation: Callable[[], None]) -> bool:
        """Run an expectation that should not stop the flow; `assert_checks` reports it."""
        try:
            expectation()
        except AssertionError as failure:
            lines = [line.strip() for line in str(failure).splitlines()]
            self.failed_checks.append(f"{what}: {' / '.join(lines[:2])}")
            return False
        return True

    def assert_checks(self) -> None:
        failed, self.failed_checks = self.failed_checks, []
        if failed:
            pytest.fail("\n".join(failed), pytrace=False)

    def shot(self, step: str) -> Path:
        """Save the page as the next numbered step."""
        self._step += 1
        path = self.artifacts / f"{self._step:02d}-{step}.png"
        self.page.screenshot(path=str(path))
        return path

    @property
    def editor(self) -> Locator:
        return self.page.locator("[data-testid=prophecy-editor]")

    @property
    def gems(self) -> Locator:
        return self.page.locator("[data-testid=prophecy-gem]")

    def gem(self, gem_id: str) -> Locator:
        return self.page.locator(f"[data-testid=prophecy-gem][data-gem-id={gem_id}]")

    def node(self, gem_id: str) -> Locator:
        """React Flow's wrapper of a gem, the element it moves with a transform."""
        return self.page.locator(f".react-flow__node[data-id={gem_id}]")

    @property
    def properties(self) -> Locator:
        return self.page.locator("[data-testid=prophecy-properties]")

    @property
    def validity(self) -> Locator:
        return self.page.locator("[data-testid=prophecy-validity]")

    def drag(self, source: Locator, target: tuple[float, float], steps: int = 12) -> None:
        """Press the mouse on the middle of ``source``, move to ``target`` and let go."""
        x, y = center(source)
        mouse = self.page.mouse
        mouse.move(x, y)
        mouse.down()
        mouse.move(x + 4, y + 4, steps=2)  # past the drag threshold, as a hand does
        mouse.move(*target, steps=steps)
        mouse.up()

    def preview_table(self) -> tuple[list[str], list[list[str]]]:
        """The Data tab's column names and the text of its cells, row number dropped."""
        grid = self.page.locator("[data-testid=prophecy-preview] table")
        header = grid.locator("thead th").evaluate_all(
            "cells => cells.map(c => c.querySelector('div')?.textContent ?? '')"
        )
        rows = grid.locator("tbody tr").evaluate_all(
            "rows => rows.map(r => [...r.querySelectorAll('td')].map(c => c.textContent))"
        )
        return list(header[1:]), [list(row[1:]) for row in rows]


def center(locator: Locator) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not on screen"
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def eventually(check: Callable[[], T | None], timeout: float = STEP_MS / 1000) -> T:
    """Call ``check`` until it returns something truthy (returned), for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout:.0f} s")
        time.sleep(0.2)


@pytest.fixture
def studio(lab: Lab, browser: Browser, request: pytest.FixtureRequest) -> Iterator[Studio]:
    """A fresh browser context on the lab, the shop's pipelines as in the repository."""
    lab.restore_shop()
    artifacts = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(STEP_MS)
    page = context.new_page()
    studio = Studio(page, lab, artifacts)
    try:
        yield studio
    finally:
        context.close()
        lab.restore_shop()
        (artifacts / "console.txt").write_text("\n".join(studio.console), encoding="utf-8")
    assert not studio.errors, f"the page raised uncaught errors: {studio.errors}"
    studio.assert_checks()
