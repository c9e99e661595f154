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
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sqlglot import exp

from prophecy_jupyter.compiler import CompiledPipeline, compile_pipeline
from prophecy_jupyter.engines.base import Engine
from prophecy_jupyter.errors import ProphecyError
from prophecy_jupyter.model.pipeline import Pipeline

if TYPE_CHECKING:
    from prophecy_jupyter.connections import ConnectionResolver

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


def gem_view(gem: GemRun) -> dict[str, Any]:
    """A gem's progress as the API and the run store show it."""
    return {
        "gem_id": gem.gem_id,
        "kind": gem.kind,
        "status": gem.status,
        "rows": gem.rows,
        "seconds": None if gem.seconds is None else round(gem.seconds, 6),
        "error": gem.error,
    }


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


def schedule(compiled: CompiledPipeline, targets: list[str], mode: RunMode) -> list[str]:
    """Gems in the order a run executes and reports them: each Target (in ``targets`` order)
    preceded, in staged mode, by whichever of its ancestors are not stored yet.

    Storing an ancestor only just before the first Target that needs it keeps a staged run
    reading a table at the same point a fused one does: after the Target that writes it.
    """
    if mode == "fused":
        return list(targets)
    order: list[str] = []
    for target in targets:
        order.extend(g for g in compiled.ancestors(target) if g not in order)
        order.append(target)
    return order


def run_pipeline(
    pipeline: Pipeline,
    engine: Engine,
    parameters: Mapping[str, Any] | None = None,
    mode: RunMode = "fused",
    on_progress: ProgressCallback | None = None,
    dialect: str = "duckdb",
    connections: ConnectionResolver | None = None,
) -> RunResult:
    """Compile and run; raises `ValidationError` for an invalid pipeline, else returns a result
    whose status says whether every target was written. ``dialect`` is the one the pipeline's
    expressions are written in (the project's); the engine writes its own SQL from them."""
    compiled = compile_pipeline(
        pipeline, engine, parameters, dialect=dialect, connections=connections
    )
    compiled.raise_for_issues()
    return run_compiled(compiled, engine, mode, on_progress)


def run_compiled(
    compiled: CompiledPipeline,
    engine: Engine,
    mode: RunMode = "fused",
    on_progress: ProgressCallback | None = None,
) -> RunResult:
    """Run a pipeline compiled without errors on ``engine``, for a front door that compiles
    first to show the run's plan (`schedule`) before it starts."""
    # The compiler orders a Target writing a table before the Sources reading it.
    targets = compiled.targets()
    needed = {g for t in targets for g in (*compiled.ancestors(t), t)}
    result = RunResult(compiled.pipeline.name, mode)
    runs = {g: GemRun(g, compiled.gems[g].gem.kind) for g in compiled.order if g in needed}
    result.gems = list(runs.values())
    started = time.perf_counter()
    # Staged tables get names no user table or gem id can have, so that neither shadows the
    # other; each gem reads its inputs from them under the inputs' gem ids.
    run_tag = uuid.uuid4().hex[:12]
    stored = {g: f"__prophecy_gem_{run_tag}_{i}" for i, g in enumerate(compiled.order)}

    def report(run: GemRun) -> None:
        if on_progress is not None:
            on_progress(run)

    def statement(gem_id: str) -> exp.Query:
        if mode == "fused":
            return compiled.query(gem_id)
        inputs = {
            u: exp.Table(this=exp.to_identifier(stored[u], quoted=True))
            for u in compiled.gems[gem_id].inputs
        }
        return compiled.reading(gem_id, inputs)

    failed = False
    staged: list[str] = []
    try:
        for gem_id in schedule(compiled, targets, mode):
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
                    built = compiled.gems[gem_id]
                    assert built.kind is not None
                    run.rows = built.kind.write(
                        built.props,
                        engine,
                        statement(gem_id),
                        compiled.connections,
                        compiled.target_docs(gem_id),
                    )
                else:
                    run.rows = engine.materialize(stored[gem_id], statement(gem_id))
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
            engine.drop_materialized(stored[gem_id])
    written = [t for t in targets if runs[t].status == "succeeded"]
    for run in result.gems:
        if run.status == "pending":
            # Fused: the gem ran inside its Targets' statements, so it succeeded with any of them.
            fed = any(run.gem_id in compiled.ancestors(t) for t in written)
            run.status = "succeeded" if fed else "skipped"
    result.seconds = time.perf_counter() - started
    return result
