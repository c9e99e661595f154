"""Typed, one-line errors of the copilot. No message ever carries the API key."""

from __future__ import annotations

from typing import Any

from prophecy_jupyter.errors import ProphecyError


class AIError(ProphecyError):
    """The model endpoint refused or failed a request."""

    code = "ai_error"


class AIDisabled(AIError):
    """The copilot is off: disabled by the administrator, or no API key is configured."""

    code = "ai_disabled"


class AIAuthError(AIError):
    """The endpoint rejected the API key (401) or its permissions (403)."""

    code = "ai_auth"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": f"the configured API key was refused: {self}"}


class AIRateLimited(AIError):
    """The endpoint asked to slow down (429); ``retry_after`` is in seconds when it said."""

    code = "ai_rate_limited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.retry_after is not None:
            body["retry_after"] = max(1, round(self.retry_after))  # whole seconds, as HTTP's
        return body


class AITimeout(AIError):
    """The endpoint did not answer in time."""

    code = "ai_timeout"


class AIUnavailable(AIError):
    """The endpoint cannot be reached or is overloaded (5xx, 529)."""

    code = "ai_unavailable"


class AINotConfigured(ProphecyError):
    """The copilot is on but has no API key to call the model with."""

    code = "ai_not_configured"
