"""Where the copilot's endpoint, key and model come from, and whether it is on.

In order of precedence, each of ``api_key``, ``base_url`` and ``model`` comes from:

1. the per-user secret store, entry ``ai:`` of the project (``SecretStore.update(project,
   "ai:", {...})``);
2. the secret store's project-independent entry ``ai:`` (the same keys, for every project);
3. the environment: ``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``, ``PROPHECY_AI_MODEL``.

The copilot is off until a key is configured. ``PROPHECY_AI_DISABLED=1`` (an administrator's
setting of the server's or kernel's environment) turns it off whatever the user configured.
``PROPHECY_AI_TIMEOUT`` (seconds, default 120), ``PROPHECY_AI_MAX_RETRIES`` (default 2) and
``PROPHECY_AI_MAX_TOKENS`` (the longest answer, default 8192) tune the client.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from prophecy_jupyter.errors import ProphecyError
from prophecy_jupyter.fabrics import SecretStore
from prophecy_jupyter.model.project import Project

SECRET_ENTRY = "ai:"
DEFAULT_MODEL = "claude-sonnet-4-5"
DEFAULT_BASE_URL = "https://api.anthropic.com"
DISABLED_ENV = "PROPHECY_AI_DISABLED"
KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
MODEL_ENV = "PROPHECY_AI_MODEL"
TIMEOUT_ENV = "PROPHECY_AI_TIMEOUT"
RETRIES_ENV = "PROPHECY_AI_MAX_RETRIES"
MAX_TOKENS_ENV = "PROPHECY_AI_MAX_TOKENS"


@dataclass(frozen=True)
class AISettings:
    """The resolved settings. Its ``repr`` leaves the key out."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    disabled_by_admin: bool = False
    timeout: float = 120.0
    max_retries: int = 2
    max_tokens: int = 8192

    @property
    def configured(self) -> bool:
        return bool(self.api_key)

    @property
    def enabled(self) -> bool:
        return self.configured and not self.disabled_by_admin

    @property
    def reason(self) -> str | None:
        """Why the copilot is off (``None`` when it is on)."""
        if self.disabled_by_admin:
            return f"the AI copilot is disabled by the administrator ({DISABLED_ENV})"
        if not self.configured:
            return (
                f"no API key is configured: set {KEY_ENV} or the secret store's "
                f"'{SECRET_ENTRY}' entry (api_key)"
            )
        return None

    def status(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "configured": self.configured,
            "model": self.model,
            "base_url": self.base_url,
            "reason": self.reason,
        }


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value >= 0 else default


def _stored(secrets: SecretStore, project: Project | None) -> dict[str, str]:
    """The store's project-independent entry, overridden by the project's own."""
    try:
        values = secrets.get(None, SECRET_ENTRY)
        if project is not None:
            values.update(secrets.get(project, SECRET_ENTRY))
    except ProphecyError:
        return {}
    return {k: v for k, v in values.items() if isinstance(v, str) and v}


def load_settings(project: Project | None, secrets: SecretStore | None = None) -> AISettings:
    """The copilot's settings for ``project`` (or for no project)."""
    stored = _stored(secrets or SecretStore(), project)
    return AISettings(
        api_key=stored.get("api_key") or os.environ.get(KEY_ENV) or None,
        base_url=stored.get("base_url") or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
        model=stored.get("model") or os.environ.get(MODEL_ENV) or DEFAULT_MODEL,
        disabled_by_admin=_truthy(os.environ.get(DISABLED_ENV)),
        timeout=_number(TIMEOUT_ENV, 120.0),
        max_retries=int(_number(RETRIES_ENV, 2)),
        max_tokens=max(1, int(_number(MAX_TOKENS_ENV, 8192))),
    )


def save_settings(
    values: dict[str, str | None],
    project: Project | None = None,
    secrets: SecretStore | None = None,
) -> None:
    """Store ``api_key``/``base_url``/``model`` (``None`` removes one) for ``project``, or
    for every project when ``project`` is None."""
    store = secrets or SecretStore()
    unknown = set(values) - {"api_key", "base_url", "model"}
    if unknown:
        raise ValueError(f"unknown AI setting {sorted(unknown)[0]!r}")
    store.update(project, SECRET_ENTRY, values)
