"""The AI copilot: proposals, explanations and expressions from a Messages-API model.

Everything here only proposes: no function applies or saves a change. See ``docs/ai.md``.
"""

from prophecy_jupyter.ai.copilot import Copilot, Proposal
from prophecy_jupyter.ai.errors import (
    AIAuthError,
    AIDisabled,
    AIError,
    AINotConfigured,
    AIRateLimited,
    AITimeout,
    AIUnavailable,
)

__all__ = [
    "AIAuthError",
    "AIDisabled",
    "AIError",
    "AINotConfigured",
    "AIRateLimited",
    "AITimeout",
    "AIUnavailable",
    "Copilot",
    "Proposal",
]
