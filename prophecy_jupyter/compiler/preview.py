"""Interim previews: the first rows of any gem, fast enough to follow every click.

A LIMIT does not make joins cheap: an engine may build its hash table on the big side and
read a whole fact table before the first row comes out. So a preview first runs over a
sample — each Source that may be sampled (`CompiledPipeline.sampled_query`) read only up
to a number of rows (`SAMPLE_ROWS`) — and keeps that answer when it already has more rows than asked
for; those rows are true output rows of the gem. Otherwise (a selective filter, keys that
don't meet within the sample, an aggregate downstream) it runs the exact query.
"""

from __future__ import annotations

from prophecy_jupyter.compiler.compile import CompiledPipeline
from prophecy_jupyter.engines.base import Engine, PreviewResult

SAMPLE_ROWS = (50_000, 300_000)
"""Source rows read by each sampled try, in turn, before the exact query. Measured on TPC-H
SF1: a sample of a few hundred thousand lineitem rows answers a three-way join in a third
of the exact time; much larger samples cost more than the exact query."""


def preview_gem(
    compiled: CompiledPipeline, engine: Engine, gem_id: str, limit: int = 100
) -> PreviewResult:
    """Up to ``limit`` rows of ``gem_id``'s output, with the engine's column types."""
    for rows in SAMPLE_ROWS:
        sampled = compiled.sampled_query(gem_id, max(rows, limit + 1))
        if sampled is None:
            break
        result = engine.preview(sampled, limit)
        if result.truncated:  # more than ``limit`` true rows: as good as the exact answer
            return result
    return engine.preview(compiled.query(gem_id), limit)
