"""The magics benchmark runs in a real IPython shell and reports every figure it promises."""

from __future__ import annotations

import pytest

from benchmarks.magics import CASES, measure


def test_the_benchmark_reports_ms_per_cell_for_the_magic_duckdb_and_their_difference() -> None:
    figures = measure(repeat=3)
    assert set(figures) == {
        f"{case}_{part}_ms" for case in CASES for part in ("magic", "duckdb", "overhead")
    }
    for case in CASES:
        magic, duckdb = figures[f"{case}_magic_ms"], figures[f"{case}_duckdb_ms"]
        assert magic > 0
        assert duckdb > 0
        assert figures[f"{case}_overhead_ms"] == pytest.approx(magic - duckdb, abs=0.002)
