"""How results look in a notebook: an HTML table for Jupyter, plain text for a terminal.

Every object here has both `_repr_html_` and ``__repr__``, so the same result reads well in
JupyterLab, in an executed notebook viewed as text, and in a plain IPython shell. Values are
escaped, never trusted as markup.
"""

from __future__ import annotations

import html
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prophecy_jupyter.automate.runner import GemRun, RunResult
from prophecy_jupyter.errors import ProphecyError, ValidationError

if TYPE_CHECKING:
    import ipywidgets

CELL_WIDTH = 40
STATUS_COLOURS = {
    "pending": "#718096",
    "running": "#2b6cb0",
    "succeeded": "#2f855a",
    "failed": "#c53030",
    "skipped": "#b7791f",
}
TABLE_STYLE = (
    "<style>.prophecy-result th small{font-weight:normal;opacity:.65}"
    ".prophecy-result td,.prophecy-result th{text-align:left}"
    ".prophecy-caption{opacity:.75;font-size:smaller}</style>"
)


def _text(value: Any) -> str:
    return "NULL" if value is None else str(value)


def _clip(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def text_table(header: list[list[str]], rows: list[list[str]]) -> str:
    """Columns aligned as psql does, header lines above a rule."""
    lines = [*header, *rows]
    widths = [max(len(_clip(line[i])) for line in lines) for i in range(len(header[0]))]

    def render(line: list[str]) -> str:
        return " | ".join(_clip(v).ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([*(render(h) for h in header), rule, *(render(r) for r in rows)])


def html_table(header: list[str], rows: list[list[str]], caption: str) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'{TABLE_STYLE}<table class="prophecy-result"><thead><tr>{head}</tr></thead>'
        f'<tbody>{body}</tbody></table><div class="prophecy-caption">{caption}</div>'
    )


@dataclass
class ResultTable:
    """Rows of a query with their column types and how many rows there are in all.

    ``row_count`` is ``None`` when only known to exceed the rows shown (a preview).
    """

    columns: list[tuple[str, str]]
    rows: list[tuple[Any, ...]]
    row_count: int | None
    title: str | None = None

    @property
    def caption(self) -> str:
        shown = len(self.rows)
        if self.row_count is None:
            total = f"first {shown:,} rows"
        elif self.row_count > shown:
            total = f"{shown:,} of {self.row_count:,} rows"
        else:
            total = f"{self.row_count:,} row{'s' if self.row_count != 1 else ''}"
        return f"{self.title}: {total}" if self.title else total

    def _repr_html_(self) -> str:
        header = [
            f"{html.escape(name)}<br><small>{html.escape(dtype)}</small>"
            for name, dtype in self.columns
        ]
        rows = [[html.escape(_text(v)) for v in row] for row in self.rows]
        return html_table(header, rows, html.escape(self.caption))

    def __repr__(self) -> str:
        header = [[n for n, _ in self.columns], [t for _, t in self.columns]]
        rows = [[_text(v) for v in row] for row in self.rows]
        return f"{text_table(header, rows)}\n({self.caption})"


@dataclass
class RunSummary:
    """What a pipeline run did, gem by gem."""

    result: RunResult

    def _lines(self) -> list[list[str]]:
        return [
            [
                g.gem_id,
                g.kind,
                g.status,
                "" if g.rows is None else f"{g.rows:,}",
                "" if g.seconds is None else f"{g.seconds:.3f}",
                g.error or "",
            ]
            for g in self.result.gems
        ]

    @property
    def caption(self) -> str:
        result = self.result
        failure = f": {result.error}" if result.error else ""
        return f"{result.pipeline} {result.status} in {result.seconds:.3f} s{failure}"

    def _repr_html_(self) -> str:
        rows = []
        for line in self._lines():
            cells = [html.escape(v) for v in line]
            colour = STATUS_COLOURS.get(line[2], "inherit")
            cells[2] = f'<span style="color:{colour}">{cells[2]}</span>'
            rows.append(cells)
        header = ["gem", "kind", "status", "rows", "seconds", "error"]
        return html_table(header, rows, html.escape(self.caption))

    def __repr__(self) -> str:
        header = [["gem", "kind", "status", "rows", "seconds", "error"]]
        return f"{text_table(header, self._lines())}\n{self.caption}"


class Progress(ABC):
    """How far a run is: gems finished out of those it reports on."""

    def __init__(self, pipeline: str, total: int) -> None:
        self.pipeline = pipeline
        self.total = max(total, 1)
        self.done = 0

    def update(self, run: GemRun) -> None:
        if run.status not in {"running", "pending"}:
            self.done += 1
        self.show(f"{self.done}/{self.total} {run.gem_id} {run.status}")

    @abstractmethod
    def show(self, line: str) -> None: ...

    @abstractmethod
    def finish(self, result: RunResult) -> None: ...


class TextProgress(Progress):
    """A progress bar drawn with characters, for a terminal IPython."""

    WIDTH = 24

    def show(self, line: str) -> None:
        filled = self.WIDTH * self.done // self.total
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        sys.stdout.write(f"\r{f'{self.pipeline} [{bar}] {line}':<79}")
        sys.stdout.flush()

    def finish(self, result: RunResult) -> None:
        sys.stdout.write("\n")
        sys.stdout.flush()


class WidgetProgress(Progress):
    """A progress bar widget, for a notebook."""

    def __init__(self, pipeline: str, total: int) -> None:
        import ipywidgets
        from IPython.display import display

        super().__init__(pipeline, total)
        self.bar: ipywidgets.IntProgress = ipywidgets.IntProgress(
            value=0, min=0, max=self.total, description=pipeline
        )
        self.label: ipywidgets.Label = ipywidgets.Label(f"0/{self.total}")
        display(ipywidgets.HBox([self.bar, self.label]))  # type: ignore[no-untyped-call]

    def show(self, line: str) -> None:
        self.bar.value = self.done
        self.label.value = line

    def finish(self, result: RunResult) -> None:
        self.bar.value = self.total
        self.bar.bar_style = "success" if result.status == "succeeded" else "danger"
        self.label.value = f"{result.status} in {result.seconds:.3f} s"


class ProphecyMagicError(Exception):
    """A user-caused problem, shown as its message alone: IPython prints what
    `_render_traceback_` returns instead of a traceback into the library."""

    def __init__(self, error: ProphecyError) -> None:
        self.error = error
        lines = [str(error)]
        if isinstance(error, ValidationError) and len(error.issues) > 1:
            lines.extend(f"  {issue}" for issue in error.issues)
        self.lines = [f"{type(error).__name__}: {lines[0]}", *lines[1:]]
        super().__init__("\n".join(self.lines))

    def _render_traceback_(self) -> list[str]:
        return list(self.lines)
