"""prophecy-jupyter: visual data pipelines of gems, compiled to SQL and run on DuckDB.

The package is also a Jupyter server extension (the Studio's REST API) and an IPython
extension (``%load_ext prophecy_jupyter`` for the ``%%prophecy`` magics); both front doors
are imported only when Jupyter or IPython asks for them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("prophecy-jupyter")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The Studio's prebuilt JupyterLab extension, for `jupyter labextension develop`."""
    return [{"src": "labextension", "dest": "prophecy-jupyter"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "prophecy_jupyter"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from prophecy_jupyter.server import load_extension

    load_extension(server_app)


def load_ipython_extension(ipython: Any) -> None:
    from prophecy_jupyter.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from prophecy_jupyter.magics import unload_ipython_extension as unload

    unload(ipython)
