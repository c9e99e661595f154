"""`prophecy ai`: the copilot from a terminal.

``prophecy ai "PROMPT" --pipeline NAME`` streams the model's answer and prints the proposed
change as a pipeline diff; ``--apply`` then writes it (atomically, as every save does), only
after it was printed and only when it is valid. ``--describe`` proposes descriptions of the
gems (or of ``--gem ID``) and of their output columns instead of a change, shown and applied
the same way; ``--explain`` explains the pipeline (or ``--gem ID``) in prose. Sample rows go to
the model only with ``--sample-rows``. ``--status`` shows whether the copilot is on and why
not.

The endpoint, key and model come from the secret store or the environment
(`prophecy_jupyter.ai.settings`). Errors are printed as one line by the CLI's `reported`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from prophecy_jupyter.cli_common import reported
from prophecy_jupyter.errors import Conflict, Issue, ValidationError
from prophecy_jupyter.model.files import atomic_write_text
from prophecy_jupyter.model.pipeline import dump_pipeline, load_pipeline

if TYPE_CHECKING:
    from prophecy_jupyter.cli import Context


def _pipeline_file(ctx: Context, ref: str) -> Path:
    path = Path(ref)
    if path.suffix == ".json" and path.is_file():
        return path
    return ctx.project.pipeline_path(ref)


def _echo_text(text: str) -> None:
    click.echo(text, nl=False)
    sys.stdout.flush()


@click.command(name="ai")
@click.argument("prompt", required=False)
@click.option("--pipeline", "pipeline_ref", help="The pipeline (name, or path to its file).")
@click.option("--explain", is_flag=True, help="Explain the pipeline (or --gem) instead.")
@click.option(
    "--describe",
    is_flag=True,
    help="Propose descriptions of the gems (or --gem) and their columns instead.",
)
@click.option("--gem", "gem_id", default=None, help="The gem to explain or describe.")
@click.option("--sample-rows", is_flag=True, help="Also send the first rows of each gem.")
@click.option("--apply", "apply_", is_flag=True, help="Write a valid proposal once shown.")
@click.option("--status", "show_status", is_flag=True, help="Show whether the copilot is on.")
@click.pass_obj
def ai_command(
    ctx: Context,
    prompt: str | None,
    pipeline_ref: str | None,
    explain: bool,
    describe: bool,
    gem_id: str | None,
    sample_rows: bool,
    apply_: bool,
    show_status: bool,
) -> None:
    """Ask the AI copilot to change a pipeline (PROMPT), to --describe it, or to --explain
    it."""
    from prophecy_jupyter.ai import Copilot
    from prophecy_jupyter.ai.notebook import ask_copilot, proposal_text

    with reported(ctx):
        if show_status:
            click.echo(json.dumps(Copilot(ctx.project).status(), indent=2))
            return
        if pipeline_ref is None:
            raise click.UsageError("--pipeline is required")
        if explain and describe:
            raise click.UsageError("--explain and --describe cannot go together: choose one")
        if explain and apply_:
            raise click.UsageError("--apply goes with a PROMPT or --describe, not with --explain")
        if (explain or describe) and prompt:
            option = "--explain" if explain else "--describe"
            raise click.UsageError(f"a PROMPT does not go with {option}")
        if not (explain or describe or prompt):
            raise click.UsageError("give a PROMPT, or --describe or --explain")
        if gem_id is not None and not (explain or describe):
            raise click.UsageError("--gem goes with --explain or --describe")
        file = _pipeline_file(ctx, pipeline_ref)
        original = file.read_bytes() if file.is_file() else b""
        pipeline = ctx.pipeline(pipeline_ref)
        with Copilot(ctx.project) as copilot:
            proposal = ask_copilot(
                copilot,
                pipeline,
                prompt,
                explain=explain,
                describe=describe,
                gem_id=gem_id,
                sample_rows=sample_rows,
                on_text=_echo_text,
            )
        if proposal is None:
            click.echo()
            return
        if proposal.text:
            click.echo()
        click.echo(proposal_text(proposal, pipeline))
        if proposal.issues:
            raise ValidationError(
                [Issue(**issue) for issue in proposal.issues],
                summary="the proposal is invalid and was refused",
            )
        if not apply_:
            return
        if not proposal.changed:
            click.echo("nothing to apply")
            return
        if file.is_file() and file.read_bytes() != original:
            raise Conflict(f"{file} changed while the copilot worked; nothing was written")
        atomic_write_text(file, dump_pipeline(load_pipeline(proposal.document)))
        click.echo(f"applied to {file}")


def register(group: click.Group) -> None:
    """Add `prophecy ai` to the `prophecy` group."""
    group.add_command(ai_command)
