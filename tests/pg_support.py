"""A throwaway PostgreSQL server per test process, from the machine's PostgreSQL 15 binaries."""

from __future__ import annotations
