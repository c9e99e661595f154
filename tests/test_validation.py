"""Validation: every problem at once, each pointing at its gem, field and position, and the
rules that keep user expressions and parameters from becoming anything but expressions."""

from __future__ import annotations

from typing import Any

import pytest
from sqlglot import exp

from prophecy_jupyter.compiler import compile_pipeline
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.errors import Issue, ValidationError
from prophecy_jupyter.model import Pipeline
from tests.conftest import chain, gem, issues_of, make_pipeline, rows_of, seed

ORDERS = seed(
    "orders",
    [("id", "INTEGER"), ("amount", "INTEGER"), ("status", "VARCHAR")],
    [[1, 10, "open"], [2, 25, "paid"], [3, 40, "paid"]],
)
CUSTOMERS = seed("customers", [("id", "INTEGER"), ("name", "VARCHAR")], [[1, "ann"], [3, "cy"]])


def where(issue: Issue) -> tuple[str, str | None, str | None]:
    return issue.code, issue.gem_id, issue.field


def position(issue: Issue) -> tuple[int | None, int | None]:
    return issue.line, issue.column


def filtered(condition: str) -> Pipeline:
    return chain(ORDERS, gem("keep", "Filter", condition=condition))


def joined(condition: str, **extra: Any) -> Pipeline:
    return make_pipeline(
        [ORDERS, CUSTOMERS, gem("both", "Join", joins=[{"condition": condition}], **extra)],
        [("orders", "both", "in0"), ("customers", "both", "in1")],
    )


def with_parameter(
    condition: str, declared: dict[str, Any], source: dict[str, Any] = ORDERS
) -> Pipeline:
    return make_pipeline(
        [source, gem("keep", "Filter", condition=condition)],
        [(source["id"], "keep")],
        parameters=[declared],
    )


# -- one test per issue kind ---------------------------------------------------------------


def test_unknown_gem_kind(engine: DuckDBEngine) -> None:
    pipeline = chain(ORDERS, gem("shiny", "Frobnicate"))
    [issue] = issues_of(pipeline, engine)
    assert where(issue) == ("unknown_kind", "shiny", "/gems/1/kind")
    assert "Frobnicate" in issue.message


def test_missing_property(engine: DuckDBEngine) -> None:
    [issue] = issues_of(chain(ORDERS, gem("keep", "Filter")), engine)
    assert where(issue) == ("schema", "keep", "/gems/1/properties/condition")


def test_property_of_the_wrong_type_or_range(engine: DuckDBEngine) -> None:
    [issue] = issues_of(chain(ORDERS, gem("top", "Limit", count=-1)), engine)
    assert where(issue) == ("schema", "top", "/gems/1/properties/count")


def test_unknown_property(engine: DuckDBEngine) -> None:
    [issue] = issues_of(chain(ORDERS, gem("top", "Limit", count=1, cout=2)), engine)
    assert where(issue) == ("schema", "top", "/gems/1/properties/cout")


def test_nested_property_points_into_the_list(engine: DuckDBEngine) -> None:
    pipeline = chain(
        ORDERS, gem("shape", "Reformat", columns=[{"name": "id"}, {"expression": "1"}])
    )
    [issue] = issues_of(pipeline, engine)
    assert where(issue) == ("schema", "shape", "/gems/1/properties/columns/1/name")


def test_rule_across_properties_points_at_the_properties(engine: DuckDBEngine) -> None:
    [issue] = issues_of(chain(gem("raw", "Source", format="csv")), engine)
    assert where(issue) == ("schema", "raw", "/gems/0/properties")
    assert "path" in issue.message


def test_connection_from_an_unknown_gem(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [ORDERS, gem("keep", "Filter", condition="amount > 1")], [("ordres", "keep")]
    )
    [issue] = issues_of(pipeline, engine)
    assert where(issue) == ("dangling_connection", None, "/connections/0/from")
    assert "ordres" in issue.message


def test_connection_to_an_unknown_gem(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline([ORDERS], [("orders", "nowhere")])
    [issue] = issues_of(pipeline, engine)
    assert where(issue) == ("dangling_connection", None, "/connections/0/to")


def test_a_repeated_connection_to_an_unknown_gem_names_no_gem(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline([ORDERS], [("orders", "nowhere"), ("orders", "nowhere")])
    issues = issues_of(pipeline, engine)
    assert [where(i) for i in issues] == [
        ("dangling_connection", None, "/connections/0/to"),
        ("dangling_connection", None, "/connections/1/to"),
    ]


def test_duplicate_connection(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [ORDERS, gem("keep", "Filter", condition="amount > 1")],
        [("orders", "keep"), ("orders", "keep")],
    )
    [issue] = issues_of(pipeline, engine)
    assert where(issue) == ("duplicate_connection", "keep", "/connections/1")


def test_two_connections_into_one_port(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [ORDERS, CUSTOMERS, gem("keep", "Filter", condition="id > 1")],
        [("orders", "keep"), ("customers", "keep")],
    )
    [issue] = issues_of(pipeline, engine)
    assert where(issue) == ("port_taken", "keep", "/connections/1")
    assert "orders" in issue.message


def test_gap_in_the_input_ports(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [ORDERS, CUSTOMERS, gem("both", "Join", joins=[{"condition": "true"}])],
        [("orders", "both", "in0"), ("customers", "both", "in2")],
    )
    [issue] = issues_of(pipeline, engine)
    assert where(issue) == ("missing_port", "both", "/gems/2")
    assert "in1" in issue.message


@pytest.mark.parametrize(
    ("gems", "connections", "gem_id", "index"),
    [
        ([ORDERS, gem("keep", "Filter", condition="true")], [], "keep", 1),
        (
            [ORDERS, CUSTOMERS, gem("keep", "Filter", condition="true")],
            [("orders", "keep", "in0"), ("customers", "keep", "in1")],
            "keep",
            2,
        ),
        ([ORDERS, CUSTOMERS], [("orders", "customers")], "customers", 1),
        (
            [ORDERS, gem("both", "Join", joins=[{"condition": "true"}])],
            [("orders", "both")],
            "both",
            1,
        ),
    ],
    ids=["too-few", "too-many", "source-fed", "join-of-one"],
)
def test_wrong_number_of_inputs(
    engine: DuckDBEngine,
    gems: list[dict[str, Any]],
    connections: list[tuple[str, str, str]],
    gem_id: str,
    index: int,
) -> None:
    [issue] = issues_of(make_pipeline(gems, connections), engine)
    assert where(issue) == ("arity", gem_id, f"/gems/{index}")


def test_connection_out_of_a_gem_without_output(engine: DuckDBEngine) -> None:
    pipeline = chain(
        ORDERS, gem("out", "Target", table="t"), gem("keep", "Filter", condition="true")
    )
    [issue] = issues_of(pipeline, engine)
    assert where(issue) == ("no_output_port", "out", "/connections/1")


def test_cycle(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [ORDERS, gem("a", "Filter", condition="true"), gem("b", "Filter", condition="true")],
        [("a", "b"), ("b", "a")],
    )
    issues = issues_of(pipeline, engine)
    assert {where(i) for i in issues} == {("cycle", "a", "/gems/1"), ("cycle", "b", "/gems/2")}


def test_gem_feeding_itself(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [ORDERS, gem("keep", "Filter", condition="true")],
        [("orders", "keep"), ("keep", "keep", "in1")],
    )
    [issue] = issues_of(pipeline, engine)
    assert where(issue) == ("cycle", "keep", "/connections/1")


def test_duplicate_gem_id(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [ORDERS, gem("keep", "Filter", condition="true"), gem("keep", "Limit", count=1)],
        [("orders", "keep")],
    )
    issues = issues_of(pipeline, engine)
    assert [where(i) for i in issues] == [("duplicate_id", "keep", "/gems/2/id")]


def test_gem_ids_differing_only_in_case_clash(engine: DuckDBEngine) -> None:
    """SQL resolves names ignoring case, so `Keep` and `keep` would be one CTE."""
    pipeline = chain(
        ORDERS, gem("keep", "Filter", condition="amount > 1"), gem("Keep", "Limit", count=1)
    )
    [issue] = issues_of(pipeline, engine)
    assert where(issue) == ("duplicate_id", "Keep", "/gems/2/id")
    assert "keep" in issue.message


def test_duplicate_parameter_name(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [ORDERS],
        [],
        parameters=[{"name": "floor", "type": "integer"}, {"name": "Floor", "type": "string"}],
    )
    [issue] = issues_of(pipeline, engine)
    assert where(issue) == ("duplicate_parameter", None, "/parameters/1/name")


def test_syntax_error_on_the_second_line_of_a_condition(engine: DuckDBEngine) -> None:
    [issue] = issues_of(filtered("amount > 10\n  and status = = 'paid'"), engine)
    assert where(issue) == ("syntax", "keep", "/gems/1/properties/condition")
    assert position(issue) == (2, 16)


def test_unbalanced_parenthesis_is_a_syntax_error(engine: DuckDBEngine) -> None:
    [issue] = issues_of(filtered("(amount > 10\n  and status = 'paid'"), engine)
    assert issue.code == "syntax"
    assert issue.line == 2


def test_blank_expression(engine: DuckDBEngine) -> None:
    [issue] = issues_of(filtered("  \n "), engine)
    assert where(issue) == ("empty_expression", "keep", "/gems/1/properties/condition")


def test_unknown_column_with_its_position(engine: DuckDBEngine) -> None:
    [issue] = issues_of(filtered("amount > 10 and\n  stauts = 'paid'"), engine)
    assert where(issue) == ("unknown_column", "keep", "/gems/1/properties/condition")
    assert position(issue) == (2, 3)
    assert "status" in issue.message  # the columns that do exist are suggested


def test_every_unknown_column_of_an_expression_is_reported(engine: DuckDBEngine) -> None:
    issues = issues_of(filtered("amont > 1 or stat = 'x'"), engine)
    assert [(i.code, position(i)) for i in issues] == [
        ("unknown_column", (1, 1)),
        ("unknown_column", (1, 14)),
    ]


def test_unknown_column_of_a_named_input(engine: DuckDBEngine) -> None:
    [issue] = issues_of(joined("orders.id = customers.ident"), engine)
    assert where(issue) == ("unknown_column", "both", "/gems/2/properties/joins/0/condition")
    assert "customers" in issue.message


def test_column_in_two_inputs_is_ambiguous(engine: DuckDBEngine) -> None:
    issues = issues_of(joined("id = customers.id"), engine)
    assert [(where(i), position(i)) for i in issues] == [
        (("ambiguous_column", "both", "/gems/2/properties/joins/0/condition"), (1, 1))
    ]
    assert "orders.id" in issues[0].message


def test_qualified_columns_resolve_across_inputs(engine: DuckDBEngine) -> None:
    pipeline = joined(
        "orders.id = customers.id",
        columns=[{"name": "name"}, {"name": "amount", "expression": "orders.amount"}],
    )
    assert sorted(rows_of(pipeline, engine, "both")) == [("ann", 10), ("cy", 40)]


# -- expression slots hold expressions only --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "line", "column"),
    [
        ("read_csv('x')", "forbidden_function", 1, 1),
        ("amount > 1 and\n  READ_PARQUET('x.parquet') is null", "forbidden_function", 2, 3),
        ("getenv('HOME') = 'x'", "forbidden_function", 1, 1),
        ("main.read_csv('x') is null", "forbidden_function", 1, 6),
        ("\"read_json\"('x') is null", "forbidden_function", 1, 1),
        ("amount > (select 1)", "not_an_expression", None, None),
        ("exists(select 1)", "not_an_expression", None, None),
        ("(select 1)", "not_an_expression", None, None),
        ("drop table t", "not_an_expression", None, None),
        ("delete from t", "not_an_expression", None, None),
        ("attach 'x.db'", "not_an_expression", 1, 1),
        ("install httpfs", "not_an_expression", 1, 1),
        ("  detach x", "not_an_expression", 1, 3),
        ("show tables", "not_an_expression", 1, 1),
        ("; kill 1", "not_an_expression", 1, 3),
        ("values (1)", "not_an_expression", None, None),
        ("amount in (values (1))", "not_an_expression", None, None),
        ("amount > 1; drop table t", "multiple_statements", 1, 11),
        ("a; b", "multiple_statements", 1, 2),
        ("amount as y", "unexpected_alias", 1, 11),
    ],
)
def test_only_plain_expressions_fit_an_expression_slot(
    engine: DuckDBEngine, text: str, code: str, line: int | None, column: int | None
) -> None:
    [issue] = issues_of(filtered(text), engine)
    assert where(issue) == (code, "keep", "/gems/1/properties/condition")
    assert issue.line is not None
    if line is not None:
        assert position(issue) == (line, column)


def test_forbidden_functions_are_refused_in_every_expression_slot(engine: DuckDBEngine) -> None:
    pipeline = chain(
        ORDERS,
        gem("shape", "Reformat", columns=[{"name": "env", "expression": "getenv('HOME')"}]),
    )
    [issue] = issues_of(pipeline, engine)
    assert where(issue) == (
        "forbidden_function",
        "shape",
        "/gems/1/properties/columns/0/expression",
    )


# -- identifiers are quoted by the AST -------------------------------------------------------


def test_columns_named_like_keywords_or_with_spaces_work_end_to_end(engine: DuckDBEngine) -> None:
    pipeline = chain(
        seed(
            "src",
            [("select", "INTEGER"), ("My Col", "VARCHAR"), ("from", "INTEGER")],
            [[1, "a", 10], [5, "b", 20], [7, "b", 30]],
        ),
        gem("keep", "Filter", condition='"select" > 2 and "my col" = \'b\''),
        gem(
            "shape",
            "Reformat",
            columns=[{"name": "My Col"}, {"name": "where", "expression": '"select" + "from"'}],
        ),
        gem(
            "total",
            "Aggregate",
            group_by=[{"expression": '"My Col"'}],
            aggregates=[{"name": "group", "expression": 'sum("where")'}],
        ),
    )
    assert rows_of(pipeline, engine, "keep") == [(5, "b", 20), (7, "b", 30)]
    assert rows_of(pipeline, engine, "total") == [("b", 62)]
    sql = compile_pipeline(pipeline, engine).sql("total", pretty=False)
    assert '"select" + "from" AS "where"' in sql
    assert "\"My Col\" = 'b'" in sql  # spelled as the schema spells it, not as typed


def test_every_column_reference_in_generated_sql_is_quoted(engine: DuckDBEngine) -> None:
    pipeline = chain(ORDERS, gem("keep", "Filter", condition="amount > 10 and STATUS = 'paid'"))
    query = compile_pipeline(pipeline, engine).query("keep")
    columns = list(query.find_all(exp.Column))
    assert {c.name for c in columns} == {"id", "amount", "status"}
    assert all(c.this.quoted for c in columns if isinstance(c.this, exp.Identifier))


def test_gem_ids_that_are_keywords_work_as_cte_names(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [
            seed("select", [("id", "INTEGER")], [[1], [2]]),
            seed("order", [("id", "INTEGER")], [[2]]),
            gem(
                "join",
                "Join",
                joins=[{"condition": '"select".id = "order".id'}],
                columns=[{"name": "id", "expression": '"order".id'}],
            ),
        ],
        [("select", "join", "in0"), ("order", "join", "in1")],
    )
    assert rows_of(pipeline, engine, "join") == [(2,)]


# -- parameters are typed literals in the AST -------------------------------------------------


def literals_in(
    pipeline: Pipeline, engine: DuckDBEngine, gem_id: str, **params: Any
) -> list[exp.Expr]:
    compiled = compile_pipeline(pipeline, engine, params)
    assert compiled.issues == [], [str(i) for i in compiled.issues]
    condition = compiled.query(gem_id).args["where"].this
    assert not list(condition.find_all(exp.Placeholder, exp.Parameter))
    return list(condition.find_all(exp.Literal, exp.Boolean, exp.Cast))


def test_string_parameter_with_a_quote_stays_one_literal(engine: DuckDBEngine) -> None:
    people = seed("people", [("name", "VARCHAR")], [["O'Brien"], ["OBrien"], ["O"]])
    pipeline = with_parameter("name = $who", {"name": "who", "type": "string"}, people)
    [literal] = literals_in(pipeline, engine, "keep", who="O'Brien")
    assert isinstance(literal, exp.Literal) and literal.is_string
    assert literal.this == "O'Brien"
    assert rows_of(pipeline, engine, "keep", who="O'Brien") == [("O'Brien",)]


def test_injection_through_a_string_parameter_only_ever_compares_as_text(
    engine: DuckDBEngine,
) -> None:
    engine.connection.execute("create table x as select 1 as v")
    rows = seed("r", [("status", "VARCHAR")], [["1; drop table x"], ["1"], ["paid"]])
    pipeline = with_parameter("status = $s", {"name": "s", "type": "string"}, rows)
    for attempt in ["1; drop table x", "1' or '1'='1", "'); drop table x; --"]:
        [literal] = literals_in(pipeline, engine, "keep", s=attempt)
        assert literal.this == attempt
        expected = [("1; drop table x",)] if attempt == "1; drop table x" else []
        assert rows_of(pipeline, engine, "keep", s=attempt) == expected
    sql = compile_pipeline(pipeline, engine, {"s": "1; drop table x"}).query("keep")
    assert not list(sql.find_all(exp.Drop))
    assert engine.table_exists("x")


@pytest.mark.parametrize(
    ("kind", "column_type", "values", "condition", "value", "kept", "node"),
    [
        ("integer", "INTEGER", [1, 5, 9], "v >= $p", 5, [5, 9], exp.Literal),
        ("integer", "INTEGER", [-3, 0, 2], "v > $p", -1, [0, 2], exp.Literal),
        ("double", "DOUBLE", [0.5, 1.5, 2.5], "v > $p", 1.25, [1.5, 2.5], exp.Literal),
        ("boolean", "BOOLEAN", [True, False], "v = $p", False, [False], exp.Boolean),
        (
            "date",
            "DATE",
            ["2024-01-01", "2024-03-01"],
            "v > $p",
            "2024-02-01",
            ["2024-03-01"],
            exp.Cast,
        ),
        (
            "timestamp",
            "TIMESTAMP",
            ["2024-01-01 08:00:00", "2024-01-01 18:00:00"],
            "v > $p",
            "2024-01-01T12:00:00",
            ["2024-01-01 18:00:00"],
            exp.Cast,
        ),
    ],
)
def test_parameters_bind_as_typed_literals(
    engine: DuckDBEngine,
    kind: str,
    column_type: str,
    values: list[Any],
    condition: str,
    value: Any,
    kept: list[Any],
    node: type[exp.Expr],
) -> None:
    source = seed("src", [("v", column_type)], [[v] for v in values])
    pipeline = with_parameter(condition, {"name": "p", "type": kind, "default": value}, source)
    bound = literals_in(pipeline, engine, "keep")
    assert isinstance(bound[0], node)
    if node is exp.Literal:
        assert not bound[0].is_string
    rows = [
        str(r[0]) if kind in {"date", "timestamp"} else r[0]
        for r in rows_of(pipeline, engine, "keep")
    ]
    assert rows == kept


@pytest.mark.parametrize(
    ("kind", "text", "kept"),
    [
        ("integer", "20", [25, 40]),
        ("integer", " -5 ", [10, 25, 40]),
        ("double", "24.5", [25, 40]),
        ("double", "1e1", [25, 40]),
    ],
)
def test_parameter_overrides_arrive_as_strings_like_from_the_cli(
    engine: DuckDBEngine, kind: str, text: str, kept: list[int]
) -> None:
    pipeline = with_parameter("amount > $floor", {"name": "floor", "type": kind, "default": 100})
    assert rows_of(pipeline, engine, "keep") == []
    assert [r[1] for r in rows_of(pipeline, engine, "keep", floor=text)] == kept


@pytest.mark.parametrize(("text", "kept"), [("true", ["paid"]), ("no", ["open"]), ("1", ["paid"])])
def test_boolean_overrides_from_strings(engine: DuckDBEngine, text: str, kept: list[str]) -> None:
    pipeline = with_parameter("(status = 'paid') = $paid", {"name": "paid", "type": "boolean"})
    assert sorted({r[2] for r in rows_of(pipeline, engine, "keep", paid=text)}) == kept


def test_parameter_names_ignore_case(engine: DuckDBEngine) -> None:
    pipeline = with_parameter(
        "amount > $FLOOR", {"name": "floor", "type": "integer", "default": 30}
    )
    assert [r[0] for r in rows_of(pipeline, engine, "keep", Floor="20")] == [2, 3]


def test_parameter_without_a_value_is_a_typed_null(engine: DuckDBEngine) -> None:
    pipeline = with_parameter("status = $s or $s is null", {"name": "s", "type": "string"})
    [cast, _] = [n for n in literals_in(pipeline, engine, "keep") if isinstance(n, exp.Cast)]
    assert cast.to.is_type(exp.DataType.Type.VARCHAR)
    assert len(rows_of(pipeline, engine, "keep")) == 3


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("integer", "2.5"),
        ("integer", "ten"),
        ("integer", True),
        ("double", "inf"),
        ("double", "NaN"),
        ("double", "-Infinity"),
        ("boolean", "maybe"),
        ("date", "2024-13-01"),
        ("timestamp", "yesterday"),
    ],
)
def test_a_bad_parameter_value_is_one_issue_naming_the_parameter(
    engine: DuckDBEngine, kind: str, value: Any
) -> None:
    pipeline = with_parameter("$floor is not null", {"name": "floor", "type": kind})
    [issue] = issues_of(pipeline, engine, floor=value)
    assert where(issue) == ("parameter", None, "/parameters/0")
    assert "floor" in issue.message


def test_a_bad_default_points_at_the_default(engine: DuckDBEngine) -> None:
    pipeline = with_parameter(
        "amount > $floor", {"name": "floor", "type": "integer", "default": "x"}
    )
    [issue] = issues_of(pipeline, engine)
    assert where(issue) == ("parameter", None, "/parameters/0/default")


def test_a_value_for_an_undeclared_parameter(engine: DuckDBEngine) -> None:
    pipeline = with_parameter("amount > $floor", {"name": "floor", "type": "integer", "default": 1})
    [issue] = issues_of(pipeline, engine, ceiling="3")
    assert where(issue) == ("unknown_parameter", None, "/parameters")
    assert "ceiling" in issue.message


def test_an_undeclared_parameter_in_an_expression_has_its_position(engine: DuckDBEngine) -> None:
    pipeline = with_parameter(
        "amount > $floor\n  and status = $state", {"name": "floor", "type": "integer", "default": 1}
    )
    [issue] = issues_of(pipeline, engine)
    assert where(issue) == ("unknown_parameter", "keep", "/gems/1/properties/condition")
    assert position(issue) == (2, 16)
    assert "$state" in issue.message


@pytest.mark.parametrize(
    ("condition", "code", "at"),
    [
        ("amount > $floor\n  and stauts = 'paid'", "unknown_column", (2, 7)),
        ("amount > $floor\n\n  and status = = 'paid'", "syntax", (3, 16)),
        ("amount > $floor and\n  read_csv('x') is null", "forbidden_function", (2, 3)),
    ],
)
def test_positions_after_a_parameter_stay_on_their_own_line(
    engine: DuckDBEngine, condition: str, code: str, at: tuple[int, int]
) -> None:
    pipeline = with_parameter(condition, {"name": "floor", "type": "integer", "default": 1})
    [issue] = issues_of(pipeline, engine)
    assert (issue.code, position(issue)) == (code, at)


# -- every problem at once, and no cascades ---------------------------------------------------


def test_four_distinct_mistakes_give_four_issues(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [
            ORDERS,
            gem("keep", "Filter", condition="amount >"),
            gem("shape", "Reformat", columns=[{"name": "x", "expression": "nope + 1"}]),
            gem("mystery", "Sparkle"),
            gem("top", "Limit", count="many"),
        ],
        [("orders", "keep"), ("orders", "shape"), ("orders", "mystery"), ("orders", "top")],
    )
    issues = issues_of(pipeline, engine)
    assert sorted(where(i) for i in issues) == [
        ("schema", "top", "/gems/4/properties/count"),
        ("syntax", "keep", "/gems/1/properties/condition"),
        ("unknown_column", "shape", "/gems/2/properties/columns/0/expression"),
        ("unknown_kind", "mystery", "/gems/3/kind"),
    ]
    with pytest.raises(ValidationError) as caught:
        compile_pipeline(pipeline, engine).raise_for_issues()
    assert len(caught.value.issues) == 4
    assert caught.value.to_dict()["issues"][0]["gem_id"]


@pytest.mark.parametrize(
    "broken",
    [
        gem("middle", "Filter", condition="amount >"),
        gem("middle", "Filter", condition="nope > 1"),
        gem("middle", "Filter"),
        gem("middle", "Sparkle"),
        gem("middle", "Limit", count=1, extra=True),
    ],
    ids=["syntax", "column", "missing-property", "unknown-kind", "unknown-property"],
)
def test_a_failing_gem_does_not_cascade_to_its_downstream_gems(
    engine: DuckDBEngine, broken: dict[str, Any]
) -> None:
    pipeline = chain(
        ORDERS,
        broken,
        gem("after", "Filter", condition="amount > 1"),
        gem("out", "Target", table="t"),
    )
    issues = issues_of(pipeline, engine)
    assert [i.gem_id for i in issues] == ["middle"]


KEEP = gem("keep", "Filter", condition="amount > 1")


@pytest.mark.parametrize(
    ("gems", "connections", "code"),
    [
        ([ORDERS, KEEP], [("ordres", "keep")], "dangling_connection"),
        (
            [ORDERS, gem("out", "Target", table="t"), KEEP],
            [("orders", "out"), ("out", "keep")],
            "no_output_port",
        ),
        ([ORDERS, KEEP], [("keep", "keep")], "cycle"),
    ],
    ids=["dangling", "no-output", "self"],
)
def test_a_rejected_connection_is_not_reported_again_as_a_missing_input(
    engine: DuckDBEngine,
    gems: list[dict[str, Any]],
    connections: list[tuple[str, str]],
    code: str,
) -> None:
    issues = issues_of(make_pipeline(gems, connections), engine)
    assert [i.code for i in issues] == [code]


def test_a_duplicate_gem_is_reported_once_not_through_its_connections(engine: DuckDBEngine) -> None:
    pipeline = chain(
        ORDERS, gem("Orders", "Filter", condition="amount > 1"), gem("keep", "Limit", count=1)
    )
    assert [where(i) for i in issues_of(pipeline, engine)] == [
        ("duplicate_id", "Orders", "/gems/1/id")
    ]


def test_a_bad_parameter_is_not_reported_again_where_it_is_used(engine: DuckDBEngine) -> None:
    pipeline = make_pipeline(
        [
            ORDERS,
            gem("a", "Filter", condition="amount > $floor"),
            gem("b", "Filter", condition="$floor < 3"),
        ],
        [("orders", "a"), ("a", "b")],
        parameters=[{"name": "floor", "type": "integer", "default": "lots"}],
    )
    assert [i.code for i in issues_of(pipeline, engine)] == ["parameter"]


def test_issues_carry_the_shape_the_front_doors_show(engine: DuckDBEngine) -> None:
    [issue] = issues_of(filtered("amount > 10 and\n  stauts = 'paid'"), engine)
    assert issue.to_dict() == {
        "code": "unknown_column",
        "message": issue.message,
        "gem_id": "keep",
        "field": "/gems/1/properties/condition",
        "line": 2,
        "column": 3,
        "severity": "error",
    }
    assert str(issue).startswith(
        "gem 'keep', field /gems/1/properties/condition, line 2, column 3: "
    )


# -- column descriptions --------------------------------------------------------------------


def test_describing_a_column_the_gem_does_not_output_is_a_warning(engine: DuckDBEngine) -> None:
    described = {
        **gem("keep", "Filter", condition="amount > 10"),
        "columns": {"AMOUNT": {"description": "in cents"}, "amout": {"description": "typo"}},
    }
    compiled = compile_pipeline(chain(ORDERS, described), engine)
    [issue] = compiled.issues
    assert where(issue) == ("unknown_column", "keep", "/gems/1/columns/amout")
    assert issue.severity == "warning"
    assert issue.message == "gem 'keep' describes column 'amout', which it does not output"
    assert compiled.ok  # a warning: the pipeline still compiles and runs
    assert compiled.gems["keep"].output is not None


def test_a_described_column_name_is_escaped_in_the_pointer(engine: DuckDBEngine) -> None:
    described = {**ORDERS, "columns": {"a/b~c": {"description": "x"}, "id": {"description": "y"}}}
    [issue] = issues_of(chain(described), engine)
    assert where(issue) == ("unknown_column", "orders", "/gems/0/columns/a~1b~0c")


def test_a_gem_that_does_not_build_is_not_checked_for_described_columns(
    engine: DuckDBEngine,
) -> None:
    broken = {**gem("keep", "Filter", condition="nope > 1"), "columns": {"x": {"description": "x"}}}
    issues = issues_of(chain(ORDERS, broken), engine)
    assert [(i.code, i.severity) for i in issues] == [("unknown_column", "error")]
