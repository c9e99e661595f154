"""Pipeline → sqlglot AST: graph checks, gem building, CTE chains, schemas and lineage.

The compiler's front door is imported lazily: gem modules use the low-level parts of this
package (columns, expressions) while the compiler proper uses the gems, so importing either
side first must not need the other half-initialised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prophecy_jupyter.compiler.columns import Column

if TYPE_CHECKING:
    from prophecy_jupyter.compiler.compile import (
        CompiledPipeline,
        compile_pipeline,
        validate_pipeline,
    )

__all__ = ["Column", "CompiledPipeline", "compile_pipeline", "validate_pipeline"]


def __getattr__(name: str) -> Any:
    if name in {"CompiledPipeline", "compile_pipeline", "validate_pipeline"}:
        from prophecy_jupyter.compiler import compile as compile_module

        return getattr(compile_module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
