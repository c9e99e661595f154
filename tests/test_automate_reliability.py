"""Automate under kill -9: schedulers and runs killed at random points lose no fire, run no
fire twice and leave no half-written table."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest
import yaml

from prophecy_jupyter.automate.service import Automate
from prophecy_jupyter.automate.store import FINISHED, RunFilter, Store
from tests.test_server_support import copy_shop

pytestmark = pytest.mark.slow

SCHEDULER = """
import sys, time
from prophecy_jupyter.automate.service import Automate

automate = Automate(sys.argv[1], tick_seconds=0.05)
automate.scheduler.lease_seconds = 1.0
automate.start()
time.sleep(3600)
"""


def start_scheduler(root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", SCHEDULER, str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def table_rows(project: Path, table: str) -> list[tuple[object, ...]] | None:
    database = project / ".prophecy" / "warehouse.duckdb"
    with duckdb.connect(str(database), read_only=True) as connection:
        names = {
            r[0] for r in connection.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        if table not in names:
            return None
        return sorted(connection.execute(f'SELECT * FROM "{table}"').fetchall())


def settle(store: Store, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while any(r.status not in FINISHED for r in store.list_runs(RunFilter(limit=500))):
        assert time.monotonic() < deadline, "runs did not finish"
        time.sleep(0.2)


def test_two_schedulers_killed_at_random_fire_every_time_exactly_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    project = copy_shop(root / "shop")
    (project / "schedules").mkdir()
    (project / "schedules" / "often.yml").write_text(
        yaml.safe_dump(
            {
                "pipeline": "customer_totals",
                "cron": "*/2 * * * * *",  # every two seconds
                "misfire": "run_all",
                "retries": 3,
                "retry_backoff": 0.2,
            }
        )
    )
    store = Store.for_root(root)
    chance = random.Random(7)
    schedulers = [start_scheduler(root), start_scheduler(root)]
    try:
        for _ in range(8):
            time.sleep(chance.uniform(0.5, 2.0))
            victim = chance.randrange(2)
            kill(schedulers[victim])
            time.sleep(chance.uniform(0.0, 1.5))  # sometimes both are down a while
            schedulers[victim] = start_scheduler(root)
        store.set_enabled("shop:often", False)
        time.sleep(0.5)
        settle(store)
    finally:
        for process in schedulers:
            kill(process)
    runs = store.list_runs(RunFilter(limit=500))
    firsts = [r for r in runs if r.attempt == 1 and r.trigger_type == "schedule"]
    times = sorted(r.fire_time for r in firsts if r.fire_time is not None)
    assert len(times) >= 4
    assert not [t for t, n in Counter(times).items() if n > 1]  # no fire time twice
    expected = [times[0] + 2 * i for i in range(round((times[-1] - times[0]) / 2) + 1)]
    assert times == pytest.approx(expected)  # none lost between the first and the last
    by_fire: dict[float, list[str]] = {}
    for run in runs:
        assert run.fire_time is not None
        by_fire.setdefault(run.fire_time, []).append(run.status)
    # Every fire ends in one success: a run lost with its process is retried.
    assert all(statuses.count("succeeded") == 1 for statuses in by_fire.values()), by_fire
    assert table_rows(project, "customer_totals") is not None


def test_a_run_killed_at_random_points_leaves_each_table_whole(tmp_path: Path) -> None:
    root = tmp_path / "root"
    project = copy_shop(root / "shop")
    automate = Automate(root, tick_seconds=0.02)
    automate.start()
    try:
        reference = automate.wait(automate.trigger("shop", pipeline="customer_totals").id, 120)
        assert reference.status == "succeeded"
        expected = table_rows(project, "customer_totals")
        assert expected is not None and len(expected) > 0
        with duckdb.connect(str(project / ".prophecy" / "warehouse.duckdb")) as connection:
            connection.execute("DROP TABLE customer_totals")
        chance = random.Random(11)
        outcomes = []
        for _ in range(6):
            run = automate.trigger("shop", pipeline="customer_totals")
            worker = None
            deadline = time.monotonic() + 60
            while worker is None or not worker.endswith(tuple("0123456789")):
                assert time.monotonic() < deadline
                current = automate.run(run.id)
                if current.worker and current.worker.rpartition(":")[2] != str(os.getpid()):
                    worker = current.worker
                time.sleep(0.005)
            time.sleep(chance.uniform(0.0, 0.8))
            with contextlib.suppress(ProcessLookupError):  # it may have finished already
                os.kill(int(worker.rpartition(":")[2]), signal.SIGKILL)
            ended = automate.wait(run.id, 120)
            outcomes.append(ended.status)
            assert ended.status in {"succeeded", "failed"}
            if ended.status == "failed":
                assert ended.error == "the run's process ended with signal 9"
            rows = table_rows(project, "customer_totals")
            assert rows is None or rows == expected  # never part of the rows
        assert "failed" in outcomes  # some kills did land inside the run
    finally:
        automate.stop()
