"""TPC-H pipelines on Spark against the same queries written by hand, and preview latency.

    python -m benchmarks.spark [--sf 1] [--repeat 5] [--master local[*]]

Starts a Spark session the way a Spark fabric does (`spark_settings` and `spark_session`:
no UI, the serial collector, an in-memory catalog) and a `SparkEngine` rooted where the
TPC-H Parquet files of ``benchmarks.tpch_data`` resolve, then:

1. Q1, Q3, Q5 and Q6 of ``examples/tpch``: the statement each pipeline's Target writes
   (compiled as a run compiles it, rendered for Spark, its Sources read through the
   engine's Parquet views) against the hand-written query of ``examples/tpch/queries``
   rendered for Spark by the same `render`, over a temporary view per table; each fetched
   in full, warm, median of ``--repeat`` runs taken alternately; the ratio pipeline /
   hand-written and their geometric mean.
2. Preview latency: `preview_gem` (100 rows) of each Target's input, the first time and
   then again on the warm session (median of ``--repeat``); and, warm, of the pipeline's
   first gem after its Sources (a Filter: the cost of a preview that reads little).

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from importlib.metadata import version
from typing import Any

import sqlglot

from benchmarks.tpch_data import EXAMPLE, QUERIES, TABLES, generate, reference_query
from prophecy_jupyter.compiler import CompiledPipeline, compile_pipeline
from prophecy_jupyter.compiler.dialects import render
from prophecy_jupyter.compiler.preview import preview_gem
from prophecy_jupyter.engines.spark import SparkEngine, spark_session, spark_settings
from prophecy_jupyter.fabrics import Fabric
from prophecy_jupyter.model import Project

TARGET_GEOMEAN = 1.10


def timed_ms(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def geometric_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def target_input(compiled: CompiledPipeline) -> str:
    """The gem feeding the pipeline's one Target: what a run computes and writes."""
    (target,) = compiled.targets()
    (upstream,) = compiled.gems[target].inputs
    return upstream


def fetch_all(engine: SparkEngine, text: str) -> list[Any]:
    return engine.spark.sql(text).collect()


def hand_written(name: str) -> str:
    """The reference query in Spark SQL."""
    return render(sqlglot.parse_one(reference_query(name), read="duckdb"), "spark")


def measure(sf: float, repeat: int, master: str = "local[*]") -> dict[str, Any]:
    root = generate(sf)
    fabric = Fabric(
        name="benchmark",
        kind="spark",
        options={"master": master, "catalog": "in-memory", "app_name": "prophecy-benchmark"},
    )
    started = time.perf_counter()
    session = spark_session(spark_settings(fabric, {}, None))
    engine = SparkEngine(session, root=root)
    start_s = time.perf_counter() - started
    for table in TABLES:
        path = str((root / "data" / f"{table}.parquet").resolve()).replace("'", "\\'")
        engine.spark.sql(
            f"CREATE OR REPLACE TEMPORARY VIEW {table} USING parquet OPTIONS (path '{path}')"
        )

    project = Project.open(EXAMPLE)
    figures: dict[str, Any] = {"queries": {}, "start_s": round(start_s, 2)}
    for name in QUERIES:
        t0 = time.perf_counter()
        compiled = compile_pipeline(project.load_pipeline(name), engine)
        compiled.raise_for_issues()
        gem = target_input(compiled)
        statements = {
            "pipeline": engine.spark_sql(compiled.query(gem)),
            "hand_written": hand_written(name),
        }
        compile_ms = (time.perf_counter() - t0) * 1000
        answers = {key: fetch_all(engine, text) for key, text in statements.items()}  # warm
        assert len(answers["pipeline"]) == len(answers["hand_written"]), name
        samples: dict[str, list[float]] = {key: [] for key in statements}
        for _ in range(repeat):
            for key, text in statements.items():
                samples[key].append(timed_ms(partial(fetch_all, engine, text)))
        preview = partial(preview_gem, compiled, engine, gem, 100)
        first_preview = timed_ms(preview)
        warm_preview = statistics.median(timed_ms(preview) for _ in range(repeat))
        first_step = next(g for g in compiled.order if compiled.gems[g].inputs)
        step_preview = partial(preview_gem, compiled, engine, first_step, 100)
        step_preview()
        warm_step = statistics.median(timed_ms(step_preview) for _ in range(repeat))
        medians = {key: statistics.median(values) for key, values in samples.items()}
        figures["queries"][name] = {
            **{f"{key}_ms": round(ms, 1) for key, ms in medians.items()},
            "ratio": round(medians["pipeline"] / medians["hand_written"], 4),
            "compile_ms": round(compile_ms, 1),
            "preview_first_ms": round(first_preview, 1),
            "preview_warm_ms": round(warm_preview, 1),
            "first_step": first_step,
            "first_step_preview_warm_ms": round(warm_step, 1),
        }
    engine.close()
    ratios = [q["ratio"] for q in figures["queries"].values()]
    figures["geomean"] = round(geometric_mean(ratios), 4)
    warm = [q["preview_warm_ms"] for q in figures["queries"].values()]
    figures["preview_warm_ms"] = {"median": statistics.median(warm), "max": max(warm)}
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each statement")
    parser.add_argument("--master", default="local[*]", help="Spark master (default local[*])")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    figures = measure(args.sf, args.repeat, args.master)
    print(
        f"TPC-H SF{args.sf:g} on Spark {version('pyspark')} {args.master} (session started in "
        f"{figures['start_s']:.1f} s), sqlglot {version('sqlglot')}, median of {args.repeat} "
        "warm run(s)"
    )
    print(
        f"  {'query':<6}{'pipeline ms':>13}{'hand-written ms':>17}{'ratio':>8}"
        f"{'compile ms':>12}{'preview ms':>12}{'2nd preview ms':>16}{'1st gem ms':>12}"
    )
    for name, q in figures["queries"].items():
        print(
            f"  {name:<6}{q['pipeline_ms']:>13.1f}{q['hand_written_ms']:>17.1f}{q['ratio']:>8.3f}"
            f"{q['compile_ms']:>12.1f}{q['preview_first_ms']:>12.1f}{q['preview_warm_ms']:>16.1f}"
            f"{q['first_step_preview_warm_ms']:>12.1f}"
        )
    met = "met" if figures["geomean"] <= TARGET_GEOMEAN else "MISSED"
    print(
        f"  geometric mean of ratios {figures['geomean']:.3f}   "
        f"target <= {TARGET_GEOMEAN:.2f}   {met}"
    )
    result = {
        "sf": args.sf,
        "repeat": args.repeat,
        "master": args.master,
        "spark": figures,
        "targets": {"tpch_geomean_max": TARGET_GEOMEAN},
    }
    print(json.dumps(result, sort_keys=True))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
