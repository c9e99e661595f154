"""Automate against bare papermill, and the scheduler's tick with 1000 schedules.

    python -m benchmarks.automate [--repeat 3]

1. A scheduled notebook run: the shop's ``notebooks/explore.ipynb`` on a schedule that fires
   every few seconds, timed from its fire time to its recorded end (scheduler latency, the
   worker process, papermill and the kernel, and the store's writes). Baseline, in the same
   run on the same notebook and kernel: the ``papermill`` command (what a crontab line would
   run) and, stricter, `papermill.execute_notebook` called in an already warm process.
   Target: scheduled ÷ papermill command ≤ 1.2.
2. Scheduler tick cost with 1000 schedules (cron expressions of every kind, in several time
   zones) in one project: the median tick once their states exist, against computing each
   schedule's next fire time with croniter directly, and as a share of the tick interval.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from croniter import croniter

from prophecy_jupyter.automate.service import Automate
from prophecy_jupyter.automate.store import RunFilter

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"
NOTEBOOK = "notebooks/explore.ipynb"
TARGET_RATIO = 1.2
SCHEDULES = 1000
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
CRONS = ("0 2 * * *", "*/5 * * * *", "30 9 * * 1-5", "0 0 1 * *", "15 */3 * * *")


def copy_shop(destination: Path) -> Path:
    shutil.copytree(
        SHOP,
        destination,
        ignore=shutil.ignore_patterns(".prophecy", "output", ".ipynb_checkpoints"),
    )
    return destination


def papermill_command(project: Path, output: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(project / NOTEBOOK),
            str(output),
            "-k",
            "prophecy",
            "--cwd",
            str(project / "notebooks"),
            "--no-progress-bar",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def papermill_in_process(project: Path, output: Path) -> float:
    import papermill

    started = time.perf_counter()
    papermill.execute_notebook(
        str(project / NOTEBOOK),
        str(output),
        kernel_name="prophecy",
        cwd=str(project / "notebooks"),
        progress_bar=False,
    )
    return time.perf_counter() - started


def scheduled_runs(root: Path, repeat: int) -> list[float]:
    """Seconds from each fire time to the run's end, for ``repeat`` fires."""
    project = root / "shop"
    (project / "schedules").mkdir(exist_ok=True)
    every = 12  # seconds apart, so that runs do not queue behind each other
    (project / "schedules" / "explore.yml").write_text(
        yaml.safe_dump({"notebook": NOTEBOOK, "cron": f"*/{every} * * * * *"})
    )
    automate = Automate(root)
    automate.start()
    try:
        deadline = time.monotonic() + every * (repeat + 3) + 120
        while True:
            done = [
                r
                for r in automate.runs(RunFilter(trigger="schedule", limit=100))
                if r.status in {"succeeded", "failed"}
            ]
            if len(done) >= repeat or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        automate.stop()
    failed = [r for r in done if r.status != "succeeded"]
    if failed:
        raise SystemExit(f"scheduled run failed: {failed[0].error}")
    return [(r.finished or 0) - (r.fire_time or 0) for r in done[:repeat]]


def notebook_part(repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="prophecy-bench-") as folder:
        root = Path(folder)
        project = copy_shop(root / "shop")
        papermill_in_process(project, root / "warm.ipynb")  # imports and caches, untimed
        command = statistics.median(
            papermill_command(project, root / f"cli{i}.ipynb") for i in range(repeat)
        )
        in_process = statistics.median(
            papermill_in_process(project, root / f"api{i}.ipynb") for i in range(repeat)
        )
        scheduled = statistics.median(scheduled_runs(root, repeat))
    return {
        "scheduled_s": round(scheduled, 3),
        "papermill_command_s": round(command, 3),
        "papermill_in_process_s": round(in_process, 3),
        "ratio_vs_command": round(scheduled / command, 3),
        "ratio_vs_in_process": round(scheduled / in_process, 3),
    }


def tick_part(repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="prophecy-bench-") as folder:
        root = Path(folder)
        project = copy_shop(root / "shop")
        (project / "schedules").mkdir()
        specs = []
        for i in range(SCHEDULES):
            spec = {
                "pipeline": "customer_totals",
                "cron": CRONS[i % len(CRONS)],
                "timezone": ZONES[i % len(ZONES)],
            }
            specs.append(spec)
            (project / "schedules" / f"s{i:04d}.yml").write_text(yaml.safe_dump(spec))
        automate = Automate(root)
        automate.step()  # first sight of every schedule
        automate.step()
        ticks = []
        for _ in range(max(5, repeat * 3)):
            started = time.perf_counter()
            automate.scheduler.tick()
            ticks.append((time.perf_counter() - started) * 1000)
        fired = len(automate.runs(RunFilter(limit=10)))
        automate.stop()
        now = dt.datetime.now(dt.UTC)
        bare = []
        for _ in range(max(5, repeat * 3)):
            started = time.perf_counter()
            for spec in specs:
                croniter(spec["cron"], now).get_next(dt.datetime)
            bare.append((time.perf_counter() - started) * 1000)
    tick = statistics.median(ticks)
    return {
        "schedules": SCHEDULES,
        "tick_ms": round(tick, 2),
        "croniter_only_ms": round(statistics.median(bare), 2),
        "ratio_vs_croniter": round(tick / statistics.median(bare), 3),
        "share_of_tick_interval": round(tick / (automate.tick_seconds * 1000), 4),
        "runs_fired": fired,
    }


def measure(repeat: int) -> dict[str, Any]:
    """Both parts, each printed as one line; returns their figures."""
    notebook = notebook_part(repeat)
    met = "met" if notebook["ratio_vs_command"] <= TARGET_RATIO else "NOT met"
    print(
        f"scheduled notebook run {notebook['scheduled_s']:.2f} s (fire → recorded end); "
        f"papermill command {notebook['papermill_command_s']:.2f} s, "
        f"in-process {notebook['papermill_in_process_s']:.2f} s; "
        f"ratio {notebook['ratio_vs_command']:.2f} vs the command "
        f"(target ≤ {TARGET_RATIO}: {met}), "
        f"{notebook['ratio_vs_in_process']:.2f} vs in-process"
    )
    tick = tick_part(repeat)
    print(
        f"scheduler tick with {SCHEDULES} schedules: {tick['tick_ms']:.1f} ms "
        f"(croniter alone {tick['croniter_only_ms']:.1f} ms, "
        f"ratio {tick['ratio_vs_croniter']:.2f}; "
        f"{tick['share_of_tick_interval']:.1%} of the tick interval)"
    )
    return {"notebook": notebook, "tick": tick}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.automate")
    parser.add_argument("--repeat", type=int, default=3)
    figures = measure(parser.parse_args(argv).repeat)
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
