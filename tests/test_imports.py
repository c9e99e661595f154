"""Every module imports on its own, first, in a fresh interpreter (no import cycles)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import prophecy_jupyter

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(prophecy_jupyter.__path__, "prophecy_jupyter.")
)


def test_the_package_has_its_modules() -> None:
    assert {"prophecy_jupyter.gems.registry", "prophecy_jupyter.compiler.compile"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_first(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
