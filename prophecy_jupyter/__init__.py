"""prophecy-jupyter: visual data pipelines of gems, compiled to SQL and run on DuckDB."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("prophecy-jupyter")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
