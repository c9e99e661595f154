"""The pipeline document: typed model, loading from any bytes, deterministic serialisation.

A pipeline file is the single source of truth that the canvas, the magics, the CLI and the
scheduler all read and write. Loading is total: whatever bytes arrive, the result is either a
`Pipeline` or a `ValidationError` listing what is wrong, never another exception.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from prophecy_jupyter.errors import Issue, NotFound, ValidationError
from prophecy_jupyter.model.migrations import CURRENT_VERSION, migrate

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"

ParameterType = Literal["string", "integer", "double", "boolean", "date", "timestamp"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Position(_Strict):
    """Where the canvas draws a gem; kept so that layouts survive a round trip."""

    x: float
    y: float


class Parameter(_Strict):
    """A pipeline parameter, referenced as ``$name`` in expressions and bound as a typed literal."""

    name: str = Field(pattern=IDENTIFIER, max_length=128)
    type: ParameterType = "string"
    default: str | int | float | bool | None = None
    description: str | None = None


class Gem(_Strict):
    """One node of the graph. ``properties`` are checked later against the gem kind's schema."""

    id: str = Field(pattern=IDENTIFIER, max_length=128)
    kind: str = Field(min_length=1, max_length=128)
    label: str | None = None
    description: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    position: Position | None = None


class Connection(_Strict):
    """An edge from one gem's output to a named input port (``in0``, ``in1``, …) of another."""

    source: str = Field(alias="from", max_length=128)
    target: str = Field(alias="to", max_length=128)
    port: str = Field(default="in0", pattern=r"^in[0-9]+$")

    @property
    def port_index(self) -> int:
        return int(self.port[2:])


class Pipeline(_Strict):
    """A whole pipeline document."""

    version: int = CURRENT_VERSION
    name: str = Field(min_length=1, max_length=256)
    description: str | None = None
    parameters: list[Parameter] = Field(default_factory=list)
    gems: list[Gem] = Field(default_factory=list)
    connections: list[Connection] = Field(default_factory=list)

    def gem(self, gem_id: str) -> Gem:
        for gem in self.gems:
            if gem.id == gem_id:
                return gem
        raise NotFound(f"pipeline '{self.name}' has no gem '{gem_id}'")

    def gem_index(self, gem_id: str) -> int:
        return next(i for i, gem in enumerate(self.gems) if gem.id == gem_id)


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def issues_from_pydantic(
    error: PydanticValidationError, prefix: tuple[str | int, ...] = (), gem_id: str | None = None
) -> list[Issue]:
    """Turn pydantic's errors into issues whose ``field`` points into the document."""
    issues = []
    for err in error.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        issues.append(
            Issue(
                code="schema",
                message=err["msg"],
                gem_id=gem_id,
                field=pointer(*prefix, *loc),
            )
        )
    return issues


def _gem_id_at(data: Any, loc: tuple[Any, ...]) -> str | None:
    if len(loc) >= 2 and loc[0] == "gems" and isinstance(loc[1], int):
        try:
            gem_id = data["gems"][loc[1]]["id"]
        except (KeyError, IndexError, TypeError):
            return None
        return gem_id if isinstance(gem_id, str) else None
    return None


def load_pipeline(source: bytes | str | dict[str, Any]) -> Pipeline:
    """Parse and type-check a pipeline document, migrating older versions.

    Only the document's shape is checked here; gem properties, the graph and expressions are
    checked by `prophecy_jupyter.compiler.validate_pipeline`.
    """
    data: Any
    if isinstance(source, dict):
        data = source
    else:
        try:
            text = source.decode("utf-8") if isinstance(source, bytes) else source
            data = json.loads(text)
        except UnicodeDecodeError as exc:
            raise ValidationError([Issue("encoding", f"not UTF-8 text: {exc.reason}")]) from None
        except json.JSONDecodeError as exc:
            raise ValidationError(
                [Issue("json", f"not valid JSON: {exc.msg}", line=exc.lineno, column=exc.colno)]
            ) from None
        except RecursionError:
            raise ValidationError([Issue("json", "not valid JSON: nested too deeply")]) from None
    if not isinstance(data, dict):
        raise ValidationError([Issue("schema", "a pipeline must be a JSON object", field="")])
    data = migrate(data)
    try:
        return Pipeline.model_validate(data)
    except PydanticValidationError as exc:
        issues = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            issues.append(
                Issue(
                    code="schema",
                    message=err["msg"],
                    gem_id=_gem_id_at(data, loc),
                    field=pointer(*loc),
                )
            )
        raise ValidationError(issues) from None
    except RecursionError:
        raise ValidationError([Issue("schema", "document nested too deeply")]) from None


def dump_pipeline(pipeline: Pipeline) -> str:
    """Serialise deterministically (sorted keys, 2-space indent, final newline) for clean diffs."""
    data = pipeline.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def pipeline_json_schema() -> dict[str, Any]:
    """The JSON Schema of the document shape, shipped as ``pipeline.schema.json``."""
    schema = Pipeline.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Prophecy-Jupyter pipeline"
    return schema
