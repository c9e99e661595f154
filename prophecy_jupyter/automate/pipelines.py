"""What a worker process runs: a pipeline through the runner, a notebook through papermill.

Both read what they run from the run's deployment when it has one (the project as it was
when deployed), and otherwise from the project as it is now; paths in them (data files, the
warehouse) resolve in the live project either way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prophecy_jupyter.automate.executions import KERNEL_NAME, finish_run
from prophecy_jupyter.automate.notebook_parameters import declared_parameters, typed_parameters
from prophecy_jupyter.automate.runner import GemRun, gem_view, run_pipeline
from prophecy_jupyter.automate.store import Run, RunStatus, Store
from prophecy_jupyter.connections import project_connections
from prophecy_jupyter.errors import Cancelled, NotFound
from prophecy_jupyter.fabrics import FABRIC_PROJECT_VARIABLE, FABRIC_VARIABLE, FabricStore
from prophecy_jupyter.model.pipeline import Pipeline, load_pipeline
from prophecy_jupyter.model.project import Project, pipeline_file_name

log = logging.getLogger(__name__)


def _source_root(store: Store, project: Project, run: Run) -> Path:
    """Where the run's pipeline or notebook is read: its deployment, else the project."""
    if run.deployment is None:
        return project.root
    for deployment in store.list_deployments(run.project):
        if deployment.id == run.deployment:
            return Path(deployment.path)
    raise NotFound(f"deployment '{run.deployment}' of run {run.id} is gone")


def _pipeline(store: Store, project: Project, run: Run) -> Pipeline:
    if run.deployment is None:
        return project.load_pipeline(run.target)
    path = _source_root(store, project, run) / "pipelines" / pipeline_file_name(run.target)
    if not path.is_file():
        raise NotFound(f"deployment '{run.deployment}' has no pipeline '{run.target}'")
    return load_pipeline(path.read_bytes())


def execute_pipeline(store: Store, root: Path, run: Run) -> RunStatus:
    project = Project.open(root / run.project)
    pipeline = _pipeline(store, project, run)
    gems: dict[str, dict[str, Any]] = {}

    def progress(gem: GemRun) -> None:
        gems[gem.gem_id] = gem_view(gem)
        if gem.status in {"succeeded", "failed"}:
            rows = "" if gem.rows is None else f", {gem.rows} rows"
            log.info("gem %s %s%s in %.3f s", gem.gem_id, gem.status, rows, gem.seconds or 0)
        if store.progress(run.id, list(gems.values())):
            raise Cancelled("cancelled")

    with FabricStore(project).engine(run.fabric) as engine:
        session = engine.session()
        try:
            result = run_pipeline(
                pipeline,
                session,
                run.parameters,
                "staged",
                progress,
                dialect=project.config.dialect,
                connections=project_connections(project),
            )
        except Cancelled:
            finish_run(store, run.id, "cancelled", "cancelled", gems=list(gems.values()))
            return "cancelled"
        finally:
            if session is not engine:
                session.close()
    views = [gem_view(g) for g in result.gems]
    finish_run(store, run.id, result.status, result.error, gems=views)
    return result.status


def execute_notebook(store: Store, root: Path, run: Run) -> RunStatus:
    """Run a notebook in the Prophecy kernel, on the run's fabric and with its parameters
    typed as the notebook declares them; both are checked before the kernel starts."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    project = Project.open(root / run.project)
    source = _source_root(store, project, run) / run.target
    if not source.is_file():
        raise NotFound(f"no notebook '{run.target}' in project '{run.project}'")
    try:
        FabricStore(project).get(run.fabric)
    except NotFound as exc:
        raise NotFound(f"the run's fabric '{run.fabric}' does not exist: {exc}") from None
    parameters, undeclared = typed_parameters(declared_parameters(source), run.parameters)
    for name in undeclared:
        log.warning(
            "parameter '%s' is not declared in the notebook's parameters cell: injected as given",
            name,
        )
    folder = project.root / ".prophecy" / "runs" / run.id
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / Path(run.target).name
    store.set_output(run.id, str(output.relative_to(project.root)))
    # The kernel takes the worker's environment when it starts: its commands' default
    # fabric is the run's (see `prophecy_jupyter.magics.session.default_fabric`).
    kernel = {FABRIC_VARIABLE: run.fabric, FABRIC_PROJECT_VARIABLE: str(project.root)}
    try:
        with _environment(kernel), _without_papermills_unknown_parameter_lines():
            papermill.execute_notebook(
                str(source),
                str(output),
                parameters=parameters,
                kernel_name=KERNEL_NAME,
                language="python",
                cwd=str((project.root / run.target).parent),
                progress_bar=False,
                log_output=True,
            )
    except PapermillExecutionError as exc:
        message = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
        finish_run(store, run.id, "failed", message)
        return "failed"
    finish_run(store, run.id, "succeeded")
    return "succeeded"


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Environment variables for the processes started meanwhile (a notebook's kernel), put
    back as they were afterwards. A worker executes one run and exits, so a run's variables
    never reach another run's kernel; restoring them keeps it so should that change."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _UnknownParameterLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Passed unknown parameter:")


@contextmanager
def _without_papermills_unknown_parameter_lines() -> Iterator[None]:
    """Leave out papermill's own line for each undeclared parameter: the run's log has a
    warning saying more for each already."""
    papermill_log = logging.getLogger("papermill")
    dropped = _UnknownParameterLines()
    papermill_log.addFilter(dropped)
    try:
        yield
    finally:
        papermill_log.removeFilter(dropped)
