"""The pipeline document: typed model, loading from any bytes, deterministic serialisation.

A pipeline file is the single source of truth that the canvas, the magics, the CLI and the
scheduler all read and write. Loading is total: whatever bytes arrive, the result is either a
`Pipeline` or a `ValidationError` listing what is wrong, never another exception.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from json.encoder import encode_basestring
from typing import Annotated, Any, Literal, NoReturn

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
)
from pydantic import ValidationError as PydanticValidationError

from prophecy_jupyter.errors import Issue, NotFound, ValidationError
from prophecy_jupyter.model.migrations import CURRENT_VERSION, migrate

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"

ParameterType = Literal["string", "integer", "double", "boolean", "date", "timestamp"]


class _Strict(BaseModel):
    # NaN and Infinity have no JSON spelling: a pipeline holding one could not be saved.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


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


ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ColumnDoc(_Strict):
    """The documentation of one output column of a gem."""

    description: str = Field(max_length=4000)


class Gem(_Strict):
    """One node of the graph. ``properties`` are checked later against the gem kind's schema."""

    id: str = Field(pattern=IDENTIFIER, max_length=128)
    kind: str = Field(min_length=1, max_length=128)
    label: str | None = None
    description: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    columns: dict[ColumnName, ColumnDoc] = Field(default_factory=dict)
    """Documentation of the gem's output columns, keyed by column name. It is kept in the
    pipeline file so that it travels with the pipeline (review, release, another machine),
    and keyed rather than listed so that two branches describing different columns merge key
    by key. A gem without any writes no ``columns`` key: older files read and write back
    byte for byte."""
    position: Position | None = None

    @model_serializer(mode="wrap")
    def _omit_empty_columns(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.columns:
            data.pop("columns", None)
        return data


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
    error: PydanticValidationError,
    data: Any,
    prefix: tuple[str | int, ...] = (),
    gem_id: str | None = None,
) -> list[Issue]:
    """Turn pydantic's errors about ``data`` into issues whose ``field`` points into it.

    Inside a union pydantic reports each member it tried (``default/str``, ``default/int``…);
    those names are not in the document, so they are dropped and the errors of one place
    become one issue.
    """
    found: dict[str, tuple[str | None, list[str]]] = {}
    for err in error.errors(include_url=False):
        path = _document_path(data, tuple(err["loc"]))
        owner = gem_id if gem_id is not None else _gem_id_at(data, path)
        _, messages = found.setdefault(pointer(*prefix, *path), (owner, []))
        if err["msg"] not in messages:
            messages.append(err["msg"])
    return [
        Issue(code="schema", message="; ".join(messages), gem_id=owner, field=field)
        for field, (owner, messages) in found.items()
    ]


def _document_path(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """The parts of a pydantic ``loc`` that are in ``data``, plus a missing field at its end."""
    path: list[str | int] = []
    node = data
    for position, part in enumerate(loc, start=1):
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if part == "[key]":
            continue  # pydantic's marker of a bad mapping key: the key itself is the place
        if present:
            node = node[part]
        elif not (position == len(loc) and isinstance(node, dict) and isinstance(part, str)):
            continue  # a union member's name
        path.append(part)
    return tuple(path)


def _gem_id_at(data: Any, loc: tuple[Any, ...]) -> str | None:
    if len(loc) >= 2 and loc[0] == "gems" and isinstance(loc[1], int):
        try:
            gem_id = data["gems"][loc[1]]["id"]
        except (KeyError, IndexError, TypeError):
            return None
        return gem_id if isinstance(gem_id, str) else None
    return None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _unpaired_surrogates(value: Any, *path: str | int) -> Iterator[tuple[str | int, ...]]:
    """Paths of keys and strings holding a lone ``\\udXXX`` escape, which UTF-8 cannot encode."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unpaired_surrogates(key, *path, key)
            yield from _unpaired_surrogates(item, *path, key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unpaired_surrogates(item, *path, index)


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
            data = json.loads(text, parse_constant=_reject_constant)
        except UnicodeDecodeError as exc:
            raise ValidationError([Issue("encoding", f"not UTF-8 text: {exc.reason}")]) from None
        except json.JSONDecodeError as exc:
            raise ValidationError(
                [Issue("json", f"not valid JSON: {exc.msg}", line=exc.lineno, column=exc.colno)]
            ) from None
        except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
            raise ValidationError([Issue("json", f"not valid JSON: {exc}")]) from None
        except RecursionError:
            raise ValidationError([Issue("json", "not valid JSON: nested too deeply")]) from None
    if not isinstance(data, dict):
        raise ValidationError([Issue("schema", "a pipeline must be a JSON object", field="")])
    try:
        data = migrate(data)
        issues = [
            Issue(
                code="encoding",
                message="text holds an unpaired surrogate escape, which cannot be saved as UTF-8",
                gem_id=_gem_id_at(data, loc),
                field=pointer(*loc),
            )
            for loc in _unpaired_surrogates(data)
        ]
        try:
            pipeline = Pipeline.model_validate(data)
        except PydanticValidationError as exc:
            reported = {issue.field for issue in issues}
            issues.extend(i for i in issues_from_pydantic(exc, data) if i.field not in reported)
            raise ValidationError(issues) from None
    except RecursionError:
        raise ValidationError([Issue("schema", "document nested too deeply")]) from None
    if issues:
        raise ValidationError(issues)
    return pipeline


def pipeline_document(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline as its JSON document (a dict), as files hold it: aliases (``from``,
    ``to``), no empty optional fields."""
    data: dict[str, Any] = pipeline.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


def dump_pipeline(pipeline: Pipeline) -> str:
    """Serialise canonically (sorted keys, 2-space indent, final newline) for clean diffs.

    The text is `canonical_json`'s: byte for byte what JavaScript's ``JSON.stringify`` writes
    for the same document with its keys sorted, so a pipeline saved by the Studio's editor
    and one saved here are the same file.
    """
    return canonical_json(pipeline_document(pipeline)) + "\n"


def canonical_json(value: Any) -> str:
    """JSON text of ``value`` as ``JSON.stringify(value, null, 2)`` writes it once every
    object's keys are sorted:

    - numbers as JavaScript spells them: an integral number as an integer (``40``, not
      ``40.0``), others in the shortest form that reads back the same (`json_number`);
    - keys sorted as JavaScript sorts strings (by UTF-16 code unit), except that keys which
      are array indices (``"0"``, ``"17"``) come first in numeric order, as JavaScript objects
      keep them whatever the order they were added in;
    - text unescaped beyond what JSON requires (``"``, ``\\``, control characters);
    - two spaces of indent per level, ``": "`` after keys, ``[]`` and ``{}`` when empty.
    """
    out: list[str] = []
    _write_json(value, "", out)
    return "".join(out)


def _write_json(value: Any, indent: str, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(encode_basestring(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(json_number(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = indent + "  "
        separator = "{\n"
        for key in _key_order(value):
            out.append(separator + inner + encode_basestring(key) + ": ")
            _write_json(value[key], inner, out)
            separator = ",\n"
        out.append("\n" + indent + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        inner = indent + "  "
        separator = "[\n"
        for item in value:
            out.append(separator + inner)
            _write_json(item, inner, out)
            separator = ",\n"
        out.append("\n" + indent + "]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON")


_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]{0,9}")
_MAX_ARRAY_INDEX = 2**32 - 2


def _is_array_index(key: str) -> bool:
    return _ARRAY_INDEX.fullmatch(key) is not None and int(key) <= _MAX_ARRAY_INDEX


def _key_order(mapping: dict[str, Any]) -> list[str]:
    if not all(isinstance(key, str) for key in mapping):
        raise TypeError("JSON object keys must be strings")
    indices = sorted((k for k in mapping if _is_array_index(k)), key=int)
    names = sorted(
        (k for k in mapping if not _is_array_index(k)),
        key=lambda k: k.encode("utf-16-be", "surrogatepass"),
    )
    return indices + names


def json_number(value: float) -> str:
    """A finite float as JavaScript writes it (``Number.prototype.toString``): the shortest
    digits that read back as the same float (those of Python's ``repr``), as an integer when
    integral and below 10²¹ (``40``, ``1e+21``), in positional notation from 10⁻⁶ up
    (``0.00001``, not ``1e-05``), and with an unpadded exponent otherwise (``1e-7``)."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} has no JSON spelling")
    if value == 0:
        return "0"  # -0 included
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    point = int(exponent or "0") + len(whole) - (len(whole + fraction) - len(digits))
    trimmed = digits.rstrip("0")
    k, n = len(trimmed), point  # value = 0.<trimmed> x 10^n
    if k <= n <= 21:
        text = trimmed + "0" * (n - k)
    elif 0 < n <= 21:
        text = trimmed[:n] + "." + trimmed[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + trimmed
    else:
        power = f"e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
        text = trimmed[0] + ("." + trimmed[1:] if k > 1 else "") + power
    return sign + text


def pipeline_json_schema() -> dict[str, Any]:
    """The JSON Schema of the document shape, shipped as ``pipeline.schema.json``."""
    schema = Pipeline.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Prophecy-Jupyter pipeline"
    return schema
