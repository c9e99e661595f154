"""IPython extension: ``%load_ext prophecy_jupyter`` (or the "Python 3 (Prophecy)" kernel)
registers the ``%%prophecy`` cell magic and the ``%prophecy`` line magic."""

from __future__ import annotations

from typing import Any

from prophecy_jupyter.magics.magics import ProphecyMagics


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(ProphecyMagics(ipython))


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics and close their engines, so that a reload starts afresh (and a
    DuckDB file is unlocked before the new magics open it)."""
    manager = ipython.magics_manager
    magics = manager.registry.pop(ProphecyMagics.__name__, None)
    for kind in ("line", "cell"):
        manager.magics[kind].pop("prophecy", None)
    if isinstance(magics, ProphecyMagics):
        magics.session.close()
