"""Run a pipeline: write every Target in dependency order and report what happened.

Two ways to run, one result shape:

- ``fused`` (default): one statement per Target, every upstream gem inlined as a CTE. The
  engine plans the whole chain at once, which is what makes a pipeline as fast as the same
  query written by hand. Row counts and timings are reported per Target.
- ``staged``: every gem is materialised in order as a temporary table named after it, so
  each gem gets its own row count and timing (what a canvas shows on its edges). Slower, as
  every intermediate result is stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from prophecy_jupyter.compiler import CompiledPipeline, compile_pipeline
from prophecy_jupyter.engines.base import WriteSpec
from prophecy_jupyter.engines.duckdb import DuckDBEngine
from prophecy_jupyter.errors import ProphecyError
from prophecy_jupyter.gems.sources import SourceProps, TargetProps
from prophecy_jupyter.model.pipeline import Pipeline

GemStatus = Literal["pending", "running", "succeeded", "failed", "skipped"]
RunMode = Literal["fused", "staged"]


@dataclass
class GemRun:
    gem_id: str
    kind: str
    status: GemStatus = "pending"
    rows: int | None = None
    seconds: float | None = None
    error: str | None = None


@dataclass
class RunResult:
    pipeline: str
    mode: RunMode
    status: Literal["succeeded", "failed"] = "succeeded"
    seconds: float = 0.0
    gems: list[GemRun] = field(default_factory=list)
    error: str | None = None

    def gem(self, gem_id: str) -> GemRun:
        return next(g for g in self.gems if g.gem_id == gem_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressCallback = Callable[[GemRun], None]


def target_order(compiled: CompiledPipeline) -> list[str]:
    """Targets ordered so that one writing a table runs before any reading that table."""
    targets = compiled.targets()
    writes: dict[str, str] = {}
    for t in targets:
        props: TargetProps = compiled.gems[t].props
        if props.format == "table" and props.table:
            writes[props.table.lower()] = t
    needs: dict[str, set[str]] = {}
    for t in targets:
        reads = set()
        for upstream in compiled.ancestors(t):
            props_in = compiled.gems[upstream].props
            if isinstance(props_in, SourceProps) and props_in.format == "table" and props_in.table:
                writer = writes.get(props_in.table.lower())
                if writer is not None and writer != t:
                    reads.add(writer)
        needs[t] = reads
    ordered: list[str] = []
    while len(ordered) < len(targets):
        ready = [t for t in targets if t not in ordered and needs[t] <= set(ordered)]
        if not ready:  # tables written and read in a loop: keep document order for the rest
            ready = [t for t in targets if t not in ordered]
        ordered.append(ready[0])
    return ordered


def write_spec(props: TargetProps) -> WriteSpec:
    return WriteSpec(
        format=props.format,
        mode=props.mode,
        table=props.table,
        path=props.path,
        keys=list(props.keys),
        header=props.header,
    )


def run_pipeline(
    pipeline: Pipeline,
    engine: DuckDBEngine,
    parameters: Mapping[str, Any] | None = None,
    mode: RunMode = "fused",
    on_progress: ProgressCallback | None = None,
) -> RunResult:
    """Compile and run; raises `ValidationError` for an invalid pipeline, else returns a result
    whose status says whether every target was written."""
    compiled = compile_pipeline(pipeline, engine, parameters, dialect=engine.dialect)
    compiled.raise_for_issues()
    targets = target_order(compiled)
    needed = {g for t in targets for g in (*compiled.ancestors(t), t)}
    steps = (
        [g for g in compiled.order if g in needed and g not in targets] if mode == "staged" else []
    )
    result = RunResult(pipeline.name, mode)
    runs = {g: GemRun(g, compiled.gems[g].gem.kind) for g in compiled.order if g in needed}
    result.gems = list(runs.values())
    started = time.perf_counter()

    def report(run: GemRun) -> None:
        if on_progress is not None:
            on_progress(run)

    failed = False
    staged: list[str] = []
    try:
        for gem_id in [*steps, *targets]:
            run = runs[gem_id]
            if failed:
                run.status = "skipped"
                report(run)
                continue
            run.status = "running"
            report(run)
            t0 = time.perf_counter()
            try:
                if gem_id in targets:
                    query = (
                        compiled.gems[gem_id].output.query  # type: ignore[union-attr]
                        if mode == "staged"
                        else compiled.query(gem_id)
                    )
                    run.rows = engine.write(query, write_spec(compiled.gems[gem_id].props))
                else:
                    run.rows = engine.materialize(gem_id, compiled.gems[gem_id].output.query)  # type: ignore[union-attr]
                    staged.append(gem_id)
                run.status = "succeeded"
            except ProphecyError as exc:
                run.status = "failed"
                run.error = str(exc)
                result.status = "failed"
                result.error = f"gem '{gem_id}': {exc}"
                failed = True
            run.seconds = time.perf_counter() - t0
            report(run)
    finally:
        for gem_id in reversed(staged):
            engine.drop_materialized(gem_id)
    for run in result.gems:
        if run.status == "pending" and mode == "fused":
            run.status = "succeeded" if not failed else "skipped"
    result.seconds = time.perf_counter() - started
    return result
