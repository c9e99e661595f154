"""Executing runs: each in a worker process of its own, supervised by an `Executor`.

A worker process runs one pipeline (through the runner) or one notebook (through papermill,
in the Prophecy kernel) and records its progress, logs and end in the store itself. The
executor that started it only starts, watches and stops: it kills the worker's whole process
tree (the notebook's kernel with it) on cancel or timeout, and records the end of a worker
that died without recording its own. Because the worker writes its own result, a run keeps
going, and is recorded, when the process that started it is killed; a run whose worker is
gone is found by `reconcile` and failed (then retried, when its schedule allows).

Writes stay whole whatever is killed: the engines stage and swap every Target in one
transaction, so a killed run leaves each table as it was before or as the run finished it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from prophecy_jupyter.automate.store import Run, RunStatus, Store, this_worker
from prophecy_jupyter.errors import ProphecyError, ValidationError

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
STALE_SECONDS = 60.0
"""A running run whose worker has not beaten for this long, on another machine, is lost."""
KILL_GRACE_SECONDS = 3.0
KERNEL_NAME = "prophecy"
SPARE = "-"
"""The run id a spare worker is started with: it reads the real one from its stdin."""


# -- ends and retries ----------------------------------------------------------------------
def finish_run(
    store: Store,
    run_id: str,
    status: RunStatus,
    error: str | None = None,
    issues: list[dict[str, Any]] | None = None,
    gems: list[dict[str, Any]] | None = None,
) -> Run | None:
    """Record a run's end and queue its retry when it failed and has attempts left.

    Only the first to record an end gets the run back, so a run is retried at most once
    however many parties (its worker, its executor, a reconcile) see it fail."""
    ended = store.finish(run_id, status, error, issues or [], gems)
    if ended is None or status != "failed" or ended.attempt >= ended.max_attempts:
        return ended
    delay = ended.retry_backoff * (2 ** (ended.attempt - 1))
    retry = replace(
        ended,
        id=uuid.uuid4().hex,
        status="queued",
        trigger_type="retry",
        trigger_detail=f"attempt {ended.attempt + 1} after run {ended.id}",
        attempt=ended.attempt + 1,
        created=time.time(),
        not_before=time.time() + delay,
        started=None,
        finished=None,
        worker=None,
        heartbeat=None,
        cancel_requested=False,
        error=None,
        issues=[],
        gems=[],
        output=None,
    )
    store.insert_run(retry)
    store.log(run_id, "info", f"retry {retry.id} queued in {delay:g} s")
    return ended


def _worker_alive(worker: str | None) -> bool | None:
    """Whether the process ``host:pid`` lives; None when it is on another host."""
    if not worker:
        return False
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        process = psutil.Process(int(pid))
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def reconcile(store: Store, stale_after: float = STALE_SECONDS) -> list[str]:
    """Fail the runs left ``running`` by a process that is gone (killed, crashed, the
    machine restarted); returns their ids. Each is retried when its schedule allows."""
    lost: list[str] = []
    now = time.time()
    # A Studio run is queued in its server's memory: with that server gone it never starts.
    left = [
        *store.runs_with("running", "automate"),
        *store.runs_with("running", "studio"),
        *store.runs_with("queued", "studio"),
    ]
    for run in left:
        alive = _worker_alive(run.worker)
        stale = run.heartbeat is None or now - run.heartbeat > stale_after
        if alive is False or (alive is None and stale):
            message = "the process running it stopped (killed, crashed or restarted)"
            if finish_run(store, run.id, "failed", message) is not None:
                store.log(run.id, "error", message)
                lost.append(run.id)
    return lost


# -- the supervisor ------------------------------------------------------------------------
@dataclass
class _Child:
    run: Run
    process: subprocess.Popen[bytes]
    started: float
    stopping: str | None = None
    stop_sent: float = 0.0


class Executor:
    """Starts queued runs in worker processes, at most ``max_workers`` at once (and each
    schedule within its own limit), and stops them on cancel or timeout."""

    def __init__(
        self, store: Store, root: Path, max_workers: int = 2, worker: str | None = None
    ) -> None:
        self.store = store
        self.root = root
        self.max_workers = max_workers
        self.worker = worker or this_worker()
        self.children: dict[str, _Child] = {}
        self._spare: tuple[subprocess.Popen[bytes], Path] | None = None
        """A worker started ahead, its imports done, waiting on stdin for the next run: a
        run then starts without paying for a Python process and papermill's imports."""
        self.logs = root / ".prophecy" / "workers"

    def step(self) -> None:
        """One round: reap ended workers, stop cancelled or late ones, start due runs."""
        self._reap()
        self._stop_cancelled_and_late()
        free = self.max_workers - len(self.children)
        if free > 0:
            for run in self.store.claim(self.worker, limit=free):
                self._spawn(run)
        self.store.heartbeat(list(self.children))

    def busy(self) -> int:
        return len(self.children)

    def close(self, wait: float = 0.0) -> None:
        """Stop the spare worker; leave running workers to finish on their own (they record
        their ends), or wait ``wait`` seconds for them."""
        if self._spare is not None:
            _kill_tree(self._spare[0].pid)
            self._spare[0].wait()
            self._spare[1].unlink(missing_ok=True)
            self._spare = None
        deadline = time.monotonic() + wait
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)

    def _start_worker(self, run_id: str, log: Path) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as stderr:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "prophecy_jupyter.automate.worker",
                    "--store",
                    self.store.url,
                    "--root",
                    str(self.root),
                    run_id,
                ],
                stdin=subprocess.PIPE if run_id == SPARE else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                # Its own session: a signal meant for the server does not reach its runs.
                start_new_session=True,
            )

    def _spawn(self, run: Run) -> None:
        """Hand ``run`` to the spare worker (started earlier, its imports done) or start a
        worker for it; then start the next spare."""
        log = self.logs / f"{run.id}.log"
        process = None
        if self._spare is not None:
            spare, spare_log = self._spare
            self._spare = None
            if spare.poll() is None and spare.stdin is not None:
                try:
                    spare.stdin.write(f"{run.id}\n".encode())
                    spare.stdin.close()
                    spare_log.replace(log)
                    process = spare
                except OSError:
                    _kill_tree(spare.pid)
        if process is None:
            process = self._start_worker(run.id, log)
        self.children[run.id] = _Child(run, process, time.monotonic())
        self.store.assign(run.id, f"{socket.gethostname()}:{process.pid}")
        spare_log = self.logs / f"spare-{uuid.uuid4().hex[:8]}.log"
        self._spare = (self._start_worker(SPARE, spare_log), spare_log)

    def _reap(self) -> None:
        for run_id, child in list(self.children.items()):
            code = child.process.poll()
            if code is None:
                continue
            del self.children[run_id]
            _kill_tree(child.process.pid)  # a kernel left behind by a dead worker
            if child.stopping == "cancelled":
                ended = finish_run(self.store, run_id, "cancelled", "cancelled")
            elif child.stopping is not None:
                ended = finish_run(self.store, run_id, "failed", child.stopping)
            else:
                how = f"signal {-code}" if code < 0 else f"code {code}"
                ended = finish_run(
                    self.store, run_id, "failed", f"the run's process ended with {how}"
                )
                if ended is not None:
                    self._log_tail(run_id)
            if ended is not None:
                self.store.log(run_id, "error", ended.error or ended.status)

    def _log_tail(self, run_id: str) -> None:
        try:
            text = (self.logs / f"{run_id}.log").read_text(errors="replace")
        except OSError:
            return
        for line in text.strip().splitlines()[-20:]:
            self.store.log(run_id, "error", line)

    def _stop_cancelled_and_late(self) -> None:
        now = time.monotonic()
        cancelled = self.store.cancel_requested(list(self.children))
        for run_id, child in self.children.items():
            if child.stopping is None:
                if run_id in cancelled:
                    child.stopping = "cancelled"
                elif child.run.timeout is not None and now - child.started > child.run.timeout:
                    child.stopping = f"timed out after {child.run.timeout:g} s"
                else:
                    continue
                child.stop_sent = now
                _signal_tree(child.process.pid, signal.SIGTERM)
            elif now - child.stop_sent > KILL_GRACE_SECONDS:
                _kill_tree(child.process.pid)


def _signal_tree(pid: int, sig: int) -> None:
    try:
        parent = psutil.Process(pid)
        family = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return
    for process in family:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)


def _kill_tree(pid: int) -> None:
    _signal_tree(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)  # the worker's session: kernels it started


# -- the worker side -----------------------------------------------------------------------
class _Beat:
    """Beats for a run from a thread of its own while the run works."""

    def __init__(self, store: Store, run_id: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(store, run_id), name="prophecy-heartbeat", daemon=True
        )

    def _loop(self, store: Store, run_id: str) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                store.heartbeat([run_id])
            except Exception as exc:  # the store is shared: one failed beat is not fatal
                log.warning("heartbeat of run %s failed: %r", run_id, exc)

    def __enter__(self) -> _Beat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()


class _StoreLog(logging.Handler):
    """Log records of a run (papermill's cell output, the runner's gems) into the store."""

    def __init__(self, store: Store, run_id: str) -> None:
        super().__init__(logging.INFO)
        self.store = store
        self.run_id = run_id

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage().rstrip()
            if message:
                self.store.log(self.run_id, record.levelname.lower(), message)
        except Exception:
            self.handleError(record)


def execute(store: Store, root: Path, run_id: str) -> RunStatus:
    """Run ``run_id`` (already claimed as running) in this process and record its end."""
    from prophecy_jupyter.automate.pipelines import execute_notebook, execute_pipeline

    run = store.get_run(run_id)
    handler = _StoreLog(store, run.id)
    for name in ("papermill", "prophecy_jupyter.automate"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    store.log(run.id, "info", f"{run.kind} {run.target} on {run.fabric}, attempt {run.attempt}")
    status: RunStatus = "failed"
    with _Beat(store, run.id):
        try:
            if run.kind == "pipeline":
                status = execute_pipeline(store, root, run)
            else:
                status = execute_notebook(store, root, run)
        except ValidationError as exc:
            finish_run(store, run.id, "failed", str(exc), [i.to_dict() for i in exc.issues])
        except ProphecyError as exc:
            finish_run(store, run.id, "failed", str(exc))
        except Exception as exc:  # papermill's and the engines' own errors: the run's error
            log.error("run %s failed: %s: %s", run.id, type(exc).__name__, exc)
            finish_run(store, run.id, "failed", f"{type(exc).__name__}: {exc}")
    return status
