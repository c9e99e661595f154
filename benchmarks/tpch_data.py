"""TPC-H data as Parquet files, and the hand-written reference queries of the example project.

``tpchgen-cli`` (PyPI) writes the same rows as the reference ``dbgen`` in seconds and works
with any DuckDB version. Files are cached under ``benchmarks/.data/sf<SF>/data/``, so the
folder ``sf<SF>`` serves as a project root in which the example pipelines' relative paths
(``data/lineitem.parquet``) resolve. Each file is written to a scratch folder and renamed into
place, so concurrent callers (parallel test workers) never read a half-written file.

    python -m benchmarks.tpch_data --sf 0.1                      # fill the cache
    python -m benchmarks.tpch_data --sf 1 --output-dir DIR       # write the files into DIR
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Protocol

TABLES = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")
CACHE = Path(__file__).resolve().parent / ".data"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "tpch"
QUERIES = ("q1", "q3", "q5", "q6")


class Connection(Protocol):
    def execute(self, sql: str) -> Any: ...


def scale_label(sf: float) -> str:
    """``0.01`` → ``sf0.01``, ``1`` → ``sf1``: one folder per scale factor."""
    return f"sf{sf:g}"


def tpchgen() -> str:
    """The ``tpchgen-cli`` executable of this interpreter's environment, else from PATH."""
    beside = Path(sys.executable).parent / "tpchgen-cli"
    if beside.is_file():
        return str(beside)
    found = shutil.which("tpchgen-cli")
    if found is None:
        raise RuntimeError("tpchgen-cli is not installed: pip install tpchgen-cli")
    return found


def _complete(folder: Path) -> bool:
    return all((folder / f"{table}.parquet").is_file() for table in TABLES)


def write_parquet(sf: float, folder: Path) -> Path:
    """Write every TPC-H table of scale factor ``sf`` as ``folder/<table>.parquet``.

    Does nothing if all the files are already there.
    """
    if _complete(folder):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".tpchgen.", dir=folder))
    try:
        subprocess.run(
            [tpchgen(), "parquet", "--scale-factor", f"{sf:g}", "--output-dir", str(scratch)],
            check=True,
            capture_output=True,
            text=True,
        )
        for table in TABLES:
            os.replace(scratch / f"{table}.parquet", folder / f"{table}.parquet")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def generate(sf: float, cache: Path = CACHE) -> Path:
    """The root folder for scale factor ``sf`` (files in ``<root>/data/``), generated if needed."""
    root = cache / scale_label(sf)
    write_parquet(sf, root / "data")
    return root


def register_views(connection: Connection, root: Path) -> None:
    """Create a view per table over its Parquet file, for the hand-written queries."""
    for table in TABLES:
        path = str((root / "data" / f"{table}.parquet").resolve()).replace("'", "''")
        connection.execute(
            f"CREATE OR REPLACE VIEW \"{table}\" AS SELECT * FROM read_parquet('{path}')"
        )


def reference_query(name: str) -> str:
    """The hand-written TPC-H query ``name`` (``q1``…) with default substitution values."""
    return (EXAMPLE / "queries" / f"{name}.sql").read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate TPC-H Parquet files with tpchgen-cli")
    parser.add_argument("--sf", type=float, default=1.0, help="scale factor (default 1)")
    parser.add_argument(
        "--output-dir", type=Path, help="write the files here instead of the benchmark cache"
    )
    args = parser.parse_args(argv)
    if args.output_dir is not None:
        print(write_parquet(args.sf, args.output_dir))
    else:
        print(generate(args.sf) / "data")


if __name__ == "__main__":
    main()
