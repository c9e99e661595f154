"""A run killed with SIGKILL at any point leaves every target as it was before or after.

A child process runs a pipeline that rewrites a few million rows into a table of a database
file, a Parquet file and a CSV file, and appends a sample to another table; the test kills
it at varying points of the write and then checks each target's exact contents.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp

from prophecy_jupyter.automate.runner import RunMode, run_pipeline
from prophecy_jupyter.compiler import compile_pipeline
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.gems.sources import TargetProps, file_reader, written_relation
from prophecy_jupyter.model import Pipeline, dump_pipeline
from tests.conftest import gem, make_pipeline

pytestmark = pytest.mark.slow

ROWS = {"old": 3_000_000, "new": 4_000_000}
REPLACED: dict[str, dict[str, Any]] = {
    "table": {"table": "big"},
    "parquet": {"format": "parquet", "path": "out/big.parquet"},
    "csv": {"format": "csv", "path": "out/big.csv"},
}
APPENDED: dict[str, Any] = {"table": "history", "mode": "append"}
SAMPLE = "id % 1000 = 0"
KILL_DELAYS = (0.0, 0.1, 0.25, 0.4, 0.6, 0.8, 1.0, 1.3, 1.6, 2.0)

CHILD = """
import sys
from pathlib import Path

from prophecy_jupyter.automate.runner import run_pipeline
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.model import load_pipeline

root, database, document, mode = sys.argv[1:5]
pipeline = load_pipeline(Path(document).read_bytes())
with DuckDBEngine(database, root=root) as engine:
    result = run_pipeline(
        pipeline, engine, mode=mode, on_progress=lambda r: print(r.gem_id, r.status, flush=True)
    )
print("finished", result.status, flush=True)
"""

Fingerprint = tuple[int, int]


def pipeline_for(version: str) -> Pipeline:
    """Rewrite every replaced target from ``data/<version>.parquet``; append a sample."""
    targets = [gem(f"to_{name}", "Target", **props) for name, props in REPLACED.items()]
    return make_pipeline(
        [
            gem("source", "Source", format="parquet", path=f"data/{version}.parquet"),
            *targets,
            gem("sample", "Filter", condition=SAMPLE),
            gem("to_history", "Target", **APPENDED),
        ],
        [
            *(("source", t["id"]) for t in targets),
            ("source", "sample"),
            ("sample", "to_history"),
        ],
    )


def fingerprint(engine: DuckDBEngine, relation: exp.Query) -> Fingerprint:
    """Row count and the sum of every row's hash: equal for equal multisets of rows."""
    row_hash = exp.func("hash", exp.column("id"), exp.column("v"))
    probe = exp.select(
        exp.func("count", exp.Star()),
        exp.func("coalesce", exp.func("sum", row_hash), exp.Literal.number(0)),
    ).from_(relation.subquery("written"))
    _, rows = engine.query(probe)
    return int(rows[0][0]), int(rows[0][1])


def plus(a: Fingerprint, b: Fingerprint) -> Fingerprint:
    return a[0] + b[0], a[1] + b[1]


def target_states(engine: DuckDBEngine) -> dict[str, Fingerprint]:
    states = {
        name: fingerprint(engine, written_relation(TargetProps.model_validate(props)))
        for name, props in REPLACED.items()
    }
    states["history"] = fingerprint(engine, written_relation(TargetProps.model_validate(APPENDED)))
    return states


def stored_tables(engine: DuckDBEngine) -> list[str]:
    tables = exp.Table(this=exp.Anonymous(this="duckdb_tables"))
    return sorted(r[0] for r in engine.query(exp.select("table_name").from_(tables))[1])


def run_child(tmp_path: Path, database: Path, version: str, mode: RunMode, delay: float) -> int:
    """Start a run in a child process, SIGKILL it ``delay`` seconds after its first gem
    starts (unless it finished), and return its exit code."""
    document = tmp_path / f"{version}.json"
    document.write_text(dump_pipeline(pipeline_for(version)))
    with (tmp_path / "child.err").open("w") as errors:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path), str(database), str(document), mode],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            cwd=tmp_path,
        )
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first.endswith(" running\n"), (tmp_path / "child.err").read_text()
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.stdout.read()
        return child.wait(timeout=120)


def test_killed_runs_leave_each_target_old_or_new_never_partial(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    database = tmp_path / "warehouse.duckdb"
    full: dict[str, Fingerprint] = {}
    sample: dict[str, Fingerprint] = {}
    with DuckDBEngine(str(database), root=tmp_path) as engine:
        for version, count in ROWS.items():
            path = tmp_path / "data" / f"{version}.parquet"
            generated = exp.select(
                exp.column("range").as_("id"),
                exp.DPipe(
                    this=exp.Literal.string(f"{version}-"), expression=exp.column("range")
                ).as_("v"),
            ).from_(exp.Table(this=exp.func("range", exp.Literal.number(count))))
            engine.connection.execute(
                exp.Copy(
                    this=generated.subquery(),
                    kind=False,
                    files=[exp.Literal.string(str(path))],
                    params=[
                        exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var("parquet"))
                    ],
                ).sql("duckdb")
            )
            full[version] = fingerprint(
                engine, exp.select(exp.Star()).from_(file_reader("parquet", str(path)))
            )
            compiled = compile_pipeline(pipeline_for(version), engine)
            sample[version] = fingerprint(engine, compiled.query("sample"))
        assert run_pipeline(pipeline_for("old"), engine).status == "succeeded"
        states = target_states(engine)
    assert states == {**dict.fromkeys(REPLACED, full["old"]), "history": sample["old"]}

    killed = 0
    for i, delay in enumerate(KILL_DELAYS):
        # Always write the other version than the table holds, so every run changes it.
        version = "new" if states["table"] == full["old"] else "old"
        mode: RunMode = "staged" if i % 4 >= 2 else "fused"
        code = run_child(tmp_path, database, version, mode, delay)
        killed += code == -signal.SIGKILL
        with DuckDBEngine(str(database), root=tmp_path) as engine:
            after = target_states(engine)
            tables = stored_tables(engine)
        where = f"run {i} ({version}, {mode}) killed {delay}s into the write, exit code {code}"
        for name in REPLACED:
            assert after[name] in {states[name], full[version]}, f"{name} is partial: {where}"
        grown = plus(states["history"], sample[version])
        assert after["history"] in {states["history"], grown}, f"history is partial: {where}"
        assert tables == ["big", "history"], f"stray tables {tables}: {where}"
        states = after

    assert killed >= 1, "no run was interrupted, so nothing was tested"
    with DuckDBEngine(str(database), root=tmp_path) as engine:
        assert run_pipeline(pipeline_for("new"), engine).status == "succeeded"
        final = target_states(engine)
    assert {name: final[name] for name in REPLACED} == dict.fromkeys(REPLACED, full["new"])
