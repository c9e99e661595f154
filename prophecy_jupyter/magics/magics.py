"""``%%prophecy`` and ``%prophecy``: argument parsers over `NotebookSession`.

Cell::

    %%prophecy [-o VAR [--as pandas|polars|arrow]] [--save NAME] [--param NAME=VALUE ...]
               [--engine KIND | --fabric NAME] [--project PATH] [--show N]
    SELECT ... FROM frame_variable JOIN pipeline.gem USING (id) WHERE amount > $threshold

Line::

    %prophecy project [PATH]
    %prophecy run PIPELINE [--param NAME=VALUE ...] [--mode fused|staged]
    %prophecy preview PIPELINE GEM [--limit N] [--param NAME=VALUE ...]
    %prophecy compile PIPELINE [--gem GEM] [--dialect DIALECT] [--param NAME=VALUE ...]
    %prophecy graph PIPELINE [--param NAME=VALUE ...]
    %prophecy ai "PROMPT" --pipeline PIPELINE [--sample-rows]
    %prophecy ai --describe --pipeline PIPELINE [--gem GEM] [--sample-rows]
    %prophecy ai --explain --pipeline PIPELINE [--gem GEM] [--sample-rows]

Every line command also takes ``--project PATH`` and ``--engine KIND`` or ``--fabric NAME``.
Without either, a command runs on the project's default fabric, or on ``$PROPHECY_FABRIC``
when it is set: an Automate notebook run sets it to the run's fabric for its kernel.
A problem the user can fix (an invalid pipeline, bad SQL, an unknown name) is shown as one
message naming the gem, field and position; the library's traceback is never shown.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.display import Code, display

from prophecy_jupyter.automate.runner import (
    GemRun,
    ProgressCallback,
    RunMode,
    run_compiled,
    schedule,
)
from prophecy_jupyter.compiler.expressions import split_assignments
from prophecy_jupyter.errors import EngineError, ProphecyError
from prophecy_jupyter.magics.display import (
    ProphecyMagicError,
    ResultTable,
    RunSummary,
    TextProgress,
    WidgetProgress,
)
from prophecy_jupyter.magics.query import parse_parameter_value
from prophecy_jupyter.magics.session import ENGINE_KINDS, NotebookSession, Where

if TYPE_CHECKING:
    from prophecy_jupyter.magics.widget import PipelineGraph


def _add_where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", help="project folder (default: the notebook's)")
    parser.add_argument("--fabric", help="run on this fabric of the project")
    parser.add_argument("--engine", choices=ENGINE_KINDS, help="run on this kind of engine")


def _add_params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter value (repeatable)",
    )


def _cell_parser() -> MagicArgumentParser:
    parser = MagicArgumentParser(prog="%%prophecy")  # type: ignore[no-untyped-call]
    parser.add_argument("-o", "--output", metavar="VAR", help="assign the result to VAR")
    parser.add_argument(
        "--as",
        dest="frame_kind",
        choices=["pandas", "polars", "arrow"],
        default="pandas",
        help="what -o assigns",
    )
    parser.add_argument("--save", metavar="NAME", help="keep the result for later cells")
    parser.add_argument("--show", type=int, default=10, metavar="N", help="rows to display")
    _add_params(parser)
    _add_where(parser)
    return parser


def _line_parser() -> MagicArgumentParser:
    parser = MagicArgumentParser(prog="%prophecy")  # type: ignore[no-untyped-call]
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    project = commands.add_parser("project", help="show or choose the notebook's project")
    project.add_argument("path", nargs="?")
    run = commands.add_parser("run", help="run a pipeline")
    run.add_argument("pipeline")
    run.add_argument("--mode", choices=["fused", "staged"], default="fused")
    preview = commands.add_parser("preview", help="first rows of a gem")
    preview.add_argument("pipeline")
    preview.add_argument("gem")
    preview.add_argument("--limit", type=int, default=20)
    compile_ = commands.add_parser("compile", help="SQL of a pipeline's targets or of a gem")
    compile_.add_argument("pipeline")
    compile_.add_argument("--gem")
    compile_.add_argument("--dialect")
    graph = commands.add_parser("graph", help="draw a pipeline's gems")
    graph.add_argument("pipeline")
    ai = commands.add_parser("ai", help="ask the AI copilot (shows a proposal, never applies)")
    ai.add_argument("prompt", nargs="?")
    ai.add_argument("--pipeline", required=True)
    ai.add_argument("--explain", action="store_true")
    ai.add_argument("--describe", action="store_true")
    ai.add_argument("--gem")
    ai.add_argument("--sample-rows", action="store_true")
    ai.add_argument("--project", help="project folder (default: the notebook's)")
    for command in (run, preview, compile_, graph):
        _add_params(command)
        _add_where(command)
    return parser


def _params(items: Sequence[str], parse: Callable[[str], Any]) -> dict[str, Any]:
    try:
        raw = split_assignments(items)
    except ValueError as exc:
        raise UsageError(f"--param: {exc}") from None
    return {name: parse(value) for name, value in raw.items()}


def _where(args: argparse.Namespace) -> Where:
    return Where(project=args.project, fabric=args.fabric, engine=args.engine)


@contextmanager
def _reported() -> Iterator[None]:
    """The core's typed errors as a message without a traceback."""
    try:
        yield
    except ProphecyError as exc:
        raise ProphecyMagicError(exc) from None


@magics_class
class ProphecyMagics(Magics):
    """Pipelines and SQL over data frames, saved results and pipeline gems, in a notebook."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.session = NotebookSession()
        self.graphs: dict[tuple[str, str], PipelineGraph] = {}
        self._cell_parser = _cell_parser()
        self._line_parser = _line_parser()

    @line_cell_magic
    def prophecy(self, line: str, cell: str | None = None) -> Any:
        """Run SQL on a Prophecy engine (cell) or work with the project's pipelines (line).

        %%prophecy [-o VAR [--as pandas|polars|arrow]] [--save NAME] [--show N]
                   [--param NAME=VALUE ...] [--engine KIND | --fabric NAME] [--project PATH]
        SELECT ...

        The cell is one SELECT. It reads data frames of the notebook by variable name
        (pandas, polars, Arrow), results saved by earlier cells with --save NAME, any gem of
        a project pipeline as pipeline.gem (its compiled query becomes a CTE), and tables
        of the warehouse. $name is a parameter: the --param value, else the notebook variable
        of that name, bound as a typed literal.

        %prophecy project [PATH]
        %prophecy run PIPELINE [--param NAME=VALUE ...] [--mode fused|staged]
        %prophecy preview PIPELINE GEM [--limit N] [--param NAME=VALUE ...]
        %prophecy compile PIPELINE [--gem GEM] [--dialect DIALECT] [--param NAME=VALUE ...]
        %prophecy graph PIPELINE [--param NAME=VALUE ...]
        %prophecy ai "PROMPT" --pipeline PIPELINE [--sample-rows]
        %prophecy ai --describe --pipeline PIPELINE [--gem GEM] [--sample-rows]
        %prophecy ai --explain --pipeline PIPELINE [--gem GEM] [--sample-rows]

        ai shows the copilot's proposal as a diff and never applies it; --describe proposes
        descriptions of the gems and of their output columns.

        Line commands also take --project PATH and --engine KIND or --fabric NAME.
        Without --fabric or --engine, cells and commands use the project's default fabric,
        or $PROPHECY_FABRIC when it is set (an Automate notebook run sets it to the run's
        fabric); an explicit --fabric always wins.
        """
        if cell is not None:
            return self._query(line, cell)
        args = self._line_parser.parse_argstring(line)  # type: ignore[no-untyped-call]
        with _reported():
            if args.command == "project":
                return self._project(args.path)
            if args.command == "ai":
                return self._ai(args)
            params = _params(args.param, str)
            if args.command == "run":
                return self._run(args, params)
            if args.command == "preview":
                preview = self.session.preview(
                    args.pipeline, args.gem, _where(args), params, args.limit
                )
                shown = None if preview.truncated else len(preview.rows)
                return ResultTable(preview.columns, preview.rows, shown, args.gem)
            if args.command == "compile":
                return self._compile(args, params)
            return self._graph(args, params)

    def _query(self, line: str, cell: str) -> ResultTable:
        args = self._cell_parser.parse_argstring(line)  # type: ignore[no-untyped-call]
        if args.output is not None and not args.output.isidentifier():
            raise UsageError(f"-o expects a variable name, got {args.output!r}")
        if args.show < 0:
            raise UsageError("--show expects a number of rows, 0 or more")
        with _reported():
            result = self.session.query(
                cell,
                self._namespace,
                params=_params(args.param, parse_parameter_value),
                where=_where(args),
                save=args.save,
                output=args.frame_kind if args.output else None,
                show=args.show,
                first_line=2,
            )
        if args.output:
            self._namespace[args.output] = result.frame
        return ResultTable(result.columns, result.rows, result.row_count)

    def _project(self, path: str | None) -> None:
        project = self.session.use_project(path) if path else self.session.project()
        if project is None:
            print("no project: choose one with %prophecy project PATH")
            return
        names = ", ".join(project.pipeline_names()) or "none"
        print(f"project '{project.config.name}' at {project.root}; pipelines: {names}")

    def _ai(self, args: argparse.Namespace) -> None:
        """Stream the copilot's answer; show a proposal's diff. Nothing is applied."""
        from prophecy_jupyter.ai.notebook import ask

        if args.explain and args.describe:
            raise UsageError("%prophecy ai takes --explain or --describe, not both")
        if (args.explain or args.describe) and args.prompt:
            option = "--explain" if args.explain else "--describe"
            raise UsageError(f'%prophecy ai takes no "PROMPT" with {option}')
        if not (args.explain or args.describe or args.prompt):
            raise UsageError('%prophecy ai needs a "PROMPT", or --describe or --explain')
        if args.gem is not None and not (args.explain or args.describe):
            raise UsageError("%prophecy ai takes --gem with --explain or --describe")
        project = self.session.require_project(args.project)
        ask(
            project,
            args.pipeline,
            args.prompt,
            args.explain,
            args.gem,
            args.sample_rows,
            describe=args.describe,
        )

    def _compile(self, args: argparse.Namespace, params: dict[str, Any]) -> Code:
        statements = self.session.compile_sql(
            args.pipeline, _where(args), params, args.gem, args.dialect
        )
        text = "\n\n".join(
            (f"-- {gem}\n" if len(statements) > 1 else "") + sql + ";"
            for gem, sql in statements.items()
        )
        return Code(text, language="sql")  # type: ignore[no-untyped-call]

    def _graph(self, args: argparse.Namespace, params: dict[str, Any]) -> PipelineGraph:
        from prophecy_jupyter.magics.widget import PipelineGraph

        compiled, _ = self.session.compiled(args.pipeline, _where(args), params)
        key = self._graph_key(args)
        graph = self.graphs.get(key)
        if graph is None:
            graph = self.graphs[key] = PipelineGraph()
        graph.show(compiled)
        return graph

    def _graph_key(self, args: argparse.Namespace) -> tuple[str, str]:
        """One graph widget per pipeline of a project, which every run of it updates."""
        return str(self.session.require_project(args.project).root), args.pipeline

    def _run(self, args: argparse.Namespace, params: dict[str, Any]) -> RunSummary:
        compiled, engine = self.session.compiled(args.pipeline, _where(args), params, strict=True)
        mode: RunMode = args.mode
        plan = schedule(compiled, compiled.targets(), mode)
        progress = (WidgetProgress if self._in_kernel() else TextProgress)(args.pipeline, len(plan))
        watchers: list[ProgressCallback] = [progress.update]
        graph = self.graphs.get(self._graph_key(args))
        if graph is not None:
            watchers.append(graph.follow(compiled, mode))

        def on_progress(run: GemRun) -> None:
            for watcher in watchers:
                watcher(run)

        result = run_compiled(compiled, engine, mode, on_progress)
        progress.finish(result)
        if graph is not None:
            graph.report(result.gems)
        if result.status == "failed":
            # The cell fails, as a script stops, so that Run All and papermill stop here too.
            display(RunSummary(result))  # type: ignore[no-untyped-call]
            raise EngineError(f"pipeline '{args.pipeline}' failed: {result.error}")
        return RunSummary(result)

    @property
    def _namespace(self) -> dict[str, Any]:
        """The notebook's variables."""
        assert self.shell is not None
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    def _in_kernel(self) -> bool:
        """Whether a Jupyter frontend is attached, which can draw widgets."""
        from ipykernel.zmqshell import ZMQInteractiveShell

        return isinstance(self.shell, ZMQInteractiveShell)
