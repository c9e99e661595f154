"""The pipeline document, its JSON Schema, migrations, projects and atomic writes."""

from __future__ import annotations

import errno
import json
import math
import os
import random
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from prophecy_jupyter.errors import Conflict, Issue, NotFound, ValidationError
from prophecy_jupyter.model import (
    CURRENT_VERSION,
    Pipeline,
    Project,
    dump_pipeline,
    init_project,
    load_pipeline,
    migrations,
    pipeline_json_schema,
)
from prophecy_jupyter.model.files import atomic_move_text, atomic_write_text
from prophecy_jupyter.model.pipeline import canonical_json, json_number
from prophecy_jupyter.model.project import PIPELINE_SUFFIX, PROJECT_FILE
from prophecy_jupyter.model.schema import SCHEMA_PATH, schema_text

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_document() -> dict[str, Any]:
    """Every part of the document shape, in the order a person would write it."""
    return {
        "version": 1,
        "name": "customer_orders",
        "description": "Totals per customer",
        "parameters": [
            {"name": "min_total", "type": "double", "default": 0.5, "description": "floor"},
            {"name": "region", "type": "string"},
        ],
        "gems": [
            {
                "id": "customers",
                "kind": "Source",
                "label": "Customers",
                "properties": {"format": "csv", "path": "data/customers.csv"},
                "position": {"x": 40, "y": 80.5},
            },
            {
                "id": "orders",
                "kind": "Source",
                "properties": {"format": "parquet", "path": "data/orders.parquet"},
            },
            {
                "id": "joined",
                "kind": "Join",
                "properties": {
                    "joins": [{"how": "left", "condition": "customers.id = orders.customer_id"}]
                },
                "columns": {
                    "customer_id": {"description": "the customer, as in the CRM"},
                    "amount": {"description": "order total in EUR, VAT included"},
                },
            },
            {
                "id": "out",
                "kind": "Target",
                "description": "written nightly",
                "properties": {"table": "customer_totals", "mode": "overwrite"},
            },
        ],
        "connections": [
            {"from": "customers", "to": "joined", "port": "in0"},
            {"from": "orders", "to": "joined", "port": "in1"},
            {"from": "joined", "to": "out"},
        ],
    }


def issues_loading(source: bytes | str | dict[str, Any]) -> list[Issue]:
    with pytest.raises(ValidationError) as caught:
        load_pipeline(source)
    return caught.value.issues


def reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(v) for v in value]
    return value


# -- round trip and serialisation ------------------------------------------------------------


def test_load_dump_load_gives_an_identical_pipeline() -> None:
    first = load_pipeline(example_document())
    second = load_pipeline(dump_pipeline(first))
    assert second == first
    assert second.gem("customers").position is not None
    assert second.connections[1].source == "orders"
    assert second.connections[1].port == "in1"


def test_loading_accepts_bytes_text_and_dicts_alike() -> None:
    text = json.dumps(example_document())
    from_bytes = load_pipeline(text.encode("utf-8"))
    assert load_pipeline(text) == from_bytes
    assert load_pipeline(example_document()) == from_bytes


def test_dump_is_sorted_with_two_space_indent_and_one_trailing_newline() -> None:
    text = dump_pipeline(load_pipeline(example_document()))
    canonical = json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert text == canonical
    assert text.endswith("}\n")
    assert not text.endswith("\n\n")
    assert text.splitlines()[1] == '  "connections": ['
    assert "\t" not in text


def test_dump_is_byte_stable_whatever_the_key_order_of_the_source() -> None:
    text = dump_pipeline(load_pipeline(example_document()))
    assert dump_pipeline(load_pipeline(reversed_keys(example_document()))) == text
    assert dump_pipeline(load_pipeline(text)) == text


def test_dump_keeps_non_ascii_text_readable() -> None:
    document = example_document()
    document["name"] = "Kundenaufträge"
    text = dump_pipeline(load_pipeline(document))
    assert '"name": "Kundenaufträge"' in text


def test_dump_leaves_out_optional_fields_that_are_not_set() -> None:
    data = json.loads(dump_pipeline(load_pipeline(example_document())))
    orders = data["gems"][1]
    assert "label" not in orders
    assert "position" not in orders
    assert "default" not in data["parameters"][1]
    assert data["connections"][2]["port"] == "in0"


def test_column_descriptions_round_trip_in_the_gem() -> None:
    text = dump_pipeline(load_pipeline(example_document()))
    joined = json.loads(text)["gems"][2]
    assert joined["columns"] == {
        "amount": {"description": "order total in EUR, VAT included"},
        "customer_id": {"description": "the customer, as in the CRM"},
    }
    pipeline = load_pipeline(text)
    assert pipeline.gem("joined").columns["amount"].description.startswith("order total")
    assert dump_pipeline(pipeline) == text


def test_a_gem_without_column_descriptions_writes_no_columns_key() -> None:
    document = example_document()
    document["gems"][1]["columns"] = {}
    pipeline = load_pipeline(document)
    text = dump_pipeline(pipeline)
    data = json.loads(text)
    assert [("columns" in g) for g in data["gems"]] == [False, False, True, False]
    assert "columns" not in pipeline.model_dump(by_alias=True)["gems"][0]
    del document["gems"][2]["columns"]
    assert '"columns"' not in dump_pipeline(load_pipeline(document))


@pytest.mark.parametrize(
    ("columns", "field"),
    [
        ({"": {"description": "no name"}}, "/gems/0/columns/"),
        ({"x" * 257: {"description": "long"}}, "/gems/0/columns/" + "x" * 257),
        ({"id": {"description": 3}}, "/gems/0/columns/id/description"),
        ({"id": {"description": None}}, "/gems/0/columns/id/description"),
        ({"id": {}}, "/gems/0/columns/id/description"),
        ({"id": {"description": "x", "unit": "EUR"}}, "/gems/0/columns/id/unit"),
        ({"id": "plain text"}, "/gems/0/columns/id"),
        ({"id": {"description": "x" * 4001}}, "/gems/0/columns/id/description"),
        (["id"], "/gems/0/columns"),
    ],
)
def test_a_bad_column_description_is_a_schema_issue_at_its_place(columns: Any, field: str) -> None:
    document = example_document()
    document["gems"][0]["columns"] = columns
    [issue] = issues_loading(document)
    assert (issue.code, issue.gem_id, issue.field) == ("schema", "customers", field)


def test_dump_writes_every_integral_number_as_an_integer() -> None:
    document = example_document()
    document["parameters"][0]["default"] = 50.0
    document["gems"][0]["position"] = {"x": 40.0, "y": -220.0}
    document["gems"][1]["properties"]["extra"] = {"n": [2.0, 0.5, 1e16, -0.0, {"deep": 3.0}]}
    text = dump_pipeline(load_pipeline(document))
    assert '"x": 40,' in text and '"y": -220\n' in text
    assert '"default": 50,' in text
    assert (
        "[\n            2,\n            0.5,\n            10000000000000000,\n            0,"
        in text
    )
    assert '"deep": 3\n' in text
    assert ".0\n" not in text and ".0," not in text
    assert dump_pipeline(load_pipeline(text)) == text


@pytest.mark.parametrize(
    ("value", "spelled"),
    [
        (40.0, "40"),
        (-0.0, "0"),
        (0.5, "0.5"),
        (0.1, "0.1"),
        (123.456, "123.456"),
        (1e16, "10000000000000000"),
        (1e20, "100000000000000000000"),
        (1.2345678901234567e20, "123456789012345670000"),
        (1e21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (0.00001, "0.00001"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (-2.5e-8, "-2.5e-8"),
        (5e-324, "5e-324"),
        (2.0**53, "9007199254740992"),
    ],
)
def test_numbers_are_spelled_as_javascript_spells_them(value: float, spelled: str) -> None:
    assert json_number(value) == spelled
    assert float(spelled) == value


def test_keys_are_sorted_as_javascript_objects_keep_them() -> None:
    """By UTF-16 code unit, and array-index keys first in numeric order (a JavaScript object
    enumerates those first whatever the order they were added in)."""
    keys = ["b", "10", "2", "01", "4294967295", "4294967294", "\U0001f600", "\uff01", "B"]
    text = canonical_json(dict.fromkeys(keys, 0))
    order = [line.split('"')[1] for line in text.splitlines()[1:-1]]
    assert order == ["2", "10", "4294967294", "01", "4294967295", "B", "b", "\U0001f600", "\uff01"]


def stringify_in_node(values: list[Any]) -> list[str]:
    """Each value as JavaScript writes it: keys sorted, ``JSON.stringify(value, null, 2)``."""
    script = """
    let input = "";
    process.stdin.on("data", (chunk) => (input += chunk)).on("end", () => {
      const sorted = (v) =>
        Array.isArray(v) ? v.map(sorted)
        : v !== null && typeof v === "object"
          ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
          : v;
      const out = JSON.parse(input).map((v) => JSON.stringify(sorted(v), null, 2));
      process.stdout.write(JSON.stringify(out));
    });
    """
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, "-e", script], input=json.dumps(values), capture_output=True, text=True, check=True
    )
    result: list[str] = json.loads(done.stdout)
    return result


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_dump_is_byte_identical_to_what_json_stringify_writes() -> None:
    rng = random.Random(20240601)
    floats = [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(3000)]
    floats += [rng.uniform(-1e7, 1e7) for _ in range(1000)]
    floats += [float(rng.randint(-(10**22), 10**22)) for _ in range(1000)]
    floats += [rng.random() * 10.0 ** rng.randint(-25, 25) for _ in range(1000)]
    floats = [f for f in floats if math.isfinite(f)]
    odd_text = {'quote"back\\slash': "tab\tnew\nline\u0001\u2028é😀", "10": 1, "2": [], "z": {}}
    document = example_document()
    document["gems"][1]["properties"]["extra"] = {"numbers": floats, "text": odd_text}
    document["gems"][0]["position"] = {"x": 40.0, "y": 0.25}
    expected = dump_pipeline(load_pipeline(document))
    data = json.loads(expected)
    (written,) = stringify_in_node([data])
    assert written + "\n" == expected
    assert stringify_in_node(floats) == [json_number(f) for f in floats]


@pytest.mark.parametrize(
    "path",
    # Hidden entries are JupyterLab's (.ipynb_checkpoints), not the project's.
    sorted(p for p in EXAMPLES.glob("*/pipelines/*") if not p.name.startswith(".")),
    ids=lambda p: p.name,
)
def test_every_example_pipeline_is_a_canonical_pipeline_file(path: Path) -> None:
    assert path.name.endswith(PIPELINE_SUFFIX)
    text = path.read_text(encoding="utf-8")
    assert dump_pipeline(load_pipeline(text)) == text


def test_a_document_without_version_is_read_as_the_current_version() -> None:
    document = example_document()
    del document["version"]
    assert load_pipeline(document).version == CURRENT_VERSION


# -- shape errors --------------------------------------------------------------------------


def test_unknown_top_level_key_is_rejected_with_its_pointer() -> None:
    document = example_document()
    document["owner"] = "me"
    [issue] = issues_loading(document)
    assert issue.code == "schema"
    assert issue.field == "/owner"
    assert issue.gem_id is None


def test_unknown_gem_key_is_rejected_naming_the_gem() -> None:
    document = example_document()
    document["gems"][2]["colour"] = "red"
    [issue] = issues_loading(document)
    assert (issue.code, issue.gem_id, issue.field) == ("schema", "joined", "/gems/2/colour")


def test_unknown_connection_and_position_keys_are_rejected() -> None:
    document = example_document()
    document["connections"][0]["weight"] = 1
    document["gems"][0]["position"]["z"] = 3
    fields = {i.field for i in issues_loading(document)}
    assert fields == {"/connections/0/weight", "/gems/0/position/z"}


@pytest.mark.parametrize(
    "bad_id", ["1st", "a-b", "a b", "", "a\n", "naïve", "a.b", "x" * 129, 7, None]
)
def test_gem_ids_must_be_identifiers(bad_id: object) -> None:
    document = example_document()
    document["gems"][3]["id"] = bad_id
    [issue] = issues_loading(document)
    assert issue.field == "/gems/3/id"
    assert issue.message


@pytest.mark.parametrize("bad_name", ["1x", "my-param", "", "a b"])
def test_parameter_names_must_be_identifiers(bad_name: str) -> None:
    document = example_document()
    document["parameters"][0]["name"] = bad_name
    [issue] = issues_loading(document)
    assert issue.field == "/parameters/0/name"


def test_connection_ports_must_be_named_in_and_a_number() -> None:
    document = example_document()
    document["connections"][1]["port"] = "left"
    [issue] = issues_loading(document)
    assert issue.field == "/connections/1/port"


def test_parameter_types_are_a_closed_list() -> None:
    document = example_document()
    document["parameters"][1]["type"] = "varchar"
    [issue] = issues_loading(document)
    assert issue.field == "/parameters/1/type"


def test_a_wrong_value_in_a_union_field_is_one_issue_at_that_field() -> None:
    document = example_document()
    document["parameters"][0]["default"] = [1]
    [issue] = issues_loading(document)
    assert issue.field == "/parameters/0/default"
    assert "string" in issue.message and "number" in issue.message


def test_a_missing_required_field_points_where_it_belongs() -> None:
    document = example_document()
    del document["connections"][0]["from"]
    del document["gems"][1]["kind"]
    fields = {(i.field, i.gem_id) for i in issues_loading(document)}
    assert fields == {("/connections/0/from", None), ("/gems/1/kind", "orders")}


def test_every_shape_problem_is_reported_at_once() -> None:
    document = example_document()
    document["name"] = ""
    document["gems"][0]["kind"] = ""
    document["gems"][1]["properties"] = []
    document["connections"][2]["to"] = 5
    issues = issues_loading(document)
    assert {(i.field, i.gem_id) for i in issues} == {
        ("/name", None),
        ("/gems/0/kind", "customers"),
        ("/gems/1/properties", "orders"),
        ("/connections/2/to", None),
    }
    assert all(i.message for i in issues)


def test_invalid_json_reports_line_and_column() -> None:
    [issue] = issues_loading(b'{\n  "name": "x",\n  "gems": [,]\n}')
    assert issue.code == "json"
    assert (issue.line, issue.column) == (3, 12)


def test_bytes_that_are_not_utf8_are_rejected() -> None:
    [issue] = issues_loading(b'{"name": "caf\xe9"}')
    assert issue.code == "encoding"


@pytest.mark.parametrize("value", ["[]", '"pipeline"', "3", "null"])
def test_a_document_must_be_an_object(value: str) -> None:
    [issue] = issues_loading(value)
    assert (issue.code, issue.field) == ("schema", "")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_constants_are_rejected(constant: str) -> None:
    text = '{"name": "x", "gems": [{"id": "a", "kind": "K", "position": {"x": %s, "y": 0}}]}'
    [issue] = issues_loading(text % constant)
    assert issue.code == "json"
    assert constant in issue.message


def test_non_finite_positions_are_rejected_from_a_dict_too() -> None:
    document = example_document()
    document["gems"][0]["position"]["x"] = float("inf")
    [issue] = issues_loading(document)
    assert issue.field == "/gems/0/position/x"


def test_an_integer_too_long_to_convert_is_a_json_issue() -> None:
    [issue] = issues_loading(b'{"name": "x", "version": ' + b"9" * 5000 + b"}")
    assert issue.code == "json"


def test_a_document_nested_too_deeply_is_a_json_issue() -> None:
    [issue] = issues_loading(b'{"name": "x", "description": ' + b"[" * 100_000)
    assert issue.code == "json"


def test_unpaired_surrogates_are_rejected_because_they_cannot_be_saved() -> None:
    text = (
        '{"name": "x", "gems": [{"id": "s", "kind": "Source", '
        '"properties": {"rows": [["ok", "\\ud800"]], "\\udfff": 1}}]}'
    )
    issues = issues_loading(text)
    assert {(i.code, i.gem_id, i.field) for i in issues} == {
        ("encoding", "s", "/gems/0/properties/rows/0/1"),
        ("encoding", "s", "/gems/0/properties/\udfff"),
    }


def test_paired_surrogate_escapes_are_ordinary_text() -> None:
    pipeline = load_pipeline('{"name": "\\ud83d\\ude00"}')
    assert pipeline.name == "\N{GRINNING FACE}"
    assert "\N{GRINNING FACE}" in dump_pipeline(pipeline)


# -- versions and migrations ---------------------------------------------------------------


def test_a_version_newer_than_this_release_is_rejected() -> None:
    document = example_document()
    document["version"] = CURRENT_VERSION + 1
    [issue] = issues_loading(document)
    assert (issue.code, issue.field) == ("version", "/version")
    assert "upgrade" in issue.message


@pytest.mark.parametrize("version", [0, -1, "1", 1.5, True, None, [1]])
def test_version_must_be_a_positive_integer(version: object) -> None:
    document = example_document()
    document["version"] = version
    [issue] = issues_loading(document)
    assert (issue.code, issue.field) == ("version", "/version")


def rename_condition(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 → 2 step written the natural way: edits the gems in place."""
    for gem in data["gems"]:
        if gem["kind"] == "Filter":
            gem["properties"]["condition"] = gem["properties"].pop("where")
    return data


def add_description(data: dict[str, Any]) -> dict[str, Any]:
    data.setdefault("description", "upgraded")
    return data


def old_document() -> dict[str, Any]:
    return {
        "version": 1,
        "name": "old",
        "gems": [
            {"id": "src", "kind": "Source", "properties": {"format": "table", "table": "t"}},
            {"id": "keep", "kind": "Filter", "properties": {"where": "x > 1"}},
        ],
        "connections": [{"from": "src", "to": "keep"}],
    }


def test_an_old_document_is_upgraded_by_its_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrations, "CURRENT_VERSION", 2)
    monkeypatch.setitem(migrations.MIGRATIONS, 1, rename_condition)
    pipeline = load_pipeline(old_document())
    assert pipeline.version == 2
    assert pipeline.gem("keep").properties == {"condition": "x > 1"}
    assert json.loads(dump_pipeline(pipeline))["version"] == 2


def test_every_migration_step_runs_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrations, "CURRENT_VERSION", 3)
    monkeypatch.setitem(migrations.MIGRATIONS, 1, rename_condition)
    monkeypatch.setitem(migrations.MIGRATIONS, 2, add_description)
    pipeline = load_pipeline(json.dumps(old_document()))
    assert (pipeline.version, pipeline.description) == (3, "upgraded")
    assert pipeline.gem("keep").properties == {"condition": "x > 1"}


def test_a_document_at_an_intermediate_version_runs_only_the_later_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(migrations, "CURRENT_VERSION", 3)
    monkeypatch.setitem(migrations.MIGRATIONS, 1, rename_condition)
    monkeypatch.setitem(migrations.MIGRATIONS, 2, add_description)
    document = old_document()
    document["version"] = 2
    document["gems"][1]["properties"] = {"condition": "x > 2"}
    pipeline = load_pipeline(document)
    assert pipeline.gem("keep").properties == {"condition": "x > 2"}
    assert pipeline.description == "upgraded"


def test_migrating_leaves_the_callers_document_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrations, "CURRENT_VERSION", 2)
    monkeypatch.setitem(migrations.MIGRATIONS, 1, rename_condition)
    document = old_document()
    load_pipeline(document)
    assert document == old_document()


def test_a_missing_migration_step_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrations, "CURRENT_VERSION", 2)
    [issue] = issues_loading(old_document())
    assert (issue.code, issue.field) == ("version", "/version")


def test_a_migration_failing_on_a_malformed_old_document_is_a_validation_issue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(migrations, "CURRENT_VERSION", 2)
    monkeypatch.setitem(migrations.MIGRATIONS, 1, rename_condition)
    document = old_document()
    document["gems"] = "not a list"
    [issue] = issues_loading(document)
    assert (issue.code, issue.field) == ("version", "/version")
    assert "version 1" in issue.message


# -- the shipped JSON Schema ---------------------------------------------------------------


def test_the_shipped_schema_file_is_the_generated_one() -> None:
    shipped = SCHEMA_PATH.read_text(encoding="utf-8")
    assert json.loads(shipped) == pipeline_json_schema()
    assert shipped == schema_text()


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_schema_accepts_example_and_saved_documents() -> None:
    validator = jsonschema.Draft202012Validator(pipeline_json_schema())
    validator.validate(example_document())
    validator.validate(json.loads(dump_pipeline(load_pipeline(example_document()))))
    validator.validate({"name": "minimal"})


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("owner",), "me"),
        (("gems", 0, "id"), "1st"),
        (("gems", 0, "colour"), "red"),
        (("connections", 0, "port"), "left"),
        (("parameters", 0, "type"), "varchar"),
        (("name",), ""),
        (("gems", 0, "columns"), {"": {"description": "no name"}}),
        (("gems", 0, "columns"), {"id": {"description": 3}}),
        (("gems", 0, "columns"), {"id": {"text": "x"}}),
    ],
)
def test_the_schema_rejects_what_the_loader_rejects(
    path: tuple[str | int, ...], value: Any
) -> None:
    document = example_document()
    parent: Any = document
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    issues_loading(document)
    validator = jsonschema.Draft202012Validator(pipeline_json_schema())
    assert list(validator.iter_errors(document))


# -- projects ------------------------------------------------------------------------------


def test_init_creates_a_project_that_opens(tmp_path: Path) -> None:
    project = init_project(tmp_path / "shop", name="Shop")
    assert (tmp_path / "shop" / PROJECT_FILE).is_file()
    assert project.pipelines_dir.is_dir()
    opened = Project.open(tmp_path / "shop")
    assert opened.config.name == "Shop"
    assert opened.root == (tmp_path / "shop").resolve()


def test_a_project_is_found_from_any_folder_below_it(tmp_path: Path) -> None:
    init_project(tmp_path)
    deep = tmp_path / "notebooks" / "exploration" / "2024"
    deep.mkdir(parents=True)
    assert Project.open(deep).root == tmp_path.resolve()


def test_opening_outside_any_project_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        Project.open(tmp_path)


def test_init_twice_is_a_conflict(tmp_path: Path) -> None:
    init_project(tmp_path, name="first")
    with pytest.raises(Conflict):
        init_project(tmp_path, name="second")
    assert Project.open(tmp_path).config.name == "first"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("name: [unclosed\n", "yaml"),
        ("name: a\n  bad indent: b\n", "yaml"),
        ("- a list\n", "schema"),
        ("", "schema"),
        ("name: shop\ncolour: red\n", "schema"),
        ("name: shop\ndialect: oracle\n", "schema"),
    ],
)
def test_a_broken_project_file_is_a_validation_error(tmp_path: Path, text: str, code: str) -> None:
    (tmp_path / PROJECT_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        Project.open(tmp_path)
    assert caught.value.issues[0].code == code


def test_a_project_file_that_is_not_utf8_is_a_validation_error(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ValidationError):
        Project.open(tmp_path)


def test_a_saved_pipeline_is_the_dump_and_loads_back(tmp_path: Path) -> None:
    project = init_project(tmp_path)
    pipeline = load_pipeline(example_document())
    path = project.save_pipeline("customer_orders", pipeline)
    assert path == tmp_path / "pipelines" / "customer_orders.pipeline.json"
    assert path.read_text(encoding="utf-8") == dump_pipeline(pipeline)
    assert project.pipeline_names() == ["customer_orders"]
    assert project.load_pipeline("customer_orders") == pipeline


def test_only_pipeline_files_are_pipelines(tmp_path: Path) -> None:
    project = init_project(tmp_path)
    project.save_pipeline("v1.2", load_pipeline(example_document()))
    for other in ["notes.json", ".hidden.pipeline.json", "x.pipeline.json.tmp", "pipeline.json"]:
        (project.pipelines_dir / other).write_text("{}", encoding="utf-8")
    assert project.pipeline_names() == ["v1.2"]
    assert project.pipeline_path("v1.2").name == "v1.2.pipeline.json"


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "a b"])
def test_pipeline_names_cannot_leave_the_pipelines_folder(tmp_path: Path, name: str) -> None:
    project = init_project(tmp_path)
    with pytest.raises(ValidationError):
        project.save_pipeline(name, Pipeline(name="x"))
    assert list(tmp_path.rglob("*.json")) == []


def test_loading_a_missing_pipeline_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        init_project(tmp_path).load_pipeline("nothing")


def test_loading_a_broken_pipeline_file_is_a_validation_error(tmp_path: Path) -> None:
    project = init_project(tmp_path)
    project.pipeline_path("broken").write_text('{"name": ', encoding="utf-8")
    with pytest.raises(ValidationError):
        project.load_pipeline("broken")


# -- atomic writes -------------------------------------------------------------------------


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "file.json"
    atomic_write_text(target, "one\n")
    atomic_write_text(target, "two\n")
    assert target.read_bytes() == b"two\n"
    assert list((tmp_path / "deep").iterdir()) == [target]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "file.json"
    atomic_write_text(target, "old\n")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "new \ud800\n")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_write_leaves_no_temporary_when_the_rename_fails(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    (target / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        atomic_write_text(target, "text\n")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]
    assert [p.name for p in target.iterdir()] == ["inside"]


def test_atomic_move_replaces_the_old_file_by_the_new_one(tmp_path: Path) -> None:
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    atomic_write_text(old, "old\n")
    atomic_move_text(old, new, "new\n")
    assert list(tmp_path.iterdir()) == [new]
    assert new.read_text(encoding="utf-8") == "new\n"


def test_atomic_move_onto_an_existing_file_changes_nothing(tmp_path: Path) -> None:
    old, taken = tmp_path / "old.txt", tmp_path / "taken.txt"
    atomic_write_text(old, "old\n")
    atomic_write_text(taken, "taken\n")
    with pytest.raises(FileExistsError):
        atomic_move_text(old, taken, "new\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.txt", "taken.txt"]
    assert (old.read_text(), taken.read_text()) == ("old\n", "taken\n")


def test_atomic_move_without_hard_links_still_refuses_an_existing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: object, destination: object) -> None:
        raise OSError(errno.EPERM, "hard links are not supported here")

    monkeypatch.setattr(os, "link", no_links)
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    atomic_write_text(old, "old\n")
    atomic_move_text(old, new, "new\n")
    assert list(tmp_path.iterdir()) == [new]
    atomic_write_text(old, "old\n")
    with pytest.raises(FileExistsError):
        atomic_move_text(old, new, "newer\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.txt", "old.txt"]
    assert new.read_text() == "new\n"
