"""What the model is told about a pipeline, and what it is never told.

By default the context is schema-only: the pipeline graph (gems, kinds, properties,
connections), each gem's output columns (name and type, from compiling on DuckDB), the gem
catalog (kinds with their properties' JSON Schemas, titles trimmed) and the validation
issues. Sample rows of gems go in only when the caller opts in for that request.

All of it is untrusted content: it is sent in the user turn inside ``<data name="…">``
blocks, which the system prompt declares to be data and never instructions. A block's text
cannot close its block early (``</data`` inside it is escaped).

Secrets never enter a request: every value of the project's fabric and connection secrets
(and the API key) is replaced by ``********`` wherever it appears, and so is any property
whose name looks like a secret (``password``, ``token``, ``Authorization``…).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prophecy_jupyter.compiler import CompiledPipeline, compile_pipeline
from prophecy_jupyter.compiler.preview import preview_gem
from prophecy_jupyter.connections import ConnectionStore, project_connections
from prophecy_jupyter.engines.base import Engine
from prophecy_jupyter.errors import Issue, ProphecyError
from prophecy_jupyter.fabrics import MASK, FabricStore, SecretStore
from prophecy_jupyter.gems.registry import catalog
from prophecy_jupyter.model.pipeline import Pipeline, pipeline_document
from prophecy_jupyter.model.project import Project
from prophecy_jupyter.workspace import STUDIO_FETCH_LIMIT

SAMPLE_ROW_LIMIT = 5
"""Rows of each gem sent when sample rows are asked for."""
MAX_SAMPLED_GEMS = 10

SECRET_NAME = re.compile(
    r"(?<![a-z])(password|passwd|passphrase|pwd|secret|secrets|token|tokens|api_?key|apikey"
    r"|private_?key|credential|credentials|authorization|bearer|cookie|access_?key"
    r"|secret_?key|client_?secret|session_?key)(?![a-z])"
)
"""Property names whose values are never sent, whatever they hold, matched as whole words
of the name (``db_password``, ``accessToken``, ``Authorization``; not ``passenger``)."""


def looks_secret(name: str) -> bool:
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower().replace("-", "_")
    return SECRET_NAME.search(words) is not None


def scrub_named(value: Any) -> Any:
    """``value`` with every entry whose key looks like a secret masked, at any depth."""
    if isinstance(value, dict):
        return {
            k: (
                MASK
                if isinstance(k, str) and looks_secret(k) and v not in (None, "")
                else scrub_named(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub_named(item) for item in value]
    return value


class Scrubber:
    """Replaces known secret values in any text or JSON-like value."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        # Longest first, so that a secret containing another is masked whole.
        self.values = sorted({v for v in values if v and len(v) >= 3}, key=len, reverse=True)

    def add(self, value: str | None) -> None:
        if value and len(value) >= 3 and value not in self.values:
            self.values = sorted([*self.values, value], key=len, reverse=True)

    def text(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.deep(k): self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(item) for item in value]
        return value


def project_secret_values(project: Project, secrets: SecretStore) -> list[str]:
    """Every secret value of the project's fabrics and connections (store or environment)."""
    values: list[str] = []
    for store in (FabricStore(project, secrets), ConnectionStore(project, secrets)):
        try:
            names = [item.name for item in store.list()]
        except ProphecyError:
            names = []
        for name in names:
            try:
                values.extend(store.resolve_secrets(name).values())
            except ProphecyError:
                continue
    return values


def data_block(name: str, payload: Any) -> str:
    """A delimited block of untrusted content (JSON unless ``payload`` is text)."""
    text = payload if isinstance(payload, str) else json.dumps(payload, indent=1, default=str)
    text = re.sub(r"</(data)", r"<\\/\1", text, flags=re.IGNORECASE)
    return f'<data name="{name}">\n{text}\n</data>'


def _trim_schema(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _trim_schema(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_trim_schema(item) for item in schema]
    return schema


def trimmed_catalog() -> list[dict[str, Any]]:
    """The gem catalog for the model: kinds, ports and properties' schemas, without titles."""
    return [
        {
            "kind": entry["kind"],
            "category": entry["category"],
            "summary": entry["summary"],
            "inputs": entry["inputs"],
            "has_output": entry["has_output"],
            "properties_schema": _trim_schema(entry["properties_schema"]),
        }
        for entry in catalog()
    ]


def model_document(pipeline: Pipeline) -> dict[str, Any]:
    """The document as the model sees it: no positions, secret-looking properties masked."""
    data = pipeline_document(pipeline)
    for gem in data.get("gems", []):
        gem.pop("position", None)
        gem["properties"] = scrub_named(gem.get("properties", {}))
    return data


def compile_for(
    project: Project | None,
    pipeline: Pipeline,
    engine: Engine,
    secrets: SecretStore | None = None,
) -> CompiledPipeline:
    """Compile as the Studio validates: the project's dialect and connections."""
    if project is None:
        return compile_pipeline(pipeline, engine)
    return compile_pipeline(
        pipeline,
        engine,
        dialect=project.config.dialect,
        connections=project_connections(project, secrets),
        fetch_limit=STUDIO_FETCH_LIMIT,
    )


def gem_columns(compiled: CompiledPipeline) -> dict[str, list[dict[str, str]]]:
    """Output columns (name, type) of every gem that could be built."""
    columns: dict[str, list[dict[str, str]]] = {}
    for gem_id in compiled.order:
        output = compiled.gems[gem_id].output
        if output is not None:
            columns[gem_id] = [{"name": c.name, "type": c.type} for c in output.columns]
    return columns


def input_columns(compiled: CompiledPipeline, gem_id: str) -> dict[str, list[dict[str, str]]]:
    """The columns of each input of ``gem_id``, by the input's alias (its upstream gem)."""
    all_columns = gem_columns(compiled)
    compiled_gem = compiled.gems.get(gem_id)
    upstream = compiled_gem.inputs if compiled_gem is not None else []
    if not upstream:  # the gem did not build: find its inputs from the connections
        upstream = [c.source for c in compiled.pipeline.connections if c.target == gem_id]
    return {u: all_columns.get(u, []) for u in upstream}


def error_issues(issues: Iterable[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity == "error"]


@dataclass
class PipelineContext:
    """The context of one request, as data blocks, and what it was built from."""

    compiled: CompiledPipeline
    blocks: list[str] = field(default_factory=list)
    sampled: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n\n".join(self.blocks)


def build_context(
    project: Project | None,
    pipeline: Pipeline,
    engine: Engine,
    *,
    sample_rows: bool | Sequence[str] = False,
    catalog_kinds: set[str] | None = None,
    focus: str | None = None,
    secrets: SecretStore | None = None,
) -> PipelineContext:
    """The data blocks describing ``pipeline``; sample rows only when asked for (``True``:
    every gem that builds, up to `MAX_SAMPLED_GEMS`; a list: those gems). The catalog is
    that of every kind, or of ``catalog_kinds``."""
    compiled = compile_for(project, pipeline, engine, secrets)
    context = PipelineContext(compiled)
    context.blocks.append(data_block("pipeline", model_document(pipeline)))
    context.blocks.append(data_block("columns", gem_columns(compiled)))
    context.blocks.append(
        data_block("issues", [i.to_dict() for i in compiled.issues] or "no issues")
    )
    if focus is not None:
        context.blocks.append(data_block("input_columns", input_columns(compiled, focus)))
    entries = trimmed_catalog()
    if catalog_kinds is not None:
        entries = [e for e in entries if e["kind"] in catalog_kinds]
    context.blocks.append(data_block("gem_catalog", entries))
    if sample_rows:
        wanted = (
            [g for g in compiled.order if compiled.gems[g].output is not None]
            if sample_rows is True
            else list(sample_rows)
        )[:MAX_SAMPLED_GEMS]
        samples: dict[str, Any] = {}
        for gem_id in wanted:
            try:
                result = preview_gem(compiled, engine, gem_id, SAMPLE_ROW_LIMIT)
            except ProphecyError as exc:
                samples[gem_id] = {"error": str(exc)}
                continue
            names = [name for name, _ in result.columns]
            samples[gem_id] = [
                scrub_named(dict(zip(names, row, strict=False))) for row in result.rows
            ]
            context.sampled.append(gem_id)
        context.blocks.append(data_block("sample_rows", samples))
    return context
