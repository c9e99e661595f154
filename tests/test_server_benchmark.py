"""The REST benchmark runs end to end and reports every figure."""

from __future__ import annotations

import pytest

from benchmarks.rest import measure


def test_the_rest_benchmark_reports_p50_and_p99_of_each_request() -> None:
    figures = measure(repeat=5)
    assert set(figures) == {"get", "validate", "preview"}
    for figure in figures.values():
        assert set(figure) == {"p50", "p99"}
        assert 0 < figure["p50"] <= figure["p99"]


def test_the_rest_benchmark_needs_two_requests_for_a_percentile() -> None:
    with pytest.raises(ValueError):
        measure(repeat=1)
