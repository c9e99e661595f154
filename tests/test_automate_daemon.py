"""`prophecy automate` as a user starts it: a process of its own over a copy of the shop,
driven through the CLI, firing a schedule with no JupyterLab running, refusing requests
without its token, and stopping cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from prophecy_jupyter.automate.client import AutomateClient, RunInfo
from prophecy_jupyter.automate.store import Store
from prophecy_jupyter.cli import main
from prophecy_jupyter.server.launcher import free_port
from tests.test_server_support import copy_shop

PROPHECY = Path(sys.executable).with_name("prophecy")
API = "/prophecy/api/v1/automate"
EVERY_2_SECONDS = "*/2 * * * * *"  # six fields: the first is seconds (0, 2, 4, …)


@dataclass
class Daemon:
    process: subprocess.Popen[bytes]
    root: Path
    url: str
    token: str | None
    out: Path
    err: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> tuple[int, float]:
        """Send ``sig`` and wait; returns the exit status and the seconds it took."""
        started = time.monotonic()
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"not stopped after {timeout} s:\n{self.log()}") from None
        return code, time.monotonic() - started

    def log(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")


def start_daemon(base: Path, *args: str, token: str | None = None) -> Daemon:
    root = copy_shop(base / "shop")
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(base / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(base / "jupyter-runtime"),
        "PROPHECY_SECRETS_FILE": str(base / "secrets.json"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PROPHECY_AUTOMATE_TOKEN", None)
    command = [str(PROPHECY), "automate", str(root), "--port", str(port), *args]
    if token is not None:
        command += ["--token", token]
    out, err = base / "daemon.out", base / "daemon.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, cwd=base)
    return Daemon(process, root, f"http://127.0.0.1:{port}", token, out, err)


def answering(daemon: Daemon, timeout: float = 60.0) -> Daemon:
    """Wait until the daemon answers at all (any status: it is listening)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            raise AssertionError(
                f"the daemon exited with {daemon.process.returncode}:\n{daemon.log()}"
            )
        try:
            requests.get(daemon.url + API + "/runs", timeout=2)
            return daemon
        except requests.ConnectionError:
            time.sleep(0.1)
    daemon.process.kill()
    raise AssertionError(f"the daemon did not answer in {timeout} s:\n{daemon.log()}")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    started = answering(start_daemon(tmp_path, "--max-workers", "2", token="t0ken-of-the-test"))
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait()


def cli(daemon: Daemon, *args: str) -> tuple[int, str, str]:
    assert daemon.token is not None
    result = CliRunner().invoke(main, [*args, "--url", daemon.url, "--token", daemon.token])
    return result.exit_code, result.stdout, result.stderr


def scheduled_runs(client: AutomateClient, name: str) -> list[RunInfo]:
    return client.runs(trigger="schedule", schedule=name, limit=100)


def test_the_daemon_runs_pipelines_for_the_cli_fires_schedules_and_stops_on_sigterm(
    daemon: Daemon,
) -> None:
    assert daemon.token is not None
    # The token is required, and only the token.
    assert requests.get(daemon.url + API + "/runs", timeout=10).status_code == 401
    wrong = {"Authorization": "token wrong"}
    assert requests.get(daemon.url + API + "/runs", headers=wrong, timeout=10).status_code == 401
    right = {"Authorization": f"token {daemon.token}"}
    assert requests.get(daemon.url + API + "/runs", headers=right, timeout=10).status_code == 200
    # A headless server: the orchestration API, no JupyterLab.
    assert requests.get(daemon.url + "/lab", headers=right, timeout=10).status_code == 404

    code, out, err = cli(daemon, "runs", "trigger", "--pipeline", "customer_totals", "--wait")
    assert code == 0, out + err
    assert "queued run" in out and "succeeded" in out and "customer_totals" in out
    run_id = out.split("queued run ", 1)[1].split()[0]
    code, out, err = cli(daemon, "runs", "list", "--format", "json")
    assert code == 0, err
    (listed,) = json.loads(out)
    assert (listed["id"], listed["status"], listed["trigger"]["type"]) == (
        run_id,
        "succeeded",
        "api",
    )
    code, out, _ = cli(daemon, "runs", "show", run_id)
    assert code == 0 and "by_customer" in out and "Aggregate" in out
    code, out, _ = cli(daemon, "runs", "logs", run_id)
    assert code == 0 and "gem customer_totals succeeded" in out

    # A run that fails: exit code 1 when waited for, and its error shown.
    code, out, err = cli(
        daemon, "runs", "trigger", "--pipeline", "customer_totals", "-p", "min_total=lots", "--wait"
    )
    assert code == 1, out + err
    assert "failed" in out

    # A schedule firing every 2 seconds, with no JupyterLab anywhere.
    (daemon.root / "schedules").mkdir()
    (daemon.root / "schedules" / "every2s.yml").write_text(
        f"pipeline: customer_totals\ncron: '{EVERY_2_SECONDS}'\n", encoding="utf-8"
    )
    client = AutomateClient(daemon.url, daemon.token)
    deadline = time.monotonic() + 90
    while len([r for r in scheduled_runs(client, "every2s") if r["status"] == "succeeded"]) < 2:
        assert time.monotonic() < deadline, (scheduled_runs(client, "every2s"), daemon.log())
        time.sleep(0.2)
    code, out, err = cli(daemon, "schedules", "disable", "every2s")
    assert code == 0 and "schedule 'every2s' disabled" in out, err
    fired = scheduled_runs(client, "every2s")
    fire_times = [r["trigger"]["fire_time"] for r in fired]
    assert len(set(fire_times)) == len(fire_times)  # each fire time runs once
    for run in fired:
        assert run["trigger"]["fire_time"] is not None
        assert int(run["trigger"]["fire_time"][17:19]) % 2 == 0  # on the even seconds
    code, out, _ = cli(daemon, "schedules", "list")
    assert code == 0 and "every2s" in out and EVERY_2_SECONDS in out and " no " in out

    exit_code, seconds = daemon.stop(signal.SIGTERM)
    assert exit_code == 0, daemon.log()
    assert seconds < 10
    # The loop's stop gave up the scheduler's lease: another server takes over at once.
    store = Store.for_root(daemon.root)
    try:
        assert store.lease_holder("scheduler") is None
    finally:
        store.close()
    assert daemon.token not in daemon.log()  # a token it was given is never echoed


def test_a_generated_token_is_printed_once_and_sigint_stops(tmp_path: Path) -> None:
    started = start_daemon(tmp_path)
    try:
        answering(started)
        deadline = time.monotonic() + 30
        while "token:" not in started.out.read_text():
            assert time.monotonic() < deadline, started.log()
            time.sleep(0.05)
        out = started.out.read_text()
        token = out.split("token:", 1)[1].split()[0]
        assert len(token) >= 24
        assert started.url in out
        client = AutomateClient(started.url, token)
        assert client.runs() == []
        assert client.schedules() == []

        # Stopped while a run works: the run's worker finishes and records it by itself.
        run = client.trigger("", notebook="notebooks/explore.ipynb")
        deadline = time.monotonic() + 60
        while client.run(run["id"])["status"] == "queued":
            assert time.monotonic() < deadline, started.log()
            time.sleep(0.05)
        assert client.run(run["id"])["status"] == "running"
        exit_code, seconds = started.stop(signal.SIGINT)
        assert exit_code == 0, started.log()
        assert seconds < 10
        assert started.log().count(token) == 1
        store = Store.for_root(started.root)
        try:
            deadline = time.monotonic() + 90
            while (left := store.get_run(run["id"])).status == "running":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert left.status == "succeeded", left.error
            assert left.output is not None and (started.root / left.output).is_file()
        finally:
            store.close()
    finally:
        if started.process.poll() is None:
            started.process.kill()
            started.process.wait()


def test_a_taken_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        root = copy_shop(tmp_path / "shop")
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        }
        done = subprocess.run(
            [str(PROPHECY), "automate", str(root), "--port", str(port), "--token", "x"],
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    last = done.stderr.decode().strip().splitlines()[-1]
    assert last == f"error: the server could not start on 127.0.0.1:{port} (see the log above)"
