"""`prophecy fabric list | add | test | import-sparkmagic`, driven as a user would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from prophecy_jupyter.cli import main
from prophecy_jupyter.fabrics import FabricStore, SecretStore
from prophecy_jupyter.model import Project, init_project
from tests.livy_server import LivyServer
from tests.spark_support import free_port

SECRET = "Sup3r-s3cret-pw"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return init_project(tmp_path / "proj", "proj")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A secret store and a sparkmagic folder of the test's own."""
    return {
        "PROPHECY_SECRETS_FILE": str(tmp_path / "user" / "secrets.json"),
        "SPARKMAGIC_CONF_DIR": str(tmp_path / "sparkmagic"),
    }


def invoke(
    project: Project, env: dict[str, str], *args: str, input: str | None = None
) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["--project", str(project.root), "fabric", *args], env=env, input=input
    )
    return result.exit_code, result.stdout, result.stderr


def listed(project: Project, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    code, out, err = invoke(project, env, "list", "--format", "json")
    assert code == 0, err
    return {entry["name"]: entry for entry in json.loads(out)}


def store(project: Project, env: dict[str, str]) -> FabricStore:
    return FabricStore(project, SecretStore(Path(env["PROPHECY_SECRETS_FILE"])))


def no_secret_in(project: Project, *outputs: str) -> None:
    for text in outputs:
        assert SECRET not in text
    for path in project.root.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


def test_list_shows_the_built_in_fabric_as_default(project: Project, env: dict[str, str]) -> None:
    code, out, _ = invoke(project, env, "list")
    assert code == 0
    assert "in-memory" in out and "duckdb" in out and "*" in out and "built-in" in out
    assert listed(project, env) == {
        "in-memory": {
            "name": "in-memory",
            "kind": "duckdb",
            "default": True,
            "secrets": {},
            "source": "built-in",
        }
    }


def test_add_keeps_secrets_out_of_the_project_and_list_shows_only_their_status(
    project: Project, env: dict[str, str]
) -> None:
    code, out, err = invoke(
        project,
        env,
        "add",
        "warehouse",
        "--kind",
        "postgres",
        "--option",
        "host=127.0.0.1",
        "--option",
        "port=5432",
        "--secret",
        f"password={SECRET}",
        "--secret",
        "token",
        "--no-prompt",
    )
    assert code == 0, err
    assert "added fabric 'warehouse' (postgres)" in out
    assert "secret token: unset" in out
    written = yaml.safe_load((project.root / "fabrics" / "warehouse.yml").read_text())
    assert written == {
        "kind": "postgres",
        "options": {"host": "127.0.0.1", "port": 5432},
        "secrets": ["password", "token"],
    }
    assert store(project, env).resolve_secrets("warehouse") == {"password": SECRET}
    entry = listed(project, env)["warehouse"]
    assert entry["secrets"] == {"password": "set", "token": "unset"}
    assert entry["source"] == "project" and entry["default"] is False
    code, text, _ = invoke(project, env, "list")
    assert "password: set, token: unset" in text
    no_secret_in(project, out, text)


def test_add_asks_for_a_secret_with_hidden_input(project: Project, env: dict[str, str]) -> None:
    code, out, err = invoke(
        project,
        env,
        "add",
        "cluster",
        "--kind",
        "livy",
        "--option",
        "url=http://127.0.0.1:1",
        "--secret",
        "password",
        input=SECRET + "\n",
    )
    assert code == 0, err
    assert "password of fabric 'cluster'" in err
    assert store(project, env).resolve_secrets("cluster") == {"password": SECRET}
    no_secret_in(project, out, err)


def test_add_takes_a_secret_from_the_environment(project: Project, env: dict[str, str]) -> None:
    with_secret = {**env, "PROPHECY_SECRET_CLUSTER_PASSWORD": SECRET}
    code, out, err = invoke(
        project, with_secret, "add", "cluster", "--kind", "livy", "--secret", "password"
    )
    assert code == 0, err
    assert "secret password: from $PROPHECY_SECRET_CLUSTER_PASSWORD" in out
    assert err == ""  # nothing was asked
    assert listed(project, with_secret)["cluster"]["secrets"] == {"password": "set"}
    assert listed(project, env)["cluster"]["secrets"] == {"password": "unset"}


def test_add_refuses_to_replace_unless_asked(project: Project, env: dict[str, str]) -> None:
    args = ("add", "local", "--kind", "duckdb", "--option", "database=:memory:")
    assert invoke(project, env, *args)[0] == 0
    code, _, err = invoke(project, env, *args)
    assert code == 1
    assert err.strip() == "error: fabric 'local' exists already (--replace to replace it)"
    code, out, _ = invoke(project, env, *args, "--replace", "--description", "scratch")
    assert code == 0 and "replaced fabric 'local'" in out
    code, _, err = invoke(project, env, "add", "Bad Name!", "--kind", "duckdb")
    assert code == 1 and "invalid fabric name" in err
    code, _, err = invoke(project, env, "add", "x", "--kind", "duckdb", "--option", "novalue")
    assert code == 2 and "NAME=VALUE" in err


def test_test_runs_select_1_with_timing(project: Project, env: dict[str, str]) -> None:
    code, out, err = invoke(project, env, "test")
    assert code == 0, err
    assert out.startswith("fabric 'in-memory' (duckdb): SELECT 1 answered in ")
    invoke(project, env, "add", "scratch", "--kind", "duckdb", "--option", "database=:memory:")
    code, out, _ = invoke(project, env, "test", "scratch", "--format", "json")
    assert code == 0
    body = json.loads(out)
    assert body["ok"] is True and body["kind"] == "duckdb" and body["seconds"] >= 0


def test_test_a_livy_fabric(project: Project, env: dict[str, str], livy_server: str) -> None:
    code, _, err = invoke(
        project, env, "add", "cluster", "--kind", "livy", "--option", f"url={livy_server}"
    )
    assert code == 0, err
    code, out, err = invoke(project, env, "test", "cluster")
    assert code == 0, err
    assert out.startswith("fabric 'cluster' (livy): SELECT 1 answered in ")


def test_test_failing_is_one_line_exit_1_without_the_secret(
    project: Project, env: dict[str, str]
) -> None:
    port = free_port()
    invoke(
        project,
        env,
        "add",
        "pg",
        "--kind",
        "postgres",
        "--option",
        "host=127.0.0.1",
        "--option",
        f"port={port}",
        "--option",
        "user=etl",
        "--secret",
        f"password={SECRET}",
    )
    code, out, err = invoke(project, env, "test", "pg")
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: fabric 'pg'")
    assert "Traceback" not in err
    no_secret_in(project, out, err)
    invoke(project, env, "add", "lv", "--kind", "livy", "--option", f"url=http://127.0.0.1:{port}")
    code, out, err = invoke(project, env, "test", "lv")
    assert code == 1
    assert err.strip() == (
        f"error: fabric 'lv': cannot reach Livy at http://127.0.0.1:{port}: Connection refused"
    )


def test_test_without_a_secret_value_says_so(project: Project, env: dict[str, str]) -> None:
    invoke(project, env, "add", "pg", "--kind", "postgres", "--secret", "password", "--no-prompt")
    code, _, err = invoke(project, env, "test", "pg")
    assert code == 1
    assert err.strip() == "error: fabric 'pg': secret 'password' has no value"
    code, _, err = invoke(project, env, "test", "nope")
    assert code == 1 and err.strip() == "error: project 'proj' has no fabric 'nope'"


def sparkmagic_config(path: Path, **credentials: dict[str, Any]) -> Path:
    """A sparkmagic config.json with the given kernels' credentials."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body: dict[str, Any] = {
        **credentials,
        "session_configs": {
            "driverMemory": "1000M",
            "executorCores": 2,
            "conf": {"spark.sql.shuffle.partitions": "2", "spark.pyspark.python": "python3"},
        },
        "custom_headers": {"X-Tenant": "shop"},
        "ignore_ssl_errors": False,
    }
    path.write_text(json.dumps(body, indent=2))
    return path


def test_sparkmagic_endpoints_are_offered_then_imported(
    project: Project, env: dict[str, str], livy_test_server: LivyServer
) -> None:
    with LivyServer(livy_test_server.spark, users={"ann": SECRET}, start_delay=0) as secured:
        basic = {"url": secured.url, "auth": "Basic_Access", "username": "ann", "password": SECRET}
        sparkmagic_config(
            Path(env["SPARKMAGIC_CONF_DIR"]) / "config.json",
            kernel_python_credentials=basic,
            kernel_scala_credentials=basic,
        )
        offered = listed(project, env)["sparkmagic"]
        assert offered["source"] == "offered (sparkmagic)"
        assert offered["secrets"] == {"password": "set"} and offered["url"] == secured.url
        code, text, _ = invoke(project, env, "list")
        assert "offered (sparkmagic)" in text
        # An offered endpoint can be tried before it is imported.
        code, out, err = invoke(project, env, "test", "sparkmagic")
        assert code == 0, err
        code, out, err = invoke(project, env, "import-sparkmagic")
        assert code == 0, err
        assert out.startswith(f"imported fabric 'sparkmagic' (livy at {secured.url}, password in ")
        written = yaml.safe_load((project.root / "fabrics" / "sparkmagic.yml").read_text())
        assert written["options"] == {
            "url": secured.url,
            "kind": "pyspark",
            "auth": "basic",
            "user": "ann",
            "driverMemory": "1000M",
            "executorCores": 2,
            "spark.sql.shuffle.partitions": "2",
            "spark.pyspark.python": "python3",
            "header.X-Tenant": "shop",
        }
        assert written["secrets"] == ["password"]
        assert store(project, env).resolve_secrets("sparkmagic") == {"password": SECRET}
        entry = listed(project, env)["sparkmagic"]
        assert entry["source"] == "project" and entry["secrets"] == {"password": "set"}
        code, out, _ = invoke(project, env, "import-sparkmagic")
        assert code == 0 and "offers no Livy endpoint" in out
        code, out, err = invoke(project, env, "test", "sparkmagic")
        assert code == 0, err
        assert "(livy): SELECT 1 answered" in out
        no_secret_in(project, out, err, text)


def test_import_sparkmagic_of_several_endpoints_from_a_given_file(
    project: Project, env: dict[str, str], tmp_path: Path
) -> None:
    config = sparkmagic_config(
        tmp_path / "elsewhere.json",
        kernel_python_credentials={"url": "http://livy-a:8998", "auth": "None"},
        kernel_scala_credentials={"url": "https://livy-b:8998/", "auth": "Kerberos"},
    )
    assert "sparkmagic-python" not in listed(project, env)  # not where sparkmagic looks
    code, out, err = invoke(project, env, "import-sparkmagic", "--config", str(config))
    assert code == 0, err
    assert out.splitlines() == [
        "imported fabric 'sparkmagic-python' (livy at http://livy-a:8998)",
        "imported fabric 'sparkmagic-scala' (livy at https://livy-b:8998)",
    ]
    scala = store(project, env).get("sparkmagic-scala")
    assert scala.options["auth"] == "kerberos" and scala.options["kind"] == "spark"
    assert scala.secrets == []
    code, _, err = invoke(project, env, "import-sparkmagic", "--config", str(tmp_path / "no.json"))
    assert code == 1 and "no sparkmagic configuration at" in err
    broken = tmp_path / "sparkmagic" / "config.json"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text("{not json")
    code, out, err = invoke(project, env, "list")
    assert code == 0 and "warning: the sparkmagic configuration" in err
