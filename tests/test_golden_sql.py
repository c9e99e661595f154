"""The SQL every Target of the example projects compiles to, in each engine's dialect, kept in
``tests/golden/<dialect>/<project>__<pipeline>__<target>.sql`` and compared byte for byte.

For Databricks, BigQuery and Snowflake, which do not run offline, these files are the test of
the SQL the project writes for them: a change to it shows as a diff to review, and each file
must parse back with sqlglot in its dialect. The Spark and PostgreSQL statements are also
run, on a local Spark session and a throwaway PostgreSQL server, and must answer as DuckDB
does.

Regenerate the files after an intended change with::

    PROPHECY_UPDATE_GOLDEN=1 pytest tests/test_golden_sql.py
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import psycopg
import pytest
import sqlglot
from psycopg import sql as pgsql
from sqlglot import exp

from benchmarks.tpch_data import generate
from prophecy_jupyter.compiler import CompiledPipeline, compile_pipeline
from prophecy_jupyter.compiler.dialects import render
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.engines.files import FileSource, file_sources, replace_file_sources
from prophecy_jupyter.model import Project
from tests.pg_support import PostgresServer

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"
DIALECTS = ("databricks", "bigquery", "snowflake", "spark", "postgres")
PROJECTS = ("shop", "tpch")
TPCH_SCALE = 0.01
UPDATE = bool(os.environ.get("PROPHECY_UPDATE_GOLDEN"))

UNORDERED_LIMITS = {("shop", "channel_report", "units_long")}
"""Targets that keep the first rows of unordered ones: engines may keep others, so only the
number of rows is compared."""

Target = tuple[str, str, str]


def targets() -> list[Target]:
    """(project, pipeline, target) of every Target, read from the pipeline files."""
    found: list[Target] = []
    for project in PROJECTS:
        for file in sorted((EXAMPLES / project / "pipelines").glob("*.pipeline.json")):
            document = json.loads(file.read_text(encoding="utf-8"))
            pipeline = file.name.removesuffix(".pipeline.json")
            found.extend(
                (project, pipeline, g["id"]) for g in document["gems"] if g["kind"] == "Target"
            )
    return found


TARGETS = targets()
CASES = [(dialect, *target) for dialect in DIALECTS for target in TARGETS]


def golden_path(dialect: str, project: str, pipeline: str, target: str) -> Path:
    return GOLDEN / dialect / f"{project}__{pipeline}__{target}.sql"


def case_id(case: tuple[str, ...]) -> str:
    return "/".join(case)


@pytest.fixture(scope="module")
def roots() -> dict[str, Path]:
    """Where each example's relative paths resolve: the project, or the TPC-H data."""
    return {"shop": EXAMPLES / "shop", "tpch": generate(TPCH_SCALE)}


@pytest.fixture(scope="module")
def compiled(roots: dict[str, Path]) -> Iterator[dict[tuple[str, str], CompiledPipeline]]:
    """Every example pipeline compiled once, each on a DuckDB rooted in its data."""
    out: dict[tuple[str, str], CompiledPipeline] = {}
    engines = {p: DuckDBEngine(":memory:", root=roots[p]) for p in PROJECTS}
    try:
        for project, pipeline, _ in TARGETS:
            if (project, pipeline) not in out:
                loaded = Project.open(EXAMPLES / project).load_pipeline(pipeline)
                result = compile_pipeline(loaded, engines[project])
                assert result.issues == [], [str(i) for i in result.issues]
                out[(project, pipeline)] = result
        yield out
    finally:
        for engine in engines.values():
            engine.close()


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_golden_sql(
    case: tuple[str, str, str, str], compiled: dict[tuple[str, str], CompiledPipeline]
) -> None:
    dialect, project, pipeline, target = case
    written = compiled[(project, pipeline)].sql(target, dialect) + "\n"
    path = golden_path(*case)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(written, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; write it with PROPHECY_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    if written != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            written.splitlines(keepends=True),
            f"golden/{path.relative_to(GOLDEN)}",
            "compiled",
        )
        pytest.fail("compiled SQL differs from the golden file:\n" + "".join(diff), pytrace=False)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_golden_sql_parses_back_in_its_dialect(case: tuple[str, str, str, str]) -> None:
    dialect = case[0]
    parsed = sqlglot.parse(golden_path(*case).read_text(encoding="utf-8"), read=dialect)
    assert len(parsed) == 1 and isinstance(parsed[0], exp.Query)


def test_every_golden_file_is_of_a_target() -> None:
    expected = {golden_path(*case) for case in CASES}
    assert set(GOLDEN.glob("*/*.sql")) <= expected


# -- the Spark and PostgreSQL statements, run ---------------------------------------------------


def table_of(source: FileSource) -> str:
    """A table name for one file source (format, path and options)."""
    return "src_" + hashlib.sha256(repr(source).encode()).hexdigest()[:12]


def reader_sql(source: FileSource) -> str:
    path = source.path.replace("'", "''")
    if source.format == "csv":
        delimiter = source.delimiter.replace("'", "''")
        return f"read_csv('{path}', header = {source.header}, delim = '{delimiter}')"
    return f"read_{'parquet' if source.format == 'parquet' else 'json_auto'}('{path}')"


POSTGRES_TYPES = {"VARCHAR": "TEXT", "DOUBLE": "DOUBLE PRECISION", "FLOAT": "REAL"}


def postgres_type(duckdb_type: str) -> str | None:
    """The PostgreSQL column type of a DuckDB one; ``None`` for nested types."""
    if "STRUCT" in duckdb_type or "[]" in duckdb_type or "MAP" in duckdb_type:
        return None
    return POSTGRES_TYPES.get(duckdb_type, duckdb_type)


@pytest.fixture(scope="module")
def loaded(
    roots: dict[str, Path],
    compiled: dict[tuple[str, str], CompiledPipeline],
    spark: SparkSession,
    postgres: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[set[str], psycopg.Connection[Any]]]:
    """Every file the examples read, as a Spark view and (unless nested) a PostgreSQL table
    named by `table_of`; the names PostgreSQL has."""
    folder = tmp_path_factory.mktemp("sources")
    in_postgres: set[str] = set()
    pg = postgres.admin(postgres.dbname)
    for (project, _), pipeline in compiled.items():
        for target in pipeline.targets():
            for source in file_sources(pipeline.query(target)):
                name = table_of(source)
                with duckdb.connect() as local:
                    local.execute(f"SET file_search_path = '{roots[project]}'")
                    relation = local.sql(f"SELECT * FROM {reader_sql(source)}")
                    parquet = folder / f"{name}.parquet"
                    relation.write_parquet(str(parquet))
                    spark.read.parquet(str(parquet)).createOrReplaceTempView(name)
                    types = [postgres_type(str(t)) for t in relation.types]
                    if name in in_postgres or any(t is None for t in types):
                        continue
                    columns = pgsql.SQL(", ").join(
                        pgsql.SQL("{} {}").format(pgsql.Identifier(c), pgsql.SQL(t or ""))
                        for c, t in zip(relation.columns, types, strict=True)
                    )
                    pg.execute(
                        pgsql.SQL("CREATE TABLE {} ({})").format(pgsql.Identifier(name), columns)
                    )
                    with pg.cursor().copy(
                        pgsql.SQL("COPY {} FROM STDIN").format(pgsql.Identifier(name))
                    ) as copy:
                        for row in relation.fetchall():
                            copy.write_row(row)
                    in_postgres.add(name)
    yield in_postgres, pg
    pg.close()


def normal(value: Any) -> Any:
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return round(float(value), 6)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return tuple(normal(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, normal(v)) for k, v in value.items())
    return value


def rows_of(rows: list[Any]) -> list[tuple[Any, ...]]:
    return sorted((tuple(normal(v) for v in row) for row in rows), key=repr)


@pytest.mark.parametrize("target", TARGETS, ids="/".join)
@pytest.mark.parametrize("dialect", ["spark", "postgres"])
def test_statement_answers_as_on_duckdb(
    dialect: str,
    target: Target,
    roots: dict[str, Path],
    compiled: dict[tuple[str, str], CompiledPipeline],
    loaded: tuple[set[str], psycopg.Connection[Any]],
    spark: SparkSession,
) -> None:
    project, pipeline, gem_id = target
    in_postgres, pg = loaded
    query = compiled[(project, pipeline)].query(gem_id)
    sources = file_sources(query)
    if dialect == "postgres" and any(table_of(s) not in in_postgres for s in sources):
        # Nested JSON has no PostgreSQL column type: such a statement is refused at compile
        # time (tests/test_warehouse_engines.py), so there is nothing to run here.
        assert (project, pipeline) == ("shop", "channel_report"), target
        return
    with DuckDBEngine(":memory:", root=roots[project]) as engine:
        _, expected = engine.query(query)
    swapped = replace_file_sources(
        query, lambda s: exp.Table(this=exp.to_identifier(table_of(s), quoted=True))
    )
    text = render(swapped, dialect)
    answered = spark.sql(text).collect() if dialect == "spark" else pg.execute(text).fetchall()
    if target in UNORDERED_LIMITS:
        assert len(answered) == len(expected)
    else:
        assert rows_of(answered) == rows_of(expected)
