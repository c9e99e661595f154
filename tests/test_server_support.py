"""Helpers for the server tests: a real Jupyter server over a private copy of the shop example."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from prophecy_jupyter.server.launcher import ServerProcess

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"


def copy_shop(destination: Path) -> Path:
    """The shop project without its warehouse and outputs, as a fresh checkout has it."""
    shutil.copytree(
        SHOP,
        destination,
        ignore=shutil.ignore_patterns(".prophecy", "output", ".ipynb_checkpoints"),
    )
    return destination


@contextmanager
def shop_server(
    base: Path, *, app: str = "jupyter_server", args: Sequence[str] = ()
) -> Iterator[ServerProcess]:
    """A server whose root is a copy of the shop at ``base/shop``; secrets go to ``base``."""
    root = copy_shop(base / "shop")
    env = {"PROPHECY_SECRETS_FILE": str(base / "secrets.json")}
    with ServerProcess(root, app=app, args=args, env=env, log_path=base / "server.log") as server:
        yield server
