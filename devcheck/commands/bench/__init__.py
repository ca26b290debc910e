"""`devcheck bench`: how fast is this machine, and is the GPU really faster?

The classic experiment, randn(N, N/10) @ randn(N/10, N/5), done right on every device: GPU work
timed with CUDA events, the first call apart from the steady state, medians with their spread,
the result checked against a float64 reference, the rate set against the device's peak; then
memory bandwidth, host<->device copies, an autograd training step, and the speedup a person
moving the work to the GPU would really see (copies included).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy

from devcheck.commands.bench import cases, tables
from devcheck.commands.bench.baseline import compare
from devcheck.commands.bench.cases import Budget
from devcheck.commands.bench.timing import TimeUp
from devcheck.errors import BadInput
from devcheck.interrupt import Interruption
from devcheck.machine.model.devices import Selection, selection_checks
from devcheck.machine.model.facts import DeviceFacts, facts_for
from devcheck.options import MatmulShape
from devcheck.report import Check, Progress, Report, Status, no_progress

CASES = ("matmul", "e2e", "bandwidth", "copy", "autograd", "crossover", "p2p", "allreduce")
DTYPES = ("float32", "float64", "float16")


@dataclass(frozen=True)
class Settings:
    shape: MatmulShape
    dtypes: tuple[str, ...] = ("float32", "float64")
    cases: tuple[str, ...] = CASES
    repeat: int = 10
    max_time: float = 60.0
    baseline: list[dict] | None = None  # the records of an earlier `bench --json`
    max_regression: float = 10.0


def run(
    settings: Settings, selection: Selection, *, require_gpu: bool = False, progress: Progress = no_progress
) -> Report:
    devices = [(device, facts_for(device.name)) for device in selection.to_run(require_gpu).devices]
    plan = _plan(devices, settings)
    report = Report("bench")
    report.checks += selection_checks(selection, require_gpu)
    stop = Interruption()
    records, skipped, crashed = _execute(plan, settings, progress, stop)
    crossovers = [r for r in records if r["case"] == "crossover"]
    records = [r for r in records if r["case"] != "crossover"]
    report.checks += crashed
    report.checks += [
        Check(f"bench.facts.{f.name}", Status.WARN, f.problem, detail="peaks cannot be computed for this device")
        for _, f in devices
        if f.problem
    ]
    if settings.baseline is not None:
        report.checks.append(compare(records, settings.baseline, settings.max_regression))
    tables.add_results(
        report, records, skipped, [f for _, f in devices], settings.shape, crossovers
    )  # last: reads every check
    return stop.hand_over(report)  # after Ctrl-C or a signal, with what was measured


class Planned(NamedTuple):
    """One case to run on one device, or the reason it is skipped."""

    case: str
    device: Any
    facts: DeviceFacts
    dtype: str = "float32"
    size: int = 0  # elements (bandwidth) or bytes (copies)
    why: str = ""


def _plan(devices: list, settings: Settings) -> list[Planned]:
    """Every case to run on every device, or why it is skipped; a chosen size that cannot fit is an error."""
    plan, chosen = [], settings.cases
    m, k, n = settings.shape.mkn
    for device, facts in devices:
        gpu = device.name != "cpu"
        for dt in settings.dtypes if "matmul" in chosen else []:
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
            if why and settings.shape.chosen:
                raise BadInput(f"--size/--shape {m}x{k} @ {k}x{n} {dt}: {why}")
            plan.append(Planned("matmul", device, facts, dt, why=why))
            if gpu and "e2e" in chosen:
                plan.append(Planned("e2e", device, facts, dt, why=why))
        stream = _stream_bytes(facts.cache_bytes)  # every array of these cases: their passes go to memory
        if "bandwidth" in chosen:
            plan.append(
                Planned("bandwidth", device, facts, size=stream // 4, why=_does_not_fit(3 * stream, device, facts))
            )
        if "copy" in chosen and gpu:
            plan.append(Planned("copy", device, facts, size=stream, why=_does_not_fit(3 * stream, device, facts)))
        if "autograd" in chosen:
            plan.append(Planned("autograd", device, facts))
    plan += _crossover_plan(devices) if "crossover" in chosen else []
    return plan + _across_gpus_plan(devices, chosen, explicit=chosen != CASES)


def _across_gpus_plan(devices: list, chosen: tuple[str, ...], explicit: bool) -> list[Planned]:
    """GPU-to-GPU copies and an NCCL all-reduce, once over all selected GPUs; with fewer than two they
    are skipped, and said so only when asked for by name."""
    from devcheck.commands.bench import allreduce
    from devcheck.commands.bench.interconnect import group

    gpus = [(d, f) for d, f in devices if d.name != "cpu"]
    if len(gpus) < 2 and not explicit:
        return []
    gpus_group = group(gpus)
    facts = next((f for _, f in gpus or devices), None)
    plan = []
    for case in (c for c in ("p2p", "allreduce") if c in chosen):
        if len(gpus) < 2:
            plan.append(Planned(case, gpus_group, facts, why=f"needs two or more GPUs, {len(gpus)} selected"))
            continue
        why = allreduce.missing(gpus[0][0].native) if case == "allreduce" else ""
        plan.append(Planned(case, gpus_group, facts, why=why))
    return plan


def _crossover_plan(devices: list) -> list[Planned]:
    """Each GPU against the CPU, so both must be selected."""
    gpus = [(d, f) for d, f in devices if d.name != "cpu"]
    if not gpus:
        return [
            Planned("crossover", *pair, why="compares each GPU with the CPU: no GPU selected") for pair in devices[:1]
        ]
    cpu = any(d.name == "cpu" for d, _ in devices)
    return [Planned("crossover", d, f, why="" if cpu else "needs the CPU in --device to compare with") for d, f in gpus]


def _stream_bytes(cache_bytes: int) -> int:
    """STREAM's rule: each array 4x the last cache, so every pass goes to memory; at least 64 MiB, and
    at most 1 GiB (a VM can report its host's whole L3: 480 MiB here gave 5.6 GiB of arrays)."""
    return max(64 * 2**20, min(4 * cache_bytes, 2**30))


def _does_not_fit(need: int, device: Any, facts: DeviceFacts) -> str:
    from devcheck.machine.probes.cpu import memory_bytes

    host_free = memory_bytes()[1]
    if host_free is not None and need > 0.8 * host_free:
        return f"needs {need / 2**30:.1f} GiB, the host has {host_free / 2**30:.1f} GiB available"
    if facts.free_bytes is not None and device.name != "cpu" and need > 0.9 * facts.free_bytes:
        return f"needs {need / 2**30:.1f} GiB, {device.name} has {facts.free_bytes / 2**30:.1f} GiB free"
    return ""


def _execute(
    plan: list[Planned], settings: Settings, progress: Progress, stop: Interruption
) -> tuple[list[dict], list[Planned], list[Check]]:
    """Run the plan; a case that raises is a failed check on that device, and the run goes on. An
    interrupt ends it, held in `stop`: the cases not run are skipped."""
    done: list[list[dict] | Check] = []  # per case handled: its records, or the check of its crash
    shared: dict = {}  # the matmul inputs per dtype, and the CPU's side of every GPU's crossover
    deadline = time.perf_counter() + settings.max_time  # no call starts after it: one in flight at most
    late = f"not run: --max-time {settings.max_time:g} s reached"
    progress("benchmarking", total=len(plan))
    with stop:
        for i, p in enumerate(plan):
            label = f"{p.case} {p.dtype} on {p.device.name}"
            left = deadline - time.perf_counter()
            if left <= 0 and not p.why:  # --max-time bounds the whole run: the rest is named, not run
                p = plan[i] = p._replace(why=late)
            if not p.why and (too_long := _call_outlasts(p, settings.shape.mkn, left)):
                p = plan[i] = p._replace(why=too_long)
            progress(label)
            try:
                outcome: list[dict] | Check = []
                if not p.why:
                    budget = Budget(settings.repeat, left / (len(plan) - i), deadline)
                    if p.case in ("matmul", "e2e") and p.dtype not in shared:
                        shared[p.dtype] = cases.host_inputs(settings.shape.mkn, p.dtype)
                    outcome = _run_case(p, settings.shape.mkn, budget, shared)
            except TimeUp:  # the limit came while its inputs were made: nothing of it was measured
                p = plan[i] = p._replace(why=late)
            except Exception as e:
                outcome = _crash_check(p, e)
            done.append(outcome)  # one append: the case is handled, or (interrupted before it) not run
            progress(f"{label}: {'error' if isinstance(outcome, Check) else p.why or 'ok'}", advance=1)
    records = [r for outcome in done if isinstance(outcome, list) for r in outcome]
    crashed = [outcome for outcome in done if isinstance(outcome, Check)]
    skipped = [p for p in plan[: len(done)] if p.why]
    skipped += [p if p.why else p._replace(why="not run: the run was interrupted") for p in plan[len(done) :]]
    return records, skipped, crashed


def _call_outlasts(p: Planned, mkn: tuple[int, int, int], left: float) -> str:
    """Why a matmul is not started: even at twice the device's peak (a VM's under-reported clock makes
    peaks low) one call would outlast what is left of --max-time; "" when it may fit, or no peak is known."""
    peak = p.facts.flops_peak(p.dtype).value if p.case in ("matmul", "e2e") else None
    seconds = 2.0 * mkn[0] * mkn[1] * mkn[2] / (2 * peak * 1e9) if peak else 0.0
    if seconds <= left:
        return ""
    return f"not run: one call needs over {seconds:.0f} s even at twice the peak, {left:.0f} s of --max-time left"


def _crash_check(p: Planned, e: Exception) -> Check:
    where = f"{p.device.name} {p.dtype}" if p.case in ("matmul", "e2e") else p.device.name
    check_id, fix = f"bench.{p.case}.{where.replace(' ', '.')}", "run `devcheck env` for this device"
    return Check.crashed(check_id, Status.ERROR, f"{p.case} on {where} raised", e, fix)


def _run_case(p: Planned, mkn: tuple[int, int, int], budget: Budget, shared: dict) -> list[dict]:
    if p.case == "matmul":
        return [cases.matmul(p.device, p.facts, mkn, p.dtype, budget, shared[p.dtype])]
    if p.case == "e2e":
        return [cases.matmul_end_to_end(p.device, mkn, p.dtype, budget, shared[p.dtype])]
    if p.case == "bandwidth":
        return [cases.bandwidth(p.device, p.facts, budget, p.size)]
    if p.case == "copy":
        return cases.copies(p.device, p.facts, budget, p.size)
    if p.case == "p2p":
        from devcheck.commands.bench.interconnect import matrix

        return matrix(p.device, budget)
    if p.case == "allreduce":
        from devcheck.commands.bench.allreduce import allreduce

        return allreduce(p.device, budget)
    if p.case == "crossover":
        from devcheck.commands.bench import crossover
        from devcheck.engine import get_device

        cpu, cpu_times = get_device("cpu"), shared.setdefault("crossover", {})
        return [
            {"case": "crossover", **crossover.matmul(cpu, p.device, cpu_times, budget.deadline)},
            {"case": "crossover", **crossover.training_step(cpu, p.device, cpu_times, budget.deadline)},
        ]
    return [cases.training_step(p.device, budget)]
