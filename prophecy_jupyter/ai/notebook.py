"""The copilot in a notebook (``%prophecy ai``): stream the answer, show the diff."""

from __future__ import annotations

import sys

from prophecy_jupyter.ai.copilot import Copilot
from prophecy_jupyter.errors import Issue, ValidationError
from prophecy_jupyter.model.project import Project
from prophecy_jupyter.vcs.pipeline_diff import diff_pipelines, render_diff


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


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
        if explain:
            copilot.explain(pipeline, gem_id, sample_rows=sample_rows, on_text=_write)
            _write("\n")
            return
        if describe:
            proposal = copilot.describe(
                pipeline, gem_id=gem_id, sample_rows=sample_rows, on_text=_write
            )
        else:
            proposal = copilot.build(
                prompt or "", pipeline, sample_rows=sample_rows, on_text=_write
            )
    if proposal.text:
        _write("\n")
    print(f"proposal: {proposal.summary}")
    current = pipeline.model_dump(mode="json", by_alias=True, exclude_none=True)
    if proposal.diff is not None:
        print(render_diff(diff_pipelines(current, proposal.document)))
    if proposal.issues:
        raise ValidationError(
            [Issue(**issue) for issue in proposal.issues],
            summary="the proposal is invalid and was refused: "
            + "; ".join(str(Issue(**issue)) for issue in proposal.issues),
        )
    print("(not applied: apply it in the Studio, or with prophecy ai --apply)")
