"""The shipped ``pipeline.schema.json``: the document shape for editors and other tools.

The file is generated from the typed model so the two cannot drift apart; regenerate it with
``python -m prophecy_jupyter.model.schema`` whenever the model changes.
"""

from __future__ import annotations

import json
from pathlib import Path

from prophecy_jupyter.model.files import atomic_write_text
from prophecy_jupyter.model.pipeline import pipeline_json_schema

SCHEMA_PATH = Path(__file__).with_name("pipeline.schema.json")


def schema_text() -> str:
    """The schema serialised like pipeline files are: sorted keys, 2-space indent, newline."""
    return json.dumps(pipeline_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    atomic_write_text(path, schema_text())
    return path


if __name__ == "__main__":
    print(write_schema())
