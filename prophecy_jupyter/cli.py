"""`prophecy` command: init, validate, compile, preview, run, gems.

A thin argument parser over the core: every command opens the project, calls the same
functions the server and magics call, and prints. Exit codes: 0 success, 1 invalid pipeline
or failed run, 2 usage. Errors are one line unless ``--debug``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from prophecy_jupyter.automate.runner import GemRun, RunResult, run_pipeline
from prophecy_jupyter.compiler import compile_pipeline
from prophecy_jupyter.compiler.expressions import split_assignments
from prophecy_jupyter.compiler.preview import preview_gem
from prophecy_jupyter.engines.base import Engine, PreviewResult
from prophecy_jupyter.errors import Issue, ProphecyError, ValidationError
from prophecy_jupyter.fabrics import FabricStore
from prophecy_jupyter.gems.registry import catalog
from prophecy_jupyter.gems.sources import TargetProps, written_relation
from prophecy_jupyter.model import Pipeline, Project, init_project, load_pipeline

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


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
            errors.print(f"error: {issue}", markup=False)
        sys.exit(1)
    except ProphecyError as exc:
        if ctx.debug:
            raise
        fail(str(exc))


def parse_params(values: Sequence[str]) -> dict[str, str]:
    try:
        return split_assignments(values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--param") from None


json_format = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
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
                found[ref] = compile_pipeline(pipeline, engine, values).issues
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
        compiled = compile_pipeline(ctx.pipeline(pipeline), engine, values)
        compiled.raise_for_issues()
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
        compiled = compile_pipeline(ctx.pipeline(pipeline), engine, values)
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
            print_preview(label, engine.preview(written_relation(props), limit))


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


if __name__ == "__main__":
    main()
