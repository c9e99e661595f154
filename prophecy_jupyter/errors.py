"""Typed errors shared by every front door.

The core raises these and nothing else for user-caused problems; the CLI turns them into
one-line messages and exit codes, the server (later) into 4xx JSON bodies. Each carries enough
structure (gem id, field pointer, position) for a UI to point at the culprit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Issue:
    """One validation problem: what is wrong and exactly where.

    ``field`` is a JSON pointer into the pipeline document (``/gems/2/properties/condition``);
    ``line``/``column`` locate a problem inside an expression string, 1-based.
    """

    code: str
    message: str
    gem_id: str | None = None
    field: str | None = None
    line: int | None = None
    column: int | None = None
    severity: Severity = "error"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def __str__(self) -> str:
        where = []
        if self.gem_id is not None:
            where.append(f"gem '{self.gem_id}'")
        if self.field:
            where.append(f"field {self.field}")
        if self.line is not None:
            where.append(f"line {self.line}, column {self.column}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class ProphecyError(Exception):
    """Base of every error the core raises on purpose."""

    code = "error"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self)}


class ValidationError(ProphecyError):
    """A document (pipeline, project, properties) is invalid; carries every issue found."""

    code = "invalid"

    def __init__(self, issues: Iterable[Issue], summary: str | None = None) -> None:
        self.issues = list(issues)
        if not self.issues:
            raise ValueError("ValidationError needs at least one issue")
        text = summary or (
            str(self.issues[0])
            if len(self.issues) == 1
            else f"{len(self.issues)} problems; first: {self.issues[0]}"
        )
        super().__init__(text)

    def to_dict(self) -> dict[str, Any]:
        first = self.issues[0]
        body: dict[str, Any] = {"code": self.code, "message": str(self)}
        if first.gem_id is not None:
            body["gem_id"] = first.gem_id
        if first.field is not None:
            body["field"] = first.field
        body["issues"] = [i.to_dict() for i in self.issues]
        return body


class NotFound(ProphecyError):
    """A named thing (pipeline, gem, project file) does not exist."""

    code = "not_found"


class Conflict(ProphecyError):
    """A write would clobber something the caller did not expect (error-if-exists, ETag)."""

    code = "conflict"


class PreconditionFailed(ProphecyError):
    """The caller's ETag no longer matches: someone else changed the document since."""

    code = "precondition_failed"


class PreconditionRequired(ProphecyError):
    """A write that could overwrite someone else's change did not say which version it read."""

    code = "precondition_required"


class Cancelled(ProphecyError):
    """The work was cancelled, by a cancel request or by a newer request replacing it."""

    code = "cancelled"


class EngineError(ProphecyError):
    """The engine refused or failed to execute a statement."""

    code = "engine_error"

    def __init__(self, message: str, gem_id: str | None = None) -> None:
        super().__init__(message)
        self.gem_id = gem_id

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.gem_id is not None:
            body["gem_id"] = self.gem_id
        return body


class GitError(ProphecyError):
    """A git command failed for a reason that is not the caller's input (the remote refused,
    the network is down, a hook said no…); the message is git's own, on one line."""

    code = "git_error"
