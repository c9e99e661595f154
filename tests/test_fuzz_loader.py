"""Loading and compiling are total: any input gives a result or the project's ValidationError.

Hypothesis feeds the loader raw bytes, arbitrary JSON, and documents shaped like pipelines with
wrong types in every slot; and the compiler documents that load but mix real and made-up gem
kinds, properties, connections and parameters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prophecy_jupyter.compiler import compile_pipeline
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.errors import EngineError, Issue, ValidationError
from prophecy_jupyter.gems.registry import gem_kinds
from prophecy_jupyter.model import Pipeline, dump_pipeline, load_pipeline, pipeline_json_schema

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCHEMA = jsonschema.Draft202012Validator(pipeline_json_schema())


def resolve(document: Any, field: str) -> bool:
    """Whether a JSON pointer names something present in ``document``."""
    node = document
    for raw in field.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def check_issues(issues: list[Issue], document: Any) -> None:
    """Every issue says something and points into the document (or at a missing key in it)."""
    assert issues
    for issue in issues:
        assert issue.message.strip()
        assert issue.code
        if issue.field:
            parent = issue.field.rsplit("/", 1)[0]
            assert resolve(document, parent), issue
        if issue.line is not None:
            assert issue.line >= 1
            assert issue.column is not None and issue.column >= 1, issue


def as_document(source: bytes | str | dict[str, Any]) -> Any:
    if isinstance(source, dict):
        return source
    try:
        return json.loads(source)
    except ValueError:
        return None


def load_totally(source: bytes | str | dict[str, Any]) -> Pipeline | None:
    """Load, asserting that only a well-formed ValidationError can come out."""
    try:
        pipeline = load_pipeline(source)
    except ValidationError as exc:
        check_issues(exc.issues, as_document(source))
        return None
    text = dump_pipeline(pipeline)
    assert text.encode("utf-8")  # saving never meets an unencodable character
    assert load_pipeline(text) == pipeline
    assert dump_pipeline(load_pipeline(text)) == text
    SCHEMA.validate(json.loads(text))
    return pipeline


# -- the loader ----------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)


@FAST
@given(st.binary(max_size=200))
def test_any_bytes_load_or_raise_validation_error(raw: bytes) -> None:
    load_totally(raw)


@FAST
@given(st.text(max_size=200))
def test_any_text_loads_or_raises_validation_error(text: str) -> None:
    load_totally(text)


@FAST
@given(json_values)
def test_any_json_value_loads_or_raises_validation_error(value: Any) -> None:
    load_totally(json.dumps(value).encode("utf-8"))
    if isinstance(value, dict):
        load_totally(value)


surrogate_text = st.text(
    alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010, exclude_categories=()),
    max_size=4,
)


@FAST
@given(surrogate_text, surrogate_text)
def test_escaped_surrogates_load_only_when_they_can_be_saved(key: str, value: str) -> None:
    document = {"name": "x", "gems": [{"id": "g", "kind": "K", "properties": {key: [value]}}]}
    loaded = load_totally(json.dumps(document, ensure_ascii=True))
    assert (loaded is not None) == utf8_encodable(json.loads(json.dumps([key, value])))


def utf8_encodable(texts: list[str]) -> bool:
    try:
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def anything() -> st.SearchStrategy[Any]:
    return json_values | st.just(float("nan")) | st.just(float("inf"))


def sometimes(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes any value at all."""
    return st.one_of(plausible, plausible, plausible, anything())


ids = st.sampled_from(["a", "b", "src", "1x", "", "a-b", "A"]) | st.text(max_size=6)
ports = st.sampled_from(["in0", "in1", "in9", "out", ""])
shaped_gem = st.fixed_dictionaries(
    {"id": sometimes(ids), "kind": sometimes(st.sampled_from(["Source", "Filter", "", "X"]))},
    optional={
        "properties": sometimes(st.dictionaries(st.text(max_size=6), json_values, max_size=3)),
        "position": sometimes(
            st.fixed_dictionaries({"x": st.floats(), "y": st.integers()})
            | st.fixed_dictionaries({"x": st.integers()})
        ),
        "label": sometimes(st.text(max_size=6)),
        "colour": st.text(max_size=3),
    },
)
shaped_connection = st.fixed_dictionaries(
    {"from": sometimes(ids), "to": sometimes(ids)},
    optional={"port": sometimes(ports), "weight": st.integers()},
)
shaped_parameter = st.fixed_dictionaries(
    {"name": sometimes(ids)},
    optional={
        "type": sometimes(st.sampled_from(["string", "integer", "double", "varchar"])),
        "default": anything(),
        "description": sometimes(st.text(max_size=6)),
    },
)
shaped_document = st.fixed_dictionaries(
    {},
    optional={
        "version": sometimes(st.integers(min_value=-1, max_value=3)),
        "name": sometimes(st.text(max_size=8)),
        "description": sometimes(st.text(max_size=8)),
        "parameters": sometimes(st.lists(sometimes(shaped_parameter), max_size=3)),
        "gems": sometimes(st.lists(sometimes(shaped_gem), max_size=4)),
        "connections": sometimes(st.lists(sometimes(shaped_connection), max_size=4)),
        "owner": st.text(max_size=4),
    },
)


@FAST
@given(shaped_document)
def test_documents_shaped_like_pipelines_load_or_raise_validation_error(
    document: dict[str, Any],
) -> None:
    load_totally(document)
    try:
        text = json.dumps(document, allow_nan=False)
    except ValueError:
        return
    load_totally(text)


# -- the compiler --------------------------------------------------------------------------

COLUMNS = ["x", "y", "X", "name", "select", "My Col"]
TYPES = ["INTEGER", "VARCHAR", "DOUBLE", "BOOLEAN", "DATE", "INT[]", "NOPE"]
GEM_IDS = ["a", "b", "c", "d", "e"]
EXPRESSIONS = [
    "x > 1",
    "x",
    "y",
    "X + x",
    "a.x = b.x",
    "b.y",
    '"select" + 1',
    '"My Col"',
    "name like 'a%'",
    "$p",
    "x > $p and $q",
    "$missing",
    "sum(x)",
    "count(*)",
    "row_number()",
    "x AS y",
    "read_csv('f.csv')",
    "(select 1)",
    "x; y",
    "drop table t",
    "attach 'x.db'",
    "x >",
    "",
    "   ",
    "nope",
    "upper(name) = 'A'",
    "case when x > 1 then 'big' else 'small' end",
    "list_transform([1, 2], v -> v + x)",
    "x::VARCHAR",
    "x between 1 and $p",
]

columns = st.sampled_from(COLUMNS) | st.sampled_from(COLUMNS) | st.text(max_size=4)
expressions = st.sampled_from(EXPRESSIONS) | st.sampled_from(EXPRESSIONS) | st.text(max_size=12)
named = st.fixed_dictionaries({"name": columns}, optional={"expression": expressions})
sort_keys = st.fixed_dictionaries(
    {"expression": expressions},
    optional={
        "direction": st.sampled_from(["asc", "desc", "up"]),
        "nulls": st.sampled_from(["first", "last", "default"]),
    },
)
seed_rows = st.lists(st.lists(json_scalars, max_size=3), max_size=3)
PROPERTIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "Source": st.one_of(
        st.fixed_dictionaries(
            {
                "format": st.just("seed"),
                "columns": st.lists(
                    st.fixed_dictionaries({"name": columns, "type": st.sampled_from(TYPES)}),
                    max_size=3,
                ),
                "rows": seed_rows,
            }
        ),
        st.fixed_dictionaries(
            {"format": st.just("table"), "table": st.sampled_from(["t", "missing", "main.t"])}
        ),
        st.fixed_dictionaries(
            {
                "format": st.sampled_from(["csv", "parquet", "json"]),
                "path": st.sampled_from(["data.csv", "missing.csv", "*.csv"]),
            }
        ),
    ),
    "Target": st.fixed_dictionaries(
        {"table": st.sampled_from(["out", "bad name"])},
        optional={
            "mode": st.sampled_from(["overwrite", "append", "merge", "error_if_exists"]),
            "keys": st.lists(columns, max_size=2),
        },
    ),
    "Filter": st.fixed_dictionaries({"condition": expressions}),
    "Reformat": st.fixed_dictionaries(
        {"columns": st.lists(named, max_size=3)},
        optional={"include_remaining": st.booleans(), "drop": st.lists(columns, max_size=2)},
    ),
    "OrderBy": st.fixed_dictionaries({"keys": st.lists(sort_keys, max_size=2)}),
    "Limit": st.fixed_dictionaries(
        {"count": st.integers(-1, 3)}, optional={"offset": st.integers(-1, 3)}
    ),
    "Deduplicate": st.fixed_dictionaries(
        {"mode": st.sampled_from(["distinct", "first", "last"])},
        optional={
            "keys": st.lists(columns, max_size=2),
            "order_by": st.lists(sort_keys, max_size=2),
        },
    ),
    "Join": st.fixed_dictionaries(
        {
            "joins": st.lists(
                st.fixed_dictionaries(
                    {"how": st.sampled_from(["inner", "left", "cross", "semi", "anti", "full"])},
                    optional={"condition": expressions},
                ),
                max_size=2,
            )
        },
        optional={"columns": st.lists(named, max_size=2)},
    ),
    "SetOperation": st.fixed_dictionaries(
        {},
        optional={
            "operation": st.sampled_from(["union_all", "union", "intersect", "except_all"]),
            "by": st.sampled_from(["position", "name"]),
        },
    ),
    "Aggregate": st.fixed_dictionaries(
        {},
        optional={
            "group_by": st.lists(
                st.fixed_dictionaries({"expression": expressions}, optional={"name": columns}),
                max_size=2,
            ),
            "aggregates": st.lists(named, max_size=2),
            "having": expressions,
        },
    ),
    "WindowFunction": st.fixed_dictionaries(
        {"columns": st.lists(named, max_size=2)},
        optional={
            "partition_by": st.lists(columns, max_size=2),
            "order_by": st.lists(sort_keys, max_size=2),
            "frame": st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["rows", "range"]),
                    "start": st.sampled_from(["unbounded preceding", "2 preceding", "x"]),
                    "end": st.sampled_from(["current row", "1 following"]),
                }
            ),
        },
    ),
}
KINDS = sorted({*gem_kinds(), "Sparkle"})
any_properties = st.dictionaries(
    st.sampled_from(["condition", "columns", "keys", "expression", "format", "table", "how"])
    | st.text(max_size=5),
    json_values,
    max_size=3,
)


@st.composite
def good_seeds(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=3, unique_by=str.lower))
    width = len(names)
    return {
        "format": "seed",
        "columns": [{"name": n, "type": draw(st.sampled_from(TYPES[:3]))} for n in names],
        "rows": draw(st.lists(st.lists(st.integers(0, 3), min_size=width, max_size=width))),
    }


@st.composite
def pipelines(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly well-formed: distinct ids, seeds first, every edge pointing downstream, properties
    of the gem's own shape; now and then a duplicate id, a stray edge or foreign properties."""
    count = draw(st.integers(1, len(GEM_IDS)))
    gem_ids = draw(st.permutations(GEM_IDS))[:count]
    if draw(st.integers(0, 9)) == 0:
        gem_ids.append(draw(st.sampled_from([*gem_ids, "A"])))
    gems = []
    connections = []
    for index, gem_id in enumerate(gem_ids):
        kind = "Source" if index == 0 else draw(st.sampled_from(KINDS))
        shaped = good_seeds() if index == 0 else PROPERTIES.get(kind, any_properties)
        properties = draw(any_properties if draw(st.integers(0, 9)) == 0 else shaped)
        gems.append({"id": gem_id, "kind": kind, "properties": properties})
        if index > 0:
            takes = gem_kinds().get(kind)
            fewest = takes.min_inputs if takes else 1
            most = min(takes.max_inputs if takes and takes.max_inputs is not None else 3, 3)
            for port in range(draw(st.integers(fewest, max(fewest, most)))):
                upstream = draw(st.sampled_from(gem_ids[:index]))
                connections.append({"from": upstream, "to": gem_id, "port": f"in{port}"})
    endpoints = st.sampled_from([*gem_ids, "ghost"])
    connections += draw(
        st.lists(
            st.fixed_dictionaries(
                {"from": endpoints, "to": endpoints, "port": st.sampled_from(["in0", "in1", "in3"])}
            ),
            max_size=1,
        )
    )
    parameters = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["p", "q", "P"]),
                    "type": st.sampled_from(
                        ["string", "integer", "double", "boolean", "date", "timestamp"]
                    ),
                },
                optional={"default": json_scalars},
            ),
            max_size=2,
        )
    )
    return {
        "version": 1,
        "name": "fuzzed",
        "parameters": parameters,
        "gems": gems,
        "connections": connections,
    }


overrides = st.dictionaries(
    st.sampled_from(["p", "q", "Q", "other"]),
    st.sampled_from(["1", "2.5", "true", "2024-01-31", "O'Brien", "inf", "x; drop table t"])
    | st.text(max_size=6),
    max_size=2,
)


@pytest.fixture(scope="module")
def fuzz_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBEngine]:
    """One DuckDB for every example: a table `t` and a file `data.csv` to read."""
    root: Path = tmp_path_factory.mktemp("fuzz")
    (root / "data.csv").write_text("x,name\n1,ann\n2,bob\n", encoding="utf-8")
    with DuckDBEngine(":memory:", root=root) as engine:
        engine.connection.execute("create table t as select 1 as x, 'a' as y")
        yield engine


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=pipelines(), params=overrides)
def test_compiling_never_raises_and_every_issue_points_into_the_document(
    fuzz_engine: DuckDBEngine, document: dict[str, Any], params: dict[str, str]
) -> None:
    pipeline = load_pipeline(document)
    compiled = compile_pipeline(pipeline, fuzz_engine, params)
    if compiled.issues:
        check_issues(compiled.issues, document)
    known = {g.id for g in pipeline.gems}
    assert all(i.gem_id is None or i.gem_id in known for i in compiled.issues)
    for gem_id, gem in compiled.gems.items():
        if gem.output is not None:
            assert compiled.sql(gem_id)
            try:
                fuzz_engine.describe(compiled.query(gem_id))
            except EngineError as exc:
                assert str(exc)
