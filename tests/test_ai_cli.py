"""`prophecy ai` and `%prophecy ai` against the local Messages-API server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from IPython.core.error import UsageError
from IPython.core.extensions import ExtensionManager
from IPython.core.interactiveshell import InteractiveShell

from prophecy_jupyter.cli import main
from prophecy_jupyter.magics.display import ProphecyMagicError
from prophecy_jupyter.model import Project, dump_pipeline, load_pipeline
from tests.messages_api_server import (
    API_KEY,
    MessagesAPIServer,
    ai_env,
    ai_project,
    api_server,
    text_reply,
    tool_reply,
)
from tests.test_ai_copilot import ADD_BIG, BROKEN, DESCRIBED, INVENTED

__all__ = ["ai_env", "ai_project", "api_server"]  # fixtures


def invoke(project: Project, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--project", str(project.root), *args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_prints_the_answer_and_the_diff_without_applying(
    ai_project: Project, api_server: MessagesAPIServer
) -> None:
    before = ai_project.pipeline_path("sales").read_bytes()
    api_server.reply(tool_reply("propose_pipeline", ADD_BIG, text="Adding a filter."))
    code, out, err = invoke(ai_project, "ai", "keep big orders", "--pipeline", "sales")
    assert code == 0, err
    assert "Adding a filter." in out
    assert "proposal: Keep orders above 100." in out
    assert "+ gem big (Filter)" in out
    assert "+ connection shipped → big (in0)" in out
    assert ai_project.pipeline_path("sales").read_bytes() == before


def test_cli_apply_writes_the_proposal_after_showing_it(
    ai_project: Project, api_server: MessagesAPIServer
) -> None:
    api_server.reply(tool_reply("propose_pipeline", ADD_BIG))
    code, out, err = invoke(ai_project, "ai", "keep big orders", "--pipeline", "sales", "--apply")
    assert code == 0, err
    assert out.index("+ gem big (Filter)") < out.index("applied to")
    saved = ai_project.load_pipeline("sales")
    assert [g.id for g in saved.gems] == ["orders", "shipped", "big"]
    assert saved.gem("big").properties == {"condition": "amount > 100"}


def test_cli_refuses_an_invalid_proposal_and_applies_nothing(
    ai_project: Project, api_server: MessagesAPIServer
) -> None:
    before = ai_project.pipeline_path("sales").read_bytes()
    api_server.reply(tool_reply("propose_pipeline", BROKEN), tool_reply("propose_pipeline", BROKEN))
    code, _, err = invoke(ai_project, "ai", "keep big orders", "--pipeline", "sales", "--apply")
    assert code == 1
    assert "error: gem 'big'" in err and "amout" in err
    assert ai_project.pipeline_path("sales").read_bytes() == before


def test_cli_apply_writes_nothing_when_the_file_changed_meanwhile(
    ai_project: Project, api_server: MessagesAPIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = ai_project.pipeline_path("sales")

    def edit_meanwhile(text: str) -> None:
        file.write_text(file.read_text().replace("shipped'", "open'"))

    monkeypatch.setattr("prophecy_jupyter.cli_ai._echo_text", edit_meanwhile)
    api_server.reply(tool_reply("propose_pipeline", ADD_BIG, text="Adding."))
    code, _, err = invoke(ai_project, "ai", "keep big orders", "--pipeline", "sales", "--apply")
    assert code == 1 and "changed while the copilot worked" in err
    assert "big" not in file.read_text() and "open'" in file.read_text()


def test_cli_explain_streams_the_text(ai_project: Project, api_server: MessagesAPIServer) -> None:
    api_server.reply(text_reply("It keeps shipped orders."))
    code, out, err = invoke(
        ai_project, "ai", "--explain", "--pipeline", "sales", "--gem", "shipped"
    )
    assert code == 0, err
    assert out == "It keeps shipped orders.\n"


def test_cli_describe_apply_writes_the_column_descriptions(
    ai_project: Project, api_server: MessagesAPIServer
) -> None:
    api_server.reply(tool_reply("propose_pipeline", DESCRIBED, text="Describing."))
    code, out, err = invoke(ai_project, "ai", "--describe", "--pipeline", "sales", "--apply")
    assert code == 0, err
    assert "proposal: Described the gems and their columns." in out
    assert out.index("~ gem orders (Source): /columns/amount") < out.index("applied to")
    text = ai_project.pipeline_path("sales").read_text()
    assert dump_pipeline(load_pipeline(text)) == text
    saved = json.loads(text)
    assert saved["gems"][0]["columns"]["amount"] == {"description": "Order total in USD."}
    assert saved["gems"][1]["columns"] == {"Amount": {"description": "USD."}}
    assert "Describe every gem" in api_server.requests[0].raw
    assert "sample_rows" not in api_server.requests[0].raw


def test_cli_describe_one_gem_with_sample_rows_shows_without_applying(
    ai_project: Project, api_server: MessagesAPIServer
) -> None:
    before = ai_project.pipeline_path("sales").read_bytes()
    api_server.reply(tool_reply("propose_pipeline", DESCRIBED))
    code, out, err = invoke(
        ai_project, "ai", "--describe", "--pipeline", "sales", "--gem", "orders", "--sample-rows"
    )
    assert code == 0, err
    assert "~ gem orders (Source)" in out
    assert ai_project.pipeline_path("sales").read_bytes() == before
    raw = api_server.requests[0].raw
    assert "gem 'orders'" in raw and "sample_rows" in raw


def test_cli_describe_refuses_an_invented_column(
    ai_project: Project, api_server: MessagesAPIServer
) -> None:
    before = ai_project.pipeline_path("sales").read_bytes()
    api_server.reply(
        tool_reply("propose_pipeline", INVENTED), tool_reply("propose_pipeline", INVENTED)
    )
    code, _, err = invoke(ai_project, "ai", "--describe", "--pipeline", "sales", "--apply")
    assert code == 1
    assert "describes column 'shipped_at', which it does not output" in err
    assert ai_project.pipeline_path("sales").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--explain", "--describe"), "--explain and --describe cannot go together"),
        (("--describe", "say more"), "a PROMPT does not go with --describe"),
        (("--gem", "orders", "say more"), "--gem goes with --explain or --describe"),
        (("--explain", "--apply"), "--apply goes with a PROMPT or --describe"),
    ],
)
def test_cli_usage_errors_of_describe_and_explain(
    ai_project: Project, api_server: MessagesAPIServer, args: tuple[str, ...], message: str
) -> None:
    code, _, err = invoke(ai_project, "ai", "--pipeline", "sales", *args)
    assert code == 2 and message in err
    assert api_server.requests == []


def test_cli_errors_are_one_line_and_status_hides_the_key(
    ai_project: Project, api_server: MessagesAPIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = invoke(ai_project, "ai", "--status")
    assert code == 0 and '"enabled": true' in out and API_KEY not in out
    monkeypatch.setenv("PROPHECY_AI_DISABLED", "1")
    code, _, err = invoke(ai_project, "ai", "x", "--pipeline", "sales")
    assert code == 1
    assert err.startswith("error: the AI copilot is disabled") and err.count("\n") == 1
    code, _, err = invoke(ai_project, "ai", "--pipeline", "sales")
    assert code == 2 and "PROMPT" in err


@pytest.fixture
def shell(ai_project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(ai_project.root)
    ipython = InteractiveShell.instance()
    ipython.reset(new_session=False)  # type: ignore[no-untyped-call]
    manager = ipython.extension_manager
    assert isinstance(manager, ExtensionManager)
    manager.load_extension("prophecy_jupyter")
    yield ipython
    manager.unload_extension("prophecy_jupyter")


def run_line(shell: InteractiveShell, line: str) -> None:
    result = shell.run_cell(line, store_history=False)  # type: ignore[no-untyped-call]
    if result.error_before_exec is not None:
        raise result.error_before_exec
    if result.error_in_exec is not None:
        raise result.error_in_exec


def test_magic_streams_and_shows_the_diff_but_never_applies(
    shell: InteractiveShell,
    ai_project: Project,
    api_server: MessagesAPIServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = ai_project.pipeline_path("sales").read_bytes()
    api_server.reply(tool_reply("propose_pipeline", ADD_BIG, text="Adding a filter."))
    run_line(shell, '%prophecy ai "keep the big orders" --pipeline sales')
    out = capsys.readouterr().out
    assert "Adding a filter." in out
    assert "+ gem big (Filter)" in out
    assert "not applied" in out
    assert ai_project.pipeline_path("sales").read_bytes() == before
    assert "keep the big orders" in api_server.requests[0].raw


def test_magic_explain_and_errors(
    shell: InteractiveShell,
    api_server: MessagesAPIServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api_server.reply(text_reply("It reads orders."))
    run_line(shell, "%prophecy ai --explain --pipeline sales")
    assert "It reads orders." in capsys.readouterr().out
    with pytest.raises(UsageError):
        run_line(shell, "%prophecy ai --pipeline sales")
    monkeypatch.setenv("PROPHECY_AI_DISABLED", "1")
    with pytest.raises(ProphecyMagicError, match="disabled"):
        run_line(shell, '%prophecy ai "x" --pipeline sales')


def test_magic_describe_shows_the_proposal_but_never_applies(
    shell: InteractiveShell,
    ai_project: Project,
    api_server: MessagesAPIServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = ai_project.pipeline_path("sales").read_bytes()
    api_server.reply(tool_reply("propose_pipeline", DESCRIBED, text="Describing."))
    run_line(shell, "%prophecy ai --describe --pipeline sales --gem orders --sample-rows")
    out = capsys.readouterr().out
    assert "Describing." in out
    assert "proposal: Described the gems and their columns." in out
    assert "~ gem orders (Source): /columns/amount, /columns/id" in out
    assert "not applied" in out
    assert ai_project.pipeline_path("sales").read_bytes() == before
    raw = api_server.requests[0].raw
    assert "gem 'orders'" in raw and "sample_rows" in raw


def test_magic_describe_refusals_and_usage_errors(
    shell: InteractiveShell, api_server: MessagesAPIServer
) -> None:
    api_server.reply(
        tool_reply("propose_pipeline", INVENTED), tool_reply("propose_pipeline", INVENTED)
    )
    with pytest.raises(ProphecyMagicError, match="describes column 'shipped_at'"):
        run_line(shell, "%prophecy ai --describe --pipeline sales")
    with pytest.raises(UsageError, match="not both"):
        run_line(shell, "%prophecy ai --describe --explain --pipeline sales")
    with pytest.raises(UsageError, match='no "PROMPT" with --describe'):
        run_line(shell, '%prophecy ai "x" --describe --pipeline sales')
    assert len(api_server.requests) == 2
