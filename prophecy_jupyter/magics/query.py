"""The SQL of a ``%%prophecy`` cell: Python values bound as typed literals, relations named.

A cell's SQL is held to the SQLStatement gem's rules (`parse_query`); what differs is where
its values and relations come from. A ``$name`` takes a ``--param`` value or a variable of
the notebook, turned into a typed literal of the AST, so no value is ever pasted into SQL
text. A relation is a CTE of the cell, a pipeline gem (``pipeline.gem``), a saved result, a
data frame of the notebook or a table of the engine's warehouse, resolved by the session.
"""

from __future__ import annotations

import ast
import datetime as dt
import numbers
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from prophecy_jupyter.compiler.expressions import (
    ParameterError,
    coerce_parameter,
    parameter_literal,
    rejected_at,
)
from prophecy_jupyter.model.pipeline import Parameter, ParameterType

# (top-level module, class) of the data frames a cell reads by variable name. Checked along
# the class hierarchy by name, so that no data frame library is imported to recognise one.
DATA_FRAME_TYPES = frozenset(
    {
        ("pandas", "DataFrame"),
        ("polars", "DataFrame"),
        ("polars", "LazyFrame"),
        ("pyarrow", "Table"),
        ("pyarrow", "RecordBatch"),
    }
)


def is_data_frame(value: Any) -> bool:
    return any(
        (cls.__module__.partition(".")[0], cls.__name__) in DATA_FRAME_TYPES
        for cls in type(value).__mro__
    )


def _parameter_type(value: Any) -> ParameterType | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, numbers.Integral):
        return "integer"
    if isinstance(value, numbers.Real):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, dt.date):
        return "date"
    return None


def python_literal(name: str, value: Any) -> exp.Expr:
    """The typed SQL literal of a Python value, built as a node of the AST.

    Raises `ParameterError` for a value with no SQL literal (a list, an object, NaN).
    """
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # numpy scalars (from pandas aggregates) as Python scalars
    if value is None:
        return exp.null()
    kind = _parameter_type(value)
    if kind is None:
        raise ParameterError(
            f"${name} is a {type(value).__name__}; a parameter takes a str, int, float, bool, "
            "date, datetime or None"
        )
    parameter = Parameter(name=name, type=kind)
    literal = parameter_literal(parameter, coerce_parameter(parameter, value))
    # A bare 0.5 is a DECIMAL(2,1) to DuckDB; a Python float is a double.
    return exp.cast(literal, "DOUBLE") if kind == "double" else literal


def parse_parameter_value(text: str) -> Any:
    """A ``--param NAME=VALUE`` value: a Python literal (``5``, ``2.5``, ``True``, ``'a b'``)
    when it reads as a scalar one, else the text itself (``shipped``, ``2024-01-31``)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if value is None or _parameter_type(value) is not None else text


def bind_parameters(
    tree: exp.Query, params: Mapping[str, Any], namespace: Mapping[str, Any]
) -> None:
    """Replace each ``$name`` with the literal of ``params[name]``, else of the notebook's
    variable ``name``. Raises `ExpressionRejected` naming the parameter's position."""
    for node in list(tree.find_all(exp.Placeholder, exp.Parameter)):
        name = str(node.name)
        if not name.isidentifier():
            raise rejected_at(
                node, "parameter", "write parameters as $name (? and $1 are not bound)"
            )
        if name in params:
            value = params[name]
        elif name in namespace:
            value = namespace[name]
        else:
            raise rejected_at(
                node,
                "unknown_parameter",
                f"${name} is neither a --param nor a variable of the notebook",
            )
        try:
            node.replace(python_literal(name, value))
        except ParameterError as exc:
            raise rejected_at(node, "parameter", str(exc)) from None
