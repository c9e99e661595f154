"""Pipeline and project documents."""

from prophecy_jupyter.model.migrations import CURRENT_VERSION
from prophecy_jupyter.model.pipeline import (
    Connection,
    Gem,
    Parameter,
    Pipeline,
    Position,
    dump_pipeline,
    load_pipeline,
    pipeline_json_schema,
)
from prophecy_jupyter.model.project import Project, ProjectConfig, init_project

__all__ = [
    "CURRENT_VERSION",
    "Connection",
    "Gem",
    "Parameter",
    "Pipeline",
    "Position",
    "Project",
    "ProjectConfig",
    "dump_pipeline",
    "init_project",
    "load_pipeline",
    "pipeline_json_schema",
]
