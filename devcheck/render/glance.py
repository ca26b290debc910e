"""A node at a glance: one row per GPU, first, as nvidia-smi and gpustat show a node, so an 8-GPU
`env` fits on a screen. Each GPU's full table of fields follows only where its row is not ok (all of
them with --details). Read from the report's own GPU sections and checks: JSON and Markdown keep
every field, unchanged."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from devcheck.render.values import show
from devcheck.report import Check, Report, Section, Status

GPU_TAG = re.compile(r"^gpu(\d+)$")  # a GPU's section key, and a part of its checks' ids (gpu3.ecc, gpu3.pcie)
WORST_FIRST = (Status.ERROR, Status.FAIL, Status.WARN)
WORD = {Status.ERROR: "ERROR", Status.FAIL: "FAIL", Status.WARN: "warn"}


@dataclass(frozen=True)
class GpuRow:
    """One GPU's raw values (None where NVML could not say) and its verdict: the worst of its checks."""

    index: int
    fields: dict[str, Any]
    problems: tuple[Check, ...]  # its checks that are not fine, worst first

    def value(self, name: str) -> Any:
        return self.fields.get(name)

    @property
    def status(self) -> Status:
        return self.problems[0].status if self.problems else Status.OK

    @property
    def verdict(self) -> str:
        """`ok`, or `FAIL: <its worst problem>` and how many more, without the "GPU 3:" its row says."""
        if not self.problems:
            return "ok"
        first = re.sub(rf"^GPU {self.index}( \([^)]*\))?(:| is)? ", "", self.problems[0].summary)
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"{WORD[self.status]}: {first}{more}"


def gpu_of(check_id: str) -> str | None:
    """The GPU a check judges: gpu3 for gpu3.ecc and gpu3.pcie; gpu1 is not gpu10."""
    return next((part for part in check_id.split(".")[:-1] if GPU_TAG.match(part)), None)


def gpu_rows(report: Report) -> list[GpuRow]:
    """Every GPU the report speaks of: by its section, or by its checks alone (a probe that crashed)."""
    sections = {s.key: s for s in report.sections if s.group == "gpus" and GPU_TAG.match(s.key)}
    tags = set(sections) | {gpu_of(c.id) for c in report.checks} - {None}
    rows = []
    for tag in sorted(tags, key=lambda t: int(GPU_TAG.match(t).group(1))):
        mine = [c for c in report.checks if gpu_of(c.id) == tag and c.status in WORST_FIRST]
        mine.sort(key=lambda c: WORST_FIRST.index(c.status))
        section = sections.get(tag)
        values = {name: f.value for name, f in section.fields.items()} if section else {}
        rows.append(GpuRow(int(GPU_TAG.match(tag).group(1)), values, tuple(mine)))
    return rows


GPU_GROUPS = ("gpus", "mig")  # a GPU's own section, and one per MIG slice of it (keys gpuN, gpuN.migK)


def shown_sections(report: Report, details: bool) -> list[Section]:
    """The sections to print in full: a GPU's (and its MIG slices') only when its row is not ok, unless
    `details`."""
    quiet = set() if details else {f"gpu{r.index}" for r in gpu_rows(report) if r.status is Status.OK}
    return [s for s in report.sections if s.shown and not (s.group in GPU_GROUPS and s.key.split(".")[0] in quiet)]


def _pair(a: Any, b: Any) -> str:
    return "—" if a is None and b is None else f"{show(a)} / {show(b)}"


def _pcie(row: GpuRow) -> str:
    """The link as it is now (an idle GPU may run a slower one; the full table has the maximum)."""
    gen, width = row.value("PCIe generation"), row.value("PCIe width")
    return "—" if gen is None and width is None else f"gen{show(gen)} x{show(width)}"


def _ecc_and_remaps(row: GpuRow) -> str:
    """Uncorrected ECC errors since boot (or ECC off), then memory rows remapped; whether a repair waits
    or failed is the verdict's to say."""
    if "ECC mode" not in row.fields:  # a GPU NVML lost: nothing was read
        return "—"
    ecc = "off" if row.value("ECC mode") == "off" else show(row.value("ECC uncorrected errors (since boot)"))
    rows = row.value("remapped rows")
    remaps = show(rows.get("correctable", 0) + rows.get("uncorrectable", 0)) if isinstance(rows, dict) else "—"
    return f"{ecc} / {remaps}"


# Headers of two short lines, as nvidia-smi's, leave the verdict room on 80 columns.
COLUMNS = (
    "GPU",
    "name",
    "memory\nMiB",
    "util\n%",
    "temp\nC",
    "power\nW",
    "SM\nMHz",
    "PCIe",
    "ECC /\nremaps",
    "verdict",
)
FOLDING = ("name", "verdict")  # words: they fold on a narrow terminal; numbers never do


def cells(row: GpuRow) -> tuple[str, ...]:
    """The row as people read it: used / total memory and power, the current PCIe link, ECC and remaps."""
    v = row.value
    return (
        str(row.index),
        show(v("name")),
        _pair(v("memory used MiB"), v("memory total MiB")),
        show(v("utilization %")),
        show(v("temperature C")),
        _pair(v("power draw W"), v("power limit W")),
        show(v("SM clock MHz")),
        _pcie(row),
        _ecc_and_remaps(row),
        row.verdict,
    )


def _one_model(rows: list[GpuRow]) -> str | None:
    names = {r.value("name") for r in rows}
    return names.pop() if len(names) == 1 else None


def glance_table(report: Report, details: bool = False) -> RenderableType | None:
    """One row per GPU, or None when the report has no GPU. One model (the usual node) is named once,
    in the title, so that a row fits on one line of 80 columns."""
    rows = gpu_rows(report)
    if not rows:
        return None
    model = _one_model(rows)
    hidden = not details and any(r.status is Status.OK for r in rows)
    table = Table(
        title=f"{len(rows)} GPU{'s' if len(rows) > 1 else ''}" + (f": {model}" if model else ""),
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),  # with the box's blank divider, two spaces between columns
        caption="every field of the GPUs that are ok: --details (or --json)" if hidden else None,
        caption_justify="left",
    )
    columns = [i for i, name in enumerate(COLUMNS) if not (model and name == "name")]
    for i in columns:  # on a narrow terminal the words fold; a number keeps its width
        words = COLUMNS[i] in FOLDING
        table.add_column(COLUMNS[i], justify="left" if words else "right", overflow="fold", no_wrap=not words)
    from devcheck.render.console import STYLE  # here: the console module imports this one
    from devcheck.render.layout import Fitted

    shown = []
    for row in rows:
        text = cells(row)
        shown.append([*(text[i] for i in columns[:-1]), Text(text[-1], style=STYLE[row.status])])
        table.add_row(*shown[-1])
    header = [COLUMNS[i] for i in columns]
    folding = tuple(i for i, name in enumerate(header) if name in FOLDING)
    return Fitted(table, header, shown, fold=folding, inside_words=True)  # as nvidia-smi's own folding
