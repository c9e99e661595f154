"""Shared fixtures: a real DuckDB engine rooted in a temporary folder, and pipeline builders."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from prophecy_jupyter.compiler import CompiledPipeline, compile_pipeline
from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.errors import Issue
from prophecy_jupyter.model import Pipeline, load_pipeline

# Fixtures of real servers live beside their helpers and are imported to be found by pytest.
from tests.livy_support import *  # noqa: F403
from tests.pg_support import *  # noqa: F403
from tests.spark_support import *  # noqa: F403


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DuckDBEngine]:
    """An in-memory DuckDB whose relative paths resolve inside ``tmp_path``."""
    with DuckDBEngine(":memory:", root=tmp_path) as eng:
        yield eng


def seed(
    gem_id: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
) -> dict[str, Any]:
    """A Source gem with inline rows."""
    return {
        "id": gem_id,
        "kind": "Source",
        "properties": {
            "format": "seed",
            "columns": [{"name": n, "type": t} for n, t in columns],
            "rows": [list(r) for r in rows],
        },
    }


def gem(gem_id: str, kind: str, **properties: Any) -> dict[str, Any]:
    return {"id": gem_id, "kind": kind, "properties": properties}


def make_pipeline(
    gems: Sequence[dict[str, Any]],
    connections: Sequence[tuple[str, str] | tuple[str, str, str]],
    parameters: Sequence[dict[str, Any]] = (),
    name: str = "test",
) -> Pipeline:
    """Build a pipeline document; a connection is (from, to) or (from, to, port)."""
    return load_pipeline(
        {
            "version": 1,
            "name": name,
            "parameters": list(parameters),
            "gems": list(gems),
            "connections": [
                {"from": c[0], "to": c[1], "port": c[2] if len(c) == 3 else "in0"}
                for c in connections
            ],
        }
    )


def chain(*gems: dict[str, Any]) -> Pipeline:
    """A straight line of gems, each feeding the next."""
    ids = [g["id"] for g in gems]
    return make_pipeline(gems, list(itertools.pairwise(ids)))


def compiled_ok(pipeline: Pipeline, engine: DuckDBEngine, **params: Any) -> CompiledPipeline:
    compiled = compile_pipeline(pipeline, engine, params)
    assert compiled.issues == [], [str(i) for i in compiled.issues]
    return compiled


def rows_of(
    pipeline: Pipeline, engine: DuckDBEngine, gem_id: str, **params: Any
) -> list[tuple[Any, ...]]:
    """All output rows of one gem, computed by the engine."""
    _, rows = engine.query(compiled_ok(pipeline, engine, **params).query(gem_id))
    return rows


def issues_of(pipeline: Pipeline, engine: DuckDBEngine, **params: Any) -> list[Issue]:
    return compile_pipeline(pipeline, engine, params).issues
