"""SQLStatement, run on DuckDB."""

from __future__ import annotations

from typing import Any

import pytest

from prophecy_jupyter.compiler import Column, compile_pipeline
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.errors import EngineError, Issue
from prophecy_jupyter.model import Pipeline
from tests.conftest import chain, gem, issues_of, make_pipeline, rows_of, seed


def orders() -> dict[str, Any]:
    return seed(
        "orders",
        [("id", "INTEGER"), ("customer_id", "INTEGER"), ("amount", "DOUBLE")],
        [[1, 1, 10.0], [2, 1, 5.5], [3, 2, 1.0]],
    )


def customers() -> dict[str, Any]:
    return seed("customers", [("id", "INTEGER"), ("name", "VARCHAR")], [[1, "ann"], [2, "bob"]])


def statement(query: str, parameters: list[dict[str, Any]] | None = None) -> Pipeline:
    """A SQLStatement ``q`` fed by orders (in0) and customers (in1)."""
    return make_pipeline(
        [orders(), customers(), gem("q", "SQLStatement", query=query)],
        [("orders", "q", "in0"), ("customers", "q", "in1")],
        parameters=parameters or [],
    )


def unordered(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=repr)


def schema(pipeline: Pipeline, engine: DuckDBEngine) -> list[tuple[str, str]]:
    return [(c.name, c.type) for c in compile_pipeline(pipeline, engine).columns("q")]


def only_issue(pipeline: Pipeline, engine: DuckDBEngine) -> Issue:
    issues = issues_of(pipeline, engine)
    assert len(issues) == 1, [str(i) for i in issues]
    assert issues[0].gem_id == "q"
    assert issues[0].field == "/gems/2/properties/query"
    return issues[0]


def test_sql_statement_reads_its_inputs_by_gem_id(engine: DuckDBEngine) -> None:
    pipeline = statement(
        "select c.name, sum(o.amount) as total, count(*) as n "
        "from orders o join customers c on c.id = o.customer_id group by c.name"
    )
    assert unordered(rows_of(pipeline, engine, "q")) == [("ann", 15.5, 2), ("bob", 1.0, 1)]
    assert compile_pipeline(pipeline, engine).columns("q") == [
        Column("name", "VARCHAR", frozenset({("customers", "name")})),
        Column("total", "DOUBLE", frozenset({("orders", "amount")})),
        Column("n", "BIGINT", frozenset()),
    ]


def test_sql_statement_reads_its_inputs_by_port_name(engine: DuckDBEngine) -> None:
    pipeline = statement(
        "select in1.name, in0.amount from in0 join in1 on in1.id = in0.customer_id"
    )
    assert unordered(rows_of(pipeline, engine, "q")) == [
        ("ann", 10.0),
        ("ann", 5.5),
        ("bob", 1.0),
    ]
    assert compile_pipeline(pipeline, engine).columns("q") == [
        Column("name", "VARCHAR", frozenset({("customers", "name")})),
        Column("amount", "DOUBLE", frozenset({("orders", "amount")})),
    ]


def test_sql_statement_expands_a_star_over_an_input(engine: DuckDBEngine) -> None:
    pipeline = statement("select * from orders where amount > 2")
    assert unordered(rows_of(pipeline, engine, "q")) == [(1, 1, 10.0), (2, 1, 5.5)]
    assert compile_pipeline(pipeline, engine).columns("q") == [
        Column("id", "INTEGER", frozenset({("orders", "id")})),
        Column("customer_id", "INTEGER", frozenset({("orders", "customer_id")})),
        Column("amount", "DOUBLE", frozenset({("orders", "amount")})),
    ]


def test_sql_statement_may_define_its_own_ctes_and_unions(engine: DuckDBEngine) -> None:
    pipeline = statement(
        "with big as (select id, amount from orders where amount > 5) "
        "select id, amount from big union all select 0, 0"
    )
    assert unordered(rows_of(pipeline, engine, "q")) == [(0, 0.0), (1, 10.0), (2, 5.5)]
    assert schema(pipeline, engine) == [("id", "INTEGER"), ("amount", "DOUBLE")]


def test_sql_statement_binds_pipeline_parameters_as_literals(engine: DuckDBEngine) -> None:
    pipeline = statement(
        "select id from orders where amount >= $min_amount",
        parameters=[{"name": "min_amount", "type": "double", "default": 5}],
    )
    assert unordered(rows_of(pipeline, engine, "q", min_amount=6)) == [(1,)]
    assert schema(pipeline, engine) == [("id", "INTEGER")]


def test_sql_statement_runs_without_inputs(engine: DuckDBEngine) -> None:
    pipeline = chain(gem("q", "SQLStatement", query="select x, x * 2 as y from range(3) t(x)"))
    assert unordered(rows_of(pipeline, engine, "q")) == [(0, 0), (1, 2), (2, 4)]
    assert schema(pipeline, engine) == [("x", "BIGINT"), ("y", "BIGINT")]


def test_sql_statement_types_its_output_without_reading_data(engine: DuckDBEngine) -> None:
    engine.connection.execute("CREATE TABLE raw AS SELECT 'not a number' AS s")
    pipeline = chain(
        gem("raw", "Source", format="table", table="raw"),
        gem("q", "SQLStatement", query="select cast(s as integer) as i from raw"),
    )
    assert schema(pipeline, engine) == [("i", "INTEGER")]
    with pytest.raises(EngineError, match="Conversion Error"):
        rows_of(pipeline, engine, "q")


def test_sql_statement_sql_transpiles_to_spark(engine: DuckDBEngine) -> None:
    pipeline = statement("select in0.id, list_value(in0.amount) as xs from in0")
    compiled = compile_pipeline(pipeline, engine)
    assert "FROM `orders` AS `in0`" in compiled.sql("q", dialect="spark")


def test_sql_statement_reports_a_syntax_error_with_its_position(engine: DuckDBEngine) -> None:
    issue = only_issue(statement("select id,\n  amount +\nfrom orders"), engine)
    assert (issue.code, issue.line) == ("syntax", 3)


def test_sql_statement_rejects_more_than_one_statement(engine: DuckDBEngine) -> None:
    issue = only_issue(statement("select 1; select 2"), engine)
    assert issue.code == "multiple_statements"


@pytest.mark.parametrize(
    "query",
    [
        "insert into orders values (4, 1, 2.0)",
        "create table t as select * from orders",
        "drop table orders",
        "delete from orders",
        "update orders set amount = 0",
        "attach 'other.db' as other",
        "pragma version",
        "copy orders to 'out.csv'",
        "set threads = 1",
    ],
)
def test_sql_statement_rejects_anything_but_a_query(engine: DuckDBEngine, query: str) -> None:
    assert only_issue(statement(query), engine).code == "not_a_query"


def test_sql_statement_rejects_a_statement_hidden_in_a_subquery(engine: DuckDBEngine) -> None:
    issue = only_issue(statement("select * from (describe orders)"), engine)
    assert (issue.code, issue.line, issue.column) == ("not_a_query", 1, 25)


def test_sql_statement_rejects_select_into(engine: DuckDBEngine) -> None:
    assert only_issue(statement("select * into copy from orders"), engine).code == "not_a_query"


def test_sql_statement_rejects_a_file_reading_function(engine: DuckDBEngine) -> None:
    issue = only_issue(statement("select *\nfrom read_csv('secrets.csv')"), engine)
    assert (issue.code, issue.line) == ("forbidden_function", 2)


def test_sql_statement_rejects_a_catalog_table_function(engine: DuckDBEngine) -> None:
    issue = only_issue(statement("select * from duckdb_tables()"), engine)
    assert issue.code == "table_function"


def test_sql_statement_rejects_a_catalog_table_that_is_not_an_input(
    engine: DuckDBEngine,
) -> None:
    engine.connection.execute("CREATE TABLE payroll AS SELECT 1 AS salary")
    issue = only_issue(statement("select o.id\nfrom orders o, payroll"), engine)
    assert (issue.code, issue.line, issue.column) == ("unknown_table", 2, 16)


def test_sql_statement_rejects_a_qualified_table_name(engine: DuckDBEngine) -> None:
    issue = only_issue(statement("select * from main.orders"), engine)
    assert issue.code == "unknown_table"


def test_sql_statement_rejects_a_file_path_as_a_table(engine: DuckDBEngine) -> None:
    issue = only_issue(statement("select * from 'orders.csv'"), engine)
    assert issue.code == "unknown_table"


def test_sql_statement_rejects_an_upstream_gem_that_is_not_its_input(
    engine: DuckDBEngine,
) -> None:
    pipeline = chain(
        orders(),
        gem("cheap", "Filter", condition="amount < 5"),
        gem("q", "SQLStatement", query="select * from orders"),
    )
    issues = issues_of(pipeline, engine)
    assert [(i.code, i.gem_id, i.field) for i in issues] == [
        ("unknown_table", "q", "/gems/2/properties/query")
    ]


def test_sql_statement_rejects_a_cte_used_outside_its_scope(engine: DuckDBEngine) -> None:
    engine.connection.execute("CREATE TABLE x AS SELECT 42 AS a")
    query = "select * from (with x as (select 1 as a) select * from x) union all select * from x"
    assert only_issue(statement(query), engine).code == "unknown_table"


def test_sql_statement_rejects_a_cte_named_like_an_input(engine: DuckDBEngine) -> None:
    query = "with orders as (select * from in0 where amount > 2) select * from orders"
    assert only_issue(statement(query), engine).code == "shadowed_input"


def test_sql_statement_rejects_an_unknown_parameter(engine: DuckDBEngine) -> None:
    issue = only_issue(statement("select id from orders where amount > $limit"), engine)
    assert issue.code == "unknown_parameter"


def test_sql_statement_reports_an_unknown_column_with_its_position(engine: DuckDBEngine) -> None:
    issue = only_issue(statement("select id,\n       price from orders"), engine)
    assert (issue.code, issue.line, issue.column) == ("invalid_sql", 2, 8)


def test_sql_statement_rejects_duplicate_output_columns(engine: DuckDBEngine) -> None:
    query = "select o.id, c.id from orders o join customers c on c.id = o.customer_id"
    issue = only_issue(statement(query), engine)
    assert issue.code == "duplicate_column"


def test_sql_statement_rejects_an_empty_query(engine: DuckDBEngine) -> None:
    issues = issues_of(statement(""), engine)
    assert [(i.code, i.gem_id, i.field) for i in issues] == [
        ("schema", "q", "/gems/2/properties/query")
    ]


def test_sql_statement_rejects_a_name_that_is_both_a_gem_id_and_a_port(
    engine: DuckDBEngine,
) -> None:
    pipeline = make_pipeline(
        [
            seed("in1", [("a", "INTEGER")], [[1]]),
            seed("other", [("a", "INTEGER")], [[2]]),
            gem("q", "SQLStatement", query="select a from in1"),
        ],
        [("in1", "q", "in0"), ("other", "q", "in1")],
    )
    assert only_issue(pipeline, engine).code == "ambiguous_input"
