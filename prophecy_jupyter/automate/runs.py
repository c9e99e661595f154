"""Background runs: start a pipeline run, get an id at once, follow it gem by gem, cancel it.

A front door that must answer immediately (the REST API, a UI button) cannot wait for
`run_pipeline`; `RunManager` runs it in a worker thread and keeps a record that readers poll.
Runs of one project execute one after another, in the order they were submitted (a later run
waits as ``queued``): two runs writing the same tables at once would fail on each other's
transactions, or the later would be overwritten by the earlier. Each run gets its own engine
session, so cancelling it interrupts its statement and nobody else's; an interrupted write
rolls back, so a cancelled run leaves every target as it was or as the run finished it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from prophecy_jupyter.automate.runner import GemRun, RunMode, gem_view, run_pipeline
from prophecy_jupyter.automate.store import FINISHED, Run, RunStatus, Store, iso, this_worker
from prophecy_jupyter.engines.base import Engine
from prophecy_jupyter.errors import Issue, NotFound, ProphecyError, ValidationError
from prophecy_jupyter.model.pipeline import Pipeline

if TYPE_CHECKING:
    from prophecy_jupyter.connections import ConnectionResolver


log = logging.getLogger(__name__)
T = TypeVar("T")


def keep_interrupting(interrupt: Callable[[], bool], every: float = 0.05) -> None:
    """After a first interrupt, call ``interrupt`` every ``every`` seconds until it returns
    False.

    An engine's interrupt only reaches a statement that is running: one sent while the worker
    is between two statements (a write is several) is lost, and the next statement would run
    to its end. So a cancel keeps interrupting, from a thread of its own, until the work has
    let go of its engine; ``interrupt`` says whether it still holds it (and takes whatever
    lock guards that, which the caller may be holding now).
    """

    def repeat() -> None:
        while True:
            time.sleep(every)
            if not interrupt():
                return

    threading.Thread(target=repeat, name="prophecy-interrupt", daemon=True).start()


class _Stopped(Exception):
    """Raised from the progress callback to stop a run between two gems."""


@dataclass
class RunRecord:
    """What is known about one run; read through `to_dict`, which takes a consistent copy."""

    id: str
    project: str
    pipeline: str
    mode: RunMode
    parameters: dict[str, Any]
    fabric: str
    dialect: str = "duckdb"
    status: RunStatus = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    gems: dict[str, GemRun] = field(default_factory=dict)
    error: str | None = None
    issues: list[Issue] = field(default_factory=list)
    cancel_requested: bool = False
    engine: Engine | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        end = self.finished if self.finished is not None else time.time()
        return {
            "id": self.id,
            "project": self.project,
            "pipeline": self.pipeline,
            "fabric": self.fabric,
            "mode": self.mode,
            "parameters": dict(self.parameters),
            "status": self.status,
            "created": iso(self.created),
            "started": iso(self.started),
            "finished": iso(self.finished),
            "seconds": None if self.started is None else round(end - self.started, 6),
            "gems": [gem_view(g) for g in self.gems.values()],
            "error": self.error,
            "issues": [i.to_dict() for i in self.issues],
        }


class RunManager:
    """Runs pipelines in background threads and keeps the latest ``keep`` finished records."""

    def __init__(self, keep: int = 200, store: Store | None = None) -> None:
        self.keep = keep
        self.store = store
        """Where the runs are also recorded, for run history (Observe) across restarts."""
        self._lock = threading.Lock()
        self._runs: dict[str, RunRecord] = {}
        self._queues: dict[Path, ThreadPoolExecutor] = {}
        self._closed = False

    def submit(
        self,
        project: str,
        project_root: Path,
        pipeline: Pipeline,
        engine: Engine,
        parameters: Mapping[str, Any] | None = None,
        mode: RunMode = "fused",
        *,
        fabric: str,
        dialect: str = "duckdb",
        connections: ConnectionResolver | None = None,
    ) -> dict[str, Any]:
        """Queue a run of ``pipeline`` on a session of ``engine``; returns its record at once.

        ``project`` is how callers name the project (it is echoed in the record, like
        ``fabric``, the name of the fabric ``engine`` belongs to); ``project_root`` identifies
        it, so that runs of one project queue behind each other, whatever their fabric.
        """
        record = RunRecord(
            id=uuid.uuid4().hex,
            project=project,
            pipeline=pipeline.name,
            mode=mode,
            parameters=dict(parameters or {}),
            fabric=fabric,
            dialect=dialect,
            gems={g.id: GemRun(g.id, g.kind) for g in pipeline.gems},
        )
        self._record_in_store(lambda store: store.insert_run(stored_run(record)))
        with self._lock:
            if self._closed:
                raise ProphecyError("the server is shutting down; no new runs are accepted")
            self._runs[record.id] = record
            self._forget_old()
            queue = self._queues.get(project_root)
            if queue is None:
                queue = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prophecy-run")
                self._queues[project_root] = queue
            snapshot = record.to_dict()
        queue.submit(self._execute, record, pipeline, engine, connections)
        return snapshot

    def get(self, run_id: str) -> dict[str, Any]:
        with self._lock:
            return self._record(run_id).to_dict()

    def list(self, project: str | None = None) -> list[dict[str, Any]]:
        """Records, newest first; only those of ``project`` when it is given."""
        with self._lock:
            records = [r for r in self._runs.values() if project is None or r.project == project]
            return [r.to_dict() for r in sorted(records, key=lambda r: r.created, reverse=True)]

    def cancel(self, run_id: str) -> dict[str, Any]:
        """Cancel a queued or running run (a finished one is left as it is)."""
        with self._lock:
            record = self._record(run_id)
            if record.status not in FINISHED:
                self._request_cancel(record)
            return record.to_dict()

    def close(self) -> None:
        """Cancel every run and stop accepting new ones (when the server stops)."""
        with self._lock:
            self._closed = True
            for record in self._runs.values():
                if record.status not in FINISHED:
                    self._request_cancel(record)
            queues = list(self._queues.values())
        for queue in queues:
            queue.shutdown(wait=True, cancel_futures=True)

    # -- internals, called with the lock held ----------------------------------------------
    def _record(self, run_id: str) -> RunRecord:
        record = self._runs.get(run_id)
        if record is None:
            raise NotFound(f"no run '{run_id}'")
        return record

    def _request_cancel(self, record: RunRecord) -> None:
        record.cancel_requested = True
        if record.status == "queued":
            self._record_in_store(lambda store: store.request_cancel(record.id))
            record.status = "cancelled"
            record.finished = time.time()
            for gem in record.gems.values():
                gem.status = "skipped"
        elif record.engine is not None:
            record.engine.cancel()
            keep_interrupting(lambda: self._interrupt(record))

    def _interrupt(self, record: RunRecord) -> bool:
        with self._lock:
            if record.engine is None:
                return False
            record.engine.cancel()
            return True

    def _forget_old(self) -> None:
        finished = sorted(
            (r for r in self._runs.values() if r.status in FINISHED), key=lambda r: r.created
        )
        for record in finished[: max(0, len(finished) - self.keep)]:
            del self._runs[record.id]

    # -- the worker ------------------------------------------------------------------------
    def _execute(
        self,
        record: RunRecord,
        pipeline: Pipeline,
        engine: Engine,
        connections: ConnectionResolver | None,
    ) -> None:
        with self._lock:
            if record.cancel_requested:
                return
            record.status = "running"
            record.started = time.time()
        self._record_in_store(lambda store: store.start(record.id, this_worker()))

        def progress(gem: GemRun) -> None:
            with self._lock:
                record.gems[gem.gem_id] = replace(gem)
                gems = [gem_view(g) for g in record.gems.values()]
            if self._record_in_store(lambda store: store.progress(record.id, gems)):
                with self._lock:
                    record.cancel_requested = True
            with self._lock:
                if record.cancel_requested:
                    raise _Stopped

        status: RunStatus = "failed"
        error: str | None = None
        issues: list[Issue] = []
        gems: list[GemRun] = []
        session: Engine | None = None
        try:
            # Not under the lock, which every reader of the records takes: opening may wait
            # for another process to let go of the database file.
            session = engine.session()
            with self._lock:
                record.engine = session
                if record.cancel_requested:
                    raise _Stopped
            result = run_pipeline(
                pipeline,
                session,
                record.parameters,
                record.mode,
                progress,
                dialect=record.dialect,
                connections=connections,
            )
        except _Stopped:
            status = "cancelled"
        except ValidationError as exc:
            error, issues = str(exc), exc.issues
        except ProphecyError as exc:
            error = str(exc)
        except Exception as exc:  # a bug: the record says so, the log names it without a trace
            log.error("run %s of %s failed unexpectedly: %r", record.id, record.pipeline, exc)
            error = "internal error while running the pipeline"
        else:
            status, error, gems = result.status, result.error, result.gems
        finally:
            with self._lock:
                record.engine = None
            if session is not None:
                session.close()
        with self._lock:
            if gems:
                record.gems = {g.gem_id: g for g in gems}
            if record.cancel_requested and status != "succeeded":
                status, error = "cancelled", "cancelled"
            if status == "cancelled":
                for gem in record.gems.values():
                    if gem.status in {"pending", "running"}:
                        gem.status = "skipped"
            record.status = status
            record.error = error
            record.issues = issues
            record.finished = time.time()
            views = [gem_view(g) for g in record.gems.values()]
        self._record_in_store(
            lambda store: store.finish(
                record.id, status, error, [i.to_dict() for i in issues], views
            )
        )

    def _record_in_store(self, write: Callable[[Store], T]) -> T | None:
        """Write to the run store, if any; a failing store costs the history, not the run."""
        if self.store is None:
            return None
        try:
            return write(self.store)
        except Exception as exc:
            log.warning("could not record a run in the run store: %r", exc)
            return None


def stored_run(record: RunRecord) -> Run:
    """A Studio run as the run store keeps it: executed by the server itself."""
    return Run(
        id=record.id,
        project=record.project,
        kind="pipeline",
        target=record.pipeline,
        fabric=record.fabric,
        concurrency_key=f"studio:{record.project}",
        parameters=dict(record.parameters),
        trigger_type="manual",
        executor="studio",
        worker=this_worker(),
        created=record.created,
    )
