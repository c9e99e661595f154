"""Notebook runs on the run's fabric and with typed parameters, through papermill in real
Prophecy kernels; and the notebook session's default fabric from the environment."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from sqlglot import parse_one

from prophecy_jupyter.automate.notebook_parameters import (
    Declared,
    declared_parameters,
    typed_parameters,
)
from prophecy_jupyter.automate.service import Automate
from prophecy_jupyter.cli import parse_params
from prophecy_jupyter.errors import NotFound, ValidationError
from prophecy_jupyter.fabrics import Fabric, FabricStore
from prophecy_jupyter.magics.session import NotebookSession, Where
from prophecy_jupyter.model import Project
from tests.test_automate_runs import notebook
from tests.test_server_support import SHOP, copy_shop

SECOND = ".prophecy/second.duckdb"


@pytest.fixture
def automate(tmp_path: Path) -> Iterator[Automate]:
    root = tmp_path / "root"
    project = Project.open(copy_shop(root / "shop"))
    store = FabricStore(project)
    store.put(Fabric(name="second", kind="duckdb", options={"database": SECOND}))
    running = Automate(root, tick_seconds=0.05, max_workers=1)
    running.start()
    yield running
    running.stop()


def outputs(automate: Automate, run_id: str) -> list[str]:
    executed = json.loads(automate.notebook(run_id))
    return ["".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", [])]


def tables(database: Path) -> set[str]:
    if not database.is_file():
        return set()
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    return {str(row[0]) for row in rows}


def test_a_notebook_runs_on_its_fabric_and_the_next_run_on_the_default(
    automate: Automate,
) -> None:
    project = automate.root / "shop"
    notebook(
        project / "notebooks" / "load.ipynb",
        "%prophecy run customer_totals",
        "%%prophecy -o here\nSELECT current_database() AS name",
        "%%prophecy -o there --fabric in-memory\nSELECT current_database() AS name",
        "print('default', here['name'][0], 'explicit', there['name'][0])",
    )
    default, second = project / ".prophecy" / "warehouse.duckdb", project / SECOND

    run = automate.trigger("shop", notebook="notebooks/load.ipynb", fabric="second")
    done = automate.wait(run.id, 180)
    assert (done.status, done.error) == ("succeeded", None), automate.logs(run.id)
    assert done.fabric == "second"
    # A cell naming no fabric runs on the run's; one naming its fabric keeps it.
    assert "default second explicit warehouse\n" in outputs(automate, run.id)
    assert "customer_totals" in tables(second)
    assert "customer_totals" not in tables(default)

    # The next run, without a fabric, is on the project's default again.
    again = automate.trigger("shop", notebook="notebooks/load.ipynb")
    done = automate.wait(again.id, 180)
    assert (done.status, done.error, done.fabric) == ("succeeded", None, "in-memory")
    assert "default warehouse explicit warehouse\n" in outputs(automate, again.id)
    assert "customer_totals" in tables(default)


def test_a_run_on_a_fabric_the_project_lacks_fails_naming_it(automate: Automate) -> None:
    project = automate.root / "shop"
    notebook(project / "notebooks" / "load.ipynb", "print('ran')")
    (project / "schedules").mkdir()
    (project / "schedules" / "elsewhere.yml").write_text(
        yaml.safe_dump({"notebook": "notebooks/load.ipynb", "fabric": "nowhere"})
    )
    run = automate.trigger_schedule("shop", "elsewhere")
    done = automate.wait(run.id, 180)
    assert done.status == "failed"
    assert done.error == (
        "the run's fabric 'nowhere' does not exist: project 'shop' has no fabric 'nowhere'"
    )
    assert done.output is None  # it failed before the kernel started


def typed_notebook(project: Path) -> None:
    notebook(
        project / "notebooks" / "typed.ipynb",
        "print('count', type(count).__name__, count)\n"
        "print('ratio', type(ratio).__name__, ratio)\n"
        "print('enabled', type(enabled).__name__, enabled)\n"
        "print('label', type(label).__name__, label)\n"
        "print('extra', type(extra).__name__, extra)",
        parameters="count = 1\nratio = 0.25\nenabled = True\nlabel = 'all'",
    )


def test_notebook_parameters_reach_it_typed_as_its_defaults(automate: Automate) -> None:
    typed_notebook(automate.root / "shop")
    values = parse_params(["count=3", "ratio=0.5", "enabled=false", "label=x", "extra=7"])
    run = automate.trigger("shop", notebook="notebooks/typed.ipynb", parameters=values)
    done = automate.wait(run.id, 180)
    assert (done.status, done.error) == ("succeeded", None)
    assert done.parameters == values  # the run records them as given
    printed = "".join(outputs(automate, run.id))
    assert printed == (
        "count int 3\nratio float 0.5\nenabled bool False\nlabel str x\nextra str 7\n"
    )
    warnings = [line["message"] for line in automate.logs(run.id) if line["level"] == "warning"]
    assert warnings == [
        "parameter 'extra' is not declared in the notebook's parameters cell: injected as given"
    ]


def test_a_parameter_that_does_not_convert_fails_the_run_before_it_starts(
    automate: Automate,
) -> None:
    typed_notebook(automate.root / "shop")
    values = parse_params(["count=three", "extra=1"])
    run = automate.trigger("shop", notebook="notebooks/typed.ipynb", parameters=values)
    done = automate.wait(run.id, 180)
    message = "notebook parameter 'count' expects an int (its default is 1), got 'three'"
    assert (done.status, done.error) == ("failed", f"field /parameters/count: {message}")
    assert done.issues == [
        {"code": "parameter", "message": message, "field": "/parameters/count", "severity": "error"}
    ]
    assert done.output is None  # no kernel started, no executed notebook


def test_declared_types_come_from_annotations_then_defaults(tmp_path: Path) -> None:
    notebook(
        tmp_path / "book.ipynb",
        "print(1)",
        parameters="\n".join(
            [
                "count = -2  # how many",
                "ratio: float = 1",
                'label = "x"  # type: str',
                "on = False",
                "since = None",
                "regions = ['east']",
                "when = today()",
                "other: Optional[int] = None",
            ]
        ),
    )
    declared = declared_parameters(tmp_path / "book.ipynb")
    assert declared is not None
    assert {name: p.type for name, p in declared.items()} == {
        "count": "int",
        "ratio": "float",
        "label": "str",
        "on": "bool",
        "since": None,
        "regions": None,
        "when": None,
        "other": None,
    }
    notebook(tmp_path / "plain.ipynb", "print(1)")
    assert declared_parameters(tmp_path / "plain.ipynb") is None


@pytest.mark.parametrize(
    ("kind", "given", "expected"),
    [
        ("int", "42", 42),
        ("int", " -3 ", -3),
        ("int", 7, 7),
        ("int", 7.0, 7),
        ("float", "0.5", 0.5),
        ("float", 2, 2.0),
        ("float", "1e3", 1000.0),
        ("bool", "TRUE", True),
        ("bool", "No", False),
        ("bool", "1", True),
        ("bool", "0", False),
        ("bool", "yes", True),
        ("bool", False, False),
        ("str", "x", "x"),
        ("str", 5, "5"),
        ("int", None, None),
        (None, "as given", "as given"),
        (None, [1, 2], [1, 2]),
    ],
)
def test_values_convert_to_the_declared_type(kind: str | None, given: Any, expected: Any) -> None:
    typed, undeclared = typed_parameters({"p": Declared("p", kind, "d")}, {"p": given})
    assert typed == {"p": expected} and type(typed["p"]) is type(expected)
    assert undeclared == []


@pytest.mark.parametrize(
    ("kind", "given"),
    [
        ("int", "three"),
        ("int", "1.5"),
        ("int", 1.5),
        ("int", True),
        ("float", "x"),
        ("float", "nan"),
        ("float", "inf"),
        ("float", False),
        ("bool", "maybe"),
        ("bool", 2),
        ("bool", 0.5),
        ("str", [1]),
    ],
)
def test_values_that_do_not_convert_are_refused(kind: str, given: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        typed_parameters({"p": Declared("p", kind, "d")}, {"p": given})
    (issue,) = caught.value.issues
    assert issue.field == "/parameters/p"
    assert f"'p' expects a{'n' if kind == 'int' else ''} {kind}" in issue.message
    assert repr(given) in issue.message


# -- the notebook session's default fabric -------------------------------------------------
@pytest.fixture
def shop(tmp_path: Path) -> Project:
    root = tmp_path / "shop"
    shutil.copytree(SHOP, root, ignore=shutil.ignore_patterns(".prophecy", "output"))
    project = Project.open(root)
    FabricStore(project).put(Fabric(name="second", kind="duckdb", options={"database": SECOND}))
    return project


def database_of(session: NotebookSession, where: Where | None = None) -> str:
    engine = session.engine(where or Where())
    query = parse_one("SELECT current_database() AS name", read="duckdb")
    return str(engine.preview(query, 1).rows[0][0])  # type: ignore[arg-type]


def test_the_session_default_fabric_follows_the_environment(
    shop: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(shop.root / "notebooks")
    monkeypatch.delenv("PROPHECY_FABRIC_PROJECT", raising=False)
    monkeypatch.setenv("PROPHECY_FABRIC", "second")
    session = NotebookSession()
    try:
        assert database_of(session) == "second"
        assert database_of(session, Where(fabric="in-memory")) == "warehouse"
        assert database_of(session, Where(engine="duckdb")) == "warehouse"
        # Meant for another project: this one keeps its own default.
        monkeypatch.setenv("PROPHECY_FABRIC_PROJECT", str(tmp_path / "elsewhere"))
        assert database_of(NotebookSession()) == "warehouse"
        monkeypatch.setenv("PROPHECY_FABRIC_PROJECT", str(shop.root))
        assert database_of(NotebookSession()) == "second"
        monkeypatch.setenv("PROPHECY_FABRIC", "nowhere")
        with pytest.raises(NotFound) as caught:
            NotebookSession().engine()
        assert str(caught.value) == (
            "project 'shop' has no fabric 'nowhere' (the default fabric set by $PROPHECY_FABRIC)"
        )
    finally:
        session.close()
