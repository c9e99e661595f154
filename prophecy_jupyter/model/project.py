"""A project is a folder: ``prophecy_project.yml``, ``pipelines/*.pipeline.json`` and its data.

`Project` is the one way every front door finds pipelines, so paths and names are resolved
the same everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from prophecy_jupyter.errors import Conflict, Issue, NotFound, ValidationError
from prophecy_jupyter.model.files import atomic_write_text
from prophecy_jupyter.model.pipeline import (
    Pipeline,
    dump_pipeline,
    issues_from_pydantic,
    load_pipeline,
)

PROJECT_FILE = "prophecy_project.yml"
PIPELINE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
PIPELINE_SUFFIX = ".pipeline.json"
"""A pipeline's file is ``pipelines/<name>.pipeline.json``: the suffix tells editors (JupyterLab
opens such files with the pipeline editor) that the JSON file is a pipeline."""


def pipeline_file_name(name: str) -> str:
    return name + PIPELINE_SUFFIX


def pipeline_name_of(path: Path) -> str | None:
    """The pipeline a file holds, by its name: the stem before `PIPELINE_SUFFIX`, or ``None``
    when the file is not a pipeline's."""
    if not path.name.endswith(PIPELINE_SUFFIX):
        return None
    name = path.name[: -len(PIPELINE_SUFFIX)]
    return name if PIPELINE_NAME.match(name) else None


def pipeline_names_in(folder: Path) -> list[str]:
    """The names of the pipeline files in ``folder``, sorted."""
    found = (pipeline_name_of(p) for p in folder.glob("*" + PIPELINE_SUFFIX))
    return sorted(name for name in found if name is not None)


class ProjectConfig(BaseModel):
    """Contents of ``prophecy_project.yml``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    default_fabric: str = "in-memory"
    dialect: Literal["duckdb"] = "duckdb"
    database: str = Field(
        default=".prophecy/warehouse.duckdb",
        description="DuckDB file of the In-Memory fabric, relative to the project, or :memory:",
    )


class Project:
    """A project folder on disk."""

    def __init__(self, root: Path, config: ProjectConfig) -> None:
        self.root = root
        self.config = config

    @classmethod
    def open(cls, path: Path | str) -> Project:
        """Open the project containing ``path`` (the folder itself or any folder below it)."""
        start = Path(path).resolve()
        for folder in (start, *start.parents):
            candidate = folder / PROJECT_FILE
            if candidate.is_file():
                return cls(folder, read_config(candidate))
        raise NotFound(f"no {PROJECT_FILE} in {start} or any parent folder")

    @property
    def pipelines_dir(self) -> Path:
        return self.root / "pipelines"

    @property
    def database_path(self) -> str:
        """The In-Memory fabric's DuckDB database."""
        return self.resolve_database(self.config.database)

    def resolve_database(self, database: str) -> str:
        """A DuckDB database setting: ``:memory:``, or a file relative to the project."""
        return database if database == ":memory:" else str(self.root / database)

    def pipeline_names(self) -> list[str]:
        return pipeline_names_in(self.pipelines_dir)

    def pipeline_path(self, name: str) -> Path:
        if not PIPELINE_NAME.match(name):
            raise ValidationError(
                [Issue("name", f"invalid pipeline name {name!r}: use letters, digits, _ . -")]
            )
        return self.pipelines_dir / pipeline_file_name(name)

    def load_pipeline(self, name: str) -> Pipeline:
        path = self.pipeline_path(name)
        if not path.is_file():
            raise NotFound(f"project '{self.config.name}' has no pipeline '{name}'")
        return load_pipeline(path.read_bytes())

    def save_pipeline(self, name: str, pipeline: Pipeline) -> Path:
        path = self.pipeline_path(name)
        atomic_write_text(path, dump_pipeline(pipeline))
        return path


def read_config(path: Path) -> ProjectConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValidationError([Issue("yaml", f"{path.name} is not valid YAML: {exc}")]) from None
    if not isinstance(data, dict):
        raise ValidationError([Issue("schema", f"{path.name} must be a mapping")])
    try:
        return ProjectConfig.model_validate(data)
    except PydanticValidationError as exc:
        raise ValidationError(issues_from_pydantic(exc, data)) from None


def init_project(path: Path | str, name: str | None = None) -> Project:
    """Create a new, empty project folder (fails if one already exists there)."""
    root = Path(path).resolve()
    config_path = root / PROJECT_FILE
    if config_path.exists():
        raise Conflict(f"{config_path} already exists")
    config = ProjectConfig(name=name or root.name)
    (root / "pipelines").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    atomic_write_text(
        config_path, yaml.safe_dump(config.model_dump(), sort_keys=False, allow_unicode=True)
    )
    atomic_write_text(root / ".gitignore", ".prophecy/\n")
    return Project(root, config)
