"""Pipelines against hand-written SQL, compile and preview latency, notebook and REST overhead.

    python -m benchmarks.run [--sf 1] [--repeat 7]

1. TPC-H Q1, Q3, Q5 and Q6 of ``examples/tpch``: the compiled statement of each Target's input
   and the hand-written query run on the same in-memory DuckDB connection (2 threads, warm,
   median of ``--repeat`` runs, taken alternately); the ratio pipeline / hand-written per query
   and their geometric mean.
2. Compile time of synthetic 10-, 100- and 1000-gem pipelines: `compile_pipeline` (which
   describes every Source on the engine) plus the SQL text of every Target.
3. Preview latency: the first 100 rows at each gem of a 20-gem pipeline over the TPC-H data.
4. Notebook magic overhead: a ``%%prophecy`` cell against the same query sent to DuckDB
   directly (`benchmarks.magics`).
5. Studio REST latency, p50/p99 of get pipeline, validate and preview against a real Jupyter
   server on the shop example (`benchmarks.rest`).
6. Opening a 500-gem pipeline in the Studio, in JupyterLab in headless Chromium, against the
   same file in JupyterLab's text editor and a 10-gem pipeline (`benchmarks.studio`, in
   Debian's Chromium, which `scripts/setup` installs).
7. Automate: a scheduled notebook run against the ``papermill`` command and an in-process
   papermill call on the same notebook; the scheduler's tick with 1000 schedules
   (`benchmarks.automate`).

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

from benchmarks import automate, magics, rest, studio
from benchmarks.tpch_data import EXAMPLE, QUERIES, generate, reference_query, register_views
from prophecy_jupyter.compiler import CompiledPipeline, compile_pipeline
from prophecy_jupyter.compiler.preview import preview_gem
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.model import Pipeline, Project, load_pipeline

THREADS = 2
TARGET_GEOMEAN = 1.10
TARGET_COMPILE_1000_MS = 1000.0
TARGET_PREVIEW_MS = 300.0
COMPILE_SIZES = (10, 100, 1000)
REVENUE = "l_extendedprice * (1 - l_discount)"


def median_ms(work: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


# -- 1. TPC-H -------------------------------------------------------------------------------


def target_input_sql(compiled: CompiledPipeline) -> str:
    """SQL of the statement a run writes: the Target's input with its ancestors as CTEs."""
    (target,) = compiled.targets()
    (upstream,) = compiled.gems[target].inputs
    return compiled.sql(upstream, pretty=False)


def time_tpch(engine: DuckDBEngine, repeat: int) -> dict[str, dict[str, float]]:
    project = Project.open(EXAMPLE)
    connection = engine.connection
    figures: dict[str, dict[str, float]] = {}
    for name in QUERIES:
        compiled = compile_pipeline(project.load_pipeline(name), engine)
        compiled.raise_for_issues()
        statements = {"pipeline": target_input_sql(compiled), "hand_written": reference_query(name)}
        for sql in statements.values():
            connection.execute(sql).fetchall()  # warm: file metadata, caches
        samples: dict[str, list[float]] = {key: [] for key in statements}
        for _ in range(repeat):
            for key, sql in statements.items():
                started = time.perf_counter()
                connection.execute(sql).fetchall()
                samples[key].append((time.perf_counter() - started) * 1000)
        figures[name] = {key: statistics.median(values) for key, values in samples.items()}
    return figures


# -- 2. Compile time ------------------------------------------------------------------------


def _gem(gem_id: str, kind: str, x: int, y: int, **properties: Any) -> dict[str, Any]:
    return {"id": gem_id, "kind": kind, "properties": properties, "position": {"x": x, "y": y}}


def _named(**items: str) -> list[dict[str, str]]:
    return [{"name": name, "expression": expression} for name, expression in items.items()]


def synthetic_pipeline(size: int) -> Pipeline:
    """``size`` gems (a multiple of 10) in blocks of ten, each the shape of a reporting flow.

    A block reads orders and customers, filters both, joins them, derives columns,
    aggregates by nation and year, compares with the previous block's aggregate (a second
    join; the first block derives a zero instead), derives a change column and writes a
    table: 2 Sources, 2 Filters, 1-2 Joins, 2-3 Reformats, 1 Aggregate, 1 Target. Every
    expression differs between blocks, so no block reuses another's parsed expressions.
    """
    if size <= 0 or size % 10:
        raise ValueError("size must be a positive multiple of 10")
    gems: list[dict[str, Any]] = []
    connections: list[dict[str, str]] = []

    def link(source: str, target: str, port: int = 0) -> None:
        connections.append({"from": source, "to": target, "port": f"in{port}"})

    for k in range(size // 10):
        y = 40 + 400 * k

        def at(column: int, row: int, _y: int = y) -> tuple[int, int]:
            return 40 + 220 * column, _y + 130 * row

        orders, recent = f"orders_{k}", f"recent_orders_{k}"
        customer, solvent = f"customer_{k}", f"solvent_customers_{k}"
        joined, facts, by_nation = f"customer_orders_{k}", f"order_facts_{k}", f"by_nation_{k}"
        compared, growth = f"compared_{k}", f"growth_{k}"
        gems += [
            _gem(orders, "Source", *at(0, 0), format="parquet", path="data/orders.parquet"),
            _gem(
                recent,
                "Filter",
                *at(1, 0),
                condition=f"o_orderdate >= DATE '1995-01-01' - INTERVAL {k + 1} DAY "
                f"AND o_orderstatus <> 'P'",
            ),
            _gem(customer, "Source", *at(0, 1), format="parquet", path="data/customer.parquet"),
            _gem(solvent, "Filter", *at(1, 1), condition=f"c_acctbal > {k % 1000}.5"),
            _gem(
                joined,
                "Join",
                *at(2, 0),
                joins=[{"how": "inner", "condition": f"{solvent}.c_custkey = {recent}.o_custkey"}],
            ),
            _gem(
                facts,
                "Reformat",
                *at(3, 0),
                columns=_named(
                    c_nationkey="",
                    order_year="year(o_orderdate)",
                    net=f"o_totalprice * {1 + k / 1000:.3f}",
                    priority="upper(trim(o_orderpriority))",
                ),
            ),
            _gem(
                by_nation,
                "Aggregate",
                *at(4, 0),
                group_by=[{"expression": "c_nationkey"}, {"expression": "order_year"}],
                aggregates=_named(
                    total="sum(net)",
                    orders="count(*)",
                    urgent=f"sum(CASE WHEN priority LIKE '1-%' AND net > {k} THEN 1 ELSE 0 END)",
                ),
            ),
        ]
        link(orders, recent)
        link(customer, solvent)
        link(solvent, joined, 0)
        link(recent, joined, 1)
        link(joined, facts)
        link(facts, by_nation)
        if k == 0:
            gems.append(
                _gem(
                    compared,
                    "Reformat",
                    *at(5, 0),
                    columns=_named(c_nationkey="", order_year="", total="", previous_total="0.0"),
                )
            )
            link(by_nation, compared)
        else:
            previous = f"by_nation_{k - 1}"
            gems.append(
                _gem(
                    compared,
                    "Join",
                    *at(5, 0),
                    joins=[
                        {
                            "how": "left",
                            "condition": f"{by_nation}.c_nationkey = {previous}.c_nationkey "
                            f"AND {by_nation}.order_year = {previous}.order_year + {k % 3}",
                        }
                    ],
                    columns=_named(
                        c_nationkey=f"{by_nation}.c_nationkey",
                        order_year=f"{by_nation}.order_year",
                        total=f"{by_nation}.total",
                        previous_total=f"coalesce({previous}.total, 0)",
                    ),
                )
            )
            link(by_nation, compared, 0)
            link(previous, compared, 1)
        gems += [
            _gem(
                growth,
                "Reformat",
                *at(6, 0),
                columns=_named(
                    c_nationkey="",
                    order_year="",
                    total="",
                    change=f"round(total - previous_total, {k % 4})",
                ),
            ),
            _gem(f"save_{k}", "Target", *at(7, 0), format="table", table=f"report_{k}"),
        ]
        link(compared, growth)
        link(growth, f"save_{k}")
    return load_pipeline(
        {"version": 1, "name": f"synthetic_{size}", "gems": gems, "connections": connections}
    )


def compile_to_sql(pipeline: Pipeline, engine: DuckDBEngine) -> list[str]:
    compiled = compile_pipeline(pipeline, engine)
    compiled.raise_for_issues()
    return [compiled.sql(target) for target in compiled.targets()]


def time_compile(engine: DuckDBEngine, repeat: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    for size in COMPILE_SIZES:
        pipeline = synthetic_pipeline(size)
        assert len(pipeline.gems) == size
        compile_to_sql(pipeline, engine)  # warm: imports, parsed expressions
        figures[str(size)] = median_ms(partial(compile_to_sql, pipeline, engine), repeat)
    return figures


# -- 3. Preview latency ---------------------------------------------------------------------


def preview_pipeline() -> Pipeline:
    """20 gems over TPC-H: Q5's joins, then derive, aggregate by month, filter, sort, limit."""

    def src(table: str, x: int, y: int) -> dict[str, Any]:
        return _gem(table, "Source", x, y, format="parquet", path=f"data/{table}.parquet")

    gems = [
        src("region", 40, 40),
        _gem("asia", "Filter", 260, 40, condition="r_name = 'ASIA'"),
        src("nation", 260, 170),
        _gem(
            "asian_nations",
            "Join",
            480,
            100,
            joins=[{"how": "inner", "condition": "nation.n_regionkey = asia.r_regionkey"}],
        ),
        src("supplier", 480, 230),
        _gem(
            "asian_suppliers",
            "Join",
            700,
            160,
            joins=[
                {"how": "inner", "condition": "supplier.s_nationkey = asian_nations.n_nationkey"}
            ],
        ),
        src("customer", 260, 360),
        src("orders", 40, 490),
        _gem(
            "orders_1994",
            "Filter",
            260,
            490,
            condition="o_orderdate >= DATE '1994-01-01' AND o_orderdate < DATE '1995-01-01'",
        ),
        src("lineitem", 40, 620),
        _gem("by_sea_or_air", "Filter", 260, 620, condition="l_shipmode IN ('AIR', 'SHIP')"),
        _gem(
            "customer_lines",
            "Join",
            480,
            490,
            joins=[
                {"how": "inner", "condition": "customer.c_custkey = orders_1994.o_custkey"},
                {"how": "inner", "condition": "orders_1994.o_orderkey = by_sea_or_air.l_orderkey"},
            ],
        ),
        _gem(
            "local_lines",
            "Join",
            920,
            300,
            joins=[
                {
                    "how": "inner",
                    "condition": "customer_lines.l_suppkey = asian_suppliers.s_suppkey "
                    "AND customer_lines.c_nationkey = asian_suppliers.s_nationkey",
                }
            ],
        ),
        _gem(
            "line_revenue",
            "Reformat",
            1140,
            300,
            columns=_named(
                n_name="",
                order_month="date_trunc('month', o_orderdate)",
                revenue=REVENUE,
                l_quantity="",
            ),
        ),
        _gem(
            "by_nation_month",
            "Aggregate",
            1360,
            300,
            group_by=[{"expression": "n_name"}, {"expression": "order_month"}],
            aggregates=_named(revenue="sum(revenue)", quantity="sum(l_quantity)", lines="count(*)"),
        ),
        _gem("busy_months", "Filter", 1580, 300, condition="lines >= 10"),
        _gem(
            "per_line",
            "Reformat",
            1800,
            300,
            columns=_named(
                n_name="", order_month="", revenue="", revenue_per_line="revenue / lines"
            ),
        ),
        _gem(
            "by_revenue",
            "OrderBy",
            2020,
            300,
            keys=[{"expression": "revenue", "direction": "desc"}, {"expression": "n_name"}],
        ),
        _gem("top_50", "Limit", 2240, 300, count=50),
        _gem("save_report", "Target", 2460, 300, format="table", table="asia_monthly"),
    ]
    edges = [
        ("region", "asia", 0),
        ("nation", "asian_nations", 0),
        ("asia", "asian_nations", 1),
        ("supplier", "asian_suppliers", 0),
        ("asian_nations", "asian_suppliers", 1),
        ("orders", "orders_1994", 0),
        ("lineitem", "by_sea_or_air", 0),
        ("customer", "customer_lines", 0),
        ("orders_1994", "customer_lines", 1),
        ("by_sea_or_air", "customer_lines", 2),
        ("customer_lines", "local_lines", 0),
        ("asian_suppliers", "local_lines", 1),
        ("local_lines", "line_revenue", 0),
        ("line_revenue", "by_nation_month", 0),
        ("by_nation_month", "busy_months", 0),
        ("busy_months", "per_line", 0),
        ("per_line", "by_revenue", 0),
        ("by_revenue", "top_50", 0),
        ("top_50", "save_report", 0),
    ]
    return load_pipeline(
        {
            "version": 1,
            "name": "preview_20",
            "gems": gems,
            "connections": [{"from": f, "to": t, "port": f"in{p}"} for f, t, p in edges],
        }
    )


def preview(engine: DuckDBEngine, compiled: CompiledPipeline, gem_id: str) -> object:
    return preview_gem(compiled, engine, gem_id, 100)


def time_previews(engine: DuckDBEngine, repeat: int) -> dict[str, float]:
    pipeline = preview_pipeline()
    assert len(pipeline.gems) == 20
    compiled = compile_pipeline(pipeline, engine)
    compiled.raise_for_issues()
    per_gem: dict[str, float] = {}
    for gem_id in compiled.order:
        preview(engine, compiled, gem_id)  # warm
        per_gem[gem_id] = median_ms(partial(preview, engine, compiled, gem_id), repeat)
    return per_gem


# -- report -----------------------------------------------------------------------------------


def geometric_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    parser.add_argument(
        "--repeat", type=int, default=7, help="timed runs per figure; the median is reported"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    started = time.perf_counter()
    root = generate(args.sf)
    data_s = time.perf_counter() - started
    print(
        f"TPC-H SF{args.sf:g} Parquet in {root / 'data'} ready in {data_s:.1f} s; "
        f"DuckDB {version('duckdb')}, sqlglot {version('sqlglot')}, {THREADS} threads, "
        f"median of {args.repeat} warm run(s)"
    )
    with DuckDBEngine(":memory:", root=root, threads=THREADS) as engine:
        register_views(engine.connection, root)

        tpch = time_tpch(engine, args.repeat)
        ratios = {q: f["pipeline"] / f["hand_written"] for q, f in tpch.items()}
        geomean = geometric_mean(list(ratios.values()))
        print("\nTPC-H: pipeline vs hand-written query")
        print(f"  {'query':<6}{'pipeline ms':>13}{'hand-written ms':>17}{'ratio':>8}")
        for q, f in tpch.items():
            print(f"  {q:<6}{f['pipeline']:>13.1f}{f['hand_written']:>17.1f}{ratios[q]:>8.3f}")
        print(
            f"  geometric mean of ratios {geomean:.3f}   target <= {TARGET_GEOMEAN:.2f}   "
            f"{verdict(geomean <= TARGET_GEOMEAN)}"
        )

        compile_ms = time_compile(engine, args.repeat)
        print("\nCompile: compile_pipeline + SQL of every Target")
        for size, ms in compile_ms.items():
            note = ""
            if size == "1000":
                met = ms < TARGET_COMPILE_1000_MS
                note = f"   target < {TARGET_COMPILE_1000_MS:.0f} ms   {verdict(met)}"
            print(f"  {size:>5} gems {ms:>9.1f} ms{note}")

        per_gem = time_previews(engine, args.repeat)
        preview_max = max(per_gem.values())
        preview_median = statistics.median(per_gem.values())
        slowest = max(per_gem, key=lambda g: per_gem[g])
        print(f"\nPreview: first 100 rows at each of the {len(per_gem)} gems of a pipeline")
        print(
            f"  median {preview_median:.1f} ms, max {preview_max:.1f} ms (at '{slowest}')   "
            f"target < {TARGET_PREVIEW_MS:.0f} ms   {verdict(preview_max < TARGET_PREVIEW_MS)}"
        )

    cells = magics.measure(40 * args.repeat)
    print("\n%%prophecy cell vs calling DuckDB directly (median ms per cell)")
    for case in magics.CASES:
        overhead = cells[f"{case}_overhead_ms"]
        print(
            f"  {case:<10} magic {cells[f'{case}_magic_ms']:.3f}   duckdb "
            f"{cells[f'{case}_duckdb_ms']:.3f}   overhead {overhead:.3f}   "
            f"target < {magics.TARGET_OVERHEAD_MS:.0f} ms   "
            f"{verdict(overhead < magics.TARGET_OVERHEAD_MS)}"
        )

    api = rest.measure(max(20, 30 * args.repeat))
    print("\nStudio REST API on examples/shop (ms)")
    for kind, figure in api.items():
        target = rest.TARGET_P99_MS.get(kind)
        note = (
            f"   target p99 < {target:.0f} ms   {verdict(figure['p99'] < target)}" if target else ""
        )
        print(f"  {kind:<10} p50 {figure['p50']:>7.2f}   p99 {figure['p99']:>7.2f}{note}")

    opens = studio.measure(args.repeat)
    print("\nStudio: opening a pipeline in a loaded JupyterLab (median ms)")
    ratios_open = studio.report(opens)

    print("\nAutomate: a scheduled notebook run against papermill; the scheduler's tick")
    automated = automate.measure(args.repeat)

    figures: dict[str, Any] = {
        "sf": args.sf,
        "repeat": args.repeat,
        "tpch": {**{q: round(r, 4) for q, r in ratios.items()}, "geomean": round(geomean, 4)},
        "tpch_ms": {q: {k: round(v, 2) for k, v in f.items()} for q, f in tpch.items()},
        "compile_ms": {size: round(ms, 2) for size, ms in compile_ms.items()},
        "preview_ms": {"max": round(preview_max, 2), "median": round(preview_median, 2)},
        "magics": cells,
        "rest_ms": api,
        "studio_ms": opens,
        "studio_ratios": ratios_open,
        "automate": automated,
        "targets": {
            "magic_overhead_ms_max": magics.TARGET_OVERHEAD_MS,
            **{f"rest_{kind}_p99_ms_max": ms for kind, ms in rest.TARGET_P99_MS.items()},
            "tpch_geomean_max": TARGET_GEOMEAN,
            "compile_1000_ms_max": TARGET_COMPILE_1000_MS,
            "preview_ms_max": TARGET_PREVIEW_MS,
            "studio_open_500_ms_max": studio.TARGET_OPEN_500_MS,
            "scheduled_notebook_ratio_max": automate.TARGET_RATIO,
        },
    }
    print(json.dumps(figures, sort_keys=True))
    sys.stdout.flush()
    return figures


if __name__ == "__main__":
    main()
