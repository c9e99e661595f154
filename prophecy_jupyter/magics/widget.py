"""`PipelineGraph`: a pipeline's gems drawn as an SVG graph in the notebook.

An anywidget whose JavaScript is inline (no build step): the Python side holds the graph
(gems with their positions, kinds, labels, properties, output columns and issues;
connections) and each gem's run status as synced traits; the browser draws them, pans and
zooms, and shows a gem's details when it is clicked. A run updates ``status`` as each gem
progresses, and trait sync repaints every view of the widget while the run is still going.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import anywidget
import traitlets

from prophecy_jupyter.automate.runner import GemRun, ProgressCallback, RunMode, schedule
from prophecy_jupyter.compiler import CompiledPipeline
from prophecy_jupyter.errors import ProphecyError
from prophecy_jupyter.gems.registry import gem_kinds
from prophecy_jupyter.model.pipeline import Pipeline

COLUMN_GAP = 200.0
ROW_GAP = 100.0
MARGIN = 40.0

ESM = r"""
const NODE_W = 168;
const NODE_H = 56;
const PAD = 48;
const SVG_NS = "http://www.w3.org/2000/svg";
const CATEGORY_COLOURS = {
  "Source/Target": "#2f855a",
  "Transform": "#2b6cb0",
  "Join/Split": "#6b46c1",
  "Reshape and cleanse": "#b7791f",
  "Custom": "#c05621",
};
const STATUS_COLOURS = {
  pending: "#a0aec0",
  running: "#3182ce",
  succeeded: "#38a169",
  failed: "#e53e3e",
  skipped: "#d69e2e",
};
let widgetCount = 0;

function svg(tag, attrs, parent) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

function tag(name, className, text, parent) {
  const node = document.createElement(name);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (parent) parent.appendChild(node);
  return node;
}

function isNumber(value) {
  return typeof value === "number";
}

function clip(text, size) {
  return text.length > size ? text.slice(0, size - 1) + "\u2026" : text;
}

function bounds(nodes) {
  if (!nodes.length) return { x: 0, y: 0, w: 400, h: 200 };
  const xs = nodes.map((n) => n.x);
  const ys = nodes.map((n) => n.y);
  const x = Math.min(...xs) - PAD;
  const y = Math.min(...ys) - PAD;
  return {
    x,
    y,
    w: Math.max(...xs) + NODE_W + PAD - x,
    h: Math.max(...ys) + NODE_H + PAD - y,
  };
}

function render({ model, el }) {
  const uid = `prophecy-graph-${++widgetCount}`;
  const root = tag("div", "prophecy-graph", null, el);
  const bar = tag("div", "prophecy-graph-bar", null, root);
  const title = tag("span", "prophecy-graph-title", "", bar);
  const summary = tag("span", "prophecy-graph-summary", "", bar);
  const buttons = {};
  const controls = [
    ["out", "\u2212", "Zoom out"],
    ["in", "+", "Zoom in"],
    ["fit", "Fit", "Show every gem"],
  ];
  for (const [key, text, hint] of controls) {
    buttons[key] = tag("button", "prophecy-graph-button", text, bar);
    buttons[key].title = hint;
  }
  const canvas = svg(
    "svg",
    { class: "prophecy-graph-canvas", preserveAspectRatio: "xMidYMid meet" },
    root,
  );
  const marker = svg(
    "marker",
    {
      id: `${uid}-arrow`,
      viewBox: "0 0 10 10",
      refX: 10,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: "auto-start-reverse",
    },
    svg("defs", {}, canvas),
  );
  svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "prophecy-graph-arrow" }, marker);
  const edgeLayer = svg("g", {}, canvas);
  const nodeLayer = svg("g", {}, canvas);
  const details = tag("div", "prophecy-graph-details", null, root);
  let view = { x: 0, y: 0, w: 400, h: 200 };
  const gems = new Map();

  function applyView() {
    canvas.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
  }

  function fit() {
    view = bounds(model.get("nodes"));
    applyView();
  }

  function zoom(factor, cx, cy) {
    const x = cx === undefined ? view.x + view.w / 2 : cx;
    const y = cy === undefined ? view.y + view.h / 2 : cy;
    view = {
      x: x - (x - view.x) * factor,
      y: y - (y - view.y) * factor,
      w: view.w * factor,
      h: view.h * factor,
    };
    applyView();
  }

  function select(id) {
    model.set("selected", id);
    model.save_changes();
  }

  function draw() {
    edgeLayer.replaceChildren();
    nodeLayer.replaceChildren();
    gems.clear();
    const nodes = model.get("nodes");
    const edges = model.get("edges");
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const fanIn = new Map();
    for (const edge of edges) fanIn.set(edge.to, (fanIn.get(edge.to) || 0) + 1);
    title.textContent = model.get("pipeline");
    const invalid = nodes.filter((n) => n.issues.length).length;
    const problems = invalid ? ` \u00b7 ${invalid} with problems` : "";
    summary.textContent = `${nodes.length} gems${problems}`;
    for (const edge of edges) {
      const a = byId.get(edge.from);
      const b = byId.get(edge.to);
      if (!a || !b) continue;
      const x1 = a.x + NODE_W;
      const y1 = a.y + NODE_H / 2;
      const x2 = b.x;
      const y2 = b.y + NODE_H / 2;
      const dx = Math.max(40, Math.abs(x2 - x1) / 2);
      const path = `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
      const arrow = `url(#${uid}-arrow)`;
      svg("path", { d: path, class: "prophecy-graph-edge", "marker-end": arrow }, edgeLayer);
      if ((fanIn.get(edge.to) || 0) > 1) {
        const at = { x: x2 - 6, y: y2 - 5, "text-anchor": "end", class: "prophecy-graph-port" };
        const port = svg("text", at, edgeLayer);
        port.textContent = edge.port;
      }
    }
    for (const node of nodes) {
      const group = svg(
        "g",
        {
          class: "prophecy-graph-gem",
          transform: `translate(${node.x},${node.y})`,
          tabindex: 0,
          role: "button",
        },
        nodeLayer,
      );
      svg("title", {}, group).textContent = `${node.id} (${node.kind})`;
      svg("rect", { class: "prophecy-graph-box", width: NODE_W, height: NODE_H, rx: 8 }, group);
      const colour = CATEGORY_COLOURS[node.category] || "#718096";
      svg("rect", { width: 6, height: NODE_H, rx: 3, fill: colour }, group);
      const label = svg("text", { x: 16, y: 23, class: "prophecy-graph-label" }, group);
      label.textContent = clip(node.label || node.id, 19);
      svg("text", { x: 16, y: 42, class: "prophecy-graph-kind" }, group).textContent = node.kind;
      const spot = { cx: NODE_W - 14, cy: 15, r: 6, class: "prophecy-graph-status" };
      const dot = svg("circle", spot, group);
      const rows = svg(
        "text",
        { x: NODE_W - 10, y: 44, class: "prophecy-graph-rows", "text-anchor": "end" },
        group,
      );
      group.classList.toggle("invalid", node.issues.length > 0);
      group.addEventListener("click", (event) => {
        event.stopPropagation();
        select(node.id);
      });
      group.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") select(node.id);
      });
      gems.set(node.id, { group, dot, rows });
    }
    paint();
  }

  function paint() {
    const status = model.get("status") || {};
    const selected = model.get("selected");
    for (const [id, { group, dot, rows }] of gems) {
      const state = status[id];
      dot.setAttribute("fill", state ? STATUS_COLOURS[state.status] || "#a0aec0" : "none");
      dot.setAttribute("stroke", state ? "none" : "#cbd5e0");
      group.classList.toggle("running", Boolean(state) && state.status === "running");
      group.classList.toggle("selected", id === selected);
      rows.textContent = state && isNumber(state.rows) ? `${state.rows.toLocaleString()} rows` : "";
    }
    showDetails();
  }

  function showDetails() {
    details.replaceChildren();
    const node = model.get("nodes").find((n) => n.id === model.get("selected"));
    details.hidden = !node;
    if (!node) return;
    const heading = tag("div", "prophecy-graph-heading", null, details);
    tag("strong", "", node.label || node.id, heading);
    tag("span", "", ` ${node.kind} \u00b7 ${node.id}`, heading);
    if (node.description) tag("p", "", node.description, details);
    const state = (model.get("status") || {})[node.id];
    if (state) {
      const parts = [state.status];
      if (isNumber(state.rows)) parts.push(`${state.rows.toLocaleString()} rows`);
      if (isNumber(state.seconds)) parts.push(`${state.seconds.toFixed(3)} s`);
      const line = tag("p", "prophecy-graph-state", parts.join(" \u00b7 "), details);
      line.style.color = STATUS_COLOURS[state.status] || "inherit";
      if (state.error) tag("p", "prophecy-graph-error", state.error, details);
    }
    for (const issue of node.issues) tag("p", "prophecy-graph-error", issue, details);
    if (node.columns.length) {
      const table = tag("table", "prophecy-graph-columns", null, details);
      for (const column of node.columns) {
        const row = tag("tr", "", null, table);
        tag("td", "", column.name, row);
        tag("td", "prophecy-graph-type", column.type, row);
      }
    }
    tag("pre", "", JSON.stringify(node.properties, null, 2), details);
  }

  let drag = null;
  canvas.addEventListener("pointerdown", (event) => {
    if (event.target.closest && event.target.closest(".prophecy-graph-gem")) return;
    drag = { x: event.clientX, y: event.clientY, view: { ...view }, moved: false };
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const scale = view.w / (canvas.clientWidth || view.w);
    const dx = (event.clientX - drag.x) * scale;
    const dy = (event.clientY - drag.y) * scale;
    drag.moved = drag.moved || Math.abs(dx) + Math.abs(dy) > 2;
    view = { ...drag.view, x: drag.view.x - dx, y: drag.view.y - dy };
    applyView();
  });
  canvas.addEventListener("pointerup", (event) => {
    if (drag && !drag.moved) select("");
    drag = null;
    canvas.releasePointerCapture(event.pointerId);
  });
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = canvas.getBoundingClientRect();
    const scale = Math.max(view.w / (box.width || 1), view.h / (box.height || 1));
    const cx = view.x + view.w / 2 + (event.clientX - box.left - box.width / 2) * scale;
    const cy = view.y + view.h / 2 + (event.clientY - box.top - box.height / 2) * scale;
    zoom(Math.exp(event.deltaY * 0.0015), cx, cy);
  }, { passive: false });
  buttons.in.addEventListener("click", () => zoom(1 / 1.25));
  buttons.out.addEventListener("click", () => zoom(1.25));
  buttons.fit.addEventListener("click", fit);

  const redraw = () => {
    draw();
    fit();
  };
  model.on("change:nodes", redraw);
  model.on("change:edges", redraw);
  model.on("change:pipeline", redraw);
  model.on("change:status", paint);
  model.on("change:selected", paint);
  redraw();
  return () => {
    model.off("change:nodes", redraw);
    model.off("change:edges", redraw);
    model.off("change:pipeline", redraw);
    model.off("change:status", paint);
    model.off("change:selected", paint);
  };
}

export default { render };
"""

CSS = """
.prophecy-graph {
  font-family: var(--jp-ui-font-family, system-ui, sans-serif);
  font-size: 12px;
  color: var(--jp-ui-font-color1, #1a202c);
  border: 1px solid var(--jp-border-color2, #e2e8f0);
  border-radius: 6px;
  overflow: hidden;
}
.prophecy-graph-bar {
  display: flex;
  gap: 6px;
  align-items: center;
  padding: 4px 8px;
  border-bottom: 1px solid var(--jp-border-color2, #e2e8f0);
}
.prophecy-graph-title { font-weight: 600; }
.prophecy-graph-summary { flex: 1; opacity: 0.7; }
.prophecy-graph-button {
  min-width: 28px;
  border: 1px solid var(--jp-border-color1, #cbd5e0);
  border-radius: 4px;
  background: var(--jp-layout-color1, #fff);
  color: inherit;
  cursor: pointer;
}
.prophecy-graph-canvas {
  display: block;
  width: 100%;
  height: 360px;
  cursor: grab;
  touch-action: none;
  background: var(--jp-layout-color0, #fff);
}
.prophecy-graph-gem { cursor: pointer; outline: none; }
.prophecy-graph-box {
  fill: var(--jp-layout-color1, #fff);
  stroke: var(--jp-border-color1, #a0aec0);
  stroke-width: 1.2;
}
.prophecy-graph-gem.selected .prophecy-graph-box,
.prophecy-graph-gem:focus .prophecy-graph-box { stroke: #2b6cb0; stroke-width: 2.5; }
.prophecy-graph-gem.invalid .prophecy-graph-box { stroke: #e53e3e; stroke-dasharray: 5 3; }
.prophecy-graph-gem.running .prophecy-graph-status {
  animation: prophecy-graph-pulse 1s ease-in-out infinite;
}
@keyframes prophecy-graph-pulse { 50% { opacity: 0.25; } }
.prophecy-graph-label { font-weight: 600; fill: var(--jp-ui-font-color1, #1a202c); }
.prophecy-graph-kind,
.prophecy-graph-rows,
.prophecy-graph-port { font-size: 11px; fill: var(--jp-ui-font-color2, #4a5568); }
.prophecy-graph-edge { fill: none; stroke: #a0aec0; stroke-width: 1.5; }
.prophecy-graph-arrow { fill: #a0aec0; }
.prophecy-graph-details {
  padding: 8px 10px;
  border-top: 1px solid var(--jp-border-color2, #e2e8f0);
  max-height: 260px;
  overflow: auto;
}
.prophecy-graph-details p { margin: 4px 0; }
.prophecy-graph-details pre { margin: 6px 0 0; white-space: pre-wrap; }
.prophecy-graph-error { color: #c53030; }
.prophecy-graph-columns td { padding: 0 12px 0 0; }
.prophecy-graph-type { opacity: 0.65; }
"""


class PipelineGraph(anywidget.AnyWidget):
    """The gem graph of one pipeline, with each gem's status in the latest run."""

    _esm = ESM
    _css = CSS
    pipeline = traitlets.Unicode("").tag(sync=True)
    nodes = traitlets.List(traitlets.Dict()).tag(sync=True)
    edges = traitlets.List(traitlets.Dict()).tag(sync=True)
    status = traitlets.Dict().tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)

    def show(self, compiled: CompiledPipeline) -> None:
        """Draw (or redraw) a compiled pipeline; statuses of gems still there are kept."""
        pipeline = compiled.pipeline
        with self.hold_sync():
            self.pipeline = pipeline.name
            self.nodes = graph_nodes(compiled)
            self.edges = [
                {"from": c.source, "to": c.target, "port": c.port} for c in pipeline.connections
            ]
            ids = {g.id for g in pipeline.gems}
            self.status = {k: v for k, v in self.status.items() if k in ids}

    def follow(self, compiled: CompiledPipeline, mode: RunMode) -> ProgressCallback:
        """Show the gems a run is about to compute as pending, and return the callback that
        shows each one's progress as the run reports it."""
        # Every gem the run computes, in either mode, is one a staged run stores.
        computed = schedule(compiled, compiled.targets(), "staged")
        self.report(GemRun(g, compiled.gems[g].gem.kind) for g in computed)

        def on_progress(run: GemRun) -> None:
            # A fused run computes a Target's ancestors inside the Target's own statement.
            inside = compiled.ancestors(run.gem_id) if mode == "fused" else []
            pending = [g for g in inside if self.status.get(g, {}).get("status") == "pending"]
            running = [GemRun(g, compiled.gems[g].gem.kind, "running") for g in pending]
            self.report([*running, run] if run.status == "running" else [run])

        return on_progress

    def report(self, runs: Iterable[GemRun]) -> None:
        """Show these gems' states (one new dict, so that the change is synced)."""
        self.status = {**self.status, **{run.gem_id: gem_state(run) for run in runs}}

    def __repr__(self) -> str:
        gems, connections = len(self.nodes), len(self.edges)
        return f"PipelineGraph({self.pipeline!r}: {gems} gems, {connections} connections)"


def gem_state(run: GemRun) -> dict[str, Any]:
    return {"status": run.status, "rows": run.rows, "seconds": run.seconds, "error": run.error}


def graph_nodes(compiled: CompiledPipeline) -> list[dict[str, Any]]:
    """Each gem as the widget draws it: where, what, and what is known of its output."""
    kinds = gem_kinds()
    positions = layout(compiled.pipeline)
    nodes = []
    for gem in compiled.pipeline.gems:
        kind = kinds.get(gem.kind)
        x, y = positions[gem.id]
        nodes.append(
            {
                "id": gem.id,
                "kind": gem.kind,
                "category": kind.category if kind is not None else "",
                "label": gem.label or gem.id,
                "description": gem.description or "",
                "x": x,
                "y": y,
                "properties": gem.properties,
                "columns": _columns(compiled, gem.id),
                "issues": [
                    f"{i.field}: {i.message}" if i.field else i.message
                    for i in compiled.issues
                    if i.gem_id == gem.id
                ],
            }
        )
    return nodes


def _columns(compiled: CompiledPipeline, gem_id: str) -> list[dict[str, str]]:
    built = compiled.gems.get(gem_id)
    if built is None or built.output is None:
        return []
    try:
        return [{"name": c.name, "type": c.type} for c in compiled.columns(gem_id)]
    except ProphecyError:
        return []


def layout(pipeline: Pipeline) -> dict[str, tuple[float, float]]:
    """Where each gem is drawn: where the document puts it, else in a column by its depth in
    the graph (below the placed gems, so that the two never overlap)."""
    upstream: dict[str, list[str]] = defaultdict(list)
    for connection in pipeline.connections:
        upstream[connection.target].append(connection.source)
    depth = dict.fromkeys((g.id for g in pipeline.gems), 0)
    for _ in range(len(depth)):  # longest path from a source; bounded, so cycles end too
        changed = False
        for gem_id in depth:
            deepest = max((depth.get(u, 0) + 1 for u in upstream[gem_id]), default=0)
            if deepest > depth[gem_id]:
                depth[gem_id], changed = deepest, True
        if not changed:
            break
    placed = {g.id: (g.position.x, g.position.y) for g in pipeline.gems if g.position}
    top = max((y for _, y in placed.values()), default=MARGIN - ROW_GAP) + ROW_GAP
    rows: dict[int, int] = defaultdict(int)
    positions: dict[str, tuple[float, float]] = {}
    for gem in pipeline.gems:
        if gem.id in placed:
            positions[gem.id] = placed[gem.id]
            continue
        column = depth[gem.id]
        positions[gem.id] = (MARGIN + COLUMN_GAP * column, top + ROW_GAP * rows[column])
        rows[column] += 1
    return positions
