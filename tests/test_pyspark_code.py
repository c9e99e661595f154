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
from prophecy_jupyter.connections import Connection, ConnectionStore
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.errors import ValidationError
from prophecy_jupyter.fabrics import SecretStore
from prophecy_jupyter.gems.sources import written_relation
from prophecy_jupyter.model.pipeline import load_pipeline
from prophecy_jupyter.model.project import Project, init_project
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


def _gem(gem_id: str, kind: str, **properties: Any) -> dict[str, Any]:
    return {"id": gem_id, "kind": kind, "properties": properties}


EXCEL_AND_XML = {
    "name": "excel_and_xml",
    "gems": [
        _gem("orders", "Source", format="excel", path="data/orders.xlsx", sheet="Orders"),
        _gem("big", "Filter", condition="amount > 10"),
        _gem(
            "big_xml",
            "Target",
            format="xml",
            path="output/big.xml",
            root_tag="orders",
            row_tag="order",
        ),
        _gem("items", "Source", format="xml", path="data/items.xml", row_path="/list/item"),
        _gem("items_xlsx", "Target", format="excel", path="output/items.xlsx", sheet="Items"),
    ],
    "connections": [
        {"from": "orders", "to": "big"},
        {"from": "big", "to": "big_xml"},
        {"from": "items", "to": "items_xlsx"},
    ],
}

READ_BACK = {
    "big_xml": {"format": "xml", "path": "output/big.xml", "row_path": "/orders/order"},
    "items_xlsx": {"format": "excel", "path": "output/items.xlsx", "sheet": "Items"},
}


def _excel_and_xml_project(root: Path) -> Path:
    import openpyxl

    (root / "data").mkdir(parents=True)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Orders"
    for row in [("id", "customer", "amount"), (1, "ann", 5.5), (2, "bob", 12.25), (3, "cy", 40)]:
        sheet.append(list(row))
    book.save(root / "data" / "orders.xlsx")
    (root / "data" / "items.xml").write_text(
        '<list><item sku="a1"><name>pen</name><qty>3</qty></item>'
        '<item sku="b2"><name>ink</name><qty>10</qty></item></list>',
        encoding="utf-8",
    )
    return root


def _written(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What each Target wrote under ``root``, read back through the engine's own readers."""
    written = {}
    with DuckDBEngine(":memory:", root=root) as duck:
        for target, props in READ_BACK.items():
            reader = load_pipeline(
                {"name": "back", "gems": [_gem("back", "Source", **props)], "connections": []}
            )
            compiled = compile_pipeline(reader, duck, {})
            written[target] = normalised(duck.query(compiled.query("back"))[1])
    return written


def test_excel_and_xml_code_reads_and_writes_them_with_pandas(
    tmp_path: Path, spark: SparkSession
) -> None:
    pipeline = load_pipeline(EXCEL_AND_XML)
    duck_root = _excel_and_xml_project(tmp_path / "duck")
    with DuckDBEngine(":memory:", root=duck_root) as duck:
        assert run_pipeline(pipeline, duck).status == "succeeded"
    spark_root = _excel_and_xml_project(tmp_path / "spark")
    with DuckDBEngine(":memory:", root=spark_root) as duck:
        code = pyspark_code(compile_pipeline(pipeline, duck, {}), root=spark_root)
    assert "import pandas as pd" in code
    assert "pd.read_excel(" in code and "sheet_name='Orders'" in code
    assert "pd.read_xml(" in code and "xpath='/list/item'" in code
    assert ".to_xml(" in code and "root_name='orders'" in code and "row_name='order'" in code
    assert ".to_excel(" in code and ".format('excel')" not in code
    exec(compile(code, "<excel_and_xml as PySpark>", "exec"), {"spark": spark})

    expected = _written(duck_root)
    assert expected["big_xml"] == [(2, "bob", 12.25), (3, "cy", 40)]
    assert _written(spark_root) == expected


def test_files_behind_a_connection_are_read_at_the_connections_url(
    tmp_path: Path, spark: SparkSession
) -> None:
    project = init_project(tmp_path / "shop", "shop")
    lake = _excel_and_xml_project(tmp_path / "lake")
    store = ConnectionStore(project, SecretStore(tmp_path / "user" / "secrets.json"))
    store.put(Connection(name="lake", kind="files", options={"root": str(lake)}))
    document = json.loads(json.dumps(EXCEL_AND_XML))
    for gem in document["gems"]:
        if gem["id"] in {"orders", "items", "big_xml"}:
            gem["properties"]["connection"] = "lake"
    pipeline = load_pipeline(document)
    with DuckDBEngine(":memory:", root=project.root) as duck:
        compiled = compile_pipeline(pipeline, duck, {}, connections=store.resolve)
        code = pyspark_code(compiled, root=project.root)
        # Only the Source behind the connection uses pandas here: it is imported all the same.
        assert "import pandas as pd" in pyspark_code(compiled, "big", root=project.root)
        expected = normalised(duck.query(compiled.query("big"))[1])
    assert f"pd.read_excel('{lake}/data/orders.xlsx'" in code
    assert f"pd.read_xml('{lake}/data/items.xml'" in code
    # The connection's Target is written by the engine; the code says so and writes nothing.
    assert "# big_xml: written to output/big.xml through connection 'lake'" in code
    assert "to_xml(" not in code
    namespace: dict[str, Any] = {"spark": spark}
    exec(compile(code, "<through a connection>", "exec"), namespace)
    assert normalised([tuple(r) for r in namespace["big"].collect()]) == expected
