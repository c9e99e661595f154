"""Three-way merge of pipeline documents, keyed on gem ids rather than lines of text.

Two branches that edit different gems of one pipeline touch neighbouring lines of the file, so
a textual merge conflicts where users see no conflict at all, and it can silently produce a
connection to a gem the other branch deleted. Merging the document structure instead:

- gems are matched by id: added on one side, added; removed on one side and untouched on the
  other, removed; changed on one side, that side's version; changed on both, merged field by
  field and property by property (objects by key; lists whose items all carry a distinct
  ``id``, ``name`` or ``column`` by that key, keeping either side's reordering; any other list
  as one value). The same change on both sides agrees; different changes to one value
  conflict. A gem removed on one side and edited (or newly connected) on the other conflicts
  as a whole, as does one added on both sides with different content, or changed on both
  sides with different kinds (merging the properties of two different kinds means nothing).
- positions never conflict: a layout is not worth stopping a merge for. A gem moved on one
  side takes that side's position; moved on both, ours.
- connections are a set of (from, to, port): each side's additions and removals apply. A port
  takes one input, so two sides feeding one port from different gems conflict; a connection
  whose gem is gone is dropped with it.
- name, description, version and parameters (keyed by name) merge like gem fields.

A conflict names its place by a JSON pointer keyed by ids and names rather than list indexes
(``/gems/shipped/properties/condition``, ``/parameters/since/default``,
``/gems/with_month/properties/columns/month/expression``, ``/connections/ranked/in0``), which
stays meaningful whichever side's list order is kept. The merged document holds ours at every
conflict; `resolve` replays the merge with a side chosen for each. The set of conflicts never
depends on the choices, so one round of choices always settles a merge.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from prophecy_jupyter.errors import Issue, ValidationError
from prophecy_jupyter.model.pipeline import pointer
from prophecy_jupyter.vcs.pipeline_diff import (
    ABSENT,
    ConnectionKey,
    connection_key,
    gem_content,
    normalize_document,
    same_json,
)

Side = Literal["ours", "theirs"]

LIST_KEYS = ("id", "name", "column")
"""Item fields that identify the items of a list, tried in this order; see `_list_key`."""


@dataclass(frozen=True)
class MergeConflict:
    """One place where the two sides made different changes.

    ``path`` is a JSON pointer keyed by gem ids and item keys, not list positions;
    ``base``/``ours``/``theirs`` are the values there (``None`` where absent). Two kinds of
    place hold something else: for a port fed differently (``/connections/<to>/<port>``) the
    values are the feeding gem's id (a sorted list of ids where a side already fed the port
    more than once), and for a list both sides reordered differently they are the lists of
    item keys in each side's order.
    """

    path: str
    gem_id: str | None
    reason: str
    base: Any
    ours: Any
    theirs: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "gem_id": self.gem_id,
            "reason": self.reason,
            "base": self.base,
            "ours": self.ours,
            "theirs": self.theirs,
        }


@dataclass(frozen=True)
class MergeResult:
    """The merged document (holding ours at each conflict) and the conflicts, in document order."""

    document: dict[str, Any]
    conflicts: list[MergeConflict]

    @property
    def clean(self) -> bool:
        return not self.conflicts

    def to_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "document": self.document,
            "conflicts": [conflict.to_dict() for conflict in self.conflicts],
        }


def merge_pipelines(
    base: Mapping[str, Any] | None, ours: Mapping[str, Any], theirs: Mapping[str, Any]
) -> MergeResult:
    """Merge two versions of a pipeline that share the ``base`` version (``None``: both added it).

    Raises `ValidationError` if a document does not load or repeats a gem id. When the inputs
    load, the merged document loads too, and is in the canonical form `dump_pipeline` writes.
    """
    return _Merge(base, ours, theirs, {}).run()


def resolve(
    result: MergeResult,
    base: Mapping[str, Any] | None,
    ours: Mapping[str, Any],
    theirs: Mapping[str, Any],
    choices: Mapping[str, Side],
) -> dict[str, Any]:
    """The merged document with each conflict settled by the side chosen for its path.

    ``result`` is what `merge_pipelines` returned for these documents; every conflict's path
    must be in ``choices`` and nothing else may be, else a `ValidationError` names the paths.
    """
    if merge_pipelines(base, ours, theirs).conflicts != result.conflicts:
        raise ValidationError(
            [Issue("stale_merge", "the merge result was not computed from these documents")]
        )
    paths = {conflict.path: conflict for conflict in result.conflicts}
    issues = [
        Issue(
            "unresolved_conflict",
            f"no side chosen for the conflict at {path}",
            paths[path].gem_id,
            path,
        )
        for path in paths
        if path not in choices
    ]
    issues += [
        Issue("unknown_conflict", f"no conflict at {path}", field=path)
        for path in choices
        if path not in paths
    ]
    issues += [
        Issue("invalid_choice", f"choose 'ours' or 'theirs' for {path}, not {side!r}", field=path)
        for path, side in choices.items()
        if path in paths and side not in get_args(Side)
    ]
    if issues:
        unresolved = [i.field for i in issues if i.code == "unresolved_conflict"]
        summary = f"unresolved conflicts: {', '.join(map(str, unresolved))}" if unresolved else None
        raise ValidationError(issues, summary=summary)
    return _Merge(base, ours, theirs, choices).run().document


@dataclass
class _Merge:
    """One run of the merge; ``choices`` settles conflicts by path, ours by default."""

    base: Mapping[str, Any] | None
    ours: Mapping[str, Any]
    theirs: Mapping[str, Any]
    choices: Mapping[str, Side]
    conflicts: list[MergeConflict] = field(default_factory=list)

    def run(self) -> MergeResult:
        b = normalize_document(self.base, "base")
        o = normalize_document(self.ours, "ours")
        t = normalize_document(self.theirs, "theirs")
        # A side that changed nothing takes the other side whole, down to the order of its
        # lists, which the merge below would otherwise rebuild from ours.
        if same_json(o, b) or same_json(o, t):
            return MergeResult(copy.deepcopy(t), [])
        if same_json(t, b):
            return MergeResult(copy.deepcopy(o), [])
        document: dict[str, Any] = {}
        for key in _ordered_union(o, t, b):
            if key not in ("gems", "connections"):
                value = self._merge_value(
                    b.get(key, ABSENT), o.get(key, ABSENT), t.get(key, ABSENT), (key,), key, None
                )
                if value is not ABSENT:
                    document[key] = value
        gems, existence = self._merge_gems(b, o, t)
        document["gems"] = gems
        present = {gem["id"] for gem in gems}
        document["connections"] = self._merge_connections(b, o, t, existence, present)
        return MergeResult(copy.deepcopy(document), self.conflicts)

    def _conflict(
        self,
        parts: Sequence[str],
        gem_id: str | None,
        reason: str,
        base: Any,
        ours: Any,
        theirs: Any,
    ) -> Side:
        """Record a conflict and return the side chosen for it."""
        path = pointer(*parts)
        self.conflicts.append(
            MergeConflict(path, gem_id, reason, _or_none(base), _or_none(ours), _or_none(theirs))
        )
        return self.choices.get(path, "ours")

    def _merge_value(
        self, b: Any, o: Any, t: Any, parts: tuple[str, ...], where: str, gem_id: str | None
    ) -> Any:
        """Three-way merge of one JSON value; `ABSENT` in and out stands for a missing key.

        ``where`` names the value for a reason (``condition``, ``columns[month].expression``).
        """
        if same_json(o, t):
            return o
        if same_json(o, b):
            return t
        if same_json(t, b):
            return o
        if isinstance(b, dict) and isinstance(o, dict) and isinstance(t, dict):
            merged = {}
            for key in _ordered_union(o, t, b):
                value = self._merge_value(
                    b.get(key, ABSENT),
                    o.get(key, ABSENT),
                    t.get(key, ABSENT),
                    (*parts, key),
                    f"{where}.{key}" if where else key,
                    gem_id,
                )
                if value is not ABSENT:
                    merged[key] = value
            return merged
        if isinstance(b, list) and isinstance(o, list) and isinstance(t, list):
            key = _list_key(b, o, t)
            if key is not None:
                return self._merge_keyed_list(b, o, t, key, parts, where, gem_id)
        if o is ABSENT or t is ABSENT:
            reason = "removed on one side, changed on the other"
        elif b is ABSENT:
            reason = f"both added the {where} with different values"
        else:
            reason = f"both changed the {where}"
        side = self._conflict(parts, gem_id, reason, b, o, t)
        return o if side == "ours" else t

    def _merge_keyed_list(
        self,
        b: list[Any],
        o: list[Any],
        t: list[Any],
        key: str,
        parts: tuple[str, ...],
        where: str,
        gem_id: str | None,
    ) -> list[Any]:
        """Merge lists item by item, matching items by ``key``, and merge their orders."""
        base, ours, theirs = ({item[key]: item for item in items} for items in (b, o, t))
        merged: dict[str, Any] = {}
        for item_key in _ordered_union(ours, theirs, base):
            value = self._merge_value(
                base.get(item_key, ABSENT),
                ours.get(item_key, ABSENT),
                theirs.get(item_key, ABSENT),
                (*parts, item_key),
                f"{where}[{item_key}]",
                gem_id,
            )
            if value is not ABSENT:
                merged[item_key] = value
        order = self._merge_order(list(base), list(ours), list(theirs), parts, where, gem_id)
        return [merged[item_key] for item_key in order if item_key in merged]

    def _merge_order(
        self,
        b: list[str],
        o: list[str],
        t: list[str],
        parts: tuple[str, ...],
        where: str,
        gem_id: str | None,
    ) -> list[str]:
        """An order for the union of both sides' keys that keeps either side's reordering.

        The side that reordered the items it shares with the base gives the order (ours if
        neither did, or both did alike; a conflict if both did differently); the other side's
        new items are inserted after the item they follow there, after the first side's own
        new items at the same spot.
        """
        in_base = set(b)
        in_ours, in_theirs = set(o), set(t)

        def reordered(side: list[str], in_side: set[str]) -> bool:
            return [k for k in side if k in in_base] != [k for k in b if k in in_side]

        if reordered(t, in_theirs):
            shared_ours = [k for k in o if k in in_base and k in in_theirs]
            shared_theirs = [k for k in t if k in in_base and k in in_ours]
            lead: Side = "theirs"
            if reordered(o, in_ours):
                lead = "ours"
                if shared_ours != shared_theirs:
                    lead = self._conflict(parts, gem_id, f"both reordered the {where}", b, o, t)
        else:
            lead = "ours"
        order, other = (list(o), t) if lead == "ours" else (list(t), o)
        known_to_other = set(other) | in_base
        anchor = -1
        for item_key in other:
            if item_key in order:
                anchor = order.index(item_key)
                while anchor + 1 < len(order) and order[anchor + 1] not in known_to_other:
                    anchor += 1
            else:
                anchor += 1
                order.insert(anchor, item_key)
        return order

    def _merge_gems(
        self, b: dict[str, Any], o: dict[str, Any], t: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, Side]]:
        """The merged gems (ours' order, then theirs' new ones) and, for each gem whose
        existence conflicted, the side whose version of it (and of its connections) is kept."""
        base, ours, theirs = ({gem["id"]: gem for gem in doc["gems"]} for doc in (b, o, t))
        base_connections = {connection_key(c) for c in b["connections"]}
        added = {
            "ours": {connection_key(c) for c in o["connections"]} - base_connections,
            "theirs": {connection_key(c) for c in t["connections"]} - base_connections,
        }
        merged: dict[str, dict[str, Any]] = {}
        existence: dict[str, Side] = {}
        for gem_id in _ordered_union(ours, theirs, base):
            was, mine, their = base.get(gem_id), ours.get(gem_id), theirs.get(gem_id)
            if mine is not None and their is not None:
                if was is None:
                    merged[gem_id] = self._merge_added_gem(gem_id, mine, their)
                else:
                    merged[gem_id] = self._merge_gem(gem_id, was, mine, their)
            elif was is None:
                kept = mine if mine is not None else their
                assert kept is not None
                merged[gem_id] = kept
            elif mine is not None or their is not None:
                kept_side: Side = "ours" if mine is not None else "theirs"
                kept = mine if mine is not None else their
                assert kept is not None
                if not same_json(gem_content(kept), gem_content(was)):
                    reason = "removed on one side, changed on the other"
                elif any(gem_id in key[:2] for key in added[kept_side]):
                    reason = "connected on one side to a gem removed on the other"
                else:
                    continue  # removed on one side, at most moved on the other
                side = self._conflict(("gems", gem_id), gem_id, reason, was, mine, their)
                existence[gem_id] = side
                if side == kept_side:
                    merged[gem_id] = kept
        order = _ordered_union(ours, theirs)
        return [merged[gem_id] for gem_id in order if gem_id in merged], existence

    def _merge_added_gem(
        self, gem_id: str, ours: dict[str, Any], theirs: dict[str, Any]
    ) -> dict[str, Any]:
        if same_json(gem_content(ours), gem_content(theirs)):
            return ours
        side = self._conflict(
            ("gems", gem_id),
            gem_id,
            "added on both sides with different content",
            None,
            ours,
            theirs,
        )
        return ours if side == "ours" else theirs

    def _merge_gem(
        self, gem_id: str, base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any]
    ) -> dict[str, Any]:
        b, o, t = gem_content(base), gem_content(ours), gem_content(theirs)
        if o["kind"] != t["kind"] and not same_json(o, b) and not same_json(t, b):
            side = self._conflict(
                ("gems", gem_id),
                gem_id,
                "both changed the gem, and they disagree on its kind",
                base,
                ours,
                theirs,
            )
            gem = o if side == "ours" else t
        else:
            gem = {}
            for key in _ordered_union(o, t, b):
                value = self._merge_value(
                    b.get(key, ABSENT),
                    o.get(key, ABSENT),
                    t.get(key, ABSENT),
                    ("gems", gem_id, key),
                    "" if key == "properties" else key,
                    gem_id,
                )
                if value is not ABSENT:
                    gem[key] = value
        if not gem.get("columns"):
            gem = {key: value for key, value in gem.items() if key != "columns"}
        moved = not same_json(ours.get("position", ABSENT), base.get("position", ABSENT))
        position = (ours if moved else theirs).get("position", ABSENT)
        if position is not ABSENT:
            gem["position"] = position
        return gem

    def _merge_connections(
        self,
        b: dict[str, Any],
        o: dict[str, Any],
        t: dict[str, Any],
        existence: Mapping[str, Side],
        present: set[str],
    ) -> list[dict[str, str]]:
        """Merge the connection sets, then keep only connections between merged gems.

        The connections of a gem whose existence conflicted are the chosen side's. Ports are
        checked for two feeds on the connections any choice could keep, so that which ports
        conflict does not depend on the choices.
        """
        base, ours, theirs = ({connection_key(c) for c in doc["connections"]} for doc in (b, o, t))
        sides = {"ours": ours, "theirs": theirs}

        def three_way(key: ConnectionKey) -> bool:
            return (key in ours and key in theirs) or (key not in base)

        candidates = [
            key
            for key in _ordered_union(
                (connection_key(c) for c in o["connections"]),
                (connection_key(c) for c in t["connections"]),
            )
            if three_way(key) or key[0] in existence or key[1] in existence
        ]
        feeds: dict[tuple[str, str], list[ConnectionKey]] = {}
        for key in candidates:
            feeds.setdefault((key[1], key[2]), []).append(key)
        port_choice: dict[tuple[str, str], Side] = {}
        for (target, port), group in feeds.items():
            if len(group) > 1 and not set(group) <= ours and not set(group) <= theirs:
                port_choice[target, port] = self._conflict(
                    ("connections", target, port),
                    target,
                    f"each side feeds port {port} of '{target}' from a different gem",
                    _feeders(base, target, port),
                    _feeders(ours, target, port),
                    _feeders(theirs, target, port),
                )
        merged: list[dict[str, str]] = []
        for key in candidates:
            source, target, port = key
            gated = [existence[gem_id] for gem_id in (source, target) if gem_id in existence]
            keep = all(key in sides[side] for side in gated) if gated else three_way(key)
            if (target, port) in port_choice:
                keep = keep and key in sides[port_choice[target, port]]
            if keep and source in present and target in present:
                merged.append({"from": source, "port": port, "to": target})
        return merged


def _ordered_union(*sequences: Iterable[Any]) -> list[Any]:
    """Every item of the sequences once, in order of first appearance."""
    return list(dict.fromkeys(item for sequence in sequences for item in sequence))


def _or_none(value: Any) -> Any:
    return None if value is ABSENT else value


def _list_key(*lists: list[Any]) -> str | None:
    """The item field that identifies the items of all three lists, if there is one.

    A list can be merged item by item only if every item, on every side, is an object with
    that field holding a string, distinct within its list; otherwise which item is which is
    guesswork and the list merges as one value.
    """
    for key in LIST_KEYS:
        if all(_keyed_by(items, key) for items in lists):
            return key
    return None


def _keyed_by(items: list[Any], key: str) -> bool:
    values = [item.get(key) if isinstance(item, dict) else None for item in items]
    return all(isinstance(value, str) for value in values) and len(set(values)) == len(values)


def _feeders(connections: set[ConnectionKey], target: str, port: str) -> str | list[str] | None:
    sources = sorted(source for source, to, at in connections if (to, at) == (target, port))
    if not sources:
        return None
    return sources[0] if len(sources) == 1 else sources
