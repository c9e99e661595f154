"""Pipeline → one SQL statement per gem: a chain of CTEs named after the gems.

The compiler checks the graph (ids, kinds, connections, ports, cycles), validates each gem's
properties against its kind, then builds every gem in dependency order through
`GemKind.build`. A gem whose inputs failed is not built, so one mistake yields one issue, not
a cascade. The result answers every question the front doors ask: issues, output columns
and lineage per gem, and the SQL of any gem in any sqlglot dialect.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as PydanticValidationError
from sqlglot import exp

from prophecy_jupyter.compiler.columns import UNKNOWN, Column
from prophecy_jupyter.compiler.dialects import (
    dialect_issues,
    family_of,
    mark_statement,
    pipeline_relations,
    render,
)
from prophecy_jupyter.compiler.expressions import (
    ParameterError,
    coerce_parameter,
    parameter_literal,
)
from prophecy_jupyter.errors import Issue, NotFound, ProphecyError, ValidationError
from prophecy_jupyter.gems.base import Catalog, GemContext, GemKind, GemOutput, InputRelation
from prophecy_jupyter.gems.registry import gem_kinds
from prophecy_jupyter.gems.sources import reads_table, writes_table
from prophecy_jupyter.model.pipeline import (
    Gem,
    Parameter,
    Pipeline,
    issues_from_pydantic,
    pointer,
)

if TYPE_CHECKING:
    from prophecy_jupyter.connections import ConnectionResolver
    from prophecy_jupyter.engines.base import TableDocs


@dataclass
class CompiledGem:
    gem: Gem
    index: int
    kind: GemKind | None
    props: Any = None
    inputs: list[str] = field(default_factory=list)
    output: GemOutput | None = None


@dataclass
class CompiledPipeline:
    """The outcome of compiling: per-gem outputs plus every issue found."""

    pipeline: Pipeline
    gems: dict[str, CompiledGem]
    order: list[str]
    issues: list[Issue]
    dialect: str = "duckdb"
    catalog: Catalog | None = None
    connections: ConnectionResolver | None = None
    """The project's connections, for the gems that write through one when the run comes."""
    _typed: dict[str, list[Column]] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)

    def raise_for_issues(self) -> None:
        errors = [i for i in self.issues if i.severity == "error"]
        if errors:
            raise ValidationError(errors)

    def _built(self, gem_id: str) -> CompiledGem:
        if gem_id not in self.gems:
            raise NotFound(f"pipeline '{self.pipeline.name}' has no gem '{gem_id}'")
        compiled = self.gems[gem_id]
        if compiled.output is None:
            related = [i for i in self.issues if i.gem_id in {gem_id, *self.ancestors(gem_id)}]
            raise ValidationError(
                related or [Issue("not_compiled", "gem could not be compiled", gem_id=gem_id)]
            )
        return compiled

    def columns(self, gem_id: str) -> list[Column]:
        """Output columns of ``gem_id``, typed as the engine will type them.

        While building, gems type computed columns with sqlglot's annotator, which only
        approximates an engine's rules (DuckDB sums integers into HUGEINT, widens decimals,
        types ``1.5`` as DECIMAL(2,1)) and spells types its own way. So the engine is asked, once
        per gem and only when a front door wants the schema (compiling stays fast): it binds
        the gem's statement over empty, typed stand-ins for its inputs, which reads no data.
        Where it cannot (no catalog, an input of unknown type, an unbindable statement) the
        annotator's types stand.
        """
        self._built(gem_id)
        for current in [*self.ancestors(gem_id), gem_id]:
            if current not in self._typed:
                self._typed[current] = self._bound_columns(current)
        return self._typed[gem_id]

    def _bound_columns(self, gem_id: str) -> list[Column]:
        compiled = self.gems[gem_id]
        assert compiled.output is not None
        inferred = compiled.output.columns
        if self.catalog is None or not compiled.inputs:
            return inferred  # Sources are typed by the engine as they are built
        stand_ins = []
        for upstream in compiled.inputs:
            relation = _stand_in(self._typed[upstream], self.dialect)
            if relation is None:
                return inferred
            stand_ins.append((upstream, relation))
        try:
            described = self.catalog.describe(with_inputs(compiled.output.query, stand_ins, gem_id))
        except ProphecyError:
            return inferred
        if [n.lower() for n, _ in described] != [c.name.lower() for c in inferred]:
            return inferred
        return [
            Column(c.name, dtype, c.lineage)
            for c, (_, dtype) in zip(inferred, described, strict=True)
        ]

    def ancestors(self, gem_id: str) -> list[str]:
        """Upstream gems of ``gem_id`` in dependency order."""
        seen: set[str] = set()
        stack = list(self.gems[gem_id].inputs) if gem_id in self.gems else []
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.gems[current].inputs)
        return [g for g in self.order if g in seen]

    def query(self, gem_id: str) -> exp.Query:
        """One statement computing the output of ``gem_id``: its ancestors as CTEs."""
        own = self._built(gem_id).output
        assert own is not None
        upstream = []
        for ancestor in self.ancestors(gem_id):
            output = self.gems[ancestor].output
            assert output is not None
            upstream.append((ancestor, output.query))
        return self._statement(with_inputs(own.query, upstream, gem_id), gem_id)

    def _statement(self, query: exp.Query, gem_id: str) -> exp.Query:
        """``query`` carrying what rendering it in another dialect needs to know (see
        `mark_statement`), whoever renders it."""
        return mark_statement(query, gem_id, pipeline_relations(self))

    def sampled_query(self, gem_id: str, rows: int) -> exp.Query | None:
        """`query` with each Source that may be sampled read only up to ``rows`` rows, or
        ``None`` when no Source may be.

        A Source may be sampled when every path from it to ``gem_id`` runs through inputs on
        which the gems are monotone (`GemKind.subset_inputs`): the result is then a subset of
        the gem's true output, which is all a preview needs, at a fraction of the cost of
        joining whole tables.
        """
        own = self._built(gem_id).output
        assert own is not None
        ancestors = self.ancestors(gem_id)
        # Walk from the gem upstream: a gem is clean when each of its consumers is clean and
        # monotone on the port it feeds.
        clean: dict[str, bool] = {gem_id: True}
        for current in [gem_id, *reversed(ancestors)]:
            compiled = self.gems[current]
            assert compiled.kind is not None
            monotone = compiled.kind.subset_inputs(compiled.props, len(compiled.inputs))
            for port, upstream in enumerate(compiled.inputs):
                ok = clean.get(current, False) and port in monotone
                clean[upstream] = clean.get(upstream, True) and ok
        sampled = {g for g in ancestors if clean.get(g) and not self.gems[g].inputs}
        # Without a join, the engine streams the first rows straight from the sources.
        joins = any(len(self.gems[g].inputs) > 1 for g in [*ancestors, gem_id] if clean.get(g))
        if not sampled or not joins:
            return None
        upstream_queries: list[tuple[str, exp.Query]] = []
        for ancestor in ancestors:
            output = self.gems[ancestor].output
            assert output is not None
            query = output.query.limit(rows) if ancestor in sampled else output.query
            upstream_queries.append((ancestor, query))
        return self._statement(with_inputs(own.query, upstream_queries, gem_id), gem_id)

    def reading(self, gem_id: str, relations: Mapping[str, exp.Table]) -> exp.Query:
        """The statement of ``gem_id`` alone, each input read from the given relation (where a
        staged run stored it) instead of being recomputed from its ancestors."""
        own = self._built(gem_id).output
        assert own is not None
        upstream: list[tuple[str, exp.Query]] = [
            (u, exp.select(exp.Star()).from_(relations[u].copy())) for u in self.gems[gem_id].inputs
        ]
        return self._statement(with_inputs(own.query, upstream, gem_id), gem_id)

    def sql(self, gem_id: str, dialect: str | None = None, pretty: bool = True) -> str:
        """The statement of a gem (its ancestors as CTEs) as SQL text in ``dialect``."""
        return render(self.query(gem_id), dialect or self.dialect, pretty=pretty)

    def targets(self) -> list[str]:
        """Target gems in dependency order."""
        return [g for g in self.order if self._is_target(g)]

    def _is_target(self, gem_id: str) -> bool:
        kind = self.gems[gem_id].kind
        return kind is not None and not kind.has_output

    def target_properties(self, gem_id: str) -> Any:
        return self.gems[gem_id].props

    def target_docs(self, gem_id: str) -> TableDocs:
        """The documentation the table a Target writes gets in the warehouse: the Target's
        own description, else its input's; for each written column, the Target's own
        description of it, else its input's (a Target writes its input unchanged), matched
        ignoring case and keyed as the column is written. Nothing further upstream."""
        from prophecy_jupyter.engines.base import TableDocs

        built = self.gems[gem_id]
        documented = [built.gem] + [self.gems[i].gem for i in built.inputs[:1]]
        comment = next((g.description for g in documented if g.description), None)
        columns: dict[str, str] = {}
        if built.output is not None:
            for column in built.output.columns:
                for gem in documented:
                    doc = next(
                        (d for n, d in gem.columns.items() if n.lower() == column.name.lower()),
                        None,
                    )
                    if doc is not None and doc.description:
                        columns[column.name] = doc.description
                        break
        return TableDocs(comment, columns)

    def lineage(self, gem_id: str) -> dict[str, list[list[str]]]:
        output = self._built(gem_id).output
        assert output is not None
        return {c.name: [list(ref) for ref in sorted(c.lineage)] for c in output.columns}


def _stand_in(columns: Sequence[Column], dialect: str) -> exp.Query | None:
    """An empty relation with exactly these column names and types, or ``None`` if a type is
    unknown."""
    if not columns or any(c.type == UNKNOWN for c in columns):
        return None
    projections = [
        exp.alias_(
            exp.cast(exp.null(), exp.DataType.build(c.type, dialect=dialect, udt=True)),
            exp.to_identifier(c.name, quoted=True),
        )
        for c in columns
    ]
    return exp.select(*projections).where(exp.false())


def with_inputs(
    query: exp.Query, upstream: Sequence[tuple[str, exp.Query]], gem_id: str
) -> exp.Query:
    """``query`` (a gem's own statement) with ``upstream`` bound as CTEs named by gem id.

    Only the top of the result is new: the CTE bodies are the gems' own trees, shared rather
    than copied (copying them for every statement is most of a large pipeline's compile
    time). Callers must not change the result in place; rendering it (``.sql()``) and the
    engine's builders copy before they transform.
    """
    main = query.copy()
    ctes = [
        exp.CTE(this=q, alias=exp.TableAlias(this=exp.to_identifier(name, quoted=True)))
        for name, q in upstream
    ]
    if main.args.get("with_") is not None:
        ctes.append(
            exp.CTE(this=main, alias=exp.TableAlias(this=exp.to_identifier(gem_id, quoted=True)))
        )
        main = exp.select(exp.Star()).from_(exp.to_identifier(gem_id, quoted=True))
    if ctes:
        main.set("with_", exp.With(expressions=ctes))
    return main


def compile_pipeline(
    pipeline: Pipeline,
    catalog: Catalog,
    parameters: Mapping[str, Any] | None = None,
    dialect: str = "duckdb",
    connections: ConnectionResolver | None = None,
    fetch_limit: int | None = None,
) -> CompiledPipeline:
    """Check and build every gem. Never raises for a bad pipeline: read ``.issues``.

    ``connections`` looks up the project's connections for gems that read or write through
    one; without it such gems report that they need a project. ``fetch_limit`` bounds the
    rows such gems fetch while they build (see `GemContext.fetch_limit`)."""
    issues: list[Issue] = []
    kinds = gem_kinds()
    gems: dict[str, CompiledGem] = {}
    first_spelling: dict[str, str] = {}
    duplicates: set[str] = set()

    for index, gem in enumerate(pipeline.gems):
        # Engines resolve names ignoring case, so ids that differ only in case are one CTE.
        taken = first_spelling.setdefault(gem.id.lower(), gem.id)
        if gem.id in gems or taken != gem.id:
            spelled = "" if taken == gem.id else f" (as '{taken}'; ids ignore case)"
            issues.append(
                Issue(
                    "duplicate_id",
                    f"gem id '{gem.id}' is used more than once{spelled}",
                    gem.id,
                    pointer("gems", index, "id"),
                )
            )
            duplicates.add(gem.id)
            continue
        kind = kinds.get(gem.kind)
        compiled = CompiledGem(gem, index, kind)
        gems[gem.id] = compiled
        if kind is None:
            issues.append(
                Issue(
                    "unknown_kind",
                    f"unknown gem kind '{gem.kind}'",
                    gem.id,
                    pointer("gems", index, "kind"),
                )
            )
            continue
        try:
            compiled.props = kind.Props.model_validate(gem.properties)
        except PydanticValidationError as exc:
            issues.extend(
                issues_from_pydantic(exc, gem.properties, ("gems", index, "properties"), gem.id)
            )

    ports, cut_off = _connect(pipeline, gems, duplicates, issues)
    order = _topological_order(gems, ports, issues, _table_edges(gems, ports))
    literals = _parameter_literals(pipeline, parameters or {}, issues)
    gem_ids = frozenset(g.lower() for g in gems)
    planned: dict[tuple[str, str], list[Column]] = {}
    result = CompiledPipeline(pipeline, gems, order, issues, dialect, catalog, connections)

    for gem_id in order:
        compiled = gems[gem_id]
        if compiled.kind is None or compiled.props is None or gem_id in cut_off:
            continue
        if not _arity_ok(compiled, ports[gem_id], issues):
            continue
        upstream = [ports[gem_id][i] for i in sorted(ports[gem_id])]
        compiled.inputs = upstream
        if any(gems[u].output is None for u in upstream):
            continue  # reported where it failed
        inputs = [InputRelation(u, gems[u].output.columns) for u in upstream]  # type: ignore[union-attr]
        ctx = GemContext(
            compiled.gem,
            compiled.index,
            inputs,
            literals,
            catalog,
            dialect,
            gem_ids=gem_ids,
            planned_tables=planned,
            connections=connections,
            upstream_query=result.query,
            fetch_limit=fetch_limit,
        )
        output = compiled.kind.build(compiled.props, ctx)
        issues.extend(ctx.issues)
        if output is not None and not ctx.issues:
            compiled.output = output
            issues.extend(_unknown_columns(compiled, output.columns))
            written = writes_table(compiled.props)
            if written is not None:
                planned[written] = output.columns
    # What would answer differently on the engine (the catalog) the pipeline compiles for.
    engine_dialect = getattr(catalog, "dialect", dialect)
    if isinstance(engine_dialect, str) and family_of(engine_dialect) is not None:
        result.issues.extend(dialect_issues(result, engine_dialect))
    return result


def _unknown_columns(compiled: CompiledGem, columns: Sequence[Column]) -> list[Issue]:
    """Warnings for column descriptions of a gem that name no column of its output (engines
    resolve names ignoring case, so neither does this)."""
    output = {c.name.lower() for c in columns}
    gem = compiled.gem
    return [
        Issue(
            "unknown_column",
            f"gem '{gem.id}' describes column '{name}', which it does not output",
            gem.id,
            pointer("gems", compiled.index, "columns", name),
            severity="warning",
        )
        for name in gem.columns
        if name.lower() not in output
    ]


def validate_pipeline(
    pipeline: Pipeline, catalog: Catalog, parameters: Mapping[str, Any] | None = None
) -> list[Issue]:
    """Every problem of a pipeline at once (an empty list means it is valid)."""
    return compile_pipeline(pipeline, catalog, parameters).issues


def _connect(
    pipeline: Pipeline, gems: dict[str, CompiledGem], duplicates: set[str], issues: list[Issue]
) -> tuple[dict[str, dict[int, str]], set[str]]:
    """Input ports of each gem (port index → upstream gem id), and the gems cut off from an
    input by a rejected connection: those are not built, as the connection is reported."""
    ports: dict[str, dict[int, str]] = {g: {} for g in gems}
    cut_off: set[str] = set()
    seen: set[tuple[str, str, str]] = set()
    for index, conn in enumerate(pipeline.connections):
        where = pointer("connections", index)
        ends = (("from", conn.source), ("to", conn.target))
        if any(gem_id not in gems for _, gem_id in ends):
            if conn.target in gems:
                cut_off.add(conn.target)
            # A duplicate gem's connections are covered by its duplicate_id issue.
            unknown = [(end, g) for end, g in ends if g not in gems and g not in duplicates]
            if unknown:
                end, gem_id = unknown[0]
                issues.append(
                    Issue(
                        "dangling_connection",
                        f"connection refers to unknown gem '{gem_id}'",
                        None,
                        pointer("connections", index, end),
                    )
                )
            continue
        key = (conn.source, conn.target, conn.port)
        if key in seen:
            issues.append(
                Issue(
                    "duplicate_connection",
                    f"connection {conn.source} → {conn.target}.{conn.port} is repeated",
                    conn.target,
                    where,
                )
            )
            continue
        seen.add(key)
        if conn.source == conn.target:
            cut_off.add(conn.target)
            issues.append(Issue("cycle", "a gem cannot feed itself", conn.target, where))
            continue
        source_kind = gems[conn.source].kind
        if source_kind is not None and not source_kind.has_output:
            cut_off.add(conn.target)
            issues.append(
                Issue(
                    "no_output_port",
                    f"gem '{conn.source}' ({source_kind.kind}) has no output",
                    conn.source,
                    where,
                )
            )
            continue
        taken = ports[conn.target].get(conn.port_index)
        if taken is not None:
            issues.append(
                Issue(
                    "port_taken",
                    f"port {conn.port} of '{conn.target}' is already fed by '{taken}'",
                    conn.target,
                    where,
                )
            )
            continue
        ports[conn.target][conn.port_index] = conn.source
    return ports, cut_off


def _arity_ok(compiled: CompiledGem, ports: dict[int, str], issues: list[Issue]) -> bool:
    kind = compiled.kind
    assert kind is not None
    where = pointer("gems", compiled.index)
    count = len(ports)
    gaps = [i for i in range(max(ports, default=-1) + 1) if i not in ports]
    if gaps:
        issues.append(
            Issue(
                "missing_port", f"input port in{gaps[0]} is not connected", compiled.gem.id, where
            )
        )
        return False
    if count < kind.min_inputs:
        need = "no inputs" if kind.min_inputs == 0 else f"at least {kind.min_inputs} input(s)"
        issues.append(
            Issue("arity", f"{kind.kind} needs {need}, has {count}", compiled.gem.id, where)
        )
        return False
    if kind.max_inputs is not None and count > kind.max_inputs:
        allowed = "no inputs" if kind.max_inputs == 0 else f"at most {kind.max_inputs} input(s)"
        issues.append(
            Issue("arity", f"{kind.kind} takes {allowed}, has {count}", compiled.gem.id, where)
        )
        return False
    return True


def _table_edges(
    gems: dict[str, CompiledGem], ports: dict[str, dict[int, str]]
) -> dict[str, set[str]]:
    """Writer Target → Sources reading the table it writes, where that makes no cycle.

    Such a Source is built after its writer, so on a fresh database (the table not there yet)
    it takes the columns the Target will write. A Source upstream of its own writer reads the
    table as it was before the run and gets no edge.
    """
    downstream: dict[str, set[str]] = defaultdict(set)
    for target, inputs in ports.items():
        for source in inputs.values():
            downstream[source].add(target)

    def reaches(start: str, goal: str) -> bool:
        seen, stack = {start}, [start]
        while stack:
            current = stack.pop()
            if current == goal:
                return True
            fresh = downstream[current] - seen
            seen |= fresh
            stack.extend(fresh)
        return False

    writers: dict[tuple[str, str], list[str]] = defaultdict(list)
    for gem_id, compiled in gems.items():
        written = writes_table(compiled.props)
        if written is not None:
            writers[written].append(gem_id)
    edges: dict[str, set[str]] = defaultdict(set)
    for gem_id, compiled in gems.items():
        read = reads_table(compiled.props)
        for writer in writers.get(read, []) if read is not None else []:
            if not reaches(gem_id, writer):
                downstream[writer].add(gem_id)
                edges[writer].add(gem_id)
    return edges


def _topological_order(
    gems: dict[str, CompiledGem],
    ports: dict[str, dict[int, str]],
    issues: list[Issue],
    table_edges: Mapping[str, set[str]],
) -> list[str]:
    downstream: dict[str, list[str]] = defaultdict(list)
    pending = {g: len(ports[g]) for g in gems}
    for target, inputs in ports.items():
        for source in inputs.values():
            downstream[source].append(target)
    for writer, readers in table_edges.items():
        for reader in readers:
            downstream[writer].append(reader)
            pending[reader] += 1
    ready = deque(g for g in gems if pending[g] == 0)
    order: list[str] = []
    while ready:
        current = ready.popleft()
        order.append(current)
        for nxt in downstream[current]:
            pending[nxt] -= 1
            if pending[nxt] == 0:
                ready.append(nxt)
    for gem_id, compiled in gems.items():
        if pending[gem_id] > 0:
            issues.append(
                Issue(
                    "cycle",
                    "gem is in a cycle or fed by one",
                    gem_id,
                    pointer("gems", compiled.index),
                )
            )
    return order


def _parameter_literals(
    pipeline: Pipeline, overrides: Mapping[str, Any], issues: list[Issue]
) -> dict[str, exp.Expr]:
    """The typed literal of each parameter, keyed by its lower-case name (as ``$name`` binds)."""
    literals: dict[str, exp.Expr] = {}
    declared: dict[str, tuple[int, Parameter]] = {}
    for index, param in enumerate(pipeline.parameters):
        if param.name.lower() in declared:
            issues.append(
                Issue(
                    "duplicate_parameter",
                    f"parameter '{param.name}' is declared more than once (names ignore case)",
                    field=pointer("parameters", index, "name"),
                )
            )
            continue
        declared[param.name.lower()] = (index, param)
    for name in overrides:
        if name.lower() not in declared:
            issues.append(
                Issue(
                    "unknown_parameter",
                    f"pipeline has no parameter '{name}'",
                    field=pointer("parameters"),
                )
            )
    lowered = {k.lower(): v for k, v in overrides.items()}
    for key, (index, param) in declared.items():
        overridden = key in lowered
        raw = lowered[key] if overridden else param.default
        try:
            literals[key] = parameter_literal(param, coerce_parameter(param, raw))
        except ParameterError as exc:
            where = ("parameters", index) if overridden else ("parameters", index, "default")
            issues.append(Issue("parameter", str(exc), field=pointer(*where)))
            # Expressions still check against a typed NULL, so the one mistake is one issue;
            # the issue itself keeps the pipeline from running.
            literals[key] = parameter_literal(param, None)
    return literals
