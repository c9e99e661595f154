"""The scheduler: turns schedules into queued runs, once per fire, under a lease.

Every process that can schedule (each Jupyter server, the `prophecy automate` daemon) runs a
`Scheduler`, but only the holder of the store's lease fires; the others wait to take over
when its lease lapses. A tick reads how far each schedule has been handled, queues a run for
each fire time since then (as its misfire policy says for late ones), for each new file a
file trigger sees and for each upstream success, then records the new position. Each fire is
keyed in the store, so a tick that dies half way and is done again fires nothing twice.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from prophecy_jupyter.automate.executions import reconcile
from prophecy_jupyter.automate.schedules import FileTrigger, Schedule, UpstreamTrigger
from prophecy_jupyter.automate.store import Run, Store, TriggerType, this_worker
from prophecy_jupyter.errors import ProphecyError

log = logging.getLogger(__name__)

LEASE = "scheduler"
RECONCILE_SECONDS = 30.0


@dataclass(frozen=True)
class Scheduled:
    """A schedule where it applies: its project, and the deployment it comes from."""

    project: str
    """The project's path relative to the root, as the API names it."""
    schedule: Schedule
    fabric: str
    deployment: str | None = None

    @property
    def key(self) -> str:
        base = f"{self.project}:{self.schedule.name}"
        return base if self.deployment is None else f"{base}@{self.fabric}"


def schedule_run(
    entry: Scheduled,
    trigger: TriggerType,
    fire_time: float | None = None,
    detail: str | None = None,
    parameters: dict[str, object] | None = None,
) -> Run:
    """A queued run of a schedule, with the schedule's run policy copied into it (so that
    later edits of the schedule do not change a run already queued)."""
    schedule = entry.schedule
    return Run(
        id=uuid.uuid4().hex,
        project=entry.project,
        kind=schedule.kind,
        target=schedule.target,
        fabric=entry.fabric,
        concurrency_key=entry.key,
        parameters={**schedule.parameters, **(parameters or {})},
        trigger_type=trigger,
        schedule=schedule.name,
        fire_time=fire_time,
        trigger_detail=detail,
        deployment=entry.deployment,
        max_concurrent=schedule.max_concurrent,
        max_attempts=schedule.retries + 1,
        retry_backoff=schedule.retry_backoff,
        timeout=schedule.timeout,
    )


def fire_key(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, tz=dt.UTC).isoformat()


@dataclass
class TickReport:
    leader: bool
    fired: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


def connection_files(project: Path, connection: str, pattern: str) -> list[str]:
    """Files matching ``pattern`` in a ``files`` connection of the project."""
    from prophecy_jupyter.connections import ConnectionStore
    from prophecy_jupyter.connectors.files import open_store
    from prophecy_jupyter.model.project import Project

    resolved = ConnectionStore(Project.open(project)).resolve(connection)
    with open_store(resolved, project) as store:
        found = store.call("glob", store.location(pattern), detail=True, slow=True)
        return sorted(
            store.relative(name) for name, info in found.items() if info.get("type") == "file"
        )


class Scheduler:
    """Fires the schedules ``catalog`` lists, while it holds the store's lease."""

    def __init__(
        self,
        store: Store,
        catalog: Callable[[], Iterable[Scheduled]],
        root: Path,
        holder: str | None = None,
        lease_seconds: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.root = root
        self.holder = holder or f"{this_worker()}:{uuid.uuid4().hex[:8]}"
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.leader = False
        self._reconciled = 0.0
        self._listed: dict[tuple[str, str | None, str], float] = {}
        self._next_due: dict[str, tuple[tuple[str | None, str, float], float | None]] = {}

    def tick(self) -> TickReport:
        now = self.clock()
        leader = self.store.acquire_lease(LEASE, self.holder, self.lease_seconds)
        report = TickReport(leader)
        if not leader:
            self.leader = False
            return report
        if not self.leader or time.monotonic() - self._reconciled > RECONCILE_SECONDS:
            # Taking over, and now and then: runs whose processes are gone are settled.
            report.lost = reconcile(self.store)
            self._reconciled = time.monotonic()
            self.leader = True
        states = self.store.schedule_states()
        checked: dict[str, float] = {}
        for entry in self.catalog():
            key = entry.key
            since, enabled = states.get(key, (None, None))
            on = entry.schedule.enabled if enabled is None else enabled
            if since is None or not on:
                # New (or off): it starts from now; times passed and files that came while
                # it was off are not owed.
                if since is None or since < now:
                    checked[key] = now
                for trigger in entry.schedule.triggers:
                    if isinstance(trigger, FileTrigger):
                        seen = [f"file:{p}" for p in self._list_files(entry, trigger)]
                        self.store.mark_seen(key, seen)
                continue
            if self._fire_cron(entry, since, now, report):
                checked[key] = now
            for trigger in entry.schedule.triggers:
                if isinstance(trigger, FileTrigger):
                    self._fire_files(entry, trigger, report)
                elif self._fire_upstream(entry, trigger, since, report):
                    checked[key] = now
        self.store.set_checked(checked)
        return report

    def next_due(self) -> float | None:
        """The earliest fire time the schedules seen so far are waiting for (so that the
        loop can wake for it rather than up to a tick late)."""
        due = [d for _, d in self._next_due.values() if d is not None]
        return min(due) if due else None

    def release(self) -> None:
        self.store.release_lease(LEASE, self.holder)
        self.leader = False

    # -- time --------------------------------------------------------------------------
    def _fire_cron(self, entry: Scheduled, since: float, now: float, report: TickReport) -> bool:
        """Queue the fire times in ``(since, now]``; True when ``since`` should move on."""
        schedule = entry.schedule
        if schedule.cron is None:
            return False
        # The next fire after ``since`` only changes when ``since`` or the cron does.
        signature = (schedule.cron, schedule.timezone, since)
        cached = self._next_due.get(entry.key)
        if cached is None or cached[0] != signature:
            cached = (signature, next(schedule.fire_times(since, now + 366 * 86400), None))
            self._next_due[entry.key] = cached
        due = cached[1]
        if due is None or due > now:
            return False
        times = list(schedule.fire_times(since, now))
        late = [t for t in times if now - t > schedule.misfire_grace]
        on_time = [t for t in times if now - t <= schedule.misfire_grace]
        if schedule.misfire == "skip":
            chosen = on_time
        elif schedule.misfire == "run_once":
            chosen = late[-1:] + on_time
        else:
            chosen = times
        for skipped in sorted(set(times) - set(chosen)):
            log.info("schedule %s: missed %s skipped", entry.key, fire_key(skipped))
        for moment in chosen:
            key = fire_key(moment)
            run = schedule_run(entry, "schedule", moment, f"fire time {key}")
            if self.store.fire(entry.key, key, run):
                report.fired.append(run.id)
        return True

    # -- triggers ----------------------------------------------------------------------
    def _fire_files(self, entry: Scheduled, trigger: FileTrigger, report: TickReport) -> None:
        watched = (entry.key, trigger.connection, trigger.path)
        if time.monotonic() - self._listed.get(watched, -1e9) < trigger.poll_seconds:
            return
        self._listed[watched] = time.monotonic()
        seen = self.store.fired(entry.key)
        for path in self._list_files(entry, trigger):
            key = f"file:{path}"
            if key in seen:
                continue
            run = schedule_run(
                entry, "file", detail=f"file {path}", parameters={"trigger_file": path}
            )
            if self.store.fire(entry.key, key, run):
                report.fired.append(run.id)

    def _list_files(self, entry: Scheduled, trigger: FileTrigger) -> list[str]:
        """Files matching the trigger, as paths relative to the project or to the
        connection's root; none (and a warning) while the place cannot be listed."""
        if trigger.connection is not None:
            try:
                return connection_files(self.root / entry.project, trigger.connection, trigger.path)
            except ProphecyError as exc:
                log.warning("schedule %s: cannot list %s: %s", entry.key, trigger.path, exc)
                return []
        project = (self.root / entry.project).resolve()
        found: list[str] = []
        for path in sorted(project.glob(trigger.path)):
            if not path.is_file() or not path.resolve().is_relative_to(project):
                continue
            relative = str(path.relative_to(project))
            if fnmatch.fnmatch(relative, trigger.path) or "**" in trigger.path:
                found.append(relative)
        return found

    def _fire_upstream(
        self, entry: Scheduled, trigger: UpstreamTrigger, since: float, report: TickReport
    ) -> bool:
        done = self.store.last_success_after(
            entry.project, trigger.pipeline, trigger.schedule, since
        )
        for upstream in done:
            run = schedule_run(entry, "upstream", detail=f"after run {upstream.id}")
            if self.store.fire(entry.key, f"upstream:{upstream.id}", run):
                report.fired.append(run.id)
        return bool(done)
