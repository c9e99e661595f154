"""The run store and the scheduler: exactly-once fires, misfire policies, time zones, the
lease, triggers, retries, concurrency limits; on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from prophecy_jupyter.automate.executions import finish_run, reconcile
from prophecy_jupyter.automate.scheduler import (
    Scheduled,
    Scheduler,
    connection_files,
    schedule_run,
)
from prophecy_jupyter.automate.schedules import Schedule, load_schedules
from prophecy_jupyter.automate.service import Automate
from prophecy_jupyter.automate.store import Run, RunFilter, Store
from prophecy_jupyter.connections import Connection, ConnectionStore
from prophecy_jupyter.errors import NotFound, ValidationError
from prophecy_jupyter.fabrics import SecretStore
from prophecy_jupyter.model.project import Project
from tests.pg_support import PostgresServer
from tests.test_server_support import copy_shop

PARIS = ZoneInfo("Europe/Paris")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=PARIS).timestamp()


def local(moment: float, zone: ZoneInfo = PARIS) -> str:
    return dt.datetime.fromtimestamp(moment, tz=zone).strftime("%m-%d %H:%M%z")


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = Store(f"sqlite:///{tmp_path / 'automate.sqlite'}")
    else:
        server: PostgresServer = request.getfixturevalue("postgres_database")
        opened = Store(
            f"postgresql+psycopg://{server.user}:{server.password}@{server.host}:"
            f"{server.port}/{server.dbname}"
        )
    yield opened
    opened.close()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def entry(**fields: object) -> Scheduled:
    data: dict[str, object] = {"name": "nightly", "pipeline": "customer_totals", **fields}
    return Scheduled("shop", Schedule.model_validate(data), "in-memory")


def scheduler_for(store: Store, entries: list[Scheduled], clock: Clock, tmp: Path) -> Scheduler:
    return Scheduler(store, lambda: entries, tmp, clock=clock)


def schedule_fires(store: Store) -> list[float]:
    found = store.list_runs(RunFilter(trigger="schedule", limit=500))
    return sorted(r.fire_time for r in found if r.fire_time is not None)


# -- cron, time zones and misfires -----------------------------------------------------------
def test_fire_times_keep_local_time_across_daylight_saving() -> None:
    daily = Schedule(name="d", pipeline="p", cron="30 2 * * *", timezone="Europe/Paris")
    spring = [local(t) for t in daily.fire_times(at(2026, 3, 27), at(2026, 3, 31))]
    # 02:30 does not exist on 29 March: the run comes at the first instant after the gap.
    assert spring == [
        "03-27 02:30+0100",
        "03-28 02:30+0100",
        "03-29 03:00+0200",
        "03-30 02:30+0200",
    ]
    autumn = [local(t) for t in daily.fire_times(at(2026, 10, 23), at(2026, 10, 27))]
    # 02:30 happens twice on 25 October: it fires once.
    assert autumn == [
        "10-23 02:30+0200",
        "10-24 02:30+0200",
        "10-25 02:30+0200",
        "10-26 02:30+0100",
    ]
    utc = Schedule(name="u", pipeline="p", cron="0 12 * * *")
    assert [
        local(t, ZoneInfo("UTC")) for t in utc.fire_times(at(2026, 3, 28), at(2026, 3, 30))
    ] == [
        "03-28 12:00+0000",
        "03-29 12:00+0000",
    ]


def test_invalid_schedules_name_the_field(tmp_path: Path) -> None:
    folder = tmp_path / "schedules"
    folder.mkdir()
    (folder / "good.yml").write_text("pipeline: p\ncron: '0 * * * *'\n")
    (folder / "bad_cron.yml").write_text("pipeline: p\ncron: '61 * * * *'\n")
    (folder / "bad_zone.yml").write_text("pipeline: p\ncron: '0 * * * *'\ntimezone: Mars/Olympus\n")
    (folder / "two.yml").write_text("pipeline: p\nnotebook: n.ipynb\n")
    found, problems = load_schedules(tmp_path)
    assert [s.name for s in found] == ["good"]
    messages = sorted(p.message for p in problems)
    assert any(
        "bad_cron.yml" in m and "invalid cron expression '61 * * * *'" in m for m in messages
    )
    assert any("bad_zone.yml" in m and "unknown time zone 'Mars/Olympus'" in m for m in messages)
    assert any("two.yml" in m and "exactly one of pipeline or notebook" in m for m in messages)
    assert {p.field for p in problems if "bad_cron" in p.message} == {"/cron"}


def test_a_new_schedule_starts_from_now_and_fires_each_time_once(
    store: Store, tmp_path: Path
) -> None:
    clock = Clock(at(2026, 6, 1, 0, 0))
    scheduler = scheduler_for(store, [entry(cron="0 * * * *")], clock, tmp_path)
    assert scheduler.tick().fired == []  # nothing owed from before it existed
    clock.now = at(2026, 6, 1, 3, 0, 30)
    first = scheduler.tick()
    # run_once: the missed 01:00 and 02:00 are run once (as 02:00); 03:00 is on time.
    assert len(first.fired) == 2
    clock.now = at(2026, 6, 1, 4, 0, 10)
    assert len(scheduler.tick().fired) == 1
    assert scheduler.tick().fired == []  # the same tick again fires nothing
    assert [local(t) for t in schedule_fires(store)] == [
        "06-01 02:00+0200",
        "06-01 03:00+0200",
        "06-01 04:00+0200",
    ]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("skip", ["06-01 04:00+0200"]),
        ("run_once", ["06-01 03:00+0200", "06-01 04:00+0200"]),
        (
            "run_all",
            ["06-01 01:00+0200", "06-01 02:00+0200", "06-01 03:00+0200", "06-01 04:00+0200"],
        ),
    ],
)
def test_misfire_policies_after_downtime(
    store: Store, tmp_path: Path, policy: str, expected: list[str]
) -> None:
    clock = Clock(at(2026, 6, 1, 0, 30))
    scheduler = scheduler_for(
        store, [entry(cron="0 * * * *", misfire=policy, misfire_grace=60)], clock, tmp_path
    )
    scheduler.tick()
    clock.now = at(2026, 6, 1, 4, 0, 20)  # down from 00:30 to 04:00:20; 04:00 is on time
    scheduler.tick()
    assert [local(t) for t in schedule_fires(store)] == expected


def test_a_disabled_schedule_does_not_fire_and_owes_nothing_when_enabled(
    store: Store, tmp_path: Path
) -> None:
    clock = Clock(at(2026, 6, 1, 0, 0))
    job = entry(cron="0 * * * *", misfire="run_all")
    scheduler = scheduler_for(store, [job], clock, tmp_path)
    scheduler.tick()
    store.set_enabled(job.key, False)
    clock.now = at(2026, 6, 1, 3, 0, 5)
    assert scheduler.tick().fired == []
    store.set_enabled(job.key, True)
    clock.now = at(2026, 6, 1, 4, 0, 5)
    scheduler.tick()
    assert [local(t) for t in schedule_fires(store)] == ["06-01 04:00+0200"]


def test_a_fire_is_queued_once_whoever_fires_it(store: Store) -> None:
    job = entry(cron="0 * * * *")
    runs = [schedule_run(job, "schedule", 1000.0) for _ in range(8)]
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda r=run: results.append(store.fire(job.key, "t1000", r)))
        for run in runs
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert len(store.list_runs(RunFilter())) == 1


# -- the lease ---------------------------------------------------------------------------------
def test_only_the_lease_holder_fires_and_another_takes_over_when_it_lapses(
    store: Store, tmp_path: Path
) -> None:
    clock = Clock(at(2026, 6, 1, 0, 0))
    jobs = [entry(cron="* * * * *", misfire="run_all")]
    first = Scheduler(store, lambda: jobs, tmp_path, lease_seconds=1.0, clock=clock)
    second = Scheduler(store, lambda: jobs, tmp_path, lease_seconds=1.0, clock=clock)
    assert first.tick().leader
    assert not second.tick().leader
    for minute in range(1, 6):
        clock.now = at(2026, 6, 1, 0, minute, 1)
        first.tick()
        assert not second.tick().leader
    time.sleep(1.2)  # the first one stops renewing (as if killed)
    clock.now = at(2026, 6, 1, 0, 8, 1)
    taken = second.tick()
    assert taken.leader
    assert not first.tick().leader
    fires = [local(t) for t in schedule_fires(store)]
    assert fires == [f"06-01 00:{m:02d}+0200" for m in range(1, 9)]  # none twice, none lost


# -- triggers ------------------------------------------------------------------------------------
def test_each_arriving_file_fires_once(store: Store, tmp_path: Path) -> None:
    project = tmp_path / "shop"
    (project / "incoming").mkdir(parents=True)
    job = entry(triggers=[{"type": "file", "path": "incoming/*.csv", "poll_seconds": 0}])
    scheduler = scheduler_for(store, [job], Clock(time.time()), tmp_path)
    scheduler.tick()  # first sight
    (project / "incoming" / "a.csv").write_text("x\n1\n")
    (project / "incoming" / "notes.txt").write_text("no")
    assert len(scheduler.tick().fired) == 1
    assert scheduler.tick().fired == []
    (project / "incoming" / "b.csv").write_text("x\n2\n")
    assert len(scheduler.tick().fired) == 1
    fired = store.list_runs(RunFilter(trigger="file"))
    assert sorted(r.parameters["trigger_file"] for r in fired) == [
        "incoming/a.csv",
        "incoming/b.csv",
    ]


def test_an_upstream_success_fires_its_downstream_once(store: Store, tmp_path: Path) -> None:
    clock = Clock(time.time())
    downstream = entry(name="report", triggers=[{"type": "upstream", "pipeline": "orders"}])
    scheduler = scheduler_for(store, [downstream], clock, tmp_path)
    scheduler.tick()
    upstream = Run(uuid.uuid4().hex, "shop", "pipeline", "orders", "in-memory", "k")
    store.insert_run(upstream)
    store.start(upstream.id, "me")
    assert scheduler.tick().fired == []  # running is not a success
    finish_run(store, upstream.id, "succeeded")
    clock.now = time.time()
    assert len(scheduler.tick().fired) == 1
    clock.now = time.time() + 1
    assert scheduler.tick().fired == []
    failed = Run(uuid.uuid4().hex, "shop", "pipeline", "orders", "in-memory", "k")
    store.insert_run(failed)
    finish_run(store, failed.id, "failed", "boom")
    assert scheduler.tick().fired == []
    (run,) = store.list_runs(RunFilter(trigger="upstream"))
    assert run.target == "customer_totals"
    assert run.trigger_detail == f"after run {upstream.id}"


# -- claims, concurrency, retries, reconcile -------------------------------------------------
def test_claims_respect_each_schedules_concurrency_limit(store: Store) -> None:
    job = entry(cron="0 * * * *", max_concurrent=2)
    for _ in range(5):
        store.insert_run(schedule_run(job, "api"))
    claimed = store.claim("w1", limit=10)
    assert len(claimed) == 2
    assert store.claim("w2", limit=10) == []
    finish_run(store, claimed[0].id, "succeeded")
    assert len(store.claim("w2", limit=10)) == 1


def test_a_failed_run_is_retried_with_backoff_then_gives_up(store: Store) -> None:
    job = entry(cron="0 * * * *", retries=2, retry_backoff=10)
    first = store.insert_run(schedule_run(job, "schedule", 1000.0))
    (claimed,) = store.claim("w")
    before = time.time()
    finish_run(store, claimed.id, "failed", "boom")
    assert finish_run(store, claimed.id, "failed", "again") is None  # one end, one retry
    retry = next(r for r in store.list_runs(RunFilter()) if r.attempt == 2)
    assert (retry.trigger_type, retry.fire_time, retry.schedule) == ("retry", 1000.0, "nightly")
    assert retry.not_before >= before + 10
    assert store.claim("w") == []  # not due yet
    assert store.claim("w", now=retry.not_before + 1)[0].id == retry.id
    finish_run(store, retry.id, "failed", "boom")
    third = next(r for r in store.list_runs(RunFilter()) if r.attempt == 3)
    assert third.not_before >= time.time() + 19  # 10 s, then 20 s
    finish_run(store, third.id, "failed", "boom")
    assert len(store.list_runs(RunFilter())) == 3
    assert first.id != retry.id != third.id


def test_reconcile_fails_runs_whose_process_is_gone_and_leaves_live_ones(store: Store) -> None:
    job = entry(cron="0 * * * *", retries=1)
    gone = store.insert_run(schedule_run(job, "api"))
    alive = store.insert_run(schedule_run(entry(name="other", cron="0 * * * *"), "api"))
    store.claim("w", limit=2)
    store.assign(gone.id, "localhost-that-is-not-this-one:1")
    from prophecy_jupyter.automate.store import this_worker

    store.assign(alive.id, this_worker())
    host = this_worker().rpartition(":")[0]
    store.assign(gone.id, f"{host}:999999999")  # no such process
    lost = reconcile(store)
    assert lost == [gone.id]
    assert store.get_run(gone.id).status == "failed"
    assert "stopped" in (store.get_run(gone.id).error or "")
    assert store.get_run(alive.id).status == "running"
    assert any(r.attempt == 2 for r in store.list_runs(RunFilter()))


def test_cancelling_a_queued_run_is_immediate(store: Store) -> None:
    run = store.insert_run(schedule_run(entry(cron="0 * * * *"), "api"))
    assert store.request_cancel(run.id).status == "cancelled"
    with pytest.raises(NotFound):
        store.request_cancel("0" * 32)


# -- the service over a real project -----------------------------------------------------------
def test_a_burst_of_api_triggers_runs_within_the_limits(tmp_path: Path) -> None:
    root = tmp_path / "root"
    copy_shop(root / "shop")
    automate = Automate(root, max_workers=2, tick_seconds=0.05)
    ids = [automate.trigger("shop", pipeline="customer_totals").id for _ in range(6)]
    automate.start()
    try:
        done = [automate.wait(i, timeout=120) for i in ids]
    finally:
        automate.stop()
    assert [r.status for r in done] == ["succeeded"] * 6
    # One pipeline's runs never overlap (its concurrency limit is one).
    spans = sorted((r.started or 0, r.finished or 0) for r in done)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_a_schedule_runs_from_its_deployment_until_redeployed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    project = copy_shop(root / "shop")
    (project / "schedules").mkdir()
    (project / "schedules" / "nightly.yml").write_text(
        yaml.safe_dump({"pipeline": "customer_totals", "cron": "0 2 * * *"})
    )
    automate = Automate(root)
    first = automate.deploy("shop", "in-memory")
    assert first.manifest["schedules"] == ["nightly"]
    # An edit after the deployment does not change what the schedule runs.
    (project / "schedules" / "nightly.yml").write_text(
        yaml.safe_dump({"pipeline": "channel_report", "cron": "0 3 * * *"})
    )
    (view,) = automate.schedules("shop")
    assert (view["target"], view["cron"], view["deployment"]) == (
        "customer_totals",
        "0 2 * * *",
        first.id,
    )
    run = automate.trigger_schedule("shop", "nightly")
    assert run.deployment == first.id
    automate.executor.step()
    assert automate.wait(run.id, timeout=120).status == "succeeded"
    second = automate.deploy("shop", "in-memory")
    (view,) = automate.schedules("shop")
    assert (view["target"], view["deployment"]) == ("channel_report", second.id)
    assert [d.active for d in automate.deployments("shop")] == [True, False]
    (project / "schedules" / "broken.yml").write_text("pipeline: nope\ncron: '0 1 * * *'\n")
    with pytest.raises(NotFound, match="nope"):
        automate.deploy("shop", "in-memory")
    (project / "schedules" / "broken.yml").write_text("pipeline: [\n")
    with pytest.raises(ValidationError, match=r"broken\.yml"):
        automate.deploy("shop", "in-memory")


def test_a_file_trigger_lists_a_relative_connection_root_in_its_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_shop(tmp_path / "shop")
    (project / "landing" / "in").mkdir(parents=True)
    (project / "landing" / "in" / "a.csv").write_text("x\n1\n")
    store = ConnectionStore(Project.open(project), SecretStore(tmp_path / "secrets.json"))
    store.put(Connection(name="landing", kind="files", options={"root": "landing"}))
    monkeypatch.chdir(tmp_path)  # the daemon's working folder is not the project's
    assert connection_files(project, "landing", "in/*.csv") == ["in/a.csv"]
