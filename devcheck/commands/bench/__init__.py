"""`devcheck bench`: how fast is this machine, and is the GPU really faster?

The classic experiment, randn(N, N/10) @ randn(N/10, N/5), done right on every device: GPU work
timed with CUDA events, the first call apart from the steady state, medians with their spread,
the result checked against a float64 reference, the rate set against the device's peak; then
memory bandwidth, host<->device copies, an autograd training step, and the speedup a person
moving the work to the GPU would really see (copies included).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy

from devcheck.commands.bench import cases
from devcheck.commands.bench.cases import Budget
from devcheck.errors import BadInput
from devcheck.machine.devices import select, selection_checks
from devcheck.machine.facts import DeviceFacts, facts_for
from devcheck.report import Chart, Check, Report, Section, Status

CASES = ("matmul", "e2e", "bandwidth", "copy", "autograd")
DTYPES = ("float32", "float64", "float16")
DEFAULT_SIZE = 10_000
COPY_BYTES = 64 * 2**20
Progress = Callable[..., None]


def parse_shape(size: int | None, shape: str | None) -> tuple[tuple[int, int, int], bool]:
    """(M, K, N) and whether the user chose it (a size that does not fit is then an error, not a skip)."""
    if size is not None and shape is not None:
        raise BadInput("--size and --shape: give one of them, not both")
    if shape is not None:
        try:
            m, k, n = (int(part) for part in shape.split(","))
        except ValueError:
            raise BadInput(f"--shape {shape!r}: expected three positive integers M,K,N (A is MxK, B is KxN)") from None
        if min(m, k, n) < 1:
            raise BadInput(f"--shape {shape!r}: expected three positive integers M,K,N")
        return (m, k, n), True
    if size is not None and size < 10:
        raise BadInput(f"--size {size}: expected an integer >= 10 (A is N x N/10, B is N/10 x N/5)")
    n = DEFAULT_SIZE if size is None else size
    return (n, n // 10, n // 5), size is not None


def parse_list(option: str, text: str | None, allowed: tuple[str, ...], default: tuple[str, ...]) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()] if text else list(default)
    unknown = [c for c in chosen if c not in allowed]
    if unknown or not chosen:
        raise BadInput(f"{option} {text!r}: choose from {', '.join(allowed)}")
    return chosen


def load_baseline(path: Path) -> list[dict]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"--baseline {path}: no such file") from None
    except (OSError, ValueError) as e:
        raise BadInput(f"--baseline {path}: not a JSON file ({e})") from None
    if not isinstance(doc, dict) or doc.get("command") != "bench" or "records" not in doc.get("data", {}):
        raise BadInput(f"--baseline {path}: not the JSON of `devcheck bench --json`")
    return doc["data"]["records"]


def run(
    size: int | None = None,
    shape: str | None = None,
    dtype: str | None = None,
    device: str = "auto",
    repeat: int = 10,
    max_time: float = 60.0,
    only: str | None = None,
    baseline: Path | None = None,
    max_regression: float = 10.0,
    require_gpu: bool = False,
    progress: Progress = lambda *a, **k: None,
) -> Report:
    mkn, explicit = parse_shape(size, shape)
    dtypes = parse_list("--dtype", dtype, DTYPES, ("float32", "float64"))
    chosen = parse_list("--cases", only, CASES, CASES)
    if repeat < 1:
        raise BadInput(f"--repeat {repeat}: expected a positive integer")
    if not max_time > 0:
        raise BadInput(f"--max-time {max_time}: expected a positive number of seconds")
    if not max_regression >= 0:
        raise BadInput(f"--max-regression {max_regression}: expected a percentage >= 0")
    old = load_baseline(baseline) if baseline is not None else None
    sel = select(device)

    from devcheck.engine import get_device

    devices = [(get_device(name), facts_for(name)) for name in sel.names]
    plan = _plan(devices, chosen, dtypes, mkn, explicit)
    report = Report("bench")
    report.checks += selection_checks(sel, require_gpu)
    records, skipped, crashed = _execute(plan, mkn, repeat, max_time, progress)
    report.checks += crashed
    report.checks += [
        Check(f"bench.facts.{f.name}", Status.WARN, f.problem, detail="peaks cannot be computed for this device")
        for _, f in devices
        if f.problem
    ]
    if old is not None:
        report.checks.append(compare(records, old, max_regression))
    _report(report, records, skipped, devices, mkn)  # last: the verdict reads every check
    return report


class Planned(NamedTuple):
    """One case to run on one device, or the reason it is skipped."""

    case: str
    device: Any
    facts: DeviceFacts
    dtype: str = "float32"
    size: int = 0  # elements (bandwidth) or bytes (copies)
    why: str = ""


def _plan(
    devices: list, chosen: list[str], dtypes: list[str], mkn: tuple[int, int, int], explicit: bool
) -> list[Planned]:
    """Every case to run on every device, or why it is skipped; a chosen size that cannot fit is an error."""
    plan = []
    m, k, n = mkn
    for device, facts in devices:
        gpu = device.name != "cpu"
        for dt in dtypes if "matmul" in chosen else []:
            if dt == "float16" and not gpu:
                plan.append(
                    Planned(
                        "matmul",
                        device,
                        facts,
                        dt,
                        why="NumPy has no fast float16 matmul: float16 is measured on GPUs only",
                    )
                )
                continue
            why = _does_not_fit((m * k + k * n + m * n) * numpy.dtype(dt).itemsize, device, facts)
            if why and explicit:
                raise BadInput(f"--size/--shape {m}x{k} @ {k}x{n} {dt}: {why}")
            plan.append(Planned("matmul", device, facts, dt, why=why))
            if gpu and "e2e" in chosen:
                plan.append(Planned("e2e", device, facts, dt, why=why))
        elements = max(64 * 2**20, 4 * facts.cache_bytes) // 4
        if "bandwidth" in chosen:
            plan.append(
                Planned("bandwidth", device, facts, size=elements, why=_does_not_fit(3 * 4 * elements, device, facts))
            )
        if "copy" in chosen and gpu:
            plan.append(
                Planned("copy", device, facts, size=COPY_BYTES, why=_does_not_fit(3 * COPY_BYTES, device, facts))
            )
        if "autograd" in chosen:
            plan.append(Planned("autograd", device, facts))
    return plan


def _does_not_fit(need: int, device: Any, facts: DeviceFacts) -> str:
    from devcheck.machine.cpu import memory_bytes

    host_free = memory_bytes()[1]
    if host_free is not None and need > 0.8 * host_free:
        return f"needs {need / 2**30:.1f} GiB, the host has {host_free / 2**30:.1f} GiB available"
    if facts.free_bytes is not None and device.name != "cpu" and need > 0.9 * facts.free_bytes:
        return f"needs {need / 2**30:.1f} GiB, {device.name} has {facts.free_bytes / 2**30:.1f} GiB free"
    return ""


def _execute(
    plan: list[Planned], mkn: tuple[int, int, int], repeat: int, max_time: float, progress: Progress
) -> tuple[list[dict], list[Planned], list[Check]]:
    """Run the plan; a case that raises is a failed check on that device, and the run goes on."""
    records, skipped, inputs, crashed = [], [], {}, []
    started = time.perf_counter()
    progress("benchmarking", total=len(plan))
    for i, p in enumerate(plan):
        label = f"{p.case} {p.dtype} on {p.device.name}"
        progress(label)
        if p.why:
            skipped.append(p)
        else:
            left = max(max_time - (time.perf_counter() - started), 0.0)
            budget = Budget(repeat, left / (len(plan) - i))
            if p.case in ("matmul", "e2e") and p.dtype not in inputs:
                inputs[p.dtype] = cases.host_inputs(mkn, p.dtype)
            try:
                records += _run_case(p, mkn, budget, inputs.get(p.dtype))
            except Exception as e:
                where = f"{p.device.name} {p.dtype}" if p.case in ("matmul", "e2e") else p.device.name
                crashed.append(
                    Check(
                        f"bench.{p.case}.{where.replace(' ', '.')}",
                        Status.ERROR,
                        f"{p.case} on {where} raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                        fix="run `devcheck env` for this device",
                    )
                )
        progress(label, advance=1)
    return records, skipped, crashed


def _run_case(p: Planned, mkn: tuple[int, int, int], budget: Budget, inputs: Any) -> list[dict]:
    if p.case == "matmul":
        return [cases.matmul(p.device, p.facts, mkn, p.dtype, budget, inputs)]
    if p.case == "e2e":
        return [cases.matmul_end_to_end(p.device, mkn, p.dtype, budget, inputs)]
    if p.case == "bandwidth":
        return [cases.bandwidth(p.device, p.facts, budget, p.size)]
    if p.case == "copy":
        return cases.copies(p.device, p.facts, budget, p.size)
    return [cases.training_step(p.device, budget)]


def speedups(records: list[dict]) -> list[dict]:
    """Each GPU against the CPU: the kernel alone, and end to end with both copies included."""
    by_key = {(r["case"], r["device"], r["dtype"]): r for r in records}
    rows = []
    for r in records:
        cpu = by_key.get(("matmul", "cpu", r["dtype"]))
        if r["case"] != "matmul" or r["device"] == "cpu" or cpu is None:
            continue
        e2e = by_key.get(("matmul end-to-end", r["device"], r["dtype"]))
        cpu_s, gpu_s = cpu["stats"]["median_s"], r["stats"]["median_s"]
        e2e_s = e2e["stats"]["median_s"] if e2e else None
        rows.append(
            {
                "device": r["device"],
                "dtype": r["dtype"],
                "cpu ms": cpu_s * 1e3,
                "kernel ms": gpu_s * 1e3,
                "kernel speedup": cpu_s / gpu_s,
                "end-to-end ms": e2e_s * 1e3 if e2e_s else None,
                "end-to-end speedup": cpu_s / e2e_s if e2e_s else None,
            }
        )
    return rows


def _report(report: Report, records: list[dict], skipped: list[Planned], devices: list, mkn: tuple) -> None:
    m, k, n = mkn
    rows: dict[str, list[dict]] = {"matmul": [], "transfer": [], "autograd": []}
    notes: dict[str, list[str]] = {name: [] for name in rows}
    peak_rows: list[dict] = []
    for r in records:
        s = r["stats"]
        timing = {
            "first ms": r["first_call_s"] * 1e3,
            "median ms": f"{s['median_s'] * 1e3:.3g} ±{100 * s['iqr_s'] / s['median_s']:.0f}%",
            "n": s["n"],
        }
        if r["case"] == "matmul end-to-end":
            continue  # in the speedup table, beside the kernel alone
        if r["case"] == "matmul":
            table = "matmul"
            rows[table].append(
                {
                    "device": r["device"],
                    "dtype": r["dtype"],
                    **timing,
                    "GFLOP/s": r["rate"],
                    "% peak": r["percent_of_peak"],
                    "rel err": r["correctness"]["rel_error"],
                }
            )
        elif r["case"] == "autograd step":
            table = "autograd"
            rows[table].append(
                {
                    "device": r["device"],
                    "engine ms": s["median_s"] * 1e3,
                    "raw arrays ms": r["raw_stats"]["median_s"] * 1e3,
                    "overhead": r["overhead"],
                    "samples/s": r["rate"],
                    "n": s["n"],
                }
            )
        else:
            table = "transfer"
            rows[table].append(
                {
                    "device": r["device"],
                    "what": r["case"].removeprefix("copy "),
                    **timing,
                    "GB/s": r["rate"],
                    "% peak": r["percent_of_peak"],
                }
            )
        if _note(r):
            notes[table].append(f"{r['case']} on {r['device']} {r['dtype']}: {_note(r)}")
        key = (r["device"], r["dtype"], r["unit"])
        if r["peak"]["value"] is not None and key not in {(p["device"], p["dtype"], p["unit"]) for p in peak_rows}:
            peak_rows.append(
                {
                    "device": r["device"],
                    "dtype": r["dtype"],
                    "unit": r["unit"],
                    "peak": r["peak"]["value"],
                    "basis": r["peak"]["basis"],
                }
            )
    ups = speedups(records)
    report.sections += [
        Section("devices", "Devices", rows=[{"device": f.name, "what": f.label} for _, f in devices]),
        Section(
            "matmul",
            f"Matmul: A {m}x{k} @ B {k}x{n} (N=10000 is the classic experiment)",
            rows=rows["matmul"],
            caption="; ".join(notes["matmul"]),
        ),
        Section("transfer", "Memory bandwidth and copies", rows=rows["transfer"], caption="; ".join(notes["transfer"])),
        Section(
            "autograd",
            "Autograd: one training step, MLP 784-512-512-10, batch 256",
            rows=rows["autograd"],
            caption="; ".join(notes["autograd"]),
        ),
        Section("peaks", "Peaks and their basis", rows=peak_rows),
        Section("speedups", "GPU speedup over the CPU: the kernel alone, and end to end with copies", rows=ups),
    ]
    report.sections = [section for section in report.sections if section.rows]
    report.data.update(
        records=records,
        speedups=ups,
        skipped=[{"case": p.case, "device": p.device.name, "dtype": p.dtype, "reason": p.why} for p in skipped],
    )
    report.charts.append(
        Chart(
            "matmul GFLOP/s",
            {f"{r['device']} {r['dtype']}": [r["rate"]] for r in records if r["case"] == "matmul"},
            kind="bar",
            unit="GFLOP/s",
        )
    )
    if ups:
        report.charts.append(
            Chart(
                "speedup over the CPU (end to end)",
                {f"{u['device']} {u['dtype']}": [u["end-to-end speedup"] or u["kernel speedup"]] for u in ups},
                kind="bar",
                unit="x",
            )
        )
    report.checks += _checks(records, skipped)
    fastest = max((r for r in records if r["case"] == "matmul"), key=lambda r: r["rate"], default=None)
    if report.first_failure:
        report.verdict = f"bench: FAILED — {report.first_failure.summary}"
    elif fastest:
        report.verdict = (
            f"bench: fastest matmul {fastest['rate']:,.1f} GFLOP/s on {fastest['device']} "
            f"({fastest['dtype']}); results correct on every device"
        )
    else:
        report.verdict = "bench: done"


def _note(record: dict) -> str:
    """A few words for the table; the checks say why in full."""
    c = record.get("correctness")
    notes = [
        "WRONG RESULT" if c and not c["ok"] else "",
        record["peak_note"] and "clock under-reported",
        record["unstable"] and "unstable",
        record.get("tf32") and "TF32 on",
    ]
    return ", ".join(n for n in notes if n)


def _checks(records: list[dict], skipped: list[Planned]) -> list[Check]:
    checks = []
    for r in records:
        c = r.get("correctness")
        if c:
            where = f"{r['device']} {r['dtype']}"
            if c["ok"]:
                checks.append(
                    Check(
                        f"bench.matmul.{r['device']}.{r['dtype']}",
                        Status.OK,
                        f"{where}: matmul correct (rel err {c['rel_error']:.1e} <= {c['tolerance']:.1e})",
                    )
                )
            else:
                checks.append(
                    Check(
                        f"bench.matmul.{r['device']}.{r['dtype']}",
                        Status.FAIL,
                        f"{where}: matmul WRONG: relative error {c['rel_error']:.2e} > {c['tolerance']:.1e} "
                        f"against a float64 reference",
                        fix="run `devcheck env` and `devcheck grad`",
                    )
                )
    unstable = [f"{r['case']} on {r['device']} {r['dtype']} ({r['unstable']})" for r in records if r["unstable"]]
    if unstable:
        checks.append(
            Check(
                "bench.stability",
                Status.WARN,
                f"{len(unstable)} measurement(s) unstable",
                detail="; ".join(unstable),
                fix="close other work, or raise --repeat / --max-time",
            )
        )
    above = [f"{r['case']} on {r['device']} {r['dtype']}" for r in records if r["peak_note"]]
    if above:
        checks.append(
            Check(
                "bench.peak",
                Status.WARN,
                "measured above the computed peak: " + ", ".join(above),
                detail="the clock the peak is built on is under-reported (often the base clock in a VM)",
            )
        )
    for p in skipped:
        where = f"{p.device.name} {p.dtype}" if p.case in ("matmul", "e2e") else p.device.name
        checks.append(
            Check(f"bench.{p.case}.{where.replace(' ', '.')}", Status.SKIP, f"{p.case} on {where} skipped: {p.why}")
        )
    return checks


def compare(records: list[dict], old: list[dict], max_regression: float) -> Check:
    """Each record against the baseline's record of the same case, device, dtype and shape."""
    key = lambda r: (r["case"], r["device"], r["dtype"], tuple(r["shape"]))  # noqa: E731
    before = {key(r): r for r in old}
    regressions, compared = [], 0
    for r in records:
        b = before.get(key(r))
        if b is None or not b.get("rate"):
            continue
        compared += 1
        drop = 100 * (b["rate"] - r["rate"]) / b["rate"]
        if drop > max_regression:
            regressions.append(
                f"{r['case']} {r['device']} {r['dtype']}: {b['rate']:.4g} -> {r['rate']:.4g} {r['unit']} (-{drop:.1f}%)"
            )
    if not compared:
        return Check(
            "bench.baseline", Status.WARN, "no case of the baseline matches this run (case, device, dtype, shape)"
        )
    if regressions:
        return Check(
            "bench.baseline",
            Status.FAIL,
            f"{len(regressions)} regression(s) beyond {max_regression}%",
            detail="; ".join(regressions),
        )
    return Check("bench.baseline", Status.OK, f"{compared} case(s) within {max_regression}% of the baseline")
