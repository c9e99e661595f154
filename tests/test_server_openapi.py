"""The shipped OpenAPI spec and the server agree: same routes, and every answer conforms.

Schemathesis generates requests from ``openapi.yaml`` (valid ones and invalid ones) and sends
them to a real Jupyter server over a copy of the shop example; each response must be a
documented status with a body matching its schema, and never a server error.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings

from prophecy_jupyter.model import pipeline_json_schema
from prophecy_jupyter.server import OPENAPI_SPEC, ROUTES
from prophecy_jupyter.server.handlers import ProphecyHandler
from prophecy_jupyter.server.launcher import ServerProcess
from prophecy_jupyter.workspace import DIALECTS
from tests.test_server_support import shop_server

SPEC: dict[str, Any] = yaml.safe_load(OPENAPI_SPEC.read_text(encoding="utf-8"))
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

CONFIG = schemathesis.Config.from_dict(
    {
        # Unknown query arguments are refused (tested on their own), but an extra argument
        # the client drops while encoding it would count as accepted.
        "generation": {"max-examples": 20, "allow-extra-parameters": False},
        "checks": {
            # Valid by the spec is not valid by the core: gem properties, graph rules and
            # ETags cannot be written in JSON Schema, so 412 and 422 answer well-formed input.
            "positive_data_acceptance": {"expected-statuses": ["2xx", "404", "409", "412", "422"]},
            # If-Match is required, and its absence has a status of its own.
            "missing_required_header": {"expected-statuses": ["428"]},
        },
    }
)
schema = schemathesis.openapi.from_path(OPENAPI_SPEC, config=CONFIG)


def implemented_methods(handler: type[ProphecyHandler]) -> set[str]:
    return {m.lower() for m in handler.allowed_methods()}


def test_every_route_is_in_the_spec_with_the_same_methods() -> None:
    routes = {template: implemented_methods(handler) for template, handler in ROUTES}
    documented = {
        path: {m for m in operations if m in METHODS} for path, operations in SPEC["paths"].items()
    }
    assert routes == documented


def test_the_spec_shows_the_pipeline_document_schema_the_model_validates() -> None:
    model = pipeline_json_schema()
    definitions = model.pop("$defs")
    model.pop("$schema")
    components = copy.deepcopy(SPEC["components"]["schemas"])
    rewritten = yaml.safe_load(
        yaml.safe_dump(components).replace("#/components/schemas/", "#/$defs/")
    )
    assert rewritten["Pipeline"] == model
    for name, definition in definitions.items():
        assert rewritten[name] == definition, name


def test_the_spec_lists_exactly_the_dialects_the_server_accepts() -> None:
    dialect = SPEC["components"]["schemas"]["CompileRequest"]["properties"]["dialect"]
    assert dialect["enum"] == list(DIALECTS)


def test_the_spec_patterns_match_the_servers_names() -> None:
    from prophecy_jupyter.fabrics import FABRIC_NAME
    from prophecy_jupyter.model.project import PIPELINE_NAME

    schemas = SPEC["components"]["schemas"]
    parameters = SPEC["components"]["parameters"]
    assert schemas["PipelineName"]["pattern"] == PIPELINE_NAME.pattern
    assert parameters["FabricName"]["schema"]["pattern"] == FABRIC_NAME
    assert re.fullmatch(parameters["RunId"]["schema"]["pattern"], "0123456789abcdef" * 2)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with shop_server(tmp_path_factory.mktemp("openapi")) as running:
        yield running


def test_each_operations_success_conforms_to_the_spec(server: ServerProcess) -> None:
    """One successful call of every operation, each answer validated against the spec (the
    generated requests above rarely hit a success of, say, a run)."""
    seen: set[tuple[str, str]] = set()

    def call(method: str, template: str, path: str | None = None, **kwargs: Any) -> Any:
        response = requests.request(
            method,
            server.api + (path or template),
            headers={**server.headers, **kwargs.pop("headers", {})},
            timeout=120,
            **kwargs,
        )
        assert 200 <= response.status_code < 300, (method, template, response.text)
        assert str(response.status_code) in SPEC["paths"][template][method.lower()]["responses"]
        schema[template][method].validate_response(response)
        seen.add((template, method.lower()))
        return response

    call("GET", "/gems")
    call("GET", "/projects")
    call("GET", "/project")
    call("GET", "/pipelines")
    document = call("GET", "/pipelines/{name}", "/pipelines/customer_totals").json()
    created = call("POST", "/pipelines", json={**document, "name": "copy"})
    named = "/pipelines/copy"
    updated = call(
        "PUT",
        "/pipelines/{name}",
        named,
        json={**document, "name": "copy"},
        headers={"If-Match": created.headers["ETag"]},
    )
    renamed = call(
        "POST",
        "/pipelines/{name}/rename",
        named + "/rename",
        json={"name": "copy2"},
        headers={"If-Match": updated.headers["ETag"]},
    )
    updated = call(
        "POST",
        "/pipelines/{name}/rename",
        "/pipelines/copy2/rename",
        json={"name": "copy"},
        headers={"If-Match": renamed.headers["ETag"]},
    )
    call("POST", "/pipelines/{name}/validate", named + "/validate", json={})
    call("POST", "/pipelines/{name}/compile", named + "/compile", json={"gem": "by_customer"})
    call("POST", "/pipelines/{name}/preview", named + "/preview", json={"gem": "ranked"})
    call("DELETE", "/pipelines/{name}/preview", named + "/preview")
    run = call(
        "POST", "/runs", json={"pipeline": "copy", "mode": "staged", "fabric": "in-memory"}
    ).json()
    deadline = time.monotonic() + 120
    while call("GET", "/runs/{run_id}", f"/runs/{run['id']}").json()["status"] in {
        "queued",
        "running",
    }:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    call("POST", "/runs/{run_id}/cancel", f"/runs/{run['id']}/cancel")
    call("GET", "/runs")
    fabric = {"kind": "postgres", "options": {"host": "db"}, "secrets": {"password": "pw"}}
    call("PUT", "/fabrics/{name}", "/fabrics/warehouse", json=fabric)
    call("GET", "/fabrics/{name}", "/fabrics/warehouse")
    call("POST", "/fabrics/{name}/test", "/fabrics/warehouse/test")
    call("POST", "/fabrics/{name}/test", "/fabrics/in-memory/test")
    call("GET", "/fabrics")
    call("DELETE", "/fabrics/{name}", "/fabrics/warehouse")
    call("DELETE", "/pipelines/{name}", named, headers={"If-Match": updated.headers["ETag"]})
    call_automate(server, call)
    call_vcs(server, call)
    call_ai(server, call)
    operations = {(p, m) for p, ops in SPEC["paths"].items() for m in ops if m in METHODS}
    assert seen == operations


def finished(call: Any, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        run: dict[str, Any] = call(
            "GET", "/automate/runs/{run_id}", f"/automate/runs/{run_id}"
        ).json()
        if run["status"] not in {"queued", "running"}:
            return run
        assert time.monotonic() < deadline
        time.sleep(0.1)


def call_automate(server: ServerProcess, call: Any) -> None:
    """One successful call of each orchestration operation, on real runs."""
    schedules = server.root / "schedules"
    schedules.mkdir(exist_ok=True)
    (schedules / "nightly.yml").write_text(
        "pipeline: customer_totals\ncron: '0 2 * * *'\ntimezone: Europe/Paris\n"
    )
    run = call("POST", "/automate/runs", json={"pipeline": "customer_totals"}).json()
    assert finished(call, run["id"])["status"] == "succeeded"
    book = call("POST", "/automate/runs", json={"notebook": "notebooks/explore.ipynb"}).json()
    assert finished(call, book["id"])["status"] == "succeeded"
    call("GET", "/automate/runs/{run_id}/notebook", f"/automate/runs/{book['id']}/notebook")
    call("GET", "/automate/runs/{run_id}/logs", f"/automate/runs/{run['id']}/logs")
    call("POST", "/automate/runs/{run_id}/cancel", f"/automate/runs/{run['id']}/cancel")
    call("GET", "/automate/runs", params={"status": "succeeded", "limit": "5"})
    call("GET", "/automate/schedules")
    for action in ("disable", "enable"):
        call(
            "POST",
            f"/automate/schedules/{{name}}/{action}",
            f"/automate/schedules/nightly/{action}",
        )
    now = call(
        "POST",
        "/automate/schedules/{name}/trigger",
        "/automate/schedules/nightly/trigger",
        json={"parameters": {}},
    ).json()
    assert finished(call, now["id"])["status"] == "succeeded"
    call("POST", "/automate/deployments", json={"fabric": "in-memory"})
    call("GET", "/automate/deployments")


def edit_pipeline(server: ServerProcess, change: Callable[[dict[str, Any]], None]) -> None:
    """Change customer_totals on disk, as an editor or another tool would."""
    path = server.root / "pipelines" / "customer_totals.pipeline.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def set_condition(condition: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        for gem in document["gems"]:
            if gem["id"] == "shipped":
                gem["properties"]["condition"] = condition

    return change


def call_ai(server: ServerProcess, call: Any) -> None:
    """One successful call of each AI operation, JSON and streamed, with the copilot
    configured (through the server's secret store, read on every request) for a local
    Messages-API server; unconfigured again afterwards, as the generated requests expect."""
    from prophecy_jupyter.ai.settings import save_settings
    from prophecy_jupyter.fabrics import SecretStore
    from tests.messages_api_server import API_KEY, MessagesAPIServer, text_reply, tool_reply

    api = MessagesAPIServer().start()
    store = SecretStore(server.root.parent / "secrets.json")
    save_settings({"api_key": API_KEY, "base_url": api.base_url}, secrets=store)
    stream = {"Accept": "text/event-stream"}
    edit = {
        "summary": "Keep every ranked customer.",
        "add_gems": [{"id": "kept", "kind": "Filter", "properties": {"condition": "true"}}],
        "add_connections": [{"from": "ranked", "to": "kept"}],
    }
    try:
        assert call("GET", "/ai/status").json()["enabled"] is True
        name = "customer_totals"
        api.reply(tool_reply("propose_pipeline", edit, text="Adding a filter."))
        call("POST", "/ai/build", json={"name": name, "prompt": "Add a filter"})
        api.reply(tool_reply("propose_pipeline", edit, text="Adding a filter."))
        streamed = call(
            "POST", "/ai/build", json={"name": name, "prompt": "Add it"}, headers=stream
        )
        assert "event: proposal" in streamed.text
        api.reply(text_reply("It ranks customers."))
        call("POST", "/ai/explain", json={"name": name})
        api.reply(text_reply("It ranks customers."))
        call("POST", "/ai/explain", json={"name": name, "gem": "ranked", "sample_rows": True})
        described = {
            "summary": "Described the filter.",
            "update_gems": [
                {
                    "id": "shipped",
                    "description": "Orders of the chosen status.",
                    "columns": {"status": "Where the order is."},
                }
            ],
        }
        api.reply(tool_reply("propose_pipeline", described))
        answer = call("POST", "/ai/describe", json={"name": name, "gem": "shipped"}).json()
        assert answer["issues"] == [], answer["issues"]
        api.reply(tool_reply("propose_pipeline", described))
        streamed = call(
            "POST", "/ai/describe", json={"name": name, "sample_rows": True}, headers=stream
        )
        assert "event: proposal" in streamed.text
        api.reply(tool_reply("propose_pipeline", edit))
        call("POST", "/ai/fix", json={"name": name, "gem": "ranked", "error": "a problem"})
        api.reply(tool_reply("suggest_expressions", {"candidates": ["true"]}))
        call(
            "POST",
            "/ai/suggest",
            json={"name": name, "gem": "shipped", "field": "condition", "request": "all"},
        )
    finally:
        save_settings({"api_key": None, "base_url": None}, secrets=store)
        api.stop()


def call_vcs(server: ServerProcess, call: Any) -> None:
    """One successful call of each version-control operation, on a repository made here
    (the server's root is a copy of the shop, not a repository), with a bare repository
    beside it as the remote."""
    call("POST", "/vcs/init")
    status = call("GET", "/vcs/status").json()
    assert status["branch"] == "main"
    assert {"pipelines", "schedules", "project"} <= {c["group"] for c in status["changes"]}
    call("POST", "/vcs/commit", json={"message": "The shop"})
    remote = server.root.parent / "remote.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(remote)], check=True)
    answer = call("POST", "/vcs/remote", json={"url": str(remote), "token": "s3cret"}).json()
    assert "s3cret" not in json.dumps(answer)
    assert answer["credentials"]["token"] is True
    call("POST", "/vcs/push", json={})
    call("POST", "/vcs/pull", json={})
    call("POST", "/vcs/branches", json={"name": "feature"})
    call("GET", "/vcs/branches")
    call("POST", "/vcs/switch", json={"name": "feature"})
    edit_pipeline(server, set_condition("status = 'delivered'"))
    files = call(
        "GET", "/vcs/diff", params={"path": "pipelines/customer_totals.pipeline.json"}
    ).json()["files"]
    assert files[0]["diff"]["gems"][0]["id"] == "shipped"
    call("POST", "/vcs/commit", json={"message": "Delivered", "paths": [files[0]["path"]]})
    call("POST", "/vcs/switch", json={"name": "main"})
    edit_pipeline(server, set_condition("status = 'returned'"))
    call("POST", "/vcs/commit", json={"message": "Returned"})
    stopped = call("POST", "/vcs/merge", json={"branch": "feature"}).json()
    assert stopped["merged"] is False
    call("POST", "/vcs/merge/abort", json={})
    call("POST", "/vcs/merge", json={"branch": "feature"})
    pending = call("GET", "/vcs/merge").json()
    (pipeline,) = pending["conflicts"]
    choices = {pipeline["path"]: {c["path"]: "theirs" for c in pipeline["conflicts"]}}
    merged = call("POST", "/vcs/merge/resolve", json={"choices": choices, "text": {}}).json()
    assert merged["merged"] is True
    call("POST", "/vcs/releases", json={"version": "v1", "notes": "The first"})
    call("GET", "/vcs/releases")
    deployed = call(
        "POST",
        "/vcs/releases/{name}/deploy",
        "/vcs/releases/v1/deploy",
        json={"fabric": "in-memory"},
    ).json()
    assert deployed["release"] == "v1"
    call(
        "POST",
        "/vcs/releases/{name}/rollback",
        "/vcs/releases/v1/rollback",
        json={"fabric": "in-memory"},
    )


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_response_conforms_to_the_spec(
    case: schemathesis.Case[Any], server: ServerProcess
) -> None:
    response = case.call_and_validate(base_url=server.api, headers=server.headers, timeout=60)
    assert "Traceback" not in response.text
