"""The copilot's front doors in a terminal and a notebook (``prophecy ai``, ``%prophecy
ai``): one flow that explains, describes or builds, and one way to show a proposal."""

from __future__ import annotations

import sys
from collections.abc import Callable

from prophecy_jupyter.ai.copilot import Copilot, Proposal
from prophecy_jupyter.errors import Issue, ValidationError
from prophecy_jupyter.model.pipeline import Pipeline, pipeline_document
from prophecy_jupyter.model.project import Project
from prophecy_jupyter.vcs.pipeline_diff import diff_pipelines, render_diff


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def ask_copilot(
    copilot: Copilot,
    pipeline: Pipeline,
    prompt: str | None,
    *,
    explain: bool,
    describe: bool,
    gem_id: str | None,
    sample_rows: bool,
    on_text: Callable[[str], None],
) -> Proposal | None:
    """Explain ``pipeline`` (None: the words went to ``on_text``), propose descriptions of
    its gems and their columns (``describe``), or propose the change ``prompt`` asks for."""
    if explain:
        copilot.explain(pipeline, gem_id, sample_rows=sample_rows, on_text=on_text)
        return None
    if describe:
        return copilot.describe(pipeline, gem_id=gem_id, sample_rows=sample_rows, on_text=on_text)
    return copilot.build(prompt or "", pipeline, sample_rows=sample_rows, on_text=on_text)


def proposal_text(proposal: Proposal, pipeline: Pipeline) -> str:
    """The proposal's summary and, when it has one, its diff against ``pipeline``."""
    lines = [f"proposal: {proposal.summary}"]
    if proposal.diff is not None:
        lines.append(render_diff(diff_pipelines(pipeline_document(pipeline), proposal.document)))
    return "\n".join(lines)


def ask(
    project: Project,
    pipeline_name: str,
    prompt: str | None,
    explain: bool = False,
    gem_id: str | None = None,
    sample_rows: bool = False,
    describe: bool = False,
) -> None:
    """Explain ``pipeline_name``, propose descriptions of its gems and their columns
    (``describe``) or propose a change of it, printing as the answer streams. A proposal is
    shown as a diff and never applied."""
    pipeline = project.load_pipeline(pipeline_name)
    with Copilot(project) as copilot:
        proposal = ask_copilot(
            copilot,
            pipeline,
            prompt,
            explain=explain,
            describe=describe,
            gem_id=gem_id,
            sample_rows=sample_rows,
            on_text=_write,
        )
    if proposal is None:
        _write("\n")
        return
    if proposal.text:
        _write("\n")
    print(proposal_text(proposal, pipeline))
    if proposal.issues:
        raise ValidationError(
            [Issue(**issue) for issue in proposal.issues],
            summary="the proposal is invalid and was refused: "
            + "; ".join(str(Issue(**issue)) for issue in proposal.issues),
        )
    print("(not applied: apply it in the Studio, or with prophecy ai --apply)")
