"""The benchmark runs end to end at a tiny scale and ends with its figures as one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.run import COMPILE_SIZES, synthetic_pipeline

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_benchmark_prints_every_figure_as_json_on_its_last_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--sf", "0.01", "--repeat", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["sf"] == 0.01
    assert set(figures["tpch"]) == {"q1", "q3", "q5", "q6", "geomean"}
    assert set(figures["compile_ms"]) == {str(n) for n in COMPILE_SIZES}
    assert set(figures["preview_ms"]) == {"max", "median"}
    assert set(figures["rest_ms"]) == {"get", "validate", "preview"}
    assert {"select_42_overhead_ms", "frame_overhead_ms"} <= set(figures["magics"])
    assert set(figures["automate"]["notebook"]) >= {"scheduled_s", "ratio_vs_command"}
    assert figures["automate"]["tick"]["schedules"] == 1000
    assert set(figures["studio_ms"]) == {
        "studio_10",
        "studio_500",
        "studio_500_validated",
        "text_500",
    }
    numbers = [
        *figures["tpch"].values(),
        *figures["compile_ms"].values(),
        *figures["preview_ms"].values(),
        *figures["studio_ms"].values(),
    ]
    assert all(isinstance(n, float) and n > 0 for n in numbers)


@pytest.mark.parametrize("size", COMPILE_SIZES)
def test_synthetic_pipeline_has_the_requested_number_of_gems(size: int) -> None:
    pipeline = synthetic_pipeline(size)
    assert len(pipeline.gems) == size
    kinds = {g.kind for g in pipeline.gems}
    assert {"Source", "Filter", "Reformat", "Aggregate", "Join", "Target"} <= kinds
