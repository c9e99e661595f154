"""What changed between two versions of a pipeline, in the terms users edit it in.

A textual diff of a pipeline file shows shifted list items and braces; users think in gems
(added, removed, which property changed, moved on the canvas) and connections. Documents are
compared keyed on gem ids, so the order of the gem list never reads as an edit and a move on
the canvas is reported apart from real edits. The functions are pure: the git layer reads the
two versions, the Studio and the CLI show the result.

The helpers `normalize_document`, `same_json`, `gem_content` and `connection_key` are shared
with `pipeline_merge`, so that a diff and a merge always agree on what counts as a change.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from prophecy_jupyter.errors import Issue, ValidationError
from prophecy_jupyter.model.pipeline import load_pipeline, pipeline_document, pointer

ConnectionKey = tuple[str, str, str]
"""A connection's identity: ``(from, to, port)``. Connections carry nothing else."""


class Absent(enum.Enum):
    """Marks a key missing from a JSON object: unlike ``null``, which a property may hold."""

    ABSENT = enum.auto()


ABSENT = Absent.ABSENT


@dataclass(frozen=True)
class GemChange:
    """One gem that differs between the two versions.

    ``fields`` are JSON pointers relative to the gem (``/properties/condition``,
    ``/properties/columns/2/expression``, ``/columns/amount/description``, ``/label``,
    ``/kind``); they are empty for an added or removed gem. A change of ``position`` is
    reported as ``moved`` rather than as a field, so the canvas can tell a rearranged graph
    from an edited one.
    """

    gem_id: str
    status: Literal["added", "removed", "changed"]
    kind: str
    fields: list[str]
    moved: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.gem_id,
            "status": self.status,
            "kind": self.kind,
            "fields": list(self.fields),
            "moved": self.moved,
        }


@dataclass(frozen=True)
class ConnectionChange:
    """A connection present on one side only (a connection has no content to change)."""

    status: Literal["added", "removed"]
    source: str
    target: str
    port: str

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "from": self.source, "to": self.target, "port": self.port}


@dataclass(frozen=True)
class PipelineDiff:
    """Every difference between two versions of one pipeline.

    ``gems`` are sorted by gem id; ``connections`` by (from, to, port), a removal before an
    addition; ``fields`` are the top-level fields that changed (``/name``, ``/description``,
    ``/parameters``, ``/version``).
    """

    name: str
    gems: list[GemChange]
    connections: list[ConnectionChange]
    fields: list[str]

    def is_empty(self) -> bool:
        return not (self.gems or self.connections or self.fields)

    def to_dict(self) -> dict[str, Any]:
        """JSON for the REST API and the Studio canvas.

        ``{"name", "fields", "gems": [{"id", "status", "kind", "fields", "moved"}],
        "connections": [{"status", "from", "to", "port"}]}``; connections use the document's
        own ``from``/``to`` spelling.
        """
        return {
            "name": self.name,
            "fields": list(self.fields),
            "gems": [change.to_dict() for change in self.gems],
            "connections": [change.to_dict() for change in self.connections],
        }


def normalize_document(document: Mapping[str, Any] | None, role: str) -> dict[str, Any]:
    """The document as `dump_pipeline` writes it, as plain JSON values; an absent file is empty.

    Comparing canonical forms means that defaults spelled out or left implicit (a connection's
    ``"port": "in0"``, ``"properties": {}``, ``null`` labels), older versions and key order never
    read as edits, and that a document assembled from these parts is already canonical.
    Pipelines are compared by gem id, so a document repeating one cannot be compared: that is
    a `ValidationError`, like a document that does not load. ``role`` names the document in
    those errors (``"ours"``, ``"old"``…).
    """
    if document is None:
        return {"parameters": [], "gems": [], "connections": []}
    try:
        pipeline = load_pipeline(dict(document))
    except ValidationError as exc:
        raise ValidationError(
            exc.issues, summary=f"the {role} document is not a valid pipeline: {exc}"
        ) from None
    seen: set[str] = set()
    for index, gem in enumerate(pipeline.gems):
        if gem.id in seen:
            raise ValidationError(
                [
                    Issue(
                        "duplicate_id",
                        f"the {role} document has more than one gem '{gem.id}'; "
                        "pipelines are compared by gem id",
                        gem.id,
                        pointer("gems", index, "id"),
                    )
                ]
            )
        seen.add(gem.id)
    return pipeline_document(pipeline)


def same_json(a: Any, b: Any) -> bool:
    """Whether two JSON values are equal as JSON: unlike ``==``, ``true`` is not ``1``.

    ``40`` and ``40.0`` are the same (both are written ``40``).
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(same_json(value, b[key]) for key, value in a.items())
        )
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(same_json(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(b, dict | list):
        return False
    return bool(a == b)


def gem_content(gem: Mapping[str, Any]) -> dict[str, Any]:
    """A gem without its position: what counts as editing it (moving it does not).

    A gem without column descriptions has ``"columns": {}`` here, as it is left out of the
    file: the first description then reads as ``/columns/<name>`` and merges key by key."""
    content = {key: value for key, value in gem.items() if key != "position"}
    content.setdefault("columns", {})
    return content


def connection_key(connection: Mapping[str, Any]) -> ConnectionKey:
    return (connection["from"], connection["to"], connection["port"])


def changed_paths(old: Any, new: Any, *parts: str | int) -> list[str]:
    """JSON pointers of the leaves that differ between two JSON values, in document order.

    Objects are compared key by key and lists of equal length item by item; a list that grew
    or shrank is reported as a whole, since index-wise pointers past an insertion would name
    items that did not change.
    """
    if same_json(old, new):
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            path
            for key in sorted(old.keys() | new.keys())
            for path in changed_paths(old.get(key, ABSENT), new.get(key, ABSENT), *parts, key)
        ]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            path
            for index, (x, y) in enumerate(zip(old, new, strict=True))
            for path in changed_paths(x, y, *parts, index)
        ]
    return [pointer(*parts)]


def diff_pipelines(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> PipelineDiff:
    """Compare two versions of a pipeline; ``None`` is an absent file.

    An absent old file reports every gem and connection as added, an absent new one as
    removed. Raises `ValidationError` if either document does not load or repeats a gem id.
    """
    before = normalize_document(old, "old")
    after = normalize_document(new, "new")
    old_gems = {gem["id"]: gem for gem in before["gems"]}
    new_gems = {gem["id"]: gem for gem in after["gems"]}
    gems: list[GemChange] = []
    for gem_id in sorted(old_gems.keys() | new_gems.keys()):
        was, now = old_gems.get(gem_id), new_gems.get(gem_id)
        if was is None:
            assert now is not None
            gems.append(GemChange(gem_id, "added", now["kind"], [], moved=False))
        elif now is None:
            gems.append(GemChange(gem_id, "removed", was["kind"], [], moved=False))
        else:
            fields = changed_paths(gem_content(was), gem_content(now))
            moved = not same_json(was.get("position", ABSENT), now.get("position", ABSENT))
            if fields or moved:
                gems.append(GemChange(gem_id, "changed", now["kind"], fields, moved))
    old_connections = {connection_key(c) for c in before["connections"]}
    new_connections = {connection_key(c) for c in after["connections"]}
    connections = sorted(
        [ConnectionChange("removed", *key) for key in old_connections - new_connections]
        + [ConnectionChange("added", *key) for key in new_connections - old_connections],
        key=lambda c: (c.source, c.target, c.port, c.status != "removed"),
    )
    top = (before.keys() | after.keys()) - {"gems", "connections"}
    fields = [
        pointer(key)
        for key in sorted(top)
        if not same_json(before.get(key, ABSENT), after.get(key, ABSENT))
    ]
    name = after.get("name", before.get("name", ""))
    return PipelineDiff(name, gems, connections, fields)


def render_diff(diff: PipelineDiff) -> str:
    """Readable text for the CLI, one change per line.

    ``~ pipeline shop: /description``, ``+ gem filter_1 (Filter)``, ``- gem old (Source)``,
    ``~ gem orders (Source): /properties/path`` followed by ``  moved`` when it also moved,
    ``+ connection orders → filter_1 (in0)``; ``no changes`` when there are none.
    """
    if diff.is_empty():
        return "no changes"
    lines: list[str] = []
    if diff.fields:
        lines.append(f"~ pipeline {diff.name}: {', '.join(diff.fields)}")
    marks = {"added": "+", "removed": "-", "changed": "~"}
    for gem in diff.gems:
        line = f"{marks[gem.status]} gem {gem.gem_id} ({gem.kind})"
        lines.append(f"{line}: {', '.join(gem.fields)}" if gem.fields else line)
        if gem.moved:
            lines.append("  moved")
    lines.extend(
        f"{marks[c.status]} connection {c.source} → {c.target} ({c.port})" for c in diff.connections
    )
    return "\n".join(lines)
