"""`AutomateClient` against a real Jupyter server over a copy of the shop (the root project,
named ""): runs of a pipeline and of a notebook, filters, logs, the executed notebook,
cancel, schedules, deployments, and the typed errors of bad requests and bad tokens."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from click.testing import CliRunner

from prophecy_jupyter.automate.client import (
    AuthenticationError,
    AutomateClient,
    RunInfo,
    RunTimeout,
    ServerUnreachable,
)
from prophecy_jupyter.cli import main
from prophecy_jupyter.errors import NotFound, ValidationError
from prophecy_jupyter.model import init_project
from prophecy_jupyter.server.launcher import ServerProcess, free_port
from tests.test_server_support import shop_server

NOTEBOOK = "notebooks/explore.ipynb"
NIGHTLY = "pipeline: customer_totals\ncron: '0 2 * * *'\ntimezone: Europe/Paris\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with shop_server(tmp_path_factory.mktemp("automate-client")) as started:
        yield started


@pytest.fixture
def client(server: ServerProcess) -> AutomateClient:
    return AutomateClient(server.url, server.token)


def finished(client: AutomateClient, run: RunInfo) -> RunInfo:
    done = client.wait(run["id"], timeout=180, poll=0.1)
    assert done["status"] == "succeeded", (done["error"], client.logs(run["id"]))
    return done


def test_a_pipeline_run_is_queued_runs_and_is_recorded_with_its_gems_and_logs(
    client: AutomateClient,
) -> None:
    queued = client.trigger("", pipeline="customer_totals", parameters={"min_total": 500})
    assert queued["status"] == "queued"
    assert (queued["kind"], queued["target"], queued["project"]) == (
        "pipeline",
        "customer_totals",
        "",
    )
    assert queued["trigger"]["type"] == "api"
    assert queued["fabric"] == "in-memory"

    run = finished(client, queued)
    assert run["finished"] is not None and run["seconds"] is not None
    gems = {g["gem_id"]: g for g in run["gems"]}
    assert gems["customer_totals"]["kind"] == "Target"
    assert gems["customer_totals"]["status"] == "succeeded"
    written = gems["customer_totals"]["rows"]
    assert written is not None and 0 < written < 38  # 38 customers at the default min_total 50
    assert run["parameters"] == {"min_total": 500}

    messages = [line["message"] for line in client.logs(run["id"])]
    assert messages[0].startswith("pipeline customer_totals on in-memory")
    assert any(m.startswith(f"gem customer_totals succeeded, {written} rows") for m in messages)
    assert any(m.startswith("gem orders succeeded") for m in messages)

    ids = [r["id"] for r in client.runs(target="customer_totals", status="succeeded")]
    assert run["id"] in ids
    assert run["id"] in [r["id"] for r in client.runs(project="", kind="pipeline", trigger="api")]
    assert run["id"] not in [r["id"] for r in client.runs(kind="notebook")]
    assert run["id"] not in [r["id"] for r in client.runs(status="failed")]
    assert run["id"] not in [r["id"] for r in client.runs(trigger="schedule")]
    assert len(client.runs(limit=1)) == 1
    with pytest.raises(NotFound, match="has no output notebook"):
        client.notebook(run["id"])


def test_a_notebook_run_gives_the_executed_notebook_with_its_parameters(
    client: AutomateClient,
) -> None:
    run = finished(client, client.trigger("", notebook=NOTEBOOK, parameters={"min_total": 250}))
    assert (run["kind"], run["target"], run["output_notebook"]) == ("notebook", NOTEBOOK, True)
    book = client.notebook(run["id"])
    assert isinstance(book, dict) and book["nbformat"] == 4
    code = [c for c in book["cells"] if c["cell_type"] == "code"]
    assert code and all(c["execution_count"] is not None for c in code)
    injected = [c for c in code if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and "min_total = 250" in "".join(injected[0]["source"])
    assert any(c["outputs"] for c in code)
    assert run["id"] in [r["id"] for r in client.runs(kind="notebook", target=NOTEBOOK)]


def test_cancel_a_queued_run_at_once_and_a_running_one_soon(client: AutomateClient) -> None:
    first = client.trigger("", notebook=NOTEBOOK)
    second = client.trigger("", notebook=NOTEBOOK)  # waits for the first: one at a time
    cancelled = client.cancel(second["id"])
    assert cancelled["status"] == "cancelled"
    assert client.run(second["id"])["status"] == "cancelled"

    with pytest.raises(RunTimeout) as late:
        client.wait(first["id"], timeout=0.05, poll=0.01)
    assert late.value.run["id"] == first["id"]
    assert late.value.run["status"] in {"queued", "running"}
    deadline = time.monotonic() + 60
    while client.run(first["id"])["status"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client.cancel(first["id"])
    ended = client.wait(first["id"], timeout=60, poll=0.1)
    assert ended["status"] == "cancelled", ended
    assert ended["error"] == "cancelled"

    done = finished(client, client.trigger("", pipeline="customer_totals"))
    assert client.cancel(done["id"])["status"] == "succeeded"  # a finished run stays as it was


def test_schedules_enable_disable_trigger_and_deploy(
    server: ServerProcess, client: AutomateClient
) -> None:
    path = server.root / "schedules" / "nightly.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(NIGHTLY, encoding="utf-8")

    (nightly,) = [s for s in client.schedules("") if s["name"] == "nightly"]
    assert (nightly["kind"], nightly["target"], nightly["cron"]) == (
        "pipeline",
        "customer_totals",
        "0 2 * * *",
    )
    assert nightly["timezone"] == "Europe/Paris" and nightly["enabled"] is True
    assert nightly["next_fire"] is not None
    local = dt.datetime.fromisoformat(nightly["next_fire"]).astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute, local.second) == (2, 0, 0)
    assert nightly["deployment"] is None and nightly["last_run"] is None

    off = client.disable("", "nightly")
    assert off["enabled"] is False and off["next_fire"] is None
    assert "enabled: false" in path.read_text(encoding="utf-8")  # in the file, for Git
    on = client.enable("", "nightly")
    assert on["enabled"] is True and on["next_fire"] == nightly["next_fire"]
    assert "enabled" not in path.read_text(encoding="utf-8")

    run = finished(client, client.trigger_schedule("", "nightly", {"min_total": 1000}))
    assert run["trigger"]["type"] == "api" and run["trigger"]["schedule"] == "nightly"
    assert run["parameters"] == {"min_total": 1000}
    assert run["id"] in [r["id"] for r in client.runs(schedule="nightly")]
    (listed,) = [s for s in client.schedules("") if s["name"] == "nightly"]
    assert listed["last_run"] is not None and listed["last_run"]["id"] == run["id"]

    deployment = client.deploy("", "in-memory")
    assert deployment["project"] == "" and deployment["fabric"] == "in-memory"
    assert deployment["active"] is True
    assert "customer_totals" in deployment["pipelines"]
    assert deployment["schedules"] == ["nightly"]
    assert deployment["notebooks"] == [NOTEBOOK]
    assert deployment["id"] in [d["id"] for d in client.deployments("")]
    assert client.deployments("elsewhere") == []
    (deployed,) = [s for s in client.schedules("") if s["name"] == "nightly"]
    assert deployed["deployment"] == deployment["id"]
    # A deployed schedule is switched in the store: the deployment is never edited.
    assert client.disable("", "nightly")["enabled"] is False
    assert client.enable("", "nightly")["enabled"] is True


def test_api_errors_are_typed(server: ServerProcess, client: AutomateClient) -> None:
    with pytest.raises(NotFound, match="no run 'nope'"):
        client.run("nope")
    with pytest.raises(NotFound, match="no run 'nope'"):
        client.logs("nope")
    with pytest.raises(NotFound, match="no pipeline 'missing'"):
        client.trigger("", pipeline="missing")
    with pytest.raises(NotFound, match="no schedule 'missing'"):
        client.enable("", "missing")

    with pytest.raises(ValidationError) as both:
        client.trigger("", pipeline="customer_totals", notebook=NOTEBOOK)
    assert [(i.code, i.field) for i in both.value.issues] == [("target", "/pipeline")]
    assert "exactly one of pipeline or notebook" in str(both.value)
    with pytest.raises(ValidationError) as nested:
        client.trigger("", pipeline="customer_totals", parameters={"min_total": [1, 2]})
    assert [i.field for i in nested.value.issues] == ["/parameters"]
    with pytest.raises(ValidationError) as fabric:
        client.trigger("", pipeline="customer_totals", fabric="no such fabric")
    assert [i.field for i in fabric.value.issues] == ["/fabric"]
    with pytest.raises(ValidationError, match="limit must be an integer") as limit:
        client.runs(limit=0)
    assert [i.field for i in limit.value.issues] == ["limit"]


def test_a_wrong_or_missing_token_is_a_clear_error_without_the_token(
    server: ServerProcess,
) -> None:
    wrong = "not-the-token-5f1e"
    for token in (wrong, None):
        anonymous = AutomateClient(server.url, token)
        with pytest.raises(AuthenticationError) as refused:
            anonymous.runs()
        text = str(refused.value)
        assert "refused" in text and "token" in text and server.url.rstrip("/") in text
        assert wrong not in text and server.token not in text
        assert wrong not in repr(anonymous) and server.token not in repr(anonymous)
    # The token travels in the header only: the API takes no token in the URL from us.
    seen: list[requests.PreparedRequest] = []
    session = requests.Session()
    session.hooks["response"].append(lambda r, *a, **k: seen.append(r.request))
    AutomateClient(server.url, server.token, session=session).runs(limit=1)
    assert seen and server.token not in str(seen[0].url)
    assert seen[0].headers["Authorization"] == f"token {server.token}"


def test_an_unreachable_server_is_one_message_naming_the_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnreachable) as down:
        AutomateClient(url, "secret-token-1234").run("x")
    text = str(down.value)
    assert url in text and "cannot reach" in text and "secret-token-1234" not in text
    assert "\n" not in text
    with pytest.raises(ValidationError, match="not an http"):
        AutomateClient("ftp://example.org", None)
    # a token pasted with Jupyter's URL never stays in the URL the client shows or uses
    pasted = AutomateClient(f"{url}/?token=abc123", None)
    assert "abc123" not in pasted.api and "abc123" not in repr(pasted)


def test_the_cli_commands_answer_in_one_line_and_with_exit_codes(
    server: ServerProcess, tmp_path: Path
) -> None:
    init_project(server.root / "sub", "sub")
    connection = ["--url", server.url, "--token", server.token]

    def prophecy(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(main, [*args, *connection])
        return result.exit_code, result.stdout, result.stderr

    code, out, err = prophecy(
        "runs",
        "trigger",
        "--notebook",
        NOTEBOOK,
        "-p",
        "min_total=75",
        "--wait",
        "--format",
        "json",
    )
    assert code == 0, out + err
    run = json.loads(out)
    assert run["status"] == "succeeded" and run["parameters"] == {"min_total": "75"}
    code, out, _ = prophecy("runs", "show", run["id"])
    assert code == 0 and f"prophecy runs notebook {run['id']}" in out and "succeeded" in out
    code, out, _ = prophecy("runs", "notebook", run["id"], "-o", str(tmp_path / "out.ipynb"))
    assert code == 0, out
    assert json.loads((tmp_path / "out.ipynb").read_text())["cells"]
    code, out, _ = prophecy("runs", "cancel", run["id"])
    assert (code, out.strip()) == (0, f"run {run['id']} had already succeeded: nothing to cancel")
    code, out, _ = prophecy("runs", "list", "--target", NOTEBOOK, "--status", "succeeded")
    assert code == 0 and run["id"] in out

    code, out, err = prophecy("deploy", "--fabric", "in-memory", "--project", "sub")
    assert code == 0, err
    assert out.startswith("deployed project sub to fabric 'in-memory': deployment ")

    for args, message in (
        (("runs", "show", "nope"), "error: no run 'nope'"),
        (
            ("deploy", "--fabric", "nope", "--project", "sub"),
            "error: project 'sub' has no fabric 'nope'",
        ),
        (("schedules", "trigger", "missing"), "error: project 'shop' has no schedule 'missing'"),
        (("runs", "trigger", "--pipeline", "gone"), "error: project 'shop' has no pipeline 'gone'"),
    ):
        code, out, err = prophecy(*args)
        assert (code, out, err) == (1, "", message + "\n")

    code, _, err = prophecy("runs", "trigger", "--project", "sub")
    assert code == 2 and "exactly one of --pipeline or --notebook" in err
    result = CliRunner().invoke(main, ["runs", "list", "--url", server.url, "--token", "bad-7c1"])
    assert result.exit_code == 1 and "bad-7c1" not in result.stderr
    assert result.stderr.startswith(f"error: the server at {server.url.rstrip('/')} refused")
