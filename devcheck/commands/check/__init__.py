"""`devcheck check`: is this machine fit to compute? One command for CI jobs, Slurm prologs and
Kubernetes init containers, inside a time budget.

It runs what fits, in order of value: the env verdict and GPU health from NVML; correctness (a GEMM
against float64, autograd, the first training steps compared across devices); speed against each
device's own peak; then a stress window of repeated GEMMs. What did not fit is listed, never silently
dropped. It fails closed: an unknown GPU model, an NVML error or a step that could not run is a warning
that `--strict` turns into a failure, never a pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from devcheck import options
from devcheck.commands.check import steps
from devcheck.commands.check.thresholds import Thresholds
from devcheck.machine.model.devices import Selection, selection_checks
from devcheck.report import Check, Progress, Report, Section, Status, no_progress

BUDGETS = {"10s": 10.0, "60s": 60.0, "5m": 300.0, "15m": 900.0}  # the usual budgets, offered as fixes


@dataclass(frozen=True)
class Settings:
    budget: str = "60s"  # any duration (`options.duration`): 90s, 2m, 1h
    strict: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)
    baseline: list[dict] | None = None
    max_regression: float = 10.0

    @property
    def seconds(self) -> float:
        return options.duration("--budget", self.budget)


@dataclass
class Clock:
    """The budget: a deadline a little inside it, so rendering and exit stay within 10% over."""

    seconds: float
    started: float = field(default_factory=time.perf_counter)

    @property
    def left(self) -> float:
        return self.seconds * 0.93 - (time.perf_counter() - self.started)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def run(
    settings: Settings, selection: Selection, *, require_gpu: bool = False, progress: Progress = no_progress
) -> Report:
    clock, report = Clock(settings.seconds), Report("check")
    report.checks += selection_checks(selection, require_gpu)
    work = steps.Work(settings, selection, report, clock)
    progress("checking", total=len(steps.ORDER))
    stop = work.stop
    # --require-gpu with no GPU that can compute: known now, so fail now, not after the whole budget
    hopeless = require_gpu and any(c.id == "gpu.required" for c in report.checks)
    rows: list[dict] = []  # one per step handled, filled as it goes
    with stop:  # Ctrl-C or a signal, in a step or between two: the steps done so far still make a report
        for entry in steps.ORDER:
            rows.append({})
            _run_step(work, entry, hopeless, progress, rows[-1])
    if rows and rows[-1].get("interrupted"):
        progress(f"{rows[-1]['step']}: interrupted", advance=1)
    elif rows and rows[-1] == {}:
        rows.pop()  # the interrupt came before the step began: it is handled below, as not run
    for entry in steps.ORDER[len(rows) :]:  # after an interrupt: named, not run (a second signal waits)
        rows.append({})
        _run_step(work, entry, hopeless, progress, rows[-1])
    plan = [{k: v for k, v in row.items() if v is not None} for row in rows if row.get("applicable", True)]
    report.checks += [] if stop or hopeless else _budget_checks(plan, settings)
    report.sections.append(Section("plan", f"What ran in the {settings.budget} budget", rows=plan))
    report.data.update(budget_s=settings.seconds, elapsed_s=clock.elapsed, records=work.records, stress=work.stress)
    if settings.strict:
        report.checks = [_strict(c) for c in report.checks]
    names = [_named(name, work.facts.get(name)) for name in selection.names]
    report.verdict = verdict(report, names, clock.elapsed)
    return stop.hand_over(report)


def _run_step(work: steps.Work, entry: tuple, hopeless: bool, progress: Progress, row: dict) -> None:
    """One step of ORDER, written into `row` as it goes, each change in one update: an interrupt anywhere,
    in the step or before it starts, leaves the row saying so ("interrupted": True; None once the step
    is past the point an interrupt would stop), and an empty row before anything of the step happened."""
    name, what, step, estimate = entry
    row.update(step=name, what=what, estimate_s=0.0, ran=False, seconds=0.0, interrupted=True)
    needed = estimate(work)
    if needed is None:  # not for this machine (GPU-to-GPU copies on one GPU): in no plan
        row.update(applicable=False, interrupted=None)
        progress(f"{name}: not applicable", advance=1)
        return
    row["estimate_s"] = needed = 0.0 if hopeless else needed
    if work.stop or hopeless or work.clock.left < needed:
        row["interrupted"] = None  # not started: the step an interrupt came in is the one marked
        why = "interrupted" if work.stop else "not run: --require-gpu" if hopeless else "no time left"
        progress(f"{name}: {why}", advance=1)
        return
    progress(f"{name}: {what}")
    began, before = time.perf_counter(), len(work.report.checks)
    try:
        step(work)
    finally:  # its checks so far are in the report
        row["seconds"] = time.perf_counter() - began
    row.update(ran=True, interrupted=None)
    progress(f"{name}: {_worst(work.report.checks[before:])}", advance=1)


def _named(name: str, facts) -> str:
    """A device as the verdict names it: a MIG slice says which slice of which GPU it is."""
    on_slice = getattr(facts, "mig", None)
    return f"{name} ({on_slice.label})" if on_slice is not None else name


def verdict(report: Report, names: list[str], elapsed: float) -> str:
    """ "fit" only when every step ran: a step the budget left out is unchecked, not passed."""
    failure = report.first_failure
    if failure:
        return f"check: NOT FIT — {failure.summary}"
    unchecked = [c.summary for c in report.checks if c.id.endswith(".budget") and c.status is not Status.OK]
    if unchecked:
        return f"check: no fault found on {', '.join(names)}, but not fully checked: {'; '.join(unchecked)}"
    return f"check: fit to compute on {', '.join(names)} ({elapsed:.1f} s)"


def _worst(checks: list[Check]) -> str:
    """A step's outcome in one word, for its progress line: the worst status among its checks."""
    order = (Status.ERROR, Status.FAIL, Status.WARN, Status.OK, Status.SKIP, Status.NA)
    return next((str(s) for s in order if any(c.status is s for c in checks)), "done")


def _budget_checks(plan: list[dict], settings: Settings) -> list[Check]:
    skipped = [p["step"] for p in plan if not p["ran"]]
    if not skipped:
        return [Check("check.budget", Status.OK, f"every step fit in the {settings.budget} budget")]
    bigger = next((b for b, s in BUDGETS.items() if s > settings.seconds), None)
    return [
        Check(  # a warning, as every step that could not run: never a pass, and a failure with --strict
            "check.budget",
            Status.WARN,
            f"skipped for time in the {settings.budget} budget: {', '.join(skipped)}",
            fix=f"--budget {bigger}" if bigger else "",
        )
    ]


def _strict(check: Check) -> Check:
    if check.status is not Status.WARN:
        return check
    return replace(check, status=Status.FAIL, fix=check.fix or "(a warning: --strict)")
