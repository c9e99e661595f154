"""Connections: named endpoints that gems read from and write to, beyond the fabric's own
warehouse (object stores, SFTP, databases, HTTP APIs, mail servers).

A connection file (``connections/<name>.yml``) holds what may be committed to Git: the kind
and its non-secret options. Passwords, tokens and keys live in the per-user secret store (or
``PROPHECY_SECRET_CONN_<NAME>_<SECRET>`` environment variables), exactly like a fabric's, and
reach the connector only: a gem names the connection, never a credential.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from prophecy_jupyter.errors import ValidationError
from prophecy_jupyter.fabrics import FABRIC_NAME, OptionValue, SecretStore, SettingsStore
from prophecy_jupyter.model.pipeline import issues_from_pydantic
from prophecy_jupyter.model.project import Project

ConnectionKind = Literal["files", "database", "http", "smtp", "sharepoint", "tableau"]


class Connection(BaseModel):
    """A connection as stored in the project and as the API shows it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=FABRIC_NAME)
    kind: ConnectionKind
    description: str | None = None
    options: dict[str, OptionValue] = Field(
        default_factory=dict, description="Settings that are not secret (host, bucket, url…)"
    )
    secrets: list[str] = Field(
        default_factory=list, description="Names of the secret settings this connection uses"
    )


@dataclass(frozen=True)
class ResolvedConnection:
    """A connection with its secret values, as a connector receives it. Its ``repr`` leaves
    the secrets out, so that a log line or a traceback that shows it shows no credential."""

    name: str
    kind: ConnectionKind
    options: dict[str, OptionValue] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


class ConnectionStore(SettingsStore[Connection]):
    """The connections of one project."""

    folder_name = "connections"
    noun = "connection"
    secret_namespace = "conn:"

    def parse(self, data: dict[str, Any]) -> Connection:
        try:
            return Connection.model_validate(data)
        except PydanticValidationError as exc:
            raise ValidationError(issues_from_pydantic(exc, data)) from None

    def list(self) -> list[Connection]:
        return self._stored()

    def put(
        self, connection: Connection, secrets: dict[str, str | None] | None = None
    ) -> Connection:
        """Create or replace a connection; secret values go to the secret store only."""
        self._write(connection.name, connection, secrets)
        return connection

    def resolve(self, name: str) -> ResolvedConnection:
        """The connection ``name`` with its secrets (raises `NotFound`)."""
        connection = self.get(name)
        return ResolvedConnection(
            connection.name,
            connection.kind,
            dict(connection.options),
            self.resolve_secrets(name),
        )


ConnectionResolver = Callable[[str], ResolvedConnection]
"""What the compiler is handed to look up a connection by name (raises `NotFound`)."""


def project_connections(project: Project, secrets: SecretStore | None = None) -> ConnectionResolver:
    """The resolver front doors hand to the compiler for ``project``."""
    return ConnectionStore(project, secrets).resolve
