"""A notebook run's parameters, typed as the notebook declares them.

A notebook declares its parameters in the cell tagged ``parameters``, as papermill reads it:
``count = 1``, ``ratio: float = 0.5``, ``label = "all"  # type: str``. Each value a run is
given (text from ``prophecy runs trigger -p``, JSON from the API, YAML from a schedule) is
converted to the type of that parameter: its annotation or type comment when it has one, else
the type of its default. ``int``, ``float``, ``bool`` and ``str`` are converted; any other
type (``None``, a list, an expression) takes the value as given. A value that does not
convert is a `ValidationError` naming the parameter, the value and the type, raised before
any kernel starts.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prophecy_jupyter.errors import Issue, ValidationError

TYPED = ("int", "float", "bool", "str")
BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
ARTICLES = {"int": "an int", "float": "a float", "bool": "a bool", "str": "a str"}


@dataclass(frozen=True)
class Declared:
    """A parameter of a notebook's ``parameters`` cell."""

    name: str
    type: str | None
    """``int``, ``float``, ``bool`` or ``str``; None when values are taken as given."""
    default: str
    """The default as written in the cell."""


def declared_parameters(path: Path) -> dict[str, Declared] | None:
    """The parameters a notebook declares, by name; None when it has no ``parameters`` cell.

    Read as `papermill.inspect_notebook` reads them (papermill's Python translator, which
    reports each one's annotation as ``inferred_type_name`` and its default as written), the
    cell being taken as Python as the run executes it: ``inspect_notebook`` itself refuses a
    notebook whose metadata names no language."""
    from papermill.iorw import load_notebook_node
    from papermill.translators import papermill_translators
    from papermill.utils import find_first_tagged_cell_index

    book = load_notebook_node(str(path))
    index = find_first_tagged_cell_index(book, "parameters")
    if index < 0:
        return None
    translator = papermill_translators.find_translator("python", "python")
    found: dict[str, Declared] = {}
    for parameter in translator.inspect(book.cells[index]):
        name = str(parameter.name)
        default = str(parameter.default)
        kind = _declared_type(str(parameter.inferred_type_name), default)
        found[name] = Declared(name, kind, default)
    return found


def _declared_type(annotation: str, default: str) -> str | None:
    """The parameter's type: its annotation (``"None"`` when it has none), else its default's."""
    annotation = annotation.strip()
    if annotation and annotation != "None":
        return annotation if annotation in TYPED else None
    try:
        value = ast.literal_eval(default)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return type(value).__name__ if type(value).__name__ in TYPED else None


def typed_parameters(
    declared: Mapping[str, Declared] | None, values: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """``values`` converted to the declared types, and the names the notebook does not
    declare (kept as given). Raises `ValidationError` with an issue for each value that
    does not convert."""
    typed: dict[str, Any] = {}
    undeclared: list[str] = []
    issues: list[Issue] = []
    for name, value in values.items():
        parameter = (declared or {}).get(name)
        if parameter is None:
            undeclared.append(name)
            typed[name] = value
            continue
        try:
            typed[name] = convert(parameter, value)
        except ValueError as exc:
            issues.append(Issue("parameter", str(exc), field=f"/parameters/{name}"))
    if issues:
        raise ValidationError(issues)
    return typed, undeclared


def convert(parameter: Declared, value: Any) -> Any:
    """``value`` as the parameter's type; `ValueError` saying what was expected when it is
    not one. None, and any value of a parameter of another type, is kept as given."""
    kind = parameter.type
    if kind is None or value is None:
        return value
    converted = _convert(kind, value)
    if converted is _INVALID:
        raise ValueError(
            f"notebook parameter '{parameter.name}' expects {ARTICLES[kind]} "
            f"(its default is {parameter.default}), got {value!r}"
        )
    return converted


_INVALID = object()


def _convert(kind: str, value: Any) -> Any:
    if kind == "str":
        return _INVALID if isinstance(value, (list, dict)) else str(value)
    if isinstance(value, (list, dict)):
        return _INVALID
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            return BOOLEANS.get(value.strip().lower(), _INVALID)
        return _INVALID
    if isinstance(value, bool):
        return _INVALID
    if kind == "int":
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value) if value.is_integer() else _INVALID
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return _INVALID
        return _INVALID
    # float
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        return _INVALID
    # inf and nan have no Python literal for papermill to write into the notebook.
    return number if math.isfinite(number) else _INVALID
