"""Fabrics: settings in the project, secrets only in the per-user store or the environment."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlglot import exp

from prophecy_jupyter.engines.duckdb import DuckDBEngine
from prophecy_jupyter.errors import EngineError, NotFound, ValidationError
from prophecy_jupyter.fabrics import ENGINE_OPENERS, IN_MEMORY, Fabric, FabricStore, SecretStore
from prophecy_jupyter.model import Project, init_project

SECRET = "s3cr3t-Pa55"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return init_project(tmp_path / "proj", "proj")


@pytest.fixture
def store(project: Project, tmp_path: Path) -> FabricStore:
    return FabricStore(project, SecretStore(tmp_path / "user" / "secrets.json"))


def warehouse() -> Fabric:
    return Fabric(
        name="warehouse",
        kind="postgres",
        options={"host": "127.0.0.1", "port": 5432, "user": "etl"},
        secrets=["password"],
    )


def test_in_memory_fabric_always_exists(store: FabricStore) -> None:
    (fabric,) = store.list()
    assert (fabric.name, fabric.kind) == (IN_MEMORY, "duckdb")


def test_secret_is_kept_out_of_the_project(store: FabricStore, project: Project) -> None:
    store.put(warehouse(), {"password": SECRET})
    for path in project.root.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
    assert store.get("warehouse") == warehouse()
    assert store.secret_status("warehouse") == {"password": True}
    assert store.resolve_secrets("warehouse") == {"password": SECRET}


def test_secret_store_is_private_to_its_owner(store: FabricStore) -> None:
    store.put(warehouse(), {"password": SECRET})
    mode = stat.S_IMODE(store.secrets.path.stat().st_mode)
    assert mode == 0o600


def test_environment_variable_wins_over_the_store(
    store: FabricStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put(warehouse(), {"password": SECRET})
    monkeypatch.setenv("PROPHECY_SECRET_WAREHOUSE_PASSWORD", "from-env")
    assert store.resolve_secrets("warehouse") == {"password": "from-env"}


def test_undeclared_secret_is_refused(store: FabricStore) -> None:
    with pytest.raises(ValidationError, match="not declared"):
        store.put(warehouse(), {"token": SECRET})
    with pytest.raises(NotFound):
        store.get("warehouse")


def test_removing_a_secret_and_deleting_a_fabric(store: FabricStore) -> None:
    store.put(warehouse(), {"password": SECRET})
    store.put(warehouse(), {"password": None})
    assert store.secret_status("warehouse") == {"password": False}
    store.put(warehouse(), {"password": SECRET})
    store.delete("warehouse")
    assert [f.name for f in store.list()] == [IN_MEMORY]
    assert SECRET not in store.secrets.path.read_text()


def test_the_built_in_fabric_cannot_be_replaced(store: FabricStore) -> None:
    with pytest.raises(ValidationError, match="built in"):
        store.put(Fabric(name=IN_MEMORY, kind="duckdb"))


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 65])
def test_fabric_names_cannot_leave_the_folder(store: FabricStore, name: str) -> None:
    with pytest.raises(ValidationError):
        store.get(name)


def test_invalid_fabric_file_is_a_validation_error(store: FabricStore, project: Project) -> None:
    (project.root / "fabrics").mkdir()
    (project.root / "fabrics" / "bad.yml").write_text("kind: oracle9i\n")
    with pytest.raises(ValidationError) as caught:
        store.get("bad")
    assert caught.value.issues[0].field == "/kind"


def test_default_fabric_engine_is_the_project_duckdb(store: FabricStore, project: Project) -> None:
    engine = store.engine()
    assert isinstance(engine, DuckDBEngine)
    with engine:
        engine.connection.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert (project.root / ".prophecy" / "warehouse.duckdb").is_file()


def test_a_kind_whose_engine_module_is_missing_says_it_is_not_available(
    store: FabricStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put(warehouse(), {"password": SECRET})
    monkeypatch.setitem(ENGINE_OPENERS, "postgres", "prophecy_jupyter.engines.nowhere:open")
    with pytest.raises(EngineError, match="postgres engines are not available yet"):
        store.engine("warehouse")


def test_an_engine_whose_driver_is_not_installed_says_what_to_install(
    store: FabricStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "engine_without_driver.py").write_text("import no_such_driver_package\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(ENGINE_OPENERS, "postgres", "engine_without_driver:open")
    store.put(warehouse(), {"password": SECRET})
    with pytest.raises(EngineError) as caught:
        store.engine("warehouse")
    message = str(caught.value)
    assert "no_such_driver_package" in message
    assert "pip install 'prophecy-jupyter[postgres]'" in message
    assert SECRET not in message


def test_a_postgres_fabric_that_cannot_connect_names_the_server_not_the_password(
    store: FabricStore,
) -> None:
    closed = Fabric(
        name="warehouse",
        kind="postgres",
        options={"host": "127.0.0.1", "port": 1, "user": "etl", "dbname": "shop"},
        secrets=["password"],
    )
    store.put(closed, {"password": SECRET})
    with store.engine("warehouse") as engine, pytest.raises(EngineError) as caught:
        engine.query(exp.select("1"))
    assert "cannot connect to postgres at 127.0.0.1:1" in str(caught.value)
    assert SECRET not in str(caught.value)
