"""Schedules: what runs when, kept in the project as ``schedules/<name>.yml``.

A schedule names one pipeline or notebook, the fabric it runs on and its parameters, and
when it runs: a cron expression in a time zone, and/or triggers (a file arriving, an upstream
pipeline or schedule succeeding). It also says how it runs: what to do with fire times missed
while no scheduler was up, how many of its runs may overlap, retries and a timeout.

Fire times are computed in the schedule's own time zone, so "02:30 every day" stays 02:30
local across daylight-saving changes: a local time that does not exist that day (spring
forward) fires at the first instant after the gap, and one that happens twice (fall back)
fires once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from prophecy_jupyter.errors import Issue, NotFound, ValidationError
from prophecy_jupyter.fabrics import FABRIC_NAME
from prophecy_jupyter.model.files import atomic_write_text
from prophecy_jupyter.model.pipeline import issues_from_pydantic
from prophecy_jupyter.model.project import Project

SCHEDULE_NAME = FABRIC_NAME
Misfire = Literal["skip", "run_once", "run_all"]


class FileTrigger(BaseModel):
    """Fire once for each new file matching ``path``: a glob relative to the project, or
    within a ``files`` connection (a bucket, an SFTP folder)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["file"] = "file"
    path: str = Field(min_length=1, description="Glob of the files to watch")
    connection: str | None = Field(
        default=None, description="A files connection to watch instead of the project folder"
    )
    poll_seconds: float = Field(
        default=10.0, ge=0, description="How often the place is listed (a bucket costs a call)"
    )


class UpstreamTrigger(BaseModel):
    """Fire when a run of ``pipeline`` or of ``schedule`` (in the same project) succeeds."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["upstream"] = "upstream"
    pipeline: str | None = None
    schedule: str | None = None

    @model_validator(mode="after")
    def _one_upstream(self) -> UpstreamTrigger:
        if (self.pipeline is None) == (self.schedule is None):
            raise ValueError("an upstream trigger names exactly one of pipeline or schedule")
        return self


Trigger = FileTrigger | UpstreamTrigger


class Schedule(BaseModel):
    """A schedule as written in ``schedules/<name>.yml``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SCHEDULE_NAME)
    pipeline: str | None = Field(default=None, description="Pipeline to run")
    notebook: str | None = Field(
        default=None, description="Notebook to run, relative to the project"
    )
    fabric: str | None = Field(default=None, description="Fabric; the project's default if unset")
    parameters: dict[str, Any] = Field(default_factory=dict)
    cron: str | None = Field(
        default=None,
        description="Cron expression: 5 fields, or 6 with seconds first (as in Quartz)",
    )
    timezone: str = Field(default="UTC", description="IANA time zone the cron is read in")
    enabled: bool = True
    triggers: list[Trigger] = Field(default_factory=list)
    misfire: Misfire = Field(
        default="run_once",
        description="Fire times missed while no scheduler ran: skip them, run the latest "
        "once, or run every one",
    )
    misfire_grace: float = Field(
        default=60.0, ge=0, description="Seconds late a fire still counts as on time"
    )
    max_concurrent: int = Field(default=1, ge=1, le=64)
    retries: int = Field(default=0, ge=0, le=20)
    retry_backoff: float = Field(
        default=30.0, ge=0, description="Seconds before the first retry; doubles each time"
    )
    timeout: float | None = Field(default=None, gt=0, description="Seconds before a run is stopped")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value, second_at_beginning=True):
            raise ValueError(f"invalid cron expression {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _one_target(self) -> Schedule:
        if (self.pipeline is None) == (self.notebook is None):
            raise ValueError("a schedule runs exactly one of pipeline or notebook")
        if self.notebook is not None and not self.notebook.endswith(".ipynb"):
            raise ValueError("notebook must be an .ipynb file")
        return self

    @property
    def kind(self) -> Literal["pipeline", "notebook"]:
        return "pipeline" if self.pipeline is not None else "notebook"

    @property
    def target(self) -> str:
        return self.pipeline if self.pipeline is not None else str(self.notebook)

    def fire_times(self, after: float, until: float) -> Iterator[float]:
        """Fire times (epoch seconds) in ``(after, until]``."""
        if self.cron is None:
            return
        zone = ZoneInfo(self.timezone)
        start = dt.datetime.fromtimestamp(after, tz=zone)
        times = croniter(self.cron, start, ret_type=dt.datetime, second_at_beginning=True)
        while True:
            moment = times.get_next(dt.datetime)
            if moment.timestamp() > until:
                return
            if not _repeated(moment, zone):
                yield moment.timestamp()

    def next_fire(self, now: float) -> float | None:
        return next(self.fire_times(now, now + 400 * 86400), None)


def _repeated(moment: dt.datetime, zone: ZoneInfo) -> bool:
    """Whether ``moment`` is the second occurrence of its wall-clock time (the hour a
    fall-back repeats): each local time fires once, at its first occurrence."""
    local = dt.datetime.fromtimestamp(moment.timestamp(), tz=zone)
    return local.fold == 1 and local.utcoffset() != local.replace(fold=0).utcoffset()


def parse_schedule(data: dict[str, Any], name: str) -> Schedule:
    try:
        return Schedule.model_validate({**data, "name": name})
    except PydanticValidationError as exc:
        raise ValidationError(issues_from_pydantic(exc, data)) from None


def schedules_dir(root: Path) -> Path:
    return root / "schedules"


def load_schedules(root: Path) -> tuple[list[Schedule], list[Issue]]:
    """The schedules in ``root/schedules``; a file that does not parse is reported with
    its name and left out, so one bad file stops only itself."""
    found: list[Schedule] = []
    problems: list[Issue] = []
    for path in sorted(schedules_dir(root).glob("*.yml")):
        try:
            found.append(read_schedule(path))
        except ValidationError as exc:
            problems.extend(
                Issue(i.code, f"schedules/{path.name}: {i.message}", field=i.field)
                for i in exc.issues
            )
    return found, problems


_PARSED: dict[Path, tuple[tuple[int, int], Schedule | ValidationError]] = {}
"""Schedules by file, with the (mtime, size) they were read at: the scheduler reads every
schedule on each tick, and parses only the files that changed."""


def read_schedule(path: Path) -> Schedule:
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    known = _PARSED.get(path)
    if known is None or known[0] != stamp:
        try:
            known = (stamp, _parse_file(path))
        except ValidationError as exc:
            known = (stamp, exc)
        _PARSED[path] = known
    if isinstance(known[1], ValidationError):
        raise known[1]
    return known[1]


def _parse_file(path: Path) -> Schedule:
    if not re.match(SCHEDULE_NAME, path.stem):
        raise ValidationError([Issue("name", f"invalid schedule name {path.stem!r}")])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationError([Issue("yaml", f"not valid YAML: {exc}")]) from None
    return parse_schedule(data if isinstance(data, dict) else {}, path.stem)


def schedule_file(project: Project, name: str) -> Path:
    if not re.match(SCHEDULE_NAME, name):
        raise ValidationError([Issue("name", f"invalid schedule name {name!r}")])
    path = schedules_dir(project.root) / f"{name}.yml"
    if not path.is_file():
        raise NotFound(f"project '{project.config.name}' has no schedule '{name}'")
    return path


def write_schedule(root: Path, schedule: Schedule) -> Path:
    """Write a schedule file atomically (the name is the file's, not a key in it)."""
    path = schedules_dir(root) / f"{schedule.name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = schedule.model_dump(exclude={"name"}, exclude_defaults=True, mode="json")
    atomic_write_text(path, yaml.safe_dump(body, sort_keys=False))
    return path
