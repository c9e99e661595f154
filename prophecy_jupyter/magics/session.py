"""What a notebook keeps between cells: its project, one engine per fabric, saved results.

`NotebookSession` is the library behind the magics and knows nothing of IPython: each method
takes plain values (the SQL, the notebook's variables, parsed options) and returns data or
raises the core's typed errors. Engines are opened once per project and fabric and reused by
every cell, so a table a run writes is there for the next cell to read and an engine such as
Spark starts once per notebook, not once per cell.

An engine need not keep its connection between cells (DuckDB lets go of the warehouse file
when idle, so that the Studio and the CLI can use it too), so nothing a later cell reads is
left in the connection: a saved result is an Arrow table in the kernel's memory, registered
for each statement that reads it, as data frames are.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from sqlglot import exp

from prophecy_jupyter.compiler import CompiledPipeline, compile_pipeline
from prophecy_jupyter.compiler.expressions import (
    ROW_GENERATORS,
    ExpressionRejected,
    parse_query,
    prepend_ctes,
    rejected_at,
    visible_ctes,
)
from prophecy_jupyter.compiler.preview import preview_gem
from prophecy_jupyter.connections import project_connections
from prophecy_jupyter.engines.base import Engine, FrameKind, PreviewResult
from prophecy_jupyter.errors import EngineError, Issue, NotFound, ValidationError
from prophecy_jupyter.fabrics import (
    FABRIC_PROJECT_VARIABLE,
    FABRIC_VARIABLE,
    IN_MEMORY,
    FabricKind,
    FabricStore,
    open_engine,
    parse_fabric,
)
from prophecy_jupyter.magics.query import bind_parameters, is_data_frame
from prophecy_jupyter.model.project import Project

ENGINE_KINDS: tuple[str, ...] = get_args(FabricKind)
PRIVATE_PREFIX = "__prophecy"

EngineKey = tuple[str | None, str]


def default_fabric(project: Project) -> str:
    """The fabric a command uses when it names none: ``$PROPHECY_FABRIC`` when set (an
    Automate run sets it to the run's fabric for the kernel it starts), unless
    ``$PROPHECY_FABRIC_PROJECT`` names another project's folder; else the project's default."""
    chosen = os.environ.get(FABRIC_VARIABLE, "").strip()
    if not chosen:
        return project.config.default_fabric
    scope = os.environ.get(FABRIC_PROJECT_VARIABLE, "").strip()
    if scope and Path(scope).resolve() != project.root.resolve():
        return project.config.default_fabric
    return chosen


def _fabric_engine(project: Project, name: str, from_environment: bool) -> Engine:
    try:
        return FabricStore(project).engine(name)
    except NotFound as exc:
        if from_environment:
            raise NotFound(f"{exc} (the default fabric set by ${FABRIC_VARIABLE})") from None
        raise


@dataclass(frozen=True)
class Where:
    """Which project and engine a command addresses; unset parts mean the notebook's defaults
    (the project found from the working folder, that project's default fabric: see
    `default_fabric`)."""

    project: str | None = None
    fabric: str | None = None
    engine: str | None = None


@dataclass
class CellResult:
    """A cell's result: its columns with the engine's types, the first rows, the row count,
    and the whole result as a data frame when one was asked for."""

    columns: list[tuple[str, str]]
    rows: list[tuple[Any, ...]]
    row_count: int
    frame: Any = None


@dataclass
class _Resolved:
    """What running a cell's statement needs besides the statement itself."""

    frames: dict[str, Any] = field(default_factory=dict)  # private name → data frame
    ctes: dict[str, exp.CTE] = field(default_factory=dict)  # "pipeline.gem" → its query


class NotebookSession:
    def __init__(self) -> None:
        self._project: Project | None = None
        self._project_chosen = False
        self._engines: dict[EngineKey, Engine] = {}
        self._saved: dict[EngineKey, dict[str, Any]] = {}  # name → Arrow table

    # -- project and engines ------------------------------------------------------------------
    def use_project(self, path: str) -> Project:
        """Make the project at (or above) ``path`` the notebook's default."""
        self._project = Project.open(path)
        self._project_chosen = True
        return self._project

    def project(self, path: str | None = None) -> Project | None:
        """The project at ``path``, else the notebook's: the one chosen, or else the one
        containing the working folder (``None`` outside any project)."""
        if path is not None:
            return Project.open(path)
        if not self._project_chosen:
            try:
                self._project = Project.open(".")
            except NotFound:
                self._project = None
            self._project_chosen = True
        return self._project

    def require_project(self, path: str | None = None) -> Project:
        project = self.project(path)
        if project is None:
            raise NotFound(
                "no project here: open one with %prophecy project PATH or --project PATH"
            )
        return project

    def engine(self, where: Where = Where(), project: Project | None = None) -> Engine:
        """The engine ``where`` names, opened on first use and kept for the next cells."""
        return self._engine(where, project or self.project(where.project))[1]

    def _engine(self, where: Where, project: Project | None) -> tuple[EngineKey, Engine]:
        if where.fabric is not None and where.engine is not None:
            raise ValidationError(
                [Issue("options", "choose an engine with --fabric or --engine, not both")]
            )
        if project is not None and where.engine in {None, "duckdb"}:
            # A fabric of the project: the one named, else the default; DuckDB is its warehouse.
            name = where.fabric or (IN_MEMORY if where.engine else default_fabric(project))
            chosen = where.fabric is None and where.engine is None
            from_environment = chosen and name != project.config.default_fabric
            return self._open(
                (str(project.root), name),
                lambda: _fabric_engine(project, name, from_environment),
            )
        if where.fabric is not None:
            raise NotFound(
                f"fabric '{where.fabric}': fabrics belong to a project; "
                "open one with %prophecy project PATH"
            )
        # An engine of the kind asked for with its default settings, found by the same lookup
        # as stored fabrics.
        kind = where.engine or "duckdb"
        fabric = {"name": IN_MEMORY if kind == "duckdb" else kind, "kind": kind}
        root = str(project.root) if project is not None else None
        return self._open(
            (root, f"{kind} engine"), lambda: open_engine(parse_fabric(fabric), project)
        )

    def _open(self, key: EngineKey, opener: Callable[[], Engine]) -> tuple[EngineKey, Engine]:
        if key not in self._engines:
            self._engines[key] = opener()
        return key, self._engines[key]

    def close(self) -> None:
        """Close every engine and forget the saved results."""
        engines, self._engines = self._engines, {}
        self._saved.clear()
        for engine in engines.values():
            engine.close()

    # -- cells ----------------------------------------------------------------------------------
    def query(
        self,
        sql: str,
        namespace: Mapping[str, Any],
        *,
        params: Mapping[str, Any] | None = None,
        where: Where = Where(),
        save: str | None = None,
        output: FrameKind | None = None,
        show: int = 10,
        first_line: int = 1,
    ) -> CellResult:
        """Run one SELECT of a notebook cell and return its result.

        ``params`` and the notebook's variables (``namespace``) give ``$name`` values; the
        data frames among the variables are readable by name. ``save`` keeps the result, as
        an Arrow table, for later cells to read by that name; ``output`` fetches the whole
        result as a data frame. ``first_line`` is where the SQL starts in what the user sees,
        so that positions in errors point at the right line.
        """
        params = params or {}
        if save is not None:
            _check_save_name(save)
            _check_arrow()
        project = self.project(where.project)
        key, engine = self._engine(where, project)
        saved = self._saved.setdefault(key, {})
        try:
            tree = parse_query(sql, engine.dialect)
            bind_parameters(tree, params, namespace)
            resolved = self._resolve(tree, project, engine, saved, namespace, params)
        except ExpressionRejected as exc:
            problem = exc.problem
            line = None if problem.line is None else problem.line + first_line - 1
            issue = Issue(problem.code, problem.message, line=line, column=problem.column)
            raise ValidationError([issue]) from None
        prepend_ctes(tree, list(resolved.ctes.values()))
        with _registered(engine, resolved.frames):
            return self._execute(engine, tree, saved, save, output, show)

    def _execute(
        self,
        engine: Engine,
        query: exp.Query,
        saved: dict[str, Any],
        save: str | None,
        output: FrameKind | None,
        show: int,
    ) -> CellResult:
        """Run the statement once: straight into a preview when only rows to show are wanted,
        else into a table of the engine that the preview, the count and the data frame read."""
        if save is None and output is None:
            preview = engine.preview(query, show)
            count = len(preview.rows) if not preview.truncated else _count(engine, query)
            return CellResult(preview.columns, preview.rows, count)
        table = f"{PRIVATE_PREFIX}_result_{uuid.uuid4().hex[:12]}"
        count = engine.materialize(table, query)
        try:
            stored = exp.select(exp.Star()).from_(exp.Table(this=_quoted(table)))
            preview = engine.preview(stored, show)
            frame = engine.fetch(stored, output) if output is not None else None
            if save is not None:
                saved[save.lower()] = frame if output == "arrow" else engine.fetch(stored, "arrow")
        finally:
            engine.drop_materialized(table)
        return CellResult(preview.columns, preview.rows, count, frame)

    def saved_results(self, where: Where = Where()) -> list[str]:
        """Names of the results saved on the engine ``where`` names."""
        key, _ = self._engine(where, self.project(where.project))
        return sorted(self._saved.get(key, {}))

    def _resolve(
        self,
        tree: exp.Query,
        project: Project | None,
        engine: Engine,
        saved: Mapping[str, Any],
        namespace: Mapping[str, Any],
        params: Mapping[str, Any],
    ) -> _Resolved:
        """Point every table the cell reads at what it names, in this order: a CTE of the
        cell; a gem, written ``pipeline.gem``; a saved result; a data frame variable; a table
        of the engine's warehouse. Anything else is refused, file paths included (DuckDB
        would read a quoted name such as ``"data.csv"`` as a file)."""
        resolved = _Resolved()
        frame_names: dict[str, str] = {}
        compiled: dict[str, CompiledPipeline] = {}
        pipelines = set(project.pipeline_names()) if project is not None else set()
        for table in list(tree.find_all(exp.Table)):
            if isinstance(table.this, ROW_GENERATORS):
                continue
            if not isinstance(table.this, exp.Identifier):
                raise rejected_at(
                    table, "unknown_table", f"{table.sql(engine.dialect)} is not a table name"
                )
            parts = [part.name for part in table.parts]
            name = parts[-1]
            if len(parts) == 1 and name.lower() in visible_ctes(table):
                continue
            if len(parts) == 2 and parts[0] in pipelines:
                assert project is not None
                ref = self._gem_cte(project, engine, compiled, parts[0], name, params, table)
                resolved.ctes.setdefault(ref.alias, ref)
                _point_at(table, ref.alias)
            elif len(parts) == 1 and name.lower() in saved:
                private = f"{PRIVATE_PREFIX}_saved_{name.lower()}"
                resolved.frames[private] = saved[name.lower()]
                _point_at(table, private)
            elif len(parts) == 1 and is_data_frame(namespace.get(name)):
                private = frame_names.setdefault(name, f"{PRIVATE_PREFIX}_frame_{len(frame_names)}")
                resolved.frames[private] = namespace[name]
                _point_at(table, private)
            elif name.startswith(PRIVATE_PREFIX) or not engine.table_exists(".".join(parts)):
                raise rejected_at(
                    table,
                    "unknown_table",
                    f"unknown table {table.sql(engine.dialect)}: not a CTE, a pipeline gem "
                    "(pipeline.gem), a saved result, a data frame or a table of the warehouse",
                )
        return resolved

    def _gem_cte(
        self,
        project: Project,
        engine: Engine,
        compiled: dict[str, CompiledPipeline],
        pipeline: str,
        gem: str,
        params: Mapping[str, Any],
        table: exp.Table,
    ) -> exp.CTE:
        """The CTE computing one gem's output: the gem's own query, its ancestors inside."""
        if pipeline not in compiled:
            compiled[pipeline] = _compile(project, engine, pipeline, params, only_declared=True)
        built = compiled[pipeline]
        gem_id = next((g for g in built.gems if g.lower() == gem.lower()), None)
        if gem_id is None:
            raise rejected_at(table, "unknown_gem", f"pipeline '{pipeline}' has no gem '{gem}'")
        with _about(pipeline):
            query = built.query(gem_id)
        alias = exp.TableAlias(this=_quoted(f"{pipeline}.{gem_id}"))
        return exp.CTE(this=query, alias=alias)

    # -- pipelines ------------------------------------------------------------------------------
    def compiled(
        self,
        pipeline: str,
        where: Where = Where(),
        params: Mapping[str, Any] | None = None,
        strict: bool = False,
    ) -> tuple[CompiledPipeline, Engine]:
        """A project pipeline compiled on the engine ``where`` names; its issues are raised
        when ``strict``, else left in the result (a graph draws an invalid pipeline too)."""
        project = self.require_project(where.project)
        engine = self.engine(where, project)
        compiled = _compile(project, engine, pipeline, params or {})
        if strict:
            with _about(pipeline):
                compiled.raise_for_issues()
        return compiled, engine

    def preview(
        self,
        pipeline: str,
        gem: str,
        where: Where = Where(),
        params: Mapping[str, Any] | None = None,
        limit: int = 20,
    ) -> PreviewResult:
        compiled, engine = self.compiled(pipeline, where, params)
        with _about(pipeline):
            return preview_gem(compiled, engine, gem, limit)

    def compile_sql(
        self,
        pipeline: str,
        where: Where = Where(),
        params: Mapping[str, Any] | None = None,
        gem: str | None = None,
        dialect: str | None = None,
    ) -> dict[str, str]:
        """The SQL of one gem, or of every Target, in a sqlglot dialect."""
        compiled, _ = self.compiled(pipeline, where, params, strict=True)
        gems = [gem] if gem else compiled.targets()
        with _about(pipeline):
            return {g: compiled.sql(g, dialect=dialect) for g in gems}


def _compile(
    project: Project,
    engine: Engine,
    pipeline: str,
    params: Mapping[str, Any],
    only_declared: bool = False,
) -> CompiledPipeline:
    """Compile a project pipeline; ``only_declared`` drops the values of parameters it does
    not declare (a cell's ``--param`` values also feed its own ``$name``s)."""
    with _about(pipeline):
        document = project.load_pipeline(pipeline)
        if only_declared:
            declared = {p.name.lower() for p in document.parameters}
            params = {k: v for k, v in params.items() if k.lower() in declared}
        return compile_pipeline(
            document,
            engine,
            params,
            project.config.dialect,
            connections=project_connections(project),
        )


def _check_save_name(name: str) -> None:
    if not name.isidentifier() or name.lower().startswith(PRIVATE_PREFIX):
        raise ValidationError(
            [Issue("options", f"cannot save as '{name}': use letters, digits and _")]
        )


def _check_arrow() -> None:
    if importlib.util.find_spec("pyarrow") is None:
        raise EngineError("--save keeps results as Arrow tables: pip install pyarrow")


def _quoted(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _point_at(table: exp.Table, relation: str) -> None:
    """Make ``table`` read ``relation`` while the query keeps calling it by its own name."""
    if not table.alias:
        table.set("alias", exp.TableAlias(this=_quoted(table.name)))
    table.set("this", _quoted(relation))
    table.set("db", None)
    table.set("catalog", None)


def _count(engine: Engine, query: exp.Query) -> int:
    counted = exp.select(exp.func("count", exp.Star())).from_(query.subquery("counted"))
    return int(engine.preview(counted, 1).rows[0][0])


@contextmanager
def _registered(engine: Engine, frames: Mapping[str, Any]) -> Iterator[None]:
    """Data frames readable by the engine for one statement, and only for it."""
    registered: list[str] = []
    try:
        for name, frame in frames.items():
            engine.register_frame(name, frame)
            registered.append(name)
        yield
    finally:
        for name in registered:
            engine.unregister_frame(name)


@contextmanager
def _about(pipeline: str) -> Iterator[None]:
    """Name the pipeline in errors that would otherwise not say which one they concern."""
    try:
        yield
    except ValidationError as exc:
        raise ValidationError(exc.issues, f"pipeline '{pipeline}': {exc}") from None
    except EngineError as exc:
        raise EngineError(f"pipeline '{pipeline}': {exc}", exc.gem_id) from None
