"""Describing relations: what recompiling after an edit may reuse, and what it must not."""

from __future__ import annotations

import os
from pathlib import Path

from sqlglot import exp

from prophecy_jupyter.engines import DuckDBEngine
from prophecy_jupyter.gems.sources import file_reader


def _over(path: str) -> exp.Query:
    return exp.select(exp.Star()).from_(file_reader("csv", path))


def test_a_file_rewritten_with_other_columns_is_described_afresh(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    data = tmp_path / "people.csv"
    data.write_text("name,age\nann,31\n")
    assert engine.describe(_over("people.csv")) == [("name", "VARCHAR"), ("age", "BIGINT")]
    data.write_text("name,age,city\nann,31,oslo\n")
    os.utime(data, ns=(1, 1))  # a different modification time even on a coarse clock
    assert [n for n, _ in engine.describe(_over("people.csv"))] == ["name", "age", "city"]


def test_a_file_with_the_same_size_and_time_is_not_sniffed_again(
    engine: DuckDBEngine, tmp_path: Path
) -> None:
    data = tmp_path / "people.csv"
    data.write_text("name,age\nann,31\n")
    before = data.stat()
    assert [n for n, _ in engine.describe(_over("people.csv"))] == ["name", "age"]
    data.write_text("nick,yrs\nann,31\n")  # same size; the memo key is size and mtime
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert [n for n, _ in engine.describe(_over("people.csv"))] == ["name", "age"]


def test_a_glob_sees_a_new_file(engine: DuckDBEngine, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    engine.describe(_over("*.csv"))
    (tmp_path / "b.csv").write_text("x\n2\n")
    engine.describe(_over("*.csv"))
    assert len(engine._described) == 2


def test_tables_are_always_described_afresh(engine: DuckDBEngine) -> None:
    engine.connection.execute("CREATE TABLE t AS SELECT 1 AS a")
    query = exp.select(exp.Star()).from_("t")
    assert engine.describe(query) == [("a", "INTEGER")]
    engine.connection.execute("ALTER TABLE t ADD COLUMN b VARCHAR")
    assert engine.describe(query) == [("a", "INTEGER"), ("b", "VARCHAR")]
