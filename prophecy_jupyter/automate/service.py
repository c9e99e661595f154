"""Automate as one object: the run store, the scheduler and the executor of a root folder,
and the operations the orchestration API, the CLI and the Studio offer on them.

The Jupyter server extension and the `prophecy automate` daemon each make one `Automate` over
their root and `start` it: a background thread ticks the scheduler (which fires only while it
holds the store's lease) and the executor (which starts queued runs in worker processes).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prophecy_jupyter.automate.executions import Executor
from prophecy_jupyter.automate.scheduler import Scheduled, Scheduler, schedule_run
from prophecy_jupyter.automate.schedules import (
    Schedule,
    load_schedules,
    read_schedule,
    schedule_file,
    write_schedule,
)
from prophecy_jupyter.automate.store import (
    FINISHED,
    Deployment,
    Run,
    RunFilter,
    Store,
    TriggerType,
    iso,
)
from prophecy_jupyter.errors import Issue, NotFound, ValidationError
from prophecy_jupyter.fabrics import FabricStore
from prophecy_jupyter.model.project import PROJECT_FILE, Project
from prophecy_jupyter.workspace import confine, project_folders, relative_name

log = logging.getLogger(__name__)

PROJECTS_TTL = 5.0
SNAPSHOT_FOLDERS = ("pipelines", "schedules", "notebooks")


def run_view(run: Run) -> dict[str, Any]:
    """A run as the orchestration API shows it."""
    end = run.finished if run.finished is not None else time.time()
    return {
        "id": run.id,
        "project": run.project,
        "kind": run.kind,
        "target": run.target,
        "fabric": run.fabric,
        "parameters": run.parameters,
        "trigger": {
            "type": run.trigger_type,
            "schedule": run.schedule,
            "fire_time": iso(run.fire_time),
            "detail": run.trigger_detail,
        },
        "status": run.status,
        "attempt": run.attempt,
        "created": iso(run.created),
        "started": iso(run.started),
        "finished": iso(run.finished),
        "seconds": None if run.started is None else round(end - run.started, 3),
        "error": run.error,
        "issues": run.issues,
        "gems": run.gems,
        "output_notebook": run.output is not None,
        "deployment": run.deployment,
    }


def deployment_view(deployment: Deployment) -> dict[str, Any]:
    return {
        "id": deployment.id,
        "project": deployment.project,
        "fabric": deployment.fabric,
        "created": iso(deployment.created),
        "active": deployment.active,
        "release": deployment.manifest.get("release"),
        "commit": deployment.manifest.get("commit"),
        **{k: deployment.manifest.get(k, []) for k in SNAPSHOT_FOLDERS},
    }


@dataclass(frozen=True)
class _Projects:
    at: float
    found: dict[str, Project]


class Automate:
    """The runtime of one root folder (see the module's docstring)."""

    def __init__(
        self,
        root: Path | str,
        store: Store | None = None,
        *,
        max_workers: int = 2,
        tick_seconds: float = 0.5,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self.store = store or Store.for_root(self.root)
        self.executor = Executor(self.store, self.root, max_workers)
        self.scheduler = Scheduler(self.store, self.catalog, self.root)
        self.tick_seconds = tick_seconds
        self._projects: _Projects | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    # -- the loop ----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="prophecy-automate", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking and give up the lease; workers finish and record on their own."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.executor.close()
        self.scheduler.release()

    def step(self) -> None:
        """One scheduler tick and one executor round (what the loop does repeatedly)."""
        report = self.scheduler.tick()
        if report.leader:
            self.executor.step()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:  # a store hiccup must not end scheduling for good
                log.error("automate tick failed: %r", exc)
            wait = self.tick_seconds
            due = self.scheduler.next_due()
            if due is not None and due > time.time():  # one not fired (off, not leader) waits
                wait = min(wait, due - time.time())
            self._wake.wait(wait)
            self._wake.clear()

    # -- projects and schedules --------------------------------------------------------
    def projects(self) -> dict[str, Project]:
        """Projects below the root by their names (paths relative to the root)."""
        now = time.monotonic()
        if self._projects is not None and now - self._projects.at < PROJECTS_TTL:
            return self._projects.found
        found: dict[str, Project] = {}
        for folder in project_folders(self.root):
            try:
                found[relative_name(self.root, folder)] = Project.open(folder)
            except ValidationError:
                continue
        self._projects = _Projects(now, found)
        return found

    def project_name(self, name: str) -> str:
        """How runs, schedules and deployments name the project at ``name``: ``"."`` and
        ``"shop/"`` are ``""`` and ``"shop"``, so every spelling finds the same records."""
        return relative_name(self.root, confine(self.root, name, "project"))

    def project(self, name: str) -> Project:
        """The project at ``name``, a path relative to the root (``""`` is the root)."""
        folder = confine(self.root, name, "project")
        if not (folder / PROJECT_FILE).is_file():
            raise NotFound(f"no project '{name}' under the root")
        return Project.open(folder)

    def catalog(self) -> list[Scheduled]:
        """Every schedule that applies now: a project's active deployments' schedules when
        it has any, else the schedules in the project as it is."""
        entries: list[Scheduled] = []
        active: dict[str, list[Deployment]] = {}
        for deployment in self.store.list_deployments(active=True):
            active.setdefault(deployment.project, []).append(deployment)
        for name, project in self.projects().items():
            deployed = active.get(name)
            if deployed:
                for deployment in deployed:
                    schedules, _ = load_schedules(Path(deployment.path))
                    entries.extend(
                        Scheduled(name, s, deployment.fabric, deployment.id) for s in schedules
                    )
                continue
            schedules, problems = load_schedules(project.root)
            for problem in problems:
                log.warning("project %s: %s", name, problem.message)
            default = project.config.default_fabric
            entries.extend(Scheduled(name, s, s.fabric or default) for s in schedules)
        return entries

    def _entry(self, project: str, name: str) -> Scheduled:
        project = self.project_name(project)
        for entry in self.catalog():
            if entry.project == project and entry.schedule.name == name:
                return entry
        label = self.project(project).config.name
        raise NotFound(f"project '{label}' has no schedule '{name}'")

    def schedules(self, project: str | None = None) -> list[dict[str, Any]]:
        project = None if project is None else self.project_name(project)
        entries = [e for e in self.catalog() if project is None or e.project == project]
        states = self.store.schedule_states()
        names: dict[str, list[str]] = {}
        for entry in entries:
            names.setdefault(entry.project, []).append(entry.schedule.name)
        # One query per project for the newest run of each of its schedules.
        last = {p: self.store.last_runs(p, found) for p, found in names.items()}
        now = time.time()
        return [
            self._schedule_view(
                entry,
                states.get(entry.key),
                now,
                last[entry.project].get(entry.schedule.name),
            )
            for entry in entries
        ]

    @staticmethod
    def _schedule_view(
        entry: Scheduled,
        state: tuple[float | None, bool | None] | None,
        now: float,
        last: Run | None,
    ) -> dict[str, Any]:
        schedule = entry.schedule
        enabled = schedule.enabled if state is None or state[1] is None else state[1]
        return {
            "project": entry.project,
            "name": schedule.name,
            "kind": schedule.kind,
            "target": schedule.target,
            "fabric": entry.fabric,
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "enabled": enabled,
            "triggers": [t.model_dump(exclude_none=True) for t in schedule.triggers],
            "next_fire": iso(schedule.next_fire(now)) if enabled else None,
            "last_run": None
            if last is None
            else {"id": last.id, "status": last.status, "finished": iso(last.finished)},
            "deployment": entry.deployment,
            "misfire": schedule.misfire,
            "max_concurrent": schedule.max_concurrent,
            "retries": schedule.retries,
            "timeout": schedule.timeout,
        }

    def set_enabled(self, project: str, name: str, enabled: bool) -> dict[str, Any]:
        """Turn a schedule on or off: in its file for a project's own schedule (so Git
        has it), in the store for a deployed one (a deployment is never edited)."""
        entry = self._entry(project, name)
        if entry.deployment is None:
            path = schedule_file(self.project(project), name)
            schedule = read_schedule(path)
            write_schedule(
                self.project(project).root, schedule.model_copy(update={"enabled": enabled})
            )
            self.store.set_enabled(entry.key, None)
        else:
            self.store.set_enabled(entry.key, enabled)
        return next(v for v in self.schedules(project) if v["name"] == name)

    # -- runs --------------------------------------------------------------------------
    def trigger(
        self,
        project: str,
        *,
        pipeline: str | None = None,
        notebook: str | None = None,
        fabric: str | None = None,
        parameters: dict[str, Any] | None = None,
        trigger: TriggerType = "api",
    ) -> Run:
        """Queue a run of a pipeline or notebook of ``project``; returns it at once."""
        project = self.project_name(project)
        found = self.project(project)
        if (pipeline is None) == (notebook is None):
            raise ValidationError(
                [Issue("target", "name exactly one of pipeline or notebook", field="/pipeline")]
            )
        if pipeline is not None:
            found.load_pipeline(pipeline)  # NotFound or ValidationError now, not in the run
            kind, target = "pipeline", pipeline
        else:
            assert notebook is not None
            path = confine(found.root, notebook, "notebook")
            if path.suffix != ".ipynb" or not path.is_file():
                raise NotFound(f"project '{found.config.name}' has no notebook '{notebook}'")
            kind, target = "notebook", path.relative_to(found.root).as_posix()
        fabric = fabric or found.config.default_fabric
        FabricStore(found).get(fabric)
        run = Run(
            id=uuid.uuid4().hex,
            project=project,
            kind=kind,  # type: ignore[arg-type]
            target=target,
            fabric=fabric,
            concurrency_key=f"{project}:{kind}:{target}",
            parameters=dict(parameters or {}),
            trigger_type=trigger,
        )
        self.store.insert_run(run)
        self._wake.set()
        return run

    def trigger_schedule(
        self, project: str, name: str, parameters: dict[str, Any] | None = None
    ) -> Run:
        """Run a schedule now (its API trigger), whatever its cron says."""
        run = schedule_run(
            self._entry(project, name), "api", detail="run now", parameters=parameters
        )
        self.store.insert_run(run)
        self._wake.set()
        return run

    def runs(self, where: RunFilter) -> list[Run]:
        if where.project is not None:
            where = dataclasses.replace(where, project=self.project_name(where.project))
        return self.store.list_runs(where)

    def run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def cancel(self, run_id: str) -> Run:
        run = self.store.request_cancel(run_id)
        self._wake.set()
        return run

    def logs(self, run_id: str) -> list[dict[str, Any]]:
        self.store.get_run(run_id)
        return [
            {"time": iso(t), "level": level, "message": message}
            for t, level, message in self.store.logs(run_id)
        ]

    def notebook(self, run_id: str) -> bytes:
        """The executed notebook a notebook run produced (as far as it got)."""
        run = self.store.get_run(run_id)
        if run.output is None:
            raise NotFound(f"run '{run_id}' has no output notebook")
        path = confine(self.project(run.project).root, run.output, "notebook")
        if not path.is_file():
            raise NotFound(f"the output notebook of run '{run_id}' is gone")
        return path.read_bytes()

    def wait(self, run_id: str, timeout: float = 60.0) -> Run:
        """Block until a run has finished (for callers that step the loop elsewhere)."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.store.get_run(run_id)
            if run.status in FINISHED or time.monotonic() > deadline:
                return run
            time.sleep(0.05)

    # -- deployments -------------------------------------------------------------------
    def deployments(self, project: str | None = None) -> list[Deployment]:
        return self.store.list_deployments(None if project is None else self.project_name(project))

    def deploy(
        self,
        project: str,
        fabric: str,
        *,
        source: Path | None = None,
        release: str | None = None,
        commit: str | None = None,
    ) -> Deployment:
        """Freeze the project's pipelines, schedules and notebooks as the deployment its
        schedules run from on ``fabric``, until the next deploy.

        ``source`` is the folder to freeze when it is not the project as it is now: a
        release's files, checked out of Git (``release`` and ``commit`` then name it)."""
        project = self.project_name(project)
        found = self.project(project)
        FabricStore(found).get(fabric)
        frozen = found if source is None else Project.open(source)
        schedules, problems = load_schedules(frozen.root)
        if problems:
            raise ValidationError(problems)
        for schedule in schedules:
            self._check_target(frozen, schedule)
        created = time.time()
        ident = dt.datetime.fromtimestamp(created, tz=dt.UTC).strftime("%Y%m%dT%H%M%S")
        ident = f"{ident}-{uuid.uuid4().hex[:6]}"
        folder = found.root / ".prophecy" / "deployments"
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".{ident}.tmp"
        for name in SNAPSHOT_FOLDERS:
            if (frozen.root / name).is_dir():
                shutil.copytree(
                    frozen.root / name,
                    staging / name,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
                )
        staging.mkdir(parents=True, exist_ok=True)
        shutil.copy2(frozen.root / PROJECT_FILE, staging / PROJECT_FILE)
        final = folder / ident
        os.replace(staging, final)  # the snapshot appears whole or not at all
        manifest: dict[str, Any] = {
            "release": release,
            "commit": commit,
            "pipelines": frozen.pipeline_names(),
            "schedules": [s.name for s in schedules],
            "notebooks": sorted(
                p.relative_to(final).as_posix() for p in (final / "notebooks").rglob("*.ipynb")
            )
            if (final / "notebooks").is_dir()
            else [],
        }
        deployment = Deployment(ident, project, fabric, created, True, str(final), manifest)
        self.store.add_deployment(deployment)
        return deployment

    @staticmethod
    def _check_target(project: Project, schedule: Schedule) -> None:
        if schedule.pipeline is not None:
            project.load_pipeline(schedule.pipeline)
        elif not (project.root / str(schedule.notebook)).is_file():
            raise ValidationError(
                [
                    Issue(
                        "notebook",
                        f"schedule '{schedule.name}': no notebook '{schedule.notebook}'",
                        field="/notebook",
                    )
                ]
            )
