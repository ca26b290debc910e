"""Rich tables on stderr for people. Colour, width and animation follow Rich's own rules
(NO_COLOR, TERM=dumb, COLUMNS, TTY_COMPATIBLE / TTY_INTERACTIVE), so CI logs stay clean."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich import box
from rich.bar import Bar
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from devcheck.render.glance import glance_table, shown_sections
from devcheck.render.layout import Fitted
from devcheck.render.values import field_text, shorten, show
from devcheck.report import Chart, Report, Section, Status

STYLE = {
    Status.OK: "green",
    Status.WARN: "yellow",
    Status.FAIL: "bold red",
    Status.ERROR: "bold magenta",
    Status.SKIP: "dim",
    Status.NA: "dim",
}
SYMBOL = {Status.OK: "✓", Status.WARN: "!", Status.FAIL: "✗", Status.ERROR: "✗", Status.SKIP: "–", Status.NA: "–"}

_console: tuple[str, Console] | None = None  # the COLUMNS it was made for, and the console


class _Console(Console):
    def on_broken_pipe(self) -> None:
        raise BrokenPipeError  # Rich would exit 1; the command line decides (a quiet 141)


def stderr_console() -> Console:
    """Rich's console on stderr; a width of 0 or garbage in COLUMNS (which made Rich print nothing at
    all) is ignored for 80, as other tools do. Made again when COLUMNS changes (a test of several widths
    in one process)."""
    global _console
    columns = os.environ.get("COLUMNS", "")
    if _console is None or _console[0] != columns:
        width = 80 if columns and not (columns.isdigit() and int(columns) >= 20) else None
        _console = (columns, _Console(stderr=True, highlight=False, width=width))
    return _console[1]


def _status_text(status: Status) -> Text:
    return Text(f"{SYMBOL[status]} {status}", style=STYLE[status])


def section_table(section: Section) -> RenderableType:
    """A section's rows, or its fields, as a table that keeps every value whole (render/layout.py)."""
    table = Table(
        title=section.title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        title_style="bold",
        caption=section.caption or None,
        caption_justify="left",
    )
    if section.rows:
        header = list(section.rows[0])
        cells = [[shorten(show(row.get(name))) for name in header] for row in section.rows]
        numeric = [isinstance(v, int | float) and not isinstance(v, bool) for v in section.rows[0].values()]
        for name, number in zip(header, numeric):
            table.add_column(name, justify="right" if number else "left")
        for row in cells:
            table.add_row(*row)
        return Fitted(table, header, cells, fold=() if numeric[-1] else (len(header) - 1,))  # text may wrap
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_column("source", style="dim")
    rows: list[list[Text | str]] = [["—", Text("none", style="dim"), ""]] if not section.fields else []
    for name, f in section.fields.items():
        text = shorten(field_text(f))
        rows.append([name, Text(text, style="" if f.status is Status.OK else STYLE[f.status]), f.source])
    for row in rows:
        table.add_row(*row)
    # as records: `name: value   (source)`
    named = [
        [Text.assemble((f"{name}: ", "bold"), value), Text(f"({source})", style="dim") if source else ""]
        for name, value, source in rows
    ]
    return Fitted(table, ["field", "value", "source"], rows, lead=2, as_records=named)


def checks_table(report: Report) -> RenderableType:
    """Every check, and for anything not ok, the reason and the fix in full (never truncated)."""
    table = Table(title="Checks", title_justify="left", box=box.SIMPLE_HEAD, title_style="bold")
    header = ["status", "check", "summary"]
    for name in header:
        table.add_column(name)
    rows: list[list[Text | str]] = []
    for c in report.checks:
        text = Text(c.summary)
        if c.status not in (Status.OK, Status.SKIP, Status.NA) or c.fix:
            if c.detail:
                text.append(f"\n{c.detail}", style="dim")
            if c.fix:
                text.append("\nfix: ", style="bold").append(c.fix, style="cyan")
        rows.append([_status_text(c.status), c.id, text])
        table.add_row(*rows[-1])
    return Fitted(table, header, rows, fold=(2,), lead=3)


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 40) -> str:
    if len(values) > width:  # one character per bucket of consecutive values, their mean
        edges = [round(i * len(values) / width) for i in range(width + 1)]
        values = [sum(values[a:b]) / (b - a) for a, b in zip(edges, edges[1:])]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARKS[min(int((v - low) / span * len(SPARKS)), len(SPARKS) - 1)] for v in values)


def chart_table(chart: Chart) -> Table:
    table = Table(title=chart.title, title_justify="left", box=box.SIMPLE_HEAD, title_style="bold")
    table.add_column("series", style="bold")
    if chart.kind == "line":
        table.add_column("trend")
        table.add_column("first → last", justify="right")
        for name, values in chart.series.items():
            table.add_row(name, sparkline(values), f"{show(values[0])} → {show(values[-1])} {chart.unit}")
        return table
    table.add_column("")
    table.add_column("value", justify="right")
    top = max((v[-1] for v in chart.series.values()), default=0) or 1.0
    for name, values in chart.series.items():
        table.add_row(name, Bar(top, 0, values[-1], width=40, color="cyan"), f"{show(values[-1])} {chart.unit}")
    return table


def print_report(report: Report, details: bool = False) -> None:
    """The verdict, the GPUs at a glance, each section (a GPU's only when it has a problem, unless
    `details`), charts, every check, and the verdict again."""
    console = stderr_console()
    verdict = Text(report.verdict, style="bold green" if report.ok else "bold red")
    if report.verdict:
        console.print(verdict)
    glance = glance_table(report, details)
    if glance is not None:
        console.print(glance, "", crop=False)
    tables = [section_table(section) for section in shown_sections(report, details)]
    tables += [chart_table(chart) for chart in report.charts if any(chart.series.values())]
    tables += [checks_table(report)] if report.checks else []
    for table in tables:  # uncropped: a record wider than the console keeps its value whole
        console.print(table, crop=False)
    if report.verdict:  # again at the end, where the eye lands after scrolling
        console.print(verdict)


@contextmanager
def progress(enabled: bool) -> Iterator:
    """Yields a callback `step(description, advance=0, total=None)`: a step starts with `advance=0`
    and ends with `advance=1`. On a terminal, a transient progress bar on stderr; off one (a pipe, a CI
    log) a bar is noise, and silence until the end is worse: one plain line per finished step, at once."""
    if not enabled:
        yield lambda *a, **k: None
        return
    if not stderr_console().is_terminal:
        yield StepLines()
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=stderr_console(),
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def step(description: str, advance: float = 0, total: float | None = None) -> None:
            if total is not None:
                bar.update(task, total=total)
            bar.update(task, description=description, advance=advance)

        yield step


class StepLines:
    """`[3/12] matmul float32 on cpu: ok (2.1 s)` on stderr as each step ends, flushed, as `dcgmi diag`
    prints a line per test: a CI log shows where a long run is, and where it stopped."""

    def __init__(self) -> None:
        self.total: float | None = None
        self.done = 0.0
        self.began = time.perf_counter()

    def __call__(self, description: str, advance: float = 0, total: float | None = None) -> None:
        from devcheck.render import write

        now = time.perf_counter()
        self.total = total if total is not None else self.total
        if advance:
            self.done += advance
            count = f"[{self.done:g}/{self.total:g}] " if self.total else ""
            write(sys.stderr, f"{count}{description} ({now - self.began:.1f} s)\n")
        self.began = now  # the next step starts now, or was just said to
