"""A Livy-compatible REST server backed by local PySpark, for testing the real Livy client."""

from __future__ import annotations
