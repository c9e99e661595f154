"""`prophecy runs | schedules | deploy | automate`: orchestration from a terminal.

Every command but `automate` is a client of the orchestration API (`AutomateClient`), not
of the run store: the server that owns the store (the `prophecy automate` daemon, or any
JupyterLab with the extension) queues, executes and records, so a command works the same
against a laptop's daemon and a shared one, and needs no access to the projects' files.
The server is ``--url``/``$PROPHECY_URL`` (default the daemon's ``http://127.0.0.1:8765``),
its token ``--token``/``$PROPHECY_TOKEN``.

`prophecy automate` is the daemon itself (`prophecy_jupyter.automate.daemon`).

Errors are the core's typed errors, raised by the client from the server's answers, and are
printed as one line by the CLI's `reported` like every other command's; exit codes are the
CLI's: 0 success, 1 an error or a run that did not succeed, 2 usage.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from prophecy_jupyter.automate.client import (
    DEFAULT_URL,
    AutomateClient,
    DeploymentInfo,
    RunInfo,
    ScheduleInfo,
)
from prophecy_jupyter.cli_common import F, echo_json, json_format, reported, with_options

if TYPE_CHECKING:
    from prophecy_jupyter.cli import Context

URL_ENV = "PROPHECY_URL"
TOKEN_ENV = "PROPHECY_TOKEN"


# `prophecy_jupyter.cli` imports this module at its end to register the commands, so this
# one imports it only when a command runs, through these three.
def _console() -> Console:
    from prophecy_jupyter.cli import console

    return console


def _parse_params(values: Sequence[str]) -> dict[str, str]:
    from prophecy_jupyter.cli import parse_params

    return parse_params(values)


def connection(command: F) -> F:
    """``--url`` and ``--token`` of the server a command talks to."""
    command = click.option(
        "--token",
        envvar=TOKEN_ENV,
        default=None,
        metavar="TOKEN",
        help=f"The server's token (default ${TOKEN_ENV}).",
    )(command)
    command = click.option(
        "--url",
        envvar=URL_ENV,
        default=DEFAULT_URL,
        show_default=True,
        help=f"The server: `prophecy automate` or a Jupyter server (default ${URL_ENV}).",
    )(command)
    return command


project_option = click.option(
    "--project",
    "project",
    default="",
    help="The project: its folder relative to the server's root (default: the root).",
)
params_option = click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter value (sent as text; the pipeline or notebook converts it to its type).",
)
wait_options: tuple[Callable[[F], F], ...] = (
    click.option("--wait", is_flag=True, help="Wait for the run to finish; exit 1 if it fails."),
    click.option(
        "--timeout",
        default=3600.0,
        show_default=True,
        type=click.FloatRange(min=0, min_open=True),
        help="Seconds --wait waits (the run goes on after).",
    ),
)


# -- formatting ----------------------------------------------------------------------------
STATUS_STYLE = {"succeeded": "green", "failed": "red", "cancelled": "yellow"}


def _when(iso: str | None) -> str:
    """An API time (ISO 8601, UTC) in the local time zone, to the second."""
    if not iso:
        return "-"
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _project(name: str) -> str:
    return name or "."


def _columns(rows: Sequence[Sequence[str]]) -> None:
    """Plain aligned columns, as `prophecy fabric list` prints: never wrapped or cut,
    whatever the terminal's width, so ids can be copied from them."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _status(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def print_run(run: RunInfo) -> None:
    """A run's header, then its gems as `prophecy run` prints them."""
    console = _console()
    seconds = "" if run["seconds"] is None else f" in {run['seconds']:.3f} s"
    trigger = run["trigger"]
    what = trigger["type"]
    if trigger["schedule"]:
        what += f" (schedule {trigger['schedule']})"
    if trigger["detail"]:
        what += f": {trigger['detail']}"
    lines = [
        ("run", run["id"]),
        ("target", f"{run['kind']} {run['target']} in project {_project(run['project'])}"),
        ("fabric", run["fabric"]),
        ("trigger", what),
        ("attempt", str(run["attempt"])),
        ("created", _when(run["created"])),
        ("started", _when(run["started"])),
        ("finished", _when(run["finished"])),
    ]
    if run["parameters"]:
        lines.append(("parameters", ", ".join(f"{k}={v}" for k, v in run["parameters"].items())))
    if run["deployment"]:
        lines.append(("deployment", run["deployment"]))
    if run["output_notebook"]:
        lines.append(("notebook", f"prophecy runs notebook {run['id']}"))
    for label, value in lines:
        console.print(f"{label:<11}{value}", markup=False)
    console.print(f"{'status':<11}{_status(run['status'])}{seconds}")
    if run["error"]:
        console.print(f"{'error':<11}{run['error']}", markup=False)
    for issue in run["issues"]:
        where = f"gem '{issue['gem_id']}': " if issue.get("gem_id") else ""
        console.print(f"{'issue':<11}{where}{issue.get('message', '')}", markup=False)
    if run["gems"]:
        table = Table("gem", "kind", "status", "rows", "seconds", box=None, pad_edge=False)
        for gem in run["gems"]:
            table.add_row(
                gem["gem_id"],
                gem["kind"],
                _status(gem["status"]),
                "" if gem["rows"] is None else f"{gem['rows']:,}",
                "" if gem["seconds"] is None else f"{gem['seconds']:.3f}",
            )
        console.print()
        console.print(table)
        for gem in run["gems"]:
            if gem["error"]:
                console.print(f"  {gem['gem_id']}: {gem['error']}", markup=False)


def _queued(run: RunInfo) -> None:
    click.echo(
        f"queued run {run['id']} ({run['kind']} {run['target']} on {run['fabric']}, "
        f"project {_project(run['project'])})"
    )


def _trigger_answer(
    client: AutomateClient, ctx: Context, run: RunInfo, wait: bool, timeout: float, fmt: str
) -> None:
    """Print a triggered run (and with ``wait``, the run as it finished); exit 1 when a
    waited run did not succeed."""
    if not wait:
        if fmt == "json":
            echo_json(run)
        else:
            _queued(run)
        return
    if fmt == "text":
        _queued(run)
    seen = {run["status"]}

    def progress(now: RunInfo) -> None:
        if fmt == "text" and now["status"] not in seen and now["status"] == "running":
            seen.add(now["status"])
            click.echo(f"run {now['id']} running")

    with reported(ctx):
        finished = client.wait(run["id"], timeout=timeout, poll=0.3, progress=progress)
    if fmt == "json":
        echo_json(finished)
    else:
        click.echo()
        print_run(finished)
    sys.exit(0 if finished["status"] == "succeeded" else 1)


def _client(ctx: Context, url: str, token: str | None) -> AutomateClient:
    with reported(ctx):
        return AutomateClient(url, token)


# -- prophecy runs -------------------------------------------------------------------------
@click.group()
def runs() -> None:
    """Runs of pipelines and notebooks on an Automate server: list, show, logs, trigger,
    cancel."""


@runs.command(name="list")
@click.option("--project", default=None, help="Only runs of this project (folder under the root).")
@click.option(
    "--status",
    type=click.Choice(["queued", "running", "succeeded", "failed", "cancelled"]),
    default=None,
)
@click.option("--target", default=None, help="Only runs of this pipeline or notebook.")
@click.option(
    "--trigger",
    type=click.Choice(["manual", "api", "schedule", "file", "upstream", "retry"]),
    default=None,
)
@click.option("--schedule", default=None, help="Only runs of this schedule.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@json_format
@connection
@click.pass_obj
def runs_list(
    ctx: Context,
    project: str | None,
    status: str | None,
    target: str | None,
    trigger: str | None,
    schedule: str | None,
    limit: int,
    fmt: str,
    url: str,
    token: str | None,
) -> None:
    """List runs, newest first."""
    client = _client(ctx, url, token)
    with reported(ctx):
        found = client.runs(
            project=project,
            status=status,
            target=target,
            trigger=trigger,
            schedule=schedule,
            limit=limit,
        )
    if fmt == "json":
        echo_json(found)
        return
    if not found:
        click.echo("no runs")
        return
    rows = [("id", "project", "target", "trigger", "status", "created", "seconds")]
    for run in found:
        via = run["trigger"]["type"]
        if run["trigger"]["schedule"]:
            via += f":{run['trigger']['schedule']}"
        rows.append(
            (
                run["id"],
                _project(run["project"]),
                run["target"],
                via,
                run["status"],
                _when(run["created"]),
                "" if run["seconds"] is None else f"{run['seconds']:.3f}",
            )
        )
    _columns(rows)


@runs.command(name="show")
@click.argument("run_id")
@json_format
@connection
@click.pass_obj
def runs_show(ctx: Context, run_id: str, fmt: str, url: str, token: str | None) -> None:
    """Show a run: status, trigger, times, error and its gems' rows and timings."""
    client = _client(ctx, url, token)
    with reported(ctx):
        run = client.run(run_id)
    if fmt == "json":
        echo_json(run)
    else:
        print_run(run)


@runs.command(name="logs")
@click.argument("run_id")
@json_format
@connection
@click.pass_obj
def runs_logs(ctx: Context, run_id: str, fmt: str, url: str, token: str | None) -> None:
    """Print a run's log lines."""
    client = _client(ctx, url, token)
    with reported(ctx):
        lines = client.logs(run_id)
    if fmt == "json":
        echo_json(lines)
        return
    for line in lines:
        click.echo(f"{_when(line['time'])}  {line['level']:<7}  {line['message']}")


@runs.command(name="notebook")
@click.argument("run_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the notebook to this file (default: print it).",
)
@connection
@click.pass_obj
def runs_notebook(
    ctx: Context, run_id: str, output: Path | None, url: str, token: str | None
) -> None:
    """The executed notebook of a notebook run, with its outputs."""
    client = _client(ctx, url, token)
    with reported(ctx):
        book = client.notebook(run_id)
    text = json.dumps(book, indent=1, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")


@runs.command(name="trigger")
@click.option("--pipeline", default=None, help="Run this pipeline (by name).")
@click.option("--notebook", default=None, help="Run this notebook (a path in the project).")
@project_option
@click.option("--fabric", default=None, help="Fabric (default: the project's).")
@params_option
@with_options(*wait_options)
@json_format
@connection
@click.pass_obj
def runs_trigger(
    ctx: Context,
    pipeline: str | None,
    notebook: str | None,
    project: str,
    fabric: str | None,
    params: tuple[str, ...],
    wait: bool,
    timeout: float,
    fmt: str,
    url: str,
    token: str | None,
) -> None:
    """Queue a run of a pipeline or a notebook (--wait: until it ends)."""
    if (pipeline is None) == (notebook is None):
        raise click.UsageError("give exactly one of --pipeline or --notebook")
    values = _parse_params(params)
    client = _client(ctx, url, token)
    with reported(ctx):
        run = client.trigger(
            project, pipeline=pipeline, notebook=notebook, fabric=fabric, parameters=values
        )
    _trigger_answer(client, ctx, run, wait, timeout, fmt)


@runs.command(name="cancel")
@click.argument("run_id")
@json_format
@connection
@click.pass_obj
def runs_cancel(ctx: Context, run_id: str, fmt: str, url: str, token: str | None) -> None:
    """Cancel a queued or running run."""
    client = _client(ctx, url, token)
    with reported(ctx):
        run = client.cancel(run_id)
    if fmt == "json":
        echo_json(run)
    elif run["status"] == "running":
        click.echo(f"run {run['id']}: cancel requested (it stops within seconds)")
    elif run["status"] == "cancelled":
        click.echo(f"run {run['id']}: cancelled")
    else:
        click.echo(f"run {run['id']} had already {run['status']}: nothing to cancel")


# -- prophecy schedules ----------------------------------------------------------------------
@click.group()
def schedules() -> None:
    """Schedules of the projects on an Automate server: list, enable, disable, trigger."""


def _schedule_when(schedule: ScheduleInfo) -> str:
    parts = []
    if schedule["cron"]:
        parts.append(f"{schedule['cron']} ({schedule['timezone']})")
    for trigger in schedule["triggers"]:
        detail = trigger.get("path") or trigger.get("pipeline") or trigger.get("schedule")
        parts.append(f"{trigger.get('type')} {detail}")
    return "; ".join(parts) or "on demand"


@schedules.command(name="list")
@click.option("--project", default=None, help="Only this project's schedules.")
@json_format
@connection
@click.pass_obj
def schedules_list(
    ctx: Context, project: str | None, fmt: str, url: str, token: str | None
) -> None:
    """List the schedules that apply now, with their next fire times."""
    client = _client(ctx, url, token)
    with reported(ctx):
        found = client.schedules(project)
    if fmt == "json":
        echo_json(found)
        return
    if not found:
        click.echo("no schedules")
        return
    rows = [("project", "name", "target", "when", "enabled", "next fire", "last run")]
    for schedule in found:
        last = schedule["last_run"]
        rows.append(
            (
                _project(schedule["project"]),
                schedule["name"],
                f"{schedule['kind']} {schedule['target']}",
                _schedule_when(schedule),
                "yes" if schedule["enabled"] else "no",
                _when(schedule["next_fire"]),
                "-" if last is None else f"{last['status']} {_when(last['finished'])}",
            )
        )
    _columns(rows)


def _switched(
    ctx: Context, name: str, project: str, enabled: bool, fmt: str, url: str, token: str | None
) -> None:
    client = _client(ctx, url, token)
    with reported(ctx):
        view = client.enable(project, name) if enabled else client.disable(project, name)
    if fmt == "json":
        echo_json(view)
        return
    state = "enabled" if view["enabled"] else "disabled"
    after = f", next fire {_when(view['next_fire'])}" if view["next_fire"] else ""
    click.echo(f"schedule '{name}' {state}{after}")


@schedules.command(name="enable")
@click.argument("name")
@project_option
@json_format
@connection
@click.pass_obj
def schedules_enable(
    ctx: Context, name: str, project: str, fmt: str, url: str, token: str | None
) -> None:
    """Turn a schedule on (in its file, so Git has it; a deployed one in the store)."""
    _switched(ctx, name, project, True, fmt, url, token)


@schedules.command(name="disable")
@click.argument("name")
@project_option
@json_format
@connection
@click.pass_obj
def schedules_disable(
    ctx: Context, name: str, project: str, fmt: str, url: str, token: str | None
) -> None:
    """Turn a schedule off (in its file, so Git has it; a deployed one in the store)."""
    _switched(ctx, name, project, False, fmt, url, token)


@schedules.command(name="trigger")
@click.argument("name")
@project_option
@params_option
@with_options(*wait_options)
@json_format
@connection
@click.pass_obj
def schedules_trigger(
    ctx: Context,
    name: str,
    project: str,
    params: tuple[str, ...],
    wait: bool,
    timeout: float,
    fmt: str,
    url: str,
    token: str | None,
) -> None:
    """Run a schedule now, whatever its cron says (--wait: until it ends)."""
    values = _parse_params(params)
    client = _client(ctx, url, token)
    with reported(ctx):
        run = client.trigger_schedule(project, name, values)
    _trigger_answer(client, ctx, run, wait, timeout, fmt)


# -- prophecy deploy -----------------------------------------------------------------------
@click.command()
@click.option("--fabric", required=True, help="The fabric the deployed schedules run on.")
@project_option
@json_format
@connection
@click.pass_obj
def deploy(ctx: Context, fabric: str, project: str, fmt: str, url: str, token: str | None) -> None:
    """Freeze the project's pipelines, schedules and notebooks as what its schedules run on
    a fabric, until the next deploy."""
    client = _client(ctx, url, token)
    with reported(ctx):
        made: DeploymentInfo = client.deploy(project, fabric)
    if fmt == "json":
        echo_json(made)
        return
    click.echo(
        f"deployed project {_project(made['project'])} to fabric '{made['fabric']}': "
        f"deployment {made['id']}"
    )
    for kind in ("pipelines", "schedules", "notebooks"):
        names: list[str] = made[kind]
        click.echo(f"  {kind}: {', '.join(names) if names else '-'}")


# -- prophecy automate ---------------------------------------------------------------------
@click.command()
@click.argument("root", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--ip", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    envvar="PROPHECY_AUTOMATE_TOKEN",
    default=None,
    metavar="TOKEN",
    help="The token clients must send (default $PROPHECY_AUTOMATE_TOKEN, else a new one, "
    "printed once).",
)
@click.option(
    "--max-workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Runs executed at once (each in a process of its own).",
)
@click.pass_obj
def automate(
    ctx: Context, root: Path, ip: str, port: int, token: str | None, max_workers: int
) -> None:
    """Serve the orchestration API over ROOT and fire its projects' schedules, with no
    JupyterLab open (a headless Jupyter server; SIGTERM or Ctrl+C stops it)."""
    from prophecy_jupyter.automate.daemon import DaemonSettings, serve

    settings = DaemonSettings(root, ip=ip, port=port, token=token, max_workers=max_workers)
    with reported(ctx):
        code = serve(settings, announce=click.echo)
    sys.exit(code)


def register(group: click.Group) -> None:
    """Add the commands to the `prophecy` group."""
    for command in (runs, schedules, deploy, automate):
        group.add_command(command)
