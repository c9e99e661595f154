"""REST latency of the Studio API on a real Jupyter server: get, validate and preview.

    python -m benchmarks.rest [--repeat 200]

Starts ``python -m jupyter_server`` (token authentication, every installed extension) on a
copy of ``examples/shop`` in a temporary folder, warms each request up, then sends
``--repeat`` of each one after another over one keep-alive connection with ``requests``:

- get: ``GET /pipelines/customer_totals`` (read the file, migrate, ETag);
- validate: ``POST /pipelines/customer_totals/validate`` (compile all 9 gems; the project's
  engine is reused, so Source files are not sniffed again);
- preview: ``POST /pipelines/customer_totals/preview`` with the first 100 rows of ``ranked``
  (two joins, an aggregate and a sort over the shop's CSV and JSON files).

Each figure is the wall time of the whole HTTP round trip, client included. The last line
printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from prophecy_jupyter.server.launcher import ServerProcess

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"
TARGET_P99_MS = {"get": 50.0, "validate": 50.0}
WARM_UP = 20
PIPELINE = "customer_totals"


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": round(statistics.median(samples), 3), "p99": round(cuts[98], 3)}


def time_requests(send: Callable[[], requests.Response], repeat: int) -> list[float]:
    for _ in range(WARM_UP):
        send().raise_for_status()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = send()
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return samples


def measure(repeat: int = 200) -> dict[str, dict[str, float]]:
    """p50 and p99 in milliseconds of each request kind, over ``repeat`` requests each."""
    if repeat < 2:
        raise ValueError("repeat must be at least 2 to give percentiles")
    with tempfile.TemporaryDirectory(prefix="prophecy-rest-") as folder:
        base = Path(folder)
        root = base / "shop"
        shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".prophecy", "output"))
        env = {"PROPHECY_SECRETS_FILE": str(base / "secrets.json")}
        with ServerProcess(root, env=env) as server, requests.Session() as session:
            session.headers.update(server.headers)
            url = f"{server.api}/pipelines/{PIPELINE}"
            kinds: dict[str, Callable[[], requests.Response]] = {
                "get": lambda: session.get(url, timeout=60),
                "validate": lambda: session.post(f"{url}/validate", json={}, timeout=60),
                "preview": lambda: session.post(
                    f"{url}/preview", json={"gem": "ranked", "limit": 100}, timeout=60
                ),
            }
            return {kind: percentiles(time_requests(send, repeat)) for kind, send in kinds.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="timed requests of each kind")
    args = parser.parse_args(argv)
    if args.repeat < 2:
        parser.error("--repeat must be at least 2")
    figures = measure(args.repeat)
    print(f"Studio REST API on examples/shop: {args.repeat} requests each, one keep-alive session")
    print(f"  {'request':<10}{'p50 ms':>9}{'p99 ms':>9}")
    for kind, figure in figures.items():
        target = TARGET_P99_MS.get(kind)
        note = ""
        if target is not None:
            met = "met" if figure["p99"] < target else "MISSED"
            note = f"   target p99 < {target:.0f} ms   {met}"
        print(f"  {kind:<10}{figure['p50']:>9.2f}{figure['p99']:>9.2f}{note}")
    result: dict[str, Any] = {
        "repeat": args.repeat,
        "rest_ms": figures,
        "targets": {f"{kind}_p99_ms_max": ms for kind, ms in TARGET_P99_MS.items()},
    }
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
