"""Third-party gems register through the ``prophecy_jupyter.gems`` entry-point group."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.gems.registry import catalog, gem_kinds
from tests.conftest import chain, gem, rows_of, seed

PLUGIN = """
from pydantic import Field
from sqlglot import exp

from prophecy_jupyter.gems.base import GemContext, GemKind, GemOutput, Properties, star_select


class SampleProps(Properties):
    every: int = Field(ge=1, description="Keep one row in this many")


class EveryNth(GemKind):
    kind = "EveryNth"
    category = "Custom"
    summary = "Keep every n-th row by a key"
    Props = SampleProps

    def build(self, props: SampleProps, ctx: GemContext) -> GemOutput | None:
        key = ctx.column("id")
        if key is None:
            return None
        condition = exp.EQ(
            this=exp.Mod(this=exp.column(key.name, quoted=True),
                         expression=exp.Literal.number(props.every)),
            expression=exp.Literal.number(0),
        )
        return GemOutput(star_select(ctx.input).where(condition), list(ctx.input.columns))
"""


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Iterator[None]:
    """A real distribution on sys.path declaring the entry point, as pip would install it."""
    (tmp_path / "nth_gem.py").write_text(textwrap.dedent(PLUGIN))
    dist = tmp_path / "nth_gem-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: nth-gem\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[prophecy_jupyter.gems]\nnth = nth_gem:EveryNth\n")
    sys.path.insert(0, str(tmp_path))
    gem_kinds.cache_clear()
    yield
    sys.path.remove(str(tmp_path))
    sys.modules.pop("nth_gem", None)
    gem_kinds.cache_clear()


def test_entry_point_gem_appears_in_catalog(installed_plugin: None) -> None:
    entry = next(e for e in catalog() if e["kind"] == "EveryNth")
    assert entry["category"] == "Custom"
    assert entry["properties_schema"]["properties"]["every"]["minimum"] == 1


def test_entry_point_gem_compiles_and_runs(installed_plugin: None, engine: DuckDBEngine) -> None:
    pipeline = chain(
        seed("numbers", [("id", "INTEGER")], [[i] for i in range(1, 10)]),
        gem("thirds", "EveryNth", every=3),
    )
    assert rows_of(pipeline, engine, "thirds") == [(3,), (6,), (9,)]


def test_plugins_cannot_replace_builtin_kinds(tmp_path: Path) -> None:
    (tmp_path / "fake_filter.py").write_text(
        "from prophecy_jupyter.gems.transform import Limit\n"
        "class Filter(Limit):\n    kind = 'Filter'\n"
    )
    dist = tmp_path / "fake_filter-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-filter\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[prophecy_jupyter.gems]\nf = fake_filter:Filter\n")
    sys.path.insert(0, str(tmp_path))
    gem_kinds.cache_clear()
    try:
        assert type(gem_kinds()["Filter"]).__module__ == "prophecy_jupyter.gems.transform"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("fake_filter", None)
        gem_kinds.cache_clear()
