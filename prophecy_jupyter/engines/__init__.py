"""Engines behind fabrics; DuckDB (In-Memory) is the default."""

from prophecy_jupyter.engines.base import Engine, PreviewResult, WriteSpec
from prophecy_jupyter.engines.duckdb import DuckDBEngine

__all__ = ["DuckDBEngine", "Engine", "PreviewResult", "WriteSpec"]
