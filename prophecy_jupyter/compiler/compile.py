"""Pipeline → one SQL statement per gem: a chain of CTEs named after the gems.

The compiler checks the graph (ids, kinds, connections, ports, cycles), validates each gem's
properties against its kind, then builds every gem in dependency order through
`GemKind.build`. A gem whose inputs failed is not built, so one mistake yields one issue, not
a cascade. The result answers every question the front doors ask: issues, output columns
and lineage per gem, and the SQL of any gem in any sqlglot dialect.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlglot import exp

from prophecy_jupyter.compiler.columns import Column
from prophecy_jupyter.compiler.expressions import (
    ParameterError,
    coerce_parameter,
    parameter_literal,
)
from prophecy_jupyter.errors import Issue, NotFound, ValidationError
from prophecy_jupyter.gems.base import Catalog, GemContext, GemKind, GemOutput, InputRelation
from prophecy_jupyter.gems.registry import gem_kinds
from prophecy_jupyter.model.pipeline import Gem, Pipeline, issues_from_pydantic, pointer


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
        output = self._built(gem_id).output
        assert output is not None
        return output.columns

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
        ctes = []
        for upstream in self.ancestors(gem_id):
            output = self.gems[upstream].output
            assert output is not None
            ctes.append(
                exp.CTE(
                    this=output.query.copy(),
                    alias=exp.TableAlias(this=exp.to_identifier(upstream, quoted=True)),
                )
            )
        main = own.query.copy()
        if main.args.get("with_") is not None:
            ctes.append(
                exp.CTE(
                    this=main, alias=exp.TableAlias(this=exp.to_identifier(gem_id, quoted=True))
                )
            )
            main = exp.select(exp.Star()).from_(exp.to_identifier(gem_id, quoted=True))
        if ctes:
            main.set("with_", exp.With(expressions=ctes))
        return main

    def sql(self, gem_id: str, dialect: str | None = None, pretty: bool = True) -> str:
        return self.query(gem_id).sql(dialect=dialect or self.dialect, pretty=pretty)

    def targets(self) -> list[str]:
        """Target gems in dependency order."""
        return [g for g in self.order if self._is_target(g)]

    def _is_target(self, gem_id: str) -> bool:
        kind = self.gems[gem_id].kind
        return kind is not None and not kind.has_output

    def target_properties(self, gem_id: str) -> Any:
        return self.gems[gem_id].props

    def lineage(self, gem_id: str) -> dict[str, list[list[str]]]:
        return {c.name: [list(ref) for ref in sorted(c.lineage)] for c in self.columns(gem_id)}


def compile_pipeline(
    pipeline: Pipeline,
    catalog: Catalog,
    parameters: Mapping[str, Any] | None = None,
    dialect: str = "duckdb",
) -> CompiledPipeline:
    """Check and build every gem. Never raises for a bad pipeline: read ``.issues``."""
    issues: list[Issue] = []
    kinds = gem_kinds()
    gems: dict[str, CompiledGem] = {}

    for index, gem in enumerate(pipeline.gems):
        if gem.id in gems:
            issues.append(
                Issue(
                    "duplicate_id",
                    f"gem id '{gem.id}' is used more than once",
                    gem.id,
                    pointer("gems", index, "id"),
                )
            )
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
            issues.extend(issues_from_pydantic(exc, ("gems", index, "properties"), gem.id))

    ports = _connect(pipeline, gems, issues)
    order = _topological_order(gems, ports, issues)
    literals = _parameter_literals(pipeline, parameters or {}, issues)
    gem_ids = frozenset(g.lower() for g in gems)

    for gem_id in order:
        compiled = gems[gem_id]
        if compiled.kind is None or compiled.props is None:
            continue
        if not _arity_ok(compiled, ports[gem_id], issues):
            continue
        upstream = [ports[gem_id][i] for i in sorted(ports[gem_id])]
        compiled.inputs = upstream
        if any(gems[u].output is None for u in upstream):
            continue  # reported where it failed
        inputs = [InputRelation(u, gems[u].output.columns) for u in upstream]  # type: ignore[union-attr]
        ctx = GemContext(
            compiled.gem, compiled.index, inputs, literals, catalog, dialect, gem_ids=gem_ids
        )
        output = compiled.kind.build(compiled.props, ctx)
        issues.extend(ctx.issues)
        if output is not None and not ctx.issues:
            compiled.output = output
    return CompiledPipeline(pipeline, gems, order, issues, dialect)


def validate_pipeline(
    pipeline: Pipeline, catalog: Catalog, parameters: Mapping[str, Any] | None = None
) -> list[Issue]:
    """Every problem of a pipeline at once (an empty list means it is valid)."""
    return compile_pipeline(pipeline, catalog, parameters).issues


def _connect(
    pipeline: Pipeline, gems: dict[str, CompiledGem], issues: list[Issue]
) -> dict[str, dict[int, str]]:
    """Input ports of each gem: port index → upstream gem id."""
    ports: dict[str, dict[int, str]] = {g: {} for g in gems}
    seen: set[tuple[str, str, str]] = set()
    for index, conn in enumerate(pipeline.connections):
        where = pointer("connections", index)
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
        missing = [g for g in (conn.source, conn.target) if g not in gems]
        if missing:
            issues.append(
                Issue(
                    "dangling_connection",
                    f"connection refers to unknown gem '{missing[0]}'",
                    None,
                    where,
                )
            )
            continue
        if conn.source == conn.target:
            issues.append(Issue("cycle", "a gem cannot feed itself", conn.target, where))
            continue
        source_kind = gems[conn.source].kind
        if source_kind is not None and not source_kind.has_output:
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
    return ports


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


def _topological_order(
    gems: dict[str, CompiledGem], ports: dict[str, dict[int, str]], issues: list[Issue]
) -> list[str]:
    downstream: dict[str, list[str]] = defaultdict(list)
    pending = {g: len(ports[g]) for g in gems}
    for target, inputs in ports.items():
        for source in inputs.values():
            downstream[source].append(target)
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
    literals: dict[str, exp.Expr] = {}
    declared = {p.name.lower(): (i, p) for i, p in enumerate(pipeline.parameters)}
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
        raw = lowered.get(key, param.default)
        try:
            literals[key] = parameter_literal(param, coerce_parameter(param, raw))
        except ParameterError as exc:
            issues.append(Issue("parameter", str(exc), field=pointer("parameters", index)))
    return literals
