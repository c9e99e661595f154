"""Per-cell overhead of ``%%prophecy`` against calling DuckDB directly.

    python -m benchmarks.magics [--repeat 300]

Each case runs a cell in an IPython shell with the extension loaded, outside any project (an
in-memory DuckDB), its result formatted as a notebook kernel formats it (HTML and text) and
printed to nowhere; and the same query with ``con.execute(...).fetchall()`` on a DuckDB
connection of its own. Median milliseconds per cell over ``--repeat`` warm runs, taken
alternately:

1. ``select_42``: ``SELECT 42``.
2. ``frame``: an aggregate over a 1,000-row pandas DataFrame, which the magic registers at
   every cell (the frame may have changed) and the direct connection registered once.

``overhead_ms`` is magic minus DuckDB (target < 5 ms). The last line printed is one JSON
object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import duckdb
import pandas as pd
from IPython.core.interactiveshell import InteractiveShell

TARGET_OVERHEAD_MS = 5.0
WARM_UP = 20
CASES = {
    "select_42": "SELECT 42",
    "frame": "SELECT k % 10 AS g, sum(v) AS total FROM frame GROUP BY g ORDER BY g",
}


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"k": range(1000), "v": [i * 0.5 for i in range(1000)]})


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def _fetch_all(connection: duckdb.DuckDBPyConnection, sql: str) -> list[Any]:
    rows: list[Any] = connection.execute(sql).fetchall()
    return rows


def measure(repeat: int) -> dict[str, float]:
    """Median ms per cell of each case through the magic and through DuckDB, and the
    difference: ``<case>_magic_ms``, ``<case>_duckdb_ms``, ``<case>_overhead_ms``."""
    shell = InteractiveShell.instance()
    extensions, formatter = shell.extension_manager, shell.display_formatter
    assert extensions is not None and formatter is not None
    active_types, formatter.active_types = formatter.active_types, ["text/plain", "text/html"]
    connection = duckdb.connect()
    connection.register("frame", _frame())
    figures: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory() as folder,
        contextlib.chdir(folder),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        extensions.load_extension("prophecy_jupyter")
        shell.user_ns["frame"] = _frame()
        try:
            for case, sql in CASES.items():
                cell = partial(shell.run_cell, f"%%prophecy\n{sql}", store_history=False)
                direct = partial(_fetch_all, connection, sql)
                samples: dict[str, list[float]] = {"magic": [], "duckdb": []}
                for round_ in range(WARM_UP + repeat):
                    magic_ms, duckdb_ms = _timed(cell), _timed(direct)
                    if round_ >= WARM_UP:
                        samples["magic"].append(magic_ms)
                        samples["duckdb"].append(duckdb_ms)
                magic_ms = statistics.median(samples["magic"])
                duckdb_ms = statistics.median(samples["duckdb"])
                figures[f"{case}_magic_ms"] = round(magic_ms, 3)
                figures[f"{case}_duckdb_ms"] = round(duckdb_ms, 3)
                figures[f"{case}_overhead_ms"] = round(magic_ms - duckdb_ms, 3)
        finally:
            extensions.unload_extension("prophecy_jupyter")
            shell.user_ns.pop("frame", None)
            formatter.active_types = active_types
            connection.close()
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300, help="timed cells per case")
    args = parser.parse_args(argv)
    figures = measure(args.repeat)
    print(f"{'case':<10} {'magic ms':>9} {'duckdb ms':>10} {'overhead ms':>12}  target")
    for case in CASES:
        overhead = figures[f"{case}_overhead_ms"]
        verdict = "met" if overhead < TARGET_OVERHEAD_MS else "MISSED"
        print(
            f"{case:<10} {figures[f'{case}_magic_ms']:>9.3f} {figures[f'{case}_duckdb_ms']:>10.3f}"
            f" {overhead:>12.3f}  < {TARGET_OVERHEAD_MS} ms {verdict}"
        )
    result: dict[str, Any] = {
        "repeat": args.repeat,
        "magics": figures,
        "targets": {"overhead_ms_max": TARGET_OVERHEAD_MS},
    }
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
