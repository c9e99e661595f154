"""Fabrics: named engines with their connection settings, kept in the project without secrets.

A fabric file (``fabrics/<name>.yml``) holds only what may be committed to Git. Secret values
(passwords, tokens) live in a per-user store outside the project, a JSON file readable by its
owner alone, or come from environment variables; they are handed to engines and never
returned by the API, printed or logged. The In-Memory fabric (DuckDB) always exists.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from prophecy_jupyter.engines.base import Engine
from prophecy_jupyter.engines.duckdb import DuckDBEngine
from prophecy_jupyter.errors import EngineError, Issue, NotFound, ValidationError
from prophecy_jupyter.model.files import atomic_write_text
from prophecy_jupyter.model.pipeline import issues_from_pydantic
from prophecy_jupyter.model.project import Project

FABRIC_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
IN_MEMORY = "in-memory"
FABRIC_VARIABLE = "PROPHECY_FABRIC"
"""The environment variable that makes a notebook kernel's commands default to a fabric other
than the project's (an Automate notebook run sets it to the run's fabric)."""
FABRIC_PROJECT_VARIABLE = "PROPHECY_FABRIC_PROJECT"
"""When set, the project folder `FABRIC_VARIABLE` is meant for; other projects keep their own
default fabric."""
MASK = "********"

FabricKind = Literal["duckdb", "spark", "livy", "postgres", "databricks", "bigquery", "snowflake"]
OptionValue = str | int | float | bool
Model = TypeVar("Model", bound=BaseModel)


class Fabric(BaseModel):
    """A fabric as stored in the project and as the API shows it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=FABRIC_NAME)
    kind: FabricKind
    description: str | None = None
    options: dict[str, OptionValue] = Field(
        default_factory=dict, description="Connection settings that are not secret"
    )
    secrets: list[str] = Field(
        default_factory=list, description="Names of the secret settings this fabric uses"
    )


def secrets_path() -> Path:
    """The per-user secret store: ``$PROPHECY_SECRETS_FILE``, else under the user's data dir."""
    configured = os.environ.get("PROPHECY_SECRETS_FILE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "prophecy-jupyter" / "secrets.json"


class SecretStore:
    """Secret values keyed by project folder, fabric and setting; file mode 0600."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or secrets_path()

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            raise EngineError(f"the secret store {self.path} is unreadable") from None
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_text(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.chmod(self.path, 0o600)

    @staticmethod
    def _key(project: Project | None, fabric: str) -> str:
        return fabric if project is None else f"{project.root}::{fabric}"

    def get(self, project: Project | None, fabric: str) -> dict[str, str]:
        """Secret values of one entry: a project's fabric (or connection, …), or with
        ``project`` None an entry of the user's that holds for every project."""
        return dict(self._load().get(self._key(project, fabric), {}))

    def update(self, project: Project | None, fabric: str, values: dict[str, str | None]) -> None:
        """Set (or, with ``None``, remove) secret values of one entry (see `get`)."""
        data = self._load()
        current = data.setdefault(self._key(project, fabric), {})
        for name, value in values.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value
        if not current:
            data.pop(self._key(project, fabric))
        self._save(data)

    def forget(self, project: Project | None, fabric: str) -> None:
        data = self._load()
        if data.pop(self._key(project, fabric), None) is not None:
            self._save(data)


def secret_env_name(fabric: str, secret: str) -> str:
    return "PROPHECY_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", f"{fabric}_{secret}").upper()


class SettingsStore(Generic[Model]):
    """Named settings of one project, one YAML file each under ``folder``, with their secret
    values in the `SecretStore` (or environment variables) and never in the file.

    Fabrics (engines) and connections (ingress/egress endpoints) are both kept this way; a
    subclass names the folder, the model and how its secrets are keyed.
    """

    folder_name: str
    noun: str
    secret_namespace: str = ""
    """Prefix of this store's keys in the secret store and environment, so that a fabric and
    a connection of the same name keep their secrets apart."""

    def __init__(self, project: Project, secrets: SecretStore | None = None) -> None:
        self.project = project
        self.secrets = secrets or SecretStore()

    @property
    def folder(self) -> Path:
        return self.project.root / self.folder_name

    def parse(self, data: dict[str, Any]) -> Model:
        raise NotImplementedError

    def _path(self, name: str) -> Path:
        if not re.match(FABRIC_NAME, name):
            raise ValidationError(
                [Issue("name", f"invalid {self.noun} name {name!r}: letters, digits, _ and -")]
            )
        return self.folder / f"{name}.yml"

    def _stored(self) -> list[Model]:
        return [self.get(p.stem) for p in sorted(self.folder.glob("*.yml"))]

    def get(self, name: str) -> Model:
        path = self._path(name)
        if not path.is_file():
            raise NotFound(f"project '{self.project.config.name}' has no {self.noun} '{name}'")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ValidationError(
                [Issue("yaml", f"{path.name} is not valid YAML: {exc}")]
            ) from None
        return self.parse({**(data if isinstance(data, dict) else {}), "name": name})

    def declared_secrets(self, item: Model) -> list[str]:
        return list(getattr(item, "secrets", []))

    def secret_status(self, name: str) -> dict[str, bool]:
        """Which of an entry's secrets have a value, without revealing any."""
        item = self.get(name)
        values = self.resolve_secrets(name)
        return {secret: secret in values for secret in self.declared_secrets(item)}

    def _write(self, name: str, item: Model, secrets: dict[str, str | None] | None) -> None:
        values = dict(secrets or {})
        unknown = sorted(set(values) - set(self.declared_secrets(item)))
        if unknown:
            raise ValidationError(
                [
                    Issue(
                        "secrets",
                        f"secret {unknown[0]!r} is not declared in the {self.noun}'s secrets list",
                        field="/secrets",
                    )
                ]
            )
        body = item.model_dump(exclude={"name"}, exclude_none=True)
        atomic_write_text(self._path(name), yaml.safe_dump(body, sort_keys=True))
        if values:
            self.secrets.update(self.project, self.secret_namespace + name, values)

    def delete(self, name: str) -> None:
        path = self._path(name)
        if not path.is_file():
            raise NotFound(f"project '{self.project.config.name}' has no {self.noun} '{name}'")
        path.unlink()
        self.secrets.forget(self.project, self.secret_namespace + name)

    def resolve_secrets(self, name: str) -> dict[str, str]:
        """Secret values for an engine or connector: environment variables win over the
        store."""
        values = self.secrets.get(self.project, self.secret_namespace + name)
        for secret in self.declared_secrets(self.get(name)):
            env = os.environ.get(secret_env_name(self.secret_namespace + name, secret))
            if env is not None:
                values[secret] = env
        return values


class FabricStore(SettingsStore[Fabric]):
    """The fabrics of one project."""

    folder_name = "fabrics"
    noun = "fabric"

    def parse(self, data: dict[str, Any]) -> Fabric:
        return parse_fabric(data)

    def in_memory(self) -> Fabric:
        return Fabric(
            name=IN_MEMORY,
            kind="duckdb",
            description="Embedded DuckDB warehouse of this project",
            options={"database": self.project.config.database},
        )

    def list(self) -> list[Fabric]:
        return [self.in_memory(), *(f for f in self._stored() if f.name != IN_MEMORY)]

    def get(self, name: str) -> Fabric:
        if name == IN_MEMORY:
            return self.in_memory()
        return super().get(name)

    def put(self, fabric: Fabric, secrets: dict[str, str | None] | None = None) -> Fabric:
        """Create or replace a fabric; secret values go to the secret store only."""
        if fabric.name == IN_MEMORY:
            raise ValidationError(
                [Issue("name", f"'{IN_MEMORY}' is built in and cannot be replaced", field="/name")]
            )
        self._write(fabric.name, fabric, secrets)
        return fabric

    def resolve_secrets(self, name: str) -> dict[str, str]:
        return {} if name == IN_MEMORY else super().resolve_secrets(name)

    def engine(self, name: str | None = None) -> Engine:
        """An engine for a fabric (the project's default when ``name`` is None)."""
        fabric = self.get(name or self.project.config.default_fabric)
        return open_engine(fabric, self.project, self.resolve_secrets(fabric.name))


ENGINE_OPENERS: dict[str, str] = {
    "spark": "prophecy_jupyter.engines.spark:open_spark",
    "livy": "prophecy_jupyter.engines.livy:open_livy",
    "postgres": "prophecy_jupyter.engines.warehouse:open_postgres",
    "databricks": "prophecy_jupyter.engines.warehouse:open_databricks",
    "bigquery": "prophecy_jupyter.engines.warehouse:open_bigquery",
    "snowflake": "prophecy_jupyter.engines.warehouse:open_snowflake",
}
"""Where each kind's engine is made, as ``module:function``; imported on first use so that
the base install needs none of their client libraries. Each function takes the fabric, its
secret values and the project (or None) and returns an `Engine`."""

EngineOpener = Callable[[Fabric, Mapping[str, str], Project | None], Engine]


def open_engine(
    fabric: Fabric, project: Project | None = None, secrets: Mapping[str, str] | None = None
) -> Engine:
    """The engine a fabric describes: the one place an engine kind is looked up, for stored
    fabrics and for those a front door makes up on the spot (a notebook's ``--engine KIND``).

    Without a project, database files and relative paths resolve in the working folder.
    """
    if fabric.kind == "duckdb":
        database = str(fabric.options.get("database", ":memory:"))
        if project is None:
            return DuckDBEngine(database)
        return DuckDBEngine(project.resolve_database(database), root=project.root)
    module_name, _, function = ENGINE_OPENERS[fabric.kind].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name == module_name:
            raise EngineError(
                f"fabric '{fabric.name}': {fabric.kind} engines are not available yet"
            ) from None
        raise EngineError(
            f"fabric '{fabric.name}': the {fabric.kind} engine needs a package that is not "
            f"installed ({exc.name}): pip install 'prophecy-jupyter[{fabric.kind}]'"
        ) from None
    opener: EngineOpener = getattr(module, function)
    return opener(fabric, dict(secrets or {}), project)


def parse_fabric(data: dict[str, Any]) -> Fabric:
    try:
        return Fabric.model_validate(data)
    except PydanticValidationError as exc:
        raise ValidationError(issues_from_pydantic(exc, data)) from None
