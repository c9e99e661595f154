"""Opening a 500-gem pipeline in the Studio: JupyterLab in headless Chromium.

    python -m benchmarks.studio [--repeat 5]

Writes a 500-gem pipeline (50 Sources over the shop's orders, each followed by a chain of 9
Filters and Reformats) and a 10-gem one (the first chain) into a copy of ``examples/shop``,
starts ``jupyter lab`` on it (token authentication, every installed extension, the
application exposed as ``window.jupyterapp``) and loads JupyterLab once in Debian's headless
Chromium. Then, in that loaded page, each timed run executes JupyterLab's ``docmanager:open``
command and measures, with the page's own clock:

- ``studio_500``: opening the 500-gem pipeline in the Pipeline Editor, until the canvas is
  drawn: React Flow's renderer is in the page and every gem is a measured, visible node (the
  editor fits the pipeline to the view, and at that zoom React Flow draws all 500), counted
  at the next animation frame, that is once the browser has painted it;
- ``studio_500_validated``: the same open, until it is drawn, the server's answer to the
  editor's validation request has arrived and the toolbar says "Valid";
- ``text_500``: the same file in JupyterLab's own text editor (Open With ▸ Editor), until
  its first lines are drawn: the baseline, what JupyterLab takes to show this file anyway;
- ``studio_10``: a 10-gem pipeline in the Pipeline Editor, drawn as ``studio_500``.

Each kind is opened once to warm up (code chunks, the gem catalog), then ``--repeat`` times,
the kinds taken in turn; the widget is closed after each run. Figures are medians in
milliseconds. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from prophecy_jupyter.model import load_pipeline
from prophecy_jupyter.model.pipeline import dump_pipeline
from prophecy_jupyter.server.launcher import CHROMIUM, CHROMIUM_ARGS, ServerProcess

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"
TARGET_OPEN_500_MS = 1500.0
CHAINS, CHAIN_LENGTH = 50, 10
FACTORY = "Pipeline Editor"
TEXT_FACTORY = "Editor"
LOAD_MS = 120_000
RUN_MS = 60_000

# Opens `path` with `factory` and resolves with the milliseconds until `until` holds, then
# closes the widget. `until` is "drawn" (every gem drawn), "validated" (drawn, the server's
# answer to the validation request has arrived and the toolbar says Valid) or "text" (the text
# editor shows the file's first lines).
OPEN_AND_TIME = """
async ({path, factory, until, gems, timeout}) => {
  const app = window.jupyterapp;
  performance.clearResourceTimings();
  const started = performance.now();
  const widget = await app.commands.execute('docmanager:open', {path, factory});
  const node = widget.node;
  const checks = {
    drawn: () => {
      if (!node.querySelector('.react-flow__renderer')) return false;
      const drawn = node.querySelectorAll('.react-flow__node');
      if (drawn.length !== gems) return false;
      for (const gem of drawn) if (gem.style.visibility === 'hidden') return false;
      return node.querySelectorAll('[data-testid=prophecy-gem]').length === gems;
    },
    validated: () =>
      checks.drawn() &&
      performance
        .getEntriesByType('resource')
        .some(e => e.name.includes('/validate') && e.startTime >= started) &&
      node.querySelector('[data-testid=prophecy-validity]')?.textContent === 'Valid',
    text: () => {
      const line = node.querySelector('.cm-content .cm-line');
      return line !== null && line.textContent.startsWith('{');
    }
  };
  const done = checks[until];
  const elapsed = await new Promise((resolve, reject) => {
    const deadline = started + timeout;
    const frame = () => {
      if (done()) {
        // Counted once the frame holding it is painted: at the next frame's start.
        requestAnimationFrame(() => resolve(performance.now() - started));
      } else if (performance.now() > deadline) {
        reject(new Error(`${path} (${factory}): not ${until} in time`));
      } else {
        requestAnimationFrame(frame);
      }
    };
    frame();
  });
  widget.dispose();
  await new Promise(resolve => setTimeout(resolve, 300));
  return elapsed;
}
"""


def chain_pipeline(chains: int, name: str) -> dict[str, Any]:
    """``chains`` rows of 10 gems: a Source of the shop's orders, then 9 alternating Filters
    and Reformats, each with expressions of its own."""
    gems: list[dict[str, Any]] = []
    connections: list[dict[str, str]] = []
    for k in range(chains):
        previous = ""
        for j in range(CHAIN_LENGTH):
            gem_id = f"c{k}_g{j}"
            if j == 0:
                kind = "Source"
                properties: dict[str, Any] = {"format": "csv", "path": "data/orders.csv"}
            elif j % 2:
                kind = "Filter"
                properties = {"condition": f"quantity >= {j % 3} AND order_id > {1000 + k + j}"}
            else:
                score = f"quantity * {j} + {k}" if j == 2 else f"score * 2 + {k + j}"
                kind = "Reformat"
                properties = {
                    "columns": [
                        {"name": column, "expression": ""}
                        for column in ("order_id", "customer_id", "quantity", "channel")
                    ]
                    + [{"name": "score", "expression": score}]
                }
            gems.append(
                {
                    "id": gem_id,
                    "kind": kind,
                    "properties": properties,
                    "position": {"x": 40 + 220 * j, "y": 40 + 130 * k},
                }
            )
            if previous:
                connections.append({"from": previous, "to": gem_id, "port": "in0"})
            previous = gem_id
    return {"version": 1, "name": name, "gems": gems, "connections": connections}


def write_project(folder: Path) -> dict[str, tuple[str, int]]:
    """A copy of the shop with the benchmark's pipelines: name → (path from root, gems)."""
    root = folder / "shop"
    root.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        SHOP, root, ignore=shutil.ignore_patterns(".prophecy", "output", ".ipynb_checkpoints")
    )
    written: dict[str, tuple[str, int]] = {}
    for chains in (1, CHAINS):
        name = f"chains_{chains * CHAIN_LENGTH}"
        pipeline = load_pipeline(chain_pipeline(chains, name))
        path = root / "pipelines" / f"{name}.pipeline.json"
        path.write_text(dump_pipeline(pipeline), encoding="utf-8")
        written[name] = (f"shop/pipelines/{path.name}", len(pipeline.gems))
    return written


def open_lab(page: Page, server: ServerProcess) -> None:
    url = f"{server.url}lab/workspaces/studio-benchmark?reset&token={server.token}"
    page.goto(url, timeout=LOAD_MS)
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=LOAD_MS)
    page.evaluate("() => window.jupyterapp.restored")


def measure(repeat: int = 5) -> dict[str, float]:
    """Median milliseconds of each kind of open, over ``repeat`` runs each."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    with tempfile.TemporaryDirectory(prefix="prophecy-studio-") as folder:
        base = Path(folder)
        root = base / "root"
        files = write_project(root)
        big, big_gems = files[f"chains_{CHAINS * CHAIN_LENGTH}"]
        small, small_gems = files[f"chains_{CHAIN_LENGTH}"]
        runs: dict[str, dict[str, Any]] = {
            "studio_500": {"path": big, "factory": FACTORY, "until": "drawn", "gems": big_gems},
            "studio_500_validated": {
                "path": big,
                "factory": FACTORY,
                "until": "validated",
                "gems": big_gems,
            },
            "text_500": {"path": big, "factory": TEXT_FACTORY, "until": "text", "gems": 0},
            "studio_10": {
                "path": small,
                "factory": FACTORY,
                "until": "drawn",
                "gems": small_gems,
            },
        }
        settings = base / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8"
        )
        env = {
            "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
            "PROPHECY_SECRETS_FILE": str(base / "secrets.json"),
        }
        args = ["--LabApp.expose_app_in_browser=True"]
        server = ServerProcess(root, app="jupyterlab", args=args, env=env)
        with server, sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
            )
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 950})
                open_lab(page, server)
                samples: dict[str, list[float]] = {kind: [] for kind in runs}
                for run in runs.values():
                    run["timeout"] = RUN_MS
                    page.evaluate(OPEN_AND_TIME, run)  # warm up
                for _ in range(repeat):
                    for kind, run in runs.items():
                        samples[kind].append(float(page.evaluate(OPEN_AND_TIME, run)))
            finally:
                browser.close()
    return {kind: round(statistics.median(values), 1) for kind, values in samples.items()}


def report(figures: dict[str, float]) -> dict[str, float]:
    """Print the figures with their target, and return the ratios to the baselines."""
    ratios = {
        "studio_500_vs_text_500": round(figures["studio_500"] / figures["text_500"], 2),
        "studio_500_vs_studio_10": round(figures["studio_500"] / figures["studio_10"], 2),
    }
    met = "met" if figures["studio_500"] < TARGET_OPEN_500_MS else "MISSED"
    print(
        f"  500 gems, drawn        {figures['studio_500']:>8.1f} ms   "
        f"target < {TARGET_OPEN_500_MS:.0f} ms   {met}"
    )
    print(f"  500 gems, validated    {figures['studio_500_validated']:>8.1f} ms")
    print(
        f"  same file, text editor {figures['text_500']:>8.1f} ms   "
        f"ratio {ratios['studio_500_vs_text_500']:.2f}"
    )
    print(
        f"  10 gems, drawn         {figures['studio_10']:>8.1f} ms   "
        f"ratio {ratios['studio_500_vs_studio_10']:.2f}"
    )
    return ratios


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed opens of each kind")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    figures = measure(args.repeat)
    print(f"Studio: opening a pipeline in a loaded JupyterLab, median of {args.repeat} (ms)")
    ratios = report(figures)
    result: dict[str, Any] = {
        "repeat": args.repeat,
        "studio_ms": figures,
        "studio_ratios": ratios,
        "targets": {"studio_open_500_ms_max": TARGET_OPEN_500_MS},
    }
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    main()
