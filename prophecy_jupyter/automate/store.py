"""The run store: every run, every schedule fire, the scheduler's lease, and deployments.

One database is the single source of truth that several processes share: the Jupyter
server(s), the standalone `prophecy automate` daemon, and the worker processes that execute
runs. Its rules make the guarantees the scheduler promises:

- a fire of a schedule is a row keyed by ``(schedule, fire key)``, inserted in the same
  transaction as its run, so a fire time runs exactly once however many processes try;
- a queued run is claimed by one conditional UPDATE, so two executors never both start it;
- one scheduler at a time holds a lease that it renews, so two servers never both fire.

SQLite (WAL) is the default, next to the projects; a PostgreSQL URL serves installs where
several machines or users share schedules. SQLAlchemy Core speaks to both.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from prophecy_jupyter.errors import EngineError, NotFound

RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
RunKind = Literal["pipeline", "notebook"]
TriggerType = Literal["manual", "api", "schedule", "file", "upstream", "retry"]
FINISHED: frozenset[RunStatus] = frozenset({"succeeded", "failed", "cancelled"})
STORE_ENV = "PROPHECY_AUTOMATE_STORE"


def iso(seconds: float | None) -> str | None:
    """A stored time (seconds since the epoch) as the API spells it: ISO 8601, UTC, ms."""
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).isoformat(timespec="milliseconds")


metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("fabric", sa.Text, nullable=False),
    sa.Column("parameters", sa.Text, nullable=False, default="{}"),
    sa.Column("trigger_type", sa.String(16), nullable=False),
    sa.Column("schedule", sa.Text),
    sa.Column("fire_time", sa.Float),
    sa.Column("trigger_detail", sa.Text),
    sa.Column("deployment", sa.String(40)),
    sa.Column("executor", sa.String(16), nullable=False, default="automate"),
    sa.Column("concurrency_key", sa.Text, nullable=False),
    sa.Column("max_concurrent", sa.Integer, nullable=False, default=1),
    sa.Column("attempt", sa.Integer, nullable=False, default=1),
    sa.Column("max_attempts", sa.Integer, nullable=False, default=1),
    sa.Column("retry_backoff", sa.Float, nullable=False, default=30.0),
    sa.Column("timeout", sa.Float),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("not_before", sa.Float, nullable=False, default=0.0),
    sa.Column("started", sa.Float),
    sa.Column("finished", sa.Float),
    sa.Column("worker", sa.Text),
    sa.Column("heartbeat", sa.Float),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("error", sa.Text),
    sa.Column("issues", sa.Text, nullable=False, default="[]"),
    sa.Column("gems", sa.Text, nullable=False, default="[]"),
    sa.Column("output", sa.Text),
    sa.Index("runs_status", "status", "not_before"),
    sa.Index("runs_created", "created"),
    sa.Index("runs_target", "project", "target"),
)

fires = sa.Table(
    "fires",
    metadata,
    sa.Column("schedule", sa.Text, primary_key=True),
    sa.Column("fire_key", sa.Text, primary_key=True),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)

logs = sa.Table(
    "logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(40), nullable=False, index=True),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("level", sa.String(8), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
)

schedule_state = sa.Table(
    "schedule_state",
    metadata,
    sa.Column("schedule", sa.Text, primary_key=True),
    sa.Column("checked_until", sa.Float),
    sa.Column("enabled", sa.Boolean),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("project", sa.Text, nullable=False),
    sa.Column("fabric", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("manifest", sa.Text, nullable=False),
)


@dataclass
class Run:
    """One run as stored; JSON columns are decoded."""

    id: str
    project: str
    kind: RunKind
    target: str
    fabric: str
    concurrency_key: str
    status: RunStatus = "queued"
    parameters: dict[str, Any] = field(default_factory=dict)
    trigger_type: TriggerType = "manual"
    schedule: str | None = None
    fire_time: float | None = None
    trigger_detail: str | None = None
    deployment: str | None = None
    executor: str = "automate"
    max_concurrent: int = 1
    attempt: int = 1
    max_attempts: int = 1
    retry_backoff: float = 30.0
    timeout: float | None = None
    created: float = field(default_factory=time.time)
    not_before: float = 0.0
    started: float | None = None
    finished: float | None = None
    worker: str | None = None
    heartbeat: float | None = None
    cancel_requested: bool = False
    error: str | None = None
    issues: list[dict[str, Any]] = field(default_factory=list)
    gems: list[dict[str, Any]] = field(default_factory=list)
    output: str | None = None

    def row(self) -> dict[str, Any]:
        data = asdict(self)
        for name in JSON_COLUMNS:
            data[name] = json.dumps(data[name], default=str)
        return data

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Run:
        data = {f.name: row[f.name] for f in fields(cls)}
        for name in JSON_COLUMNS:
            data[name] = json.loads(data[name] or ("{}" if name == "parameters" else "[]"))
        data["cancel_requested"] = bool(data["cancel_requested"])
        return cls(**data)


JSON_COLUMNS = ("parameters", "issues", "gems")


@dataclass(frozen=True)
class Deployment:
    id: str
    project: str
    fabric: str
    created: float
    active: bool
    path: str
    manifest: dict[str, Any]


@dataclass(frozen=True)
class RunFilter:
    """What `Store.list_runs` narrows to; ``None`` is no condition."""

    project: str | None = None
    status: str | None = None
    target: str | None = None
    kind: str | None = None
    trigger: str | None = None
    schedule: str | None = None
    before: float | None = None
    limit: int = 50


def this_worker() -> str:
    """How a process names itself in the store: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def default_store_url(root: Path) -> str:
    """``$PROPHECY_AUTOMATE_STORE``, else a SQLite file under ``root/.prophecy``."""
    configured = os.environ.get(STORE_ENV)
    if configured:
        return configured
    folder = root / ".prophecy"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'automate.sqlite'}"


def _sqlite_engine(url: str) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's BEGIN below be the only transaction control: pysqlite's own
        # deferred BEGIN would let two writers deadlock on the upgrade to a write lock.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Store:
    """The run store at a SQLAlchemy URL; safe to share between threads and processes."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            if url.startswith("sqlite"):
                self.engine = _sqlite_engine(url)
            else:
                self.engine = sa.create_engine(url, pool_pre_ping=True)
            self._create_tables()
        except (sa.exc.DBAPIError, ImportError) as exc:
            raise EngineError(f"cannot open the run store: {_scrub(exc, url)}") from None

    def _create_tables(self) -> None:
        # Processes opening a new store at once race on CREATE TABLE; the loser finds the
        # tables made by the winner when it checks again.
        for attempt in range(3):
            try:
                metadata.create_all(self.engine)
                return
            except sa.exc.DBAPIError:
                if attempt == 2:
                    raise
                time.sleep(0.2)

    @classmethod
    def for_root(cls, root: Path) -> Store:
        return cls(default_store_url(root))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    # -- runs ------------------------------------------------------------------------------
    def insert_run(self, run: Run) -> Run:
        with self._tx() as c:
            c.execute(runs.insert().values(run.row()))
        return run

    def fire(self, schedule: str, fire_key: str, run: Run) -> bool:
        """Insert ``run`` for this fire of ``schedule`` unless that fire already happened;
        returns whether it was new. The fire and its run are one transaction."""
        try:
            with self._tx() as c:
                c.execute(
                    fires.insert().values(
                        schedule=schedule, fire_key=fire_key, run_id=run.id, created=time.time()
                    )
                )
                c.execute(runs.insert().values(run.row()))
        except IntegrityError:
            return False
        return True

    def mark_seen(self, schedule: str, fire_keys: Sequence[str]) -> None:
        """Record fires that start no run (files already there when a trigger first looks).
        Keys recorded already are skipped without a write: a schedule that is off marks the
        same files on every tick."""
        new = set(fire_keys) - self.fired(schedule) if fire_keys else set()
        for key in sorted(new):
            try:
                with self._tx() as c:
                    c.execute(
                        fires.insert().values(
                            schedule=schedule, fire_key=key, run_id="", created=time.time()
                        )
                    )
            except IntegrityError:
                continue

    def fired(self, schedule: str) -> set[str]:
        with self.engine.connect() as c:
            rows = c.execute(sa.select(fires.c.fire_key).where(fires.c.schedule == schedule))
            return {r[0] for r in rows}

    def get_run(self, run_id: str) -> Run:
        with self.engine.connect() as c:
            row = c.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().first()
        if row is None:
            raise NotFound(f"no run '{run_id}'")
        return Run.from_row(row)

    def list_runs(self, where: RunFilter) -> list[Run]:
        query = sa.select(runs).order_by(runs.c.created.desc()).limit(max(1, where.limit))
        conditions = {
            runs.c.project: where.project,
            runs.c.status: where.status,
            runs.c.target: where.target,
            runs.c.kind: where.kind,
            runs.c.trigger_type: where.trigger,
            runs.c.schedule: where.schedule,
        }
        for column, value in conditions.items():
            if value is not None:
                query = query.where(column == value)
        if where.before is not None:
            query = query.where(runs.c.created < where.before)
        with self.engine.connect() as c:
            return [Run.from_row(r) for r in c.execute(query).mappings()]

    def runs_with(self, status: str, executor: str = "automate") -> list[Run]:
        query = sa.select(runs).where(runs.c.status == status, runs.c.executor == executor)
        with self.engine.connect() as c:
            return [Run.from_row(r) for r in c.execute(query.order_by(runs.c.created)).mappings()]

    def claim(self, worker: str, now: float | None = None, limit: int = 1) -> list[Run]:
        """Claim up to ``limit`` queued runs that are due, oldest first, each within its
        concurrency key's limit; they become ``running`` under ``worker``."""
        now = time.time() if now is None else now
        claimed: list[Run] = []
        with self._tx() as c:
            busy: dict[str, int] = {}
            for key, count in c.execute(
                sa.select(runs.c.concurrency_key, sa.func.count())
                .where(runs.c.status == "running")
                .group_by(runs.c.concurrency_key)
            ):
                busy[key] = count
            queued = c.execute(
                sa.select(runs)
                .where(
                    runs.c.status == "queued",
                    runs.c.executor == "automate",
                    runs.c.not_before <= now,
                )
                .order_by(runs.c.created)
                .limit(200)
            ).mappings()
            for row in list(queued):
                if len(claimed) >= limit:
                    break
                run = Run.from_row(row)
                if busy.get(run.concurrency_key, 0) >= run.max_concurrent:
                    continue
                done = c.execute(
                    runs.update()
                    .where(runs.c.id == run.id, runs.c.status == "queued")
                    .values(status="running", worker=worker, started=now, heartbeat=now)
                )
                if done.rowcount == 1:
                    busy[run.concurrency_key] = busy.get(run.concurrency_key, 0) + 1
                    run.status, run.worker, run.started, run.heartbeat = (
                        "running",
                        worker,
                        now,
                        now,
                    )
                    claimed.append(run)
        return claimed

    def assign(self, run_id: str, worker: str) -> None:
        """Name the process that now executes a claimed run (a worker the claimer started),
        so that a reconcile judges the run by that process, not by its starter."""
        with self._tx() as c:
            c.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == "running")
                .values(worker=worker)
            )

    def start(self, run_id: str, worker: str) -> None:
        """Mark a run the caller executes itself (the Studio's) as running."""
        now = time.time()
        with self._tx() as c:
            c.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(status="running", worker=worker, started=now, heartbeat=now)
            )

    def progress(self, run_id: str, gems: Sequence[Mapping[str, Any]]) -> bool:
        """Record per-gem progress and a heartbeat; returns whether a cancel was asked."""
        now = time.time()
        with self._tx() as c:
            c.execute(
                runs.update()
                .where(runs.c.id == run_id)
                .values(gems=json.dumps(list(gems), default=str), heartbeat=now)
            )
            flag = c.execute(sa.select(runs.c.cancel_requested).where(runs.c.id == run_id)).scalar()
        return bool(flag)

    def heartbeat(self, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        with self._tx() as c:
            c.execute(
                runs.update()
                .where(runs.c.id.in_(list(run_ids)), runs.c.status == "running")
                .values(heartbeat=time.time())
            )

    def set_output(self, run_id: str, output: str) -> None:
        with self._tx() as c:
            c.execute(runs.update().where(runs.c.id == run_id).values(output=output))

    def finish(
        self,
        run_id: str,
        status: RunStatus,
        error: str | None = None,
        issues: Sequence[Mapping[str, Any]] = (),
        gems: Sequence[Mapping[str, Any]] | None = None,
    ) -> Run | None:
        """Record a run's end, once: a run already finished (by its worker, a cancel, or a
        reconcile) keeps its first end, and ``None`` is returned."""
        values: dict[str, Any] = {
            "status": status,
            "error": error,
            "issues": json.dumps(list(issues), default=str),
            "finished": time.time(),
        }
        if gems is not None:
            values["gems"] = json.dumps(list(gems), default=str)
        with self._tx() as c:
            done = c.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status.in_(("queued", "running")))
                .values(**values)
            )
            if done.rowcount != 1:
                return None
            row = c.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().one()
        return Run.from_row(row)

    def request_cancel(self, run_id: str) -> Run:
        """Cancel a queued run at once; flag a running one for whoever executes it."""
        self.get_run(run_id)  # NotFound
        with self._tx() as c:
            c.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == "queued")
                .values(status="cancelled", finished=time.time(), error="cancelled")
            )
            c.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == "running")
                .values(cancel_requested=True)
            )
        return self.get_run(run_id)

    def cancel_requested(self, run_ids: Sequence[str]) -> set[str]:
        if not run_ids:
            return set()
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(runs.c.id).where(
                    runs.c.id.in_(list(run_ids)), runs.c.cancel_requested.is_(True)
                )
            )
            return {r[0] for r in rows}

    def last_success_after(
        self, project: str, target: str | None, schedule: str | None, after: float
    ) -> list[Run]:
        """Runs of ``target`` (or of ``schedule``) in ``project`` that succeeded after
        ``after``: what fires a schedule triggered by an upstream's success."""
        query = sa.select(runs).where(
            runs.c.project == project,
            runs.c.status == "succeeded",
            runs.c.finished > after,
        )
        if target is not None:
            query = query.where(runs.c.target == target)
        if schedule is not None:
            query = query.where(runs.c.schedule == schedule)
        with self.engine.connect() as c:
            return [Run.from_row(r) for r in c.execute(query.order_by(runs.c.finished)).mappings()]

    def last_runs(self, project: str, schedules: Sequence[str]) -> dict[str, Run]:
        """The newest run of each schedule of ``project``."""
        if not schedules:
            return {}
        newest = (
            sa.select(runs.c.schedule, sa.func.max(runs.c.created).label("created"))
            .where(runs.c.project == project, runs.c.schedule.in_(list(schedules)))
            .group_by(runs.c.schedule)
            .subquery()
        )
        query = sa.select(runs).join(
            newest,
            sa.and_(
                runs.c.project == project,
                runs.c.schedule == newest.c.schedule,
                runs.c.created == newest.c.created,
            ),
        )
        with self.engine.connect() as c:
            return {r["schedule"]: Run.from_row(r) for r in c.execute(query).mappings()}

    # -- logs ------------------------------------------------------------------------------
    def log(self, run_id: str, level: str, message: str) -> None:
        with self._tx() as c:
            c.execute(
                logs.insert().values(run_id=run_id, time=time.time(), level=level, message=message)
            )

    def logs(self, run_id: str) -> list[tuple[float, str, str]]:
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(logs.c.time, logs.c.level, logs.c.message)
                .where(logs.c.run_id == run_id)
                .order_by(logs.c.id)
            )
            return [(r[0], r[1], r[2]) for r in rows]

    # -- the scheduler's lease and state ---------------------------------------------------
    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew the lease ``name`` for ``ttl`` seconds; False while another live
        holder has it."""
        now = time.time()
        with self._tx() as c:
            done = c.execute(
                leases.update()
                .where(
                    leases.c.name == name,
                    sa.or_(leases.c.holder == holder, leases.c.expires < now),
                )
                .values(holder=holder, expires=now + ttl)
            )
            if done.rowcount == 1:
                return True
            exists = c.execute(sa.select(leases.c.holder).where(leases.c.name == name)).first()
            if exists is not None:
                return False
            c.execute(leases.insert().values(name=name, holder=holder, expires=now + ttl))
            return True

    def release_lease(self, name: str, holder: str) -> None:
        with self._tx() as c:
            c.execute(leases.delete().where(leases.c.name == name, leases.c.holder == holder))

    def lease_holder(self, name: str) -> str | None:
        with self.engine.connect() as c:
            row = c.execute(
                sa.select(leases.c.holder).where(
                    leases.c.name == name, leases.c.expires >= time.time()
                )
            ).first()
        return None if row is None else str(row[0])

    def schedule_states(self) -> dict[str, tuple[float | None, bool | None]]:
        with self.engine.connect() as c:
            rows = c.execute(sa.select(schedule_state))
            return {r[0]: (r[1], r[2]) for r in rows}

    def set_checked(self, checked: Mapping[str, float]) -> None:
        """Record how far each schedule's fire times have been handled."""
        if not checked:
            return
        with self._tx() as c:
            known = {
                r[0]
                for r in c.execute(
                    sa.select(schedule_state.c.schedule).where(
                        schedule_state.c.schedule.in_(list(checked))
                    )
                )
            }
            fresh = [
                {"schedule": k, "checked_until": v} for k, v in checked.items() if k not in known
            ]
            if fresh:
                c.execute(schedule_state.insert(), fresh)
            for key, value in checked.items():
                if key in known:
                    c.execute(
                        schedule_state.update()
                        .where(schedule_state.c.schedule == key)
                        .values(checked_until=value)
                    )

    def set_enabled(self, schedule: str, enabled: bool | None) -> None:
        with self._tx() as c:
            done = c.execute(
                schedule_state.update()
                .where(schedule_state.c.schedule == schedule)
                .values(enabled=enabled)
            )
            if done.rowcount == 0:
                c.execute(schedule_state.insert().values(schedule=schedule, enabled=enabled))

    # -- deployments -----------------------------------------------------------------------
    def add_deployment(self, deployment: Deployment) -> None:
        """Record a deployment as the active one of its project and fabric."""
        with self._tx() as c:
            c.execute(
                deployments.update()
                .where(
                    deployments.c.project == deployment.project,
                    deployments.c.fabric == deployment.fabric,
                )
                .values(active=False)
            )
            row = asdict(deployment)
            row["manifest"] = json.dumps(deployment.manifest)
            c.execute(deployments.insert().values(row))

    def list_deployments(
        self, project: str | None = None, active: bool | None = None
    ) -> list[Deployment]:
        query = sa.select(deployments).order_by(deployments.c.created.desc())
        if project is not None:
            query = query.where(deployments.c.project == project)
        if active is not None:
            query = query.where(deployments.c.active.is_(active))
        with self.engine.connect() as c:
            return [
                Deployment(
                    r["id"],
                    r["project"],
                    r["fabric"],
                    r["created"],
                    bool(r["active"]),
                    r["path"],
                    json.loads(r["manifest"]),
                )
                for r in c.execute(query).mappings()
            ]


def _scrub(exc: BaseException, url: str) -> str:
    """A driver's message without the URL's password."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    password = sa.engine.make_url(url).password
    if password:
        message = message.replace(str(password), "***")
    return message
