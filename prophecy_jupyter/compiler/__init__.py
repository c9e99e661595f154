"""Pipeline → sqlglot AST: graph checks, gem building, CTE chains, schemas and lineage."""

from prophecy_jupyter.compiler.columns import Column
from prophecy_jupyter.compiler.compile import CompiledPipeline, compile_pipeline, validate_pipeline

__all__ = ["Column", "CompiledPipeline", "compile_pipeline", "validate_pipeline"]
