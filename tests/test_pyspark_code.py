"""The PySpark DataFrame code of a pipeline runs on Spark and writes what the pipeline writes."""

from __future__ import annotations

import json
import math
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from prophecy_jupyter.automate.runner import run_pipeline
from prophecy_jupyter.compiler import compile_pipeline
from prophecy_jupyter.compiler.pyspark_code import pyspark_code
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.errors import ValidationError
from prophecy_jupyter.gems.sources import written_relation
from prophecy_jupyter.model.project import Project
from prophecy_jupyter.workspace import Workspace
from tests.test_server_support import copy_shop

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SHOP_PIPELINES = ["channel_report", "clean_contacts", "customer_totals", "top_products"]


@pytest.fixture
def shop(tmp_path: Path) -> Project:
    return Project.open(copy_shop(tmp_path / "shop"))


@pytest.fixture
def spark_database(spark: SparkSession) -> Iterator[str]:
    """A Spark database of the test's own, current while the test runs."""
    name = f"code_{uuid.uuid4().hex[:12]}"
    spark.sql(f"CREATE DATABASE {name}")
    previous = spark.catalog.currentDatabase()
    spark.catalog.setCurrentDatabase(name)
    yield name
    spark.catalog.setCurrentDatabase(previous)
    spark.sql(f"DROP DATABASE {name} CASCADE")


def normalised(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows compared as sets of values: floats rounded, dates and the like as text."""

    def value(v: Any) -> Any:
        if isinstance(v, float):
            return None if math.isnan(v) else round(v, 6)
        if isinstance(v, (int, str, type(None))):
            return v
        return str(v)

    return sorted((tuple(value(v) for v in row) for row in rows), key=repr)


@pytest.mark.parametrize("name", SHOP_PIPELINES)
def test_generated_code_writes_what_the_pipeline_writes(
    name: str, shop: Project, tmp_path: Path, spark: SparkSession, spark_database: str
) -> None:
    pipeline = shop.load_pipeline(name)
    with DuckDBEngine(":memory:", root=shop.root) as duck:
        compiled = compile_pipeline(pipeline, duck, {})
        code = pyspark_code(compiled, root=shop.root)
        run_pipeline(pipeline, duck)
        expected = {
            target: normalised(duck.query(written_relation(compiled.target_properties(target)))[1])
            for target in compiled.targets()
        }
    # Spark writes its own copies of the file targets beside DuckDB's.
    spark_root = tmp_path / "spark-shop"
    shutil.copytree(shop.root, spark_root, ignore=shutil.ignore_patterns("output", ".prophecy"))
    with DuckDBEngine(":memory:", root=spark_root) as duck:
        spark_code = pyspark_code(compile_pipeline(pipeline, duck, {}), root=spark_root)
    exec(compile(spark_code, f"<{name} as PySpark>", "exec"), {"spark": spark})

    for target, rows in expected.items():
        props = compiled.target_properties(target)
        if props.format == "table":
            frame = spark.table(props.table)
        else:
            reader = spark.read.format(props.format)
            if props.format == "csv":
                reader = reader.option("header", props.header).option("inferSchema", True)
            frame = reader.load(str(spark_root / props.path))
        got = normalised([tuple(row) for row in frame.collect()])
        assert len(got) == len(rows), target
        if props.format == "table":
            assert got == rows, target
    assert "spark.sql(" in code or ".where(" in code


def test_simple_gems_are_written_with_dataframe_methods(shop: Project) -> None:
    with DuckDBEngine(":memory:", root=shop.root) as duck:
        compiled = compile_pipeline(shop.load_pipeline("customer_totals"), duck, {})
    code = pyspark_code(compiled)
    assert "shipped = orders.alias('orders').where(F.expr(\"`status` = 'shipped'\"))" in code
    assert ".join(products.alias('products'), F.expr(" in code
    assert "spark.read.format('csv')" in code and "load('data/orders.csv')" in code
    assert "customer_totals" in code and ".saveAsTable('customer_totals')" in code


def test_code_for_one_gem_holds_only_what_it_needs(shop: Project) -> None:
    with DuckDBEngine(":memory:", root=shop.root) as duck:
        compiled = compile_pipeline(shop.load_pipeline("customer_totals"), duck, {})
    code = pyspark_code(compiled, "shipped")
    assert "orders = spark.read" in code and "shipped = " in code
    assert "customers" not in code and "saveAsTable" not in code


def test_the_studio_api_answers_pyspark_code(tmp_path: Path) -> None:
    copy_shop(tmp_path / "shop")
    workspace = Workspace(tmp_path)
    try:
        answer = workspace.compile(
            "shop", "customer_totals", json.dumps({"format": "pyspark", "gem": "shipped"}).encode()
        )
        with pytest.raises(ValidationError):
            workspace.compile("shop", "customer_totals", json.dumps({"format": "scala"}).encode())
    finally:
        workspace.close()
    assert answer["format"] == "pyspark"
    assert "shipped = orders.alias('orders').where(" in answer["code"]
