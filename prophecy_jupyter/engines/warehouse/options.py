"""A warehouse fabric's settings: its options (checked by name) and its secrets."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from prophecy_jupyter.engines.warehouse.engine import DEFAULT_TIMEOUT
from prophecy_jupyter.errors import EngineError

if TYPE_CHECKING:
    from prophecy_jupyter.fabrics import Fabric


class Settings:
    """The options and secrets of one fabric, with errors that name the fabric and the
    setting, never a secret's value."""

    def __init__(self, fabric: Fabric, secrets: Mapping[str, str], options: Iterable[str]) -> None:
        self.fabric = fabric
        self.secrets = {name: value for name, value in secrets.items() if value}
        known = {*options, "timeout_seconds"}
        unknown = sorted(set(fabric.options) - known)
        if unknown:
            raise self.error(
                f"unknown option '{unknown[0]}' for {fabric.kind} "
                f"(options: {', '.join(sorted(known))}; passwords, tokens and keys are secrets)"
            )

    def error(self, message: str) -> EngineError:
        return EngineError(f"fabric '{self.fabric.name}': {message}")

    def text(self, *names: str, default: str | None = None) -> str | None:
        """The first of ``names`` that is set (an option may have an alias)."""
        for name in names:
            value = self.fabric.options.get(name)
            if value is not None and str(value) != "":
                return str(value)
        return default

    def required(self, *names: str) -> str:
        value = self.text(*names)
        if value is None:
            raise self.error(f"{self.fabric.kind} needs the option '{names[0]}'")
        return value

    def integer(self, name: str, default: int) -> int:
        value = self.fabric.options.get(name, default)
        if isinstance(value, bool) or not str(value).strip().isdigit():
            raise self.error(f"option '{name}' must be a whole number")
        return int(value)

    @property
    def timeout(self) -> float:
        """Seconds a connection attempt may take (option ``timeout_seconds``)."""
        value = self.fabric.options.get("timeout_seconds", DEFAULT_TIMEOUT)
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = -1.0
        if isinstance(value, bool) or not 0 < seconds <= 600:
            raise self.error("option 'timeout_seconds' must be a number of seconds (0-600)")
        return seconds

    def secret(self, name: str) -> str | None:
        return self.secrets.get(name)

    def required_secret(self, name: str) -> str:
        value = self.secret(name)
        if value is None:
            raise self.error(f"the secret '{name}' has no value")
        return value

    def module(self, name: str) -> Any:
        """The driver's module, imported now: a missing package is reported when the
        fabric is opened, not at its first statement."""
        try:
            return importlib.import_module(name)
        except ImportError:
            raise self.error(
                f"the {self.fabric.kind} engine needs a package that is not installed "
                f"({name}): pip install 'prophecy-jupyter[{self.fabric.kind}]'"
            ) from None
