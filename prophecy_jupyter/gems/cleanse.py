"""Placeholder: gems of this family are added next."""

from prophecy_jupyter.gems.base import GemKind

GEMS: list[type[GemKind]] = []
