"""The `prophecy` command, driven as a user would: arguments in, text or JSON and exit code out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from prophecy_jupyter.cli import main
from prophecy_jupyter.model import Project

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shop"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A private copy of the example project, so runs don't touch the repository."""
    root = tmp_path / "shop"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".prophecy", "output"))
    return root


def invoke(project: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--project", str(project), *args])
    return result.exit_code, result.stdout, result.stderr


def test_init_creates_a_project_that_validates(tmp_path: Path) -> None:
    code, out, _ = invoke(tmp_path, "init", str(tmp_path / "new"), "--name", "demo")
    assert code == 0
    assert "created project 'demo'" in out
    project = Project.open(tmp_path / "new")
    assert project.config.name == "demo"
    assert (tmp_path / "new" / "pipelines").is_dir()


def test_init_refuses_to_overwrite_a_project(shop: Path) -> None:
    code, _, err = invoke(shop, "init", str(shop))
    assert code == 1
    assert "already exists" in err


def test_validate_reports_ok_for_the_example(shop: Path) -> None:
    code, out, _ = invoke(shop, "validate")
    assert code == 0
    assert out.splitlines() == [
        "channel_report: ok",
        "clean_contacts: ok",
        "customer_totals: ok",
        "top_products: ok",
    ]


def test_validate_names_gem_and_field_and_exits_1(shop: Path) -> None:
    path = shop / "pipelines" / "customer_totals.pipeline.json"
    doc = json.loads(path.read_text())
    doc["gems"][3]["properties"]["condition"] = "status = = 'x'"
    path.write_text(json.dumps(doc))
    code, out, _ = invoke(shop, "validate", "customer_totals", "--format", "json")
    assert code == 1
    (issue,) = json.loads(out)["customer_totals"]
    assert issue["gem_id"] == "shipped"
    assert issue["field"] == "/gems/3/properties/condition"
    assert issue["line"] == 1


def test_compile_prints_one_statement_per_target(shop: Path) -> None:
    code, out, _ = invoke(shop, "compile", "top_products")
    assert code == 0
    assert "-- orphan_orders" in out and "-- top_products" in out
    assert out.count("WITH ") == 2
    assert "READ_CSV('data/orders.csv', header = TRUE" in out


def test_compile_one_gem_in_another_dialect(shop: Path) -> None:
    code, out, _ = invoke(
        shop, "compile", "customer_totals", "--gem", "by_customer", "--dialect", "spark"
    )
    assert code == 0
    assert "`by_customer`" not in out  # the gem itself is the main query
    assert "GROUP BY" in out and "`order_lines`" in out


def test_compile_json_has_sql_and_columns_with_lineage(shop: Path) -> None:
    code, out, _ = invoke(shop, "compile", "customer_totals", "--format", "json")
    assert code == 0
    body = json.loads(out)["customer_totals"]
    names = [c["name"] for c in body["columns"]]
    assert names == ["customer_id", "name", "region", "orders", "total"]
    total = body["columns"][-1]
    assert ["orders", "quantity"] in total["lineage"]
    assert ["products", "price"] in total["lineage"]


def test_preview_any_gem_as_json(shop: Path) -> None:
    code, out, _ = invoke(
        shop, "preview", "customer_totals", "shipped", "--limit", "3", "--format", "json"
    )
    assert code == 0
    body = json.loads(out)
    assert len(body["rows"]) == 3
    assert body["truncated"] is True
    status = [c["name"] for c in body["columns"]].index("status")
    assert {row[status] for row in body["rows"]} == {"shipped"}


def test_run_with_parameter_writes_the_target(shop: Path) -> None:
    code, out, _ = invoke(
        shop, "run", "customer_totals", "--param", "min_total=500", "--format", "json"
    )
    assert code == 0
    (result,) = json.loads(out)
    assert result["status"] == "succeeded"
    target = next(g for g in result["gems"] if g["gem_id"] == "customer_totals")
    with duckdb.connect(str(shop / ".prophecy" / "warehouse.duckdb"), read_only=True) as con:
        totals = [r[0] for r in con.execute("select total from customer_totals").fetchall()]
    assert target["rows"] == len(totals) > 0
    assert min(totals) >= 500


def test_run_all_pipelines_and_show_rows(shop: Path) -> None:
    code, out, _ = invoke(shop, "run", "--show", "3")
    assert code == 0
    assert out.count("succeeded in") == 4
    assert "output/top_products.parquet" in out
    for written in (
        "top_products.parquet",
        "orphan_orders.csv",
        "contacts_clean.csv",
        "units_long.json",
    ):
        assert (shop / "output" / written).is_file()


def test_show_reads_back_excel_and_xml_targets(shop: Path) -> None:
    pipeline = {
        "name": "to_office",
        "gems": [
            {
                "id": "orders",
                "kind": "Source",
                "properties": {"format": "csv", "path": "data/orders.csv"},
            },
            {
                "id": "sheet",
                "kind": "Target",
                "properties": {"format": "excel", "path": "output/orders.xlsx", "sheet": "All"},
            },
            {
                "id": "doc",
                "kind": "Target",
                "properties": {
                    "format": "xml",
                    "path": "output/orders.xml",
                    "root_tag": "orders",
                    "row_tag": "order",
                },
            },
        ],
        "connections": [{"from": "orders", "to": "sheet"}, {"from": "orders", "to": "doc"}],
    }
    (shop / "pipelines" / "to_office.pipeline.json").write_text(json.dumps(pipeline))
    code, out, err = invoke(shop, "run", "to_office", "--show", "2")
    assert code == 0, err
    assert "output/orders.xlsx" in out and "output/orders.xml" in out
    assert out.count("order_id") == 2  # both read back, with their columns
    assert out.count("2 row(s) (more rows not shown)") == 2


def test_staged_run_reports_rows_for_every_gem(shop: Path) -> None:
    code, out, _ = invoke(shop, "run", "top_products", "--mode", "staged", "--format", "json")
    assert code == 0
    (result,) = json.loads(out)
    assert all(g["rows"] is not None for g in result["gems"])
    assert all(g["status"] == "succeeded" for g in result["gems"])


def test_bad_parameter_value_is_one_line_exit_1(shop: Path) -> None:
    code, _, err = invoke(shop, "run", "customer_totals", "--param", "min_total=lots")
    assert code == 1
    assert "min_total" in err and "double" in err
    assert "Traceback" not in err


def test_malformed_param_is_a_usage_error(shop: Path) -> None:
    code, _, err = invoke(shop, "run", "--param", "no-equals-sign")
    assert code == 2
    assert "name=value" in err


def test_unknown_pipeline_is_one_line_exit_1(shop: Path) -> None:
    code, _, err = invoke(shop, "preview", "nope", "gem")
    assert code == 1
    assert err.strip() == "error: project 'shop' has no pipeline 'nope'"


def test_console_script_exit_codes_and_debug_traceback(shop: Path) -> None:
    exe = Path(sys.executable).with_name("prophecy")
    quiet = subprocess.run(
        [str(exe), "--project", str(shop), "preview", "nope", "g"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert quiet.returncode == 1
    assert "Traceback" not in quiet.stderr
    loud = subprocess.run(
        [str(exe), "--debug", "--project", str(shop), "preview", "nope", "g"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert loud.returncode == 1
    assert "Traceback" in loud.stderr
    usage = subprocess.run([str(exe), "frobnicate"], capture_output=True, text=True, check=False)
    assert usage.returncode == 2
