"""`prophecy` command: init, validate, compile, preview, run, gems.

A thin argument parser over the core: every command opens the project, calls the same
functions the server and magics call, and prints. Exit codes: 0 success, 1 invalid pipeline
or failed run, 2 usage. Errors are one line unless ``--debug``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from prophecy_jupyter.automate.runner import GemRun, RunResult, run_pipeline
from prophecy_jupyter.cli_common import json_format
from prophecy_jupyter.compiler import CompiledPipeline, compile_pipeline
from prophecy_jupyter.compiler.dialects import dialect_issues
from prophecy_jupyter.compiler.expressions import split_assignments
from prophecy_jupyter.compiler.preview import preview_gem
from prophecy_jupyter.connections import project_connections
from prophecy_jupyter.engines.base import Engine, PreviewResult
from prophecy_jupyter.errors import Issue, ProphecyError, ValidationError
from prophecy_jupyter.fabrics import FabricStore
from prophecy_jupyter.gems.registry import catalog
from prophecy_jupyter.gems.sources import (
    TargetProps,
    reading_back,
    through_connector,
    written_relation,
)
from prophecy_jupyter.model import Pipeline, Project, init_project, load_pipeline
from prophecy_jupyter.workspace import STUDIO_FETCH_LIMIT

console = Console(highlight=False)
# soft_wrap: an error is one line whatever the width, also when stderr is not a terminal.
errors = Console(stderr=True, highlight=False, soft_wrap=True)


class Context:
    def __init__(self, project_dir: str, debug: bool) -> None:
        self.project_dir = project_dir
        self.debug = debug
        self._project: Project | None = None

    @property
    def project(self) -> Project:
        if self._project is None:
            self._project = Project.open(self.project_dir)
        return self._project

    def pipeline(self, ref: str) -> Pipeline:
        """A pipeline by name in the project, or by path to its JSON file."""
        path = Path(ref)
        if path.suffix == ".json" and path.is_file():
            return load_pipeline(path.read_bytes())
        return self.project.load_pipeline(ref)

    def engine(self) -> Engine:
        """The engine of the project's default fabric."""
        return FabricStore(self.project).engine()

    def compile(
        self, pipeline: Pipeline, engine: Engine, values: Mapping[str, Any]
    ) -> CompiledPipeline:
        """Compile in the project's dialect, with its connections (for validate, compile
        and preview: gems that fetch from outside read a bounded sample)."""
        return compile_pipeline(
            pipeline,
            engine,
            values,
            self.project.config.dialect,
            connections=project_connections(self.project),
            fetch_limit=STUDIO_FETCH_LIMIT,
        )


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"error: {message}", markup=False)
    sys.exit(code)


@contextmanager
def reported(ctx: Context) -> Iterator[None]:
    """Turn the core's typed errors into one line and exit code 1."""
    try:
        yield
    except ValidationError as exc:
        if ctx.debug:
            raise
        for issue in exc.issues:
            errors.print(f"error: {_first_line(str(issue))}", markup=False)
        sys.exit(1)
    except ProphecyError as exc:
        if ctx.debug:
            raise
        fail(_first_line(str(exc)))


def parse_params(values: Sequence[str]) -> dict[str, str]:
    try:
        return split_assignments(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--param") from None


param_option = click.option(
    "--param", "params", multiple=True, metavar="NAME=VALUE", help="Pipeline parameter value."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    "project_dir",
    default=".",
    show_default=True,
    help="Project folder (or any folder inside it).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="prophecy-jupyter")
@click.pass_context
def main(click_ctx: click.Context, project_dir: str, debug: bool) -> None:
    """Build, check and run Prophecy-style data pipelines on DuckDB."""
    click_ctx.obj = Context(project_dir, debug)


@main.command()
@click.argument("path", default=".")
@click.option("--name", help="Project name (default: the folder's name).")
@click.pass_obj
def init(ctx: Context, path: str, name: str | None) -> None:
    """Create a new project in PATH."""
    with reported(ctx):
        project = init_project(path, name)
    console.print(f"created project '{project.config.name}' in {project.root}", markup=False)


@main.command()
@click.argument("pipelines", nargs=-1)
@param_option
@json_format
@click.pass_obj
def validate(ctx: Context, pipelines: tuple[str, ...], params: tuple[str, ...], fmt: str) -> None:
    """Check pipelines (all of the project's when none are named)."""
    values = parse_params(params)
    found: dict[str, list[Issue]] = {}
    with reported(ctx):
        names = list(pipelines) or ctx.project.pipeline_names()
        with ctx.engine() as engine:
            for ref in names:
                try:
                    pipeline = ctx.pipeline(ref)
                except ValidationError as exc:
                    found[ref] = exc.issues
                    continue
                found[ref] = ctx.compile(pipeline, engine, values).issues
    if fmt == "json":
        click.echo(json.dumps({k: [i.to_dict() for i in v] for k, v in found.items()}, indent=2))
    else:
        for ref, issues in found.items():
            if issues:
                for issue in issues:
                    console.print(f"{ref}: {issue}", markup=False)
            else:
                console.print(f"{ref}: ok", markup=False)
    sys.exit(1 if any(found.values()) else 0)


@main.command(name="compile")
@click.argument("pipeline")
@click.option("--gem", help="Compile this gem (default: every Target).")
@click.option("--dialect", default=None, help="sqlglot dialect (default: the project's).")
@param_option
@json_format
@click.pass_obj
def compile_command(
    ctx: Context,
    pipeline: str,
    gem: str | None,
    dialect: str | None,
    params: tuple[str, ...],
    fmt: str,
) -> None:
    """Print the SQL of a pipeline's targets, or of one gem."""
    values = parse_params(params)
    with reported(ctx), ctx.engine() as engine:
        compiled = ctx.compile(ctx.pipeline(pipeline), engine, values)
        compiled.raise_for_issues()
        refused = dialect_issues(compiled, dialect) if dialect else []
        if refused:
            raise ValidationError(refused)
        gems = [gem] if gem else compiled.targets()
        statements = {g: compiled.sql(g, dialect=dialect) for g in gems}
        if fmt == "json":
            body = {
                g: {"sql": sql, "columns": [c.to_dict() for c in compiled.columns(g)]}
                for g, sql in statements.items()
            }
            click.echo(json.dumps(body, indent=2))
            return
    for g, sql in statements.items():
        if len(statements) > 1:
            console.print(f"-- {g}", markup=False)
        click.echo(sql + ";")


@main.command()
@click.argument("pipeline")
@click.argument("gem")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(0, 100_000))
@param_option
@json_format
@click.pass_obj
def preview(
    ctx: Context, pipeline: str, gem: str, limit: int, params: tuple[str, ...], fmt: str
) -> None:
    """Show the first rows of any gem's output."""
    values = parse_params(params)
    with reported(ctx), ctx.engine() as engine:
        compiled = ctx.compile(ctx.pipeline(pipeline), engine, values)
        result = preview_gem(compiled, engine, gem, limit)
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        print_preview(gem, result)


@main.command()
@click.argument("pipelines", nargs=-1)
@param_option
@click.option(
    "--mode",
    type=click.Choice(["fused", "staged"]),
    default="fused",
    show_default=True,
    help="fused: one statement per target; staged: every gem materialised, with "
    "per-gem row counts and timings.",
)
@click.option(
    "--show",
    "show_rows",
    default=0,
    type=click.IntRange(0, 10_000),
    help="Print up to N rows of each target written.",
)
@json_format
@click.pass_obj
def run(
    ctx: Context,
    pipelines: tuple[str, ...],
    params: tuple[str, ...],
    mode: str,
    show_rows: int,
    fmt: str,
) -> None:
    """Run pipelines (all of the project's when none are named)."""
    values = parse_params(params)
    results: list[RunResult] = []
    with reported(ctx), ctx.engine() as engine:
        for ref in list(pipelines) or ctx.project.pipeline_names():
            pipeline = ctx.pipeline(ref)
            own = {
                k: v
                for k, v in values.items()
                if k.lower() in {p.name.lower() for p in pipeline.parameters}
            }
            if fmt == "text":
                console.print(f"[bold]{pipeline.name}[/bold]")
            result = run_pipeline(
                pipeline,
                engine,
                own,
                mode,  # type: ignore[arg-type]
                None if fmt == "json" else print_progress,
                dialect=ctx.project.config.dialect,
                connections=project_connections(ctx.project),
            )
            results.append(result)
            if fmt == "text":
                print_run(result)
                if show_rows and result.status == "succeeded":
                    show_targets(ctx, engine, pipeline, result, show_rows)
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in results], indent=2, default=str))
    sys.exit(0 if all(r.status == "succeeded" for r in results) else 1)


@main.command()
@json_format
def gems(fmt: str) -> None:
    """List the gem catalog."""
    entries = catalog()
    if fmt == "json":
        click.echo(json.dumps(entries, indent=2))
        return
    table = Table("kind", "category", "summary")
    for entry in entries:
        table.add_row(entry["kind"], entry["category"], entry["summary"])
    console.print(table)


def print_progress(run: GemRun) -> None:
    if run.status == "failed":
        console.print(f"  [red]✗[/red] {run.gem_id}: {run.error}", markup=True, highlight=False)


def print_run(result: RunResult) -> None:
    table = Table("gem", "kind", "status", "rows", "seconds", box=None, pad_edge=False)
    for gem in result.gems:
        if gem.rows is None and gem.status == "succeeded":
            continue
        style = {"succeeded": "green", "failed": "red"}.get(gem.status, "yellow")
        table.add_row(
            gem.gem_id,
            gem.kind,
            f"[{style}]{gem.status}[/{style}]",
            "" if gem.rows is None else f"{gem.rows:,}",
            "" if gem.seconds is None else f"{gem.seconds:.3f}",
        )
    console.print(table)
    colour = "green" if result.status == "succeeded" else "red"
    console.print(f"[{colour}]{result.status}[/{colour}] in {result.seconds:.3f} s\n")


def show_targets(
    ctx: Context, engine: Engine, pipeline: Pipeline, result: RunResult, limit: int
) -> None:
    for gem in result.gems:
        if gem.kind == "Target":
            props = TargetProps.model_validate(pipeline.gem(gem.gem_id).properties)
            label = props.table or props.path or gem.gem_id
            if through_connector(props):
                # Written by the file connector (a format or a place the engine does not
                # reach): read back the way a Source of the same file reads it.
                reader = load_pipeline(
                    {
                        "name": f"{pipeline.name}_{gem.gem_id}",
                        "gems": [
                            {"id": "written", "kind": "Source", "properties": reading_back(props)}
                        ],
                    }
                )
                compiled = compile_pipeline(
                    reader,
                    engine,
                    connections=project_connections(ctx.project),
                    fetch_limit=limit,
                )
                compiled.raise_for_issues()
                relation = compiled.query("written")
            else:
                relation = written_relation(props)
            print_preview(label, engine.preview(relation, limit))


def print_preview(title: str, result: PreviewResult) -> None:
    table = Table(
        *(f"{name}\n[dim]{dtype}[/dim]" for name, dtype in result.columns),
        title=title,
        title_justify="left",
    )
    for row in result.rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)
    more = " (more rows not shown)" if result.truncated else ""
    console.print(f"[dim]{len(result.rows)} row(s){more}[/dim]\n")


def _cell(value: Any) -> str:
    return "NULL" if value is None else str(value)


# -- fabrics -------------------------------------------------------------------------------
@main.group()
def fabric() -> None:
    """List, add and test the project's fabrics; import sparkmagic's Livy endpoints."""


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


sparkmagic_option = click.option(
    "--sparkmagic-config",
    "sparkmagic_config",
    default=None,
    type=click.Path(dir_okay=False),
    help="sparkmagic's config.json (default: ~/.sparkmagic/config.json, or "
    "$SPARKMAGIC_CONF_DIR/$SPARKMAGIC_CONF_FILE).",
)


@fabric.command(name="list")
@sparkmagic_option
@json_format
@click.pass_obj
def fabric_list(ctx: Context, sparkmagic_config: str | None, fmt: str) -> None:
    """List the fabrics: name, kind, default mark, whether each secret is set; Livy
    endpoints of a sparkmagic configuration are offered until imported."""
    from prophecy_jupyter.errors import EngineError
    from prophecy_jupyter.fabrics import IN_MEMORY
    from prophecy_jupyter.sparkmagic import offered

    entries: list[dict[str, Any]] = []
    with reported(ctx):
        store = FabricStore(ctx.project)
        default = ctx.project.config.default_fabric
        for stored in store.list():
            status = store.secret_status(stored.name)
            entries.append(
                {
                    "name": stored.name,
                    "kind": stored.kind,
                    "default": stored.name == default,
                    "secrets": {k: "set" if v else "unset" for k, v in status.items()},
                    "source": "built-in" if stored.name == IN_MEMORY else "project",
                }
            )
        try:
            offers = offered(store, sparkmagic_config)
        except EngineError as exc:
            click.echo(f"warning: {_first_line(str(exc))}", err=True)
            offers = []
        for endpoint in offers:
            entries.append(
                {
                    "name": endpoint.fabric.name,
                    "kind": endpoint.fabric.kind,
                    "default": False,
                    "secrets": {k: "set" for k in endpoint.fabric.secrets},
                    "source": "offered (sparkmagic)",
                    "url": endpoint.url,
                }
            )
    if fmt == "json":
        click.echo(json.dumps(entries, indent=2))
        return
    rows = [("name", "kind", "default", "secrets", "source")]
    for entry in entries:
        secrets = ", ".join(f"{k}: {v}" for k, v in entry["secrets"].items())
        mark = "*" if entry["default"] else ""
        rows.append((entry["name"], entry["kind"], mark, secrets or "-", entry["source"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:  # plain columns: never wrapped or cut, whatever the terminal's width
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _assignment(text: str, option: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise click.BadParameter(f"expected NAME=VALUE, got {text!r}", param_hint=option)
    return name.strip(), value


def _option_value(text: str) -> str | int | float | bool:
    """``5432`` as a number, ``true``/``false`` as booleans, anything else as text."""
    lowered = text.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


@fabric.command(name="add")
@click.argument("name")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(
        ["duckdb", "spark", "livy", "postgres", "databricks", "bigquery", "snowflake"]
    ),
)
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="A setting.")
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="NAME[=VALUE]",
    help="A secret setting. Without a value it is asked for (hidden), unless "
    "$PROPHECY_SECRET_<FABRIC>_<NAME> holds it. Values go to the per-user secret store.",
)
@click.option("--description", default=None)
@click.option("--replace", is_flag=True, help="Replace a fabric of the same name.")
@click.option("--no-prompt", is_flag=True, help="Leave secrets without a value unset.")
@click.pass_obj
def fabric_add(
    ctx: Context,
    name: str,
    kind: str,
    options: tuple[str, ...],
    secrets: tuple[str, ...],
    description: str | None,
    replace: bool,
    no_prompt: bool,
) -> None:
    """Add a fabric to the project (fabrics/NAME.yml; secret values never go there)."""
    import os
    import re

    from prophecy_jupyter.errors import Conflict, NotFound
    from prophecy_jupyter.fabrics import FABRIC_NAME, parse_fabric, secret_env_name

    settings = dict(_assignment(o, "--option") for o in options)
    given: dict[str, str | None] = {}
    for text in secrets:
        secret, equals, value = text.partition("=")
        if not secret.strip():
            raise click.BadParameter(f"expected NAME[=VALUE], got {text!r}", param_hint="--secret")
        given[secret.strip()] = value if equals else None
    with reported(ctx):
        store = FabricStore(ctx.project)
        body: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "options": {k: _option_value(v) for k, v in settings.items()},
            "secrets": list(given),
        }
        if description:
            body["description"] = description
        if not re.match(FABRIC_NAME, name):
            raise ValidationError(
                [Issue("name", f"invalid fabric name {name!r}: letters, digits, _ and -")]
            )
        new = parse_fabric(body)
        exists = True
        try:
            store.get(name)
        except NotFound:
            exists = False
        if exists and not replace:
            raise Conflict(f"fabric '{name}' exists already (--replace to replace it)")
        where: dict[str, str] = {}
        values: dict[str, str | None] = {}
        for secret, typed in given.items():
            if typed is not None:
                values[secret] = typed
                where[secret] = "stored"
            elif os.environ.get(secret_env_name(name, secret)) is not None:
                where[secret] = f"from ${secret_env_name(name, secret)}"
            elif no_prompt:
                where[secret] = "unset"
            else:
                values[secret] = str(
                    click.prompt(f"{secret} of fabric '{name}'", hide_input=True, err=True)
                )
                where[secret] = "stored"
        store.put(new, values)
    path = store.folder / f"{name}.yml"
    click.echo(f"{'replaced' if exists else 'added'} fabric '{name}' ({kind}) in {path}")
    for secret, place in where.items():
        shown = f"stored in {store.secrets.path}" if place == "stored" else place
        click.echo(f"  secret {secret}: {shown}")


@fabric.command(name="test")
@click.argument("name", required=False)
@sparkmagic_option
@json_format
@click.pass_obj
def fabric_test(ctx: Context, name: str | None, sparkmagic_config: str | None, fmt: str) -> None:
    """Open a fabric's engine and run SELECT 1 (the project's default fabric when NAME is
    not given; an offered sparkmagic endpoint may be tried before importing it)."""
    import time

    from sqlglot import exp

    from prophecy_jupyter.errors import NotFound
    from prophecy_jupyter.fabrics import open_engine
    from prophecy_jupyter.sparkmagic import offered

    with reported(ctx):
        store = FabricStore(ctx.project)
        wanted = name or ctx.project.config.default_fabric
        try:
            target = store.get(wanted)
            values = store.resolve_secrets(wanted)
        except NotFound:
            endpoint = next(
                (e for e in offered(store, sparkmagic_config) if e.fabric.name == wanted), None
            )
            if endpoint is None:
                raise
            target = endpoint.fabric
            values = {"password": endpoint.password} if endpoint.password else {}
    missing = [s for s in target.secrets if s not in values]

    def answer(ok: bool, message: str, seconds: float | None) -> None:
        if fmt == "json":
            body = {"name": target.name, "kind": target.kind, "ok": ok, "message": message}
            click.echo(json.dumps({**body, "seconds": seconds}, indent=2))
        elif ok:
            click.echo(message)
        else:
            click.echo(f"error: {message}", err=True)
        if not ok:
            sys.exit(1)

    if missing:
        names = ", ".join(f"'{s}'" for s in missing)
        answer(False, f"fabric '{target.name}': secret {names} has no value", None)
    started = time.perf_counter()
    try:
        engine = open_engine(target, ctx.project, values)
        try:
            _, rows = engine.query(exp.select(exp.Literal.number(1)))
        finally:
            engine.close()
    except Exception as exc:  # a driver's own errors too: the answer is one line, always
        if ctx.debug:
            raise
        message = _first_line(str(exc)) or type(exc).__name__
        if not isinstance(exc, ProphecyError):
            message = f"{type(exc).__name__}: {message}"
        for value in values.values():
            if value:
                message = message.replace(value, "********")
        if not message.startswith(f"fabric '{target.name}'"):
            message = f"fabric '{target.name}': {message}"
        answer(False, message, None)
    seconds = time.perf_counter() - started
    if rows != [(1,)]:
        answer(False, f"fabric '{target.name}': SELECT 1 answered {rows!r}", seconds)
    answer(
        True,
        f"fabric '{target.name}' ({target.kind}): SELECT 1 answered in {seconds:.3f} s",
        round(seconds, 6),
    )


@fabric.command(name="import-sparkmagic")
@click.argument("names", nargs=-1)
@click.option(
    "--config",
    "config",
    default=None,
    type=click.Path(dir_okay=False),
    help="sparkmagic's config.json (default: ~/.sparkmagic/config.json, or "
    "$SPARKMAGIC_CONF_DIR/$SPARKMAGIC_CONF_FILE).",
)
@click.pass_obj
def fabric_import_sparkmagic(ctx: Context, names: tuple[str, ...], config: str | None) -> None:
    """Make fabrics of the Livy endpoints a sparkmagic configuration offers (all, or those
    NAMES); passwords go to the per-user secret store, never into the project."""
    from prophecy_jupyter.errors import NotFound
    from prophecy_jupyter.sparkmagic import config_path, import_endpoints

    path = config_path(config)
    with reported(ctx):
        if not path.is_file():
            raise NotFound(f"no sparkmagic configuration at {path}")
        store = FabricStore(ctx.project)
        made = import_endpoints(store, path, list(names) or None)
    if not made:
        click.echo(f"{path} offers no Livy endpoint that is not a fabric already")
        return
    for imported in made:
        secret = f", password in {store.secrets.path}" if "password" in imported.secrets else ""
        click.echo(f"imported fabric '{imported.name}' (livy at {imported.options['url']}{secret})")


# -- orchestration: runs, schedules, deploy, the automate daemon (prophecy_jupyter/cli_automate.py)
from prophecy_jupyter.cli_automate import register as _register_automate  # noqa: E402

_register_automate(main)

# -- version control: prophecy git …, prophecy diff (prophecy_jupyter/cli_git.py)
from prophecy_jupyter.cli_git import register as _register_git  # noqa: E402

_register_git(main)

# -- the AI copilot: prophecy ai (prophecy_jupyter/cli_ai.py)
from prophecy_jupyter.cli_ai import register as _register_ai  # noqa: E402

_register_ai(main)


if __name__ == "__main__":
    main()
