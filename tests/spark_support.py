"""A local Spark session shared by the tests of one process (the JVM starts in seconds)."""

from __future__ import annotations
