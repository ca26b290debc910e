"""The steps of `devcheck check`, each with an estimate of its time (so the budget decides what runs)
and the work it does. They reuse the other commands' parts: env's probes, bench's cases, grad's
checks and train's lockstep agreement."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from devcheck.commands.bench import cases
from devcheck.commands.check import health as health_checks
from devcheck.commands.check import sizes
from devcheck.commands.check.stress import stress as stress_window
from devcheck.engine.backend import cuda_index
from devcheck.interrupt import Interruption
from devcheck.machine.probes.links import counters_now
from devcheck.machine.probes.topology import growth_checks
from devcheck.report import Check, Report, Status

CORRECTNESS_N = 256
CORRECTNESS_EACH = 0.8  # seconds of the correctness step per device
STRESS_CAP = {10.0: 2.0, 60.0: 40.0, 300.0: 240.0, 900.0: 780.0}  # budget (s) -> seconds of stress, all devices
MIN_STRESS = 1.5  # seconds: a shorter window says nothing


def stress_cap(seconds: float) -> float:
    """STRESS_CAP's points joined by straight lines: under the first in proportion, past the last along
    the last segment (an hour gives 3,210 s)."""
    points = sorted(STRESS_CAP.items())
    if seconds <= points[0][0]:
        return points[0][1] * seconds / points[0][0]
    (b1, c1), (b2, c2) = next(((p, q) for p, q in zip(points, points[1:]) if seconds <= q[0]), points[-2:])
    return c1 + (c2 - c1) * (seconds - b1) / (b2 - b1)


GRAD_OPS = ("matmul", "linear", "tanh", "relu", "cross_entropy", "sum", "index_repeats")
CHECK_CASES = 5  # GEMM calls a speed case takes: the first, a warm-up, three samples


@dataclass
class Work:
    settings: Any
    selection: Any
    report: Report
    clock: Any
    facts: dict[str, Any] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)  # GFLOP/s of the correctness GEMM, for the estimates
    records: list[dict] = field(default_factory=list)
    stress: list[dict] = field(default_factory=list)
    stop: Interruption = field(default_factory=Interruption)  # Ctrl-C or a signal, held by a step that reports it
    mark: float = field(default_factory=time.perf_counter)  # when the last check was made

    @property
    def replaying(self) -> bool:
        from devcheck.machine.replay import seam

        return seam.replaying() is not None

    def check(self, *checks: Check) -> None:
        """Checks made now, each with its share of the time since the last ones: the work they rest on (a
        step on one device, mostly; checks made together share its time), so their times add up to the run's."""
        now = time.perf_counter()
        share, self.mark = (now - self.mark) / max(len(checks), 1), now
        self.report.checks += [replace(c, seconds=share) for c in checks]


# --- 1. health: env's verdict, and what NVML says of each GPU ----------------------------------------


SHARED_SECTIONS = ("driver", "numpy", "cupy", "visible")


def health(work: Work) -> None:
    from devcheck.commands.env import collect

    env = collect(gate=health_checks.gate(work.settings.thresholds, work.settings.strict))
    work.check(*[c for c in env.checks if c.id != "machine.replay" or not work.report.check(c.id)])
    # what a fleet's reports must agree on (devcheck compare's drift): driver, GPUs, NumPy/BLAS, CuPy/CUDA
    work.report.sections += [s for s in env.sections if s.group in ("gpus", "mig") or s.key in SHARED_SECTIONS]
    work.report.data["env_verdict"] = env.verdict


# --- 2. correctness: a GEMM against float64, autograd, and the first training steps -------------------


def correctness(work: Work) -> None:
    from devcheck.commands import grad
    from devcheck.machine.model.facts import facts_for

    shape, budget = (CORRECTNESS_N,) * 3, cases.Budget(3, 0.5)
    for device in _in_time(work, "correctness", lambda device: CORRECTNESS_EACH):
        work.facts[device.name] = facts = facts_for(device.name)
        for dtype in ("float32", "float64"):
            record = _guarded(
                work,
                f"check.gemm.{device.name}.{dtype}",
                cases.matmul,
                device,
                facts,
                shape,
                dtype,
                budget,
                cases.host_inputs(shape, dtype),
            )
            if record is not None:
                work.rates.setdefault(device.name, record["rate"])
                c = record["correctness"]
                status = Status.OK if c["ok"] else Status.FAIL
                error = f"rel err {c['rel_error']:.1e} (tolerance {c['tolerance']:.1e})"
                text = f"{device.name} {dtype}: GEMM against float64, {error}"
                work.check(
                    Check(
                        f"check.gemm.{device.name}.{dtype}",
                        status,
                        text,
                        fix="" if c["ok"] else "run `devcheck grad` and `devcheck env`",
                    )
                )
        _, classic = grad.classic(device.name)
        work.check(classic)
        rows: list[dict] = []
        with work.stop:  # Ctrl-C: a wrong gradient found before it is still reported
            for op in GRAD_OPS:
                rows += grad.check_op(op, device.name, fast=True)
        if rows:
            work.check(grad.summary_check(f"check.grad.{device.name}", device.name, rows))
        if work.stop:
            return
    _training_agreement(work)


def _training_agreement(work: Work) -> None:
    from devcheck.commands.train import Config
    from devcheck.commands.train.agreement import agreement_steps
    from devcheck.commands.train.loop import spirals

    if not work.selection.gpus or "cpu" not in work.selection.names:
        return
    config = Config(epochs=1)
    x, y = spirals(config.samples, config.seed)
    data = {"x_train": x[:1600], "y_train": y[:1600], "x_val": x[1600:], "y_val": y[1600:]}
    work.check(*agreement_steps(config, data, work.selection.devices, steps=5))


# --- 2b. GPU to GPU: copies between every pair (each GPU to the next in the smallest budget) ----------

P2P_SECONDS = {10.0: 0.3, 60.0: 3.0, 300.0: 10.0, 900.0: 20.0}  # of measuring; setup and checks add ~0.1 s a GPU


def p2p(work: Work) -> None:
    """bench's P2P matrix, judged: every copy intact, each P2P pair at least its floor of its link's
    peak, and a warning for the pairs whose copies are staged through host memory. Two GPUs at least."""
    from devcheck.commands.bench.interconnect import group, matrix
    from devcheck.commands.bench.interconnect_report import checks
    from devcheck.commands.check.verdicts import p2p_check
    from devcheck.machine.model.facts import facts_for

    gpus = work.selection.gpus
    if len(gpus) < 2:
        return
    members = [(d, work.facts.get(d.name) or facts_for(d.name)) for d in gpus]
    seconds = work.settings.seconds
    measure = cases.Budget(3, sizes.at_budget(P2P_SECONDS, seconds))
    records = _guarded(work, "check.p2p", matrix, group(members), measure, seconds < 60)  # < 60 s: each to the next
    if records is None:
        return
    work.records += records
    work.report.checks += checks(records, prefix="check")
    floors = {d.name: work.settings.thresholds.floor("p2p", d.name, f.label) for d, f in members}
    work.check(p2p_check(records, floors, work.replaying))


def _estimate_p2p(work: Work) -> float | None:
    """None: not a step for fewer than two GPUs (left out of the plan)."""
    n = len(work.selection.gpus)
    return None if n < 2 else sizes.at_budget(P2P_SECONDS, work.settings.seconds) + 0.1 * n


# --- 3. speed: against each device's own peak ---------------------------------------------------------


def speed_size(work: Work, device: str, dtype: str) -> int:
    """The size of the device's speed GEMM: its model's and the budget's (sizes.py), not its measured speed."""
    return sizes.speed_size(_sized_as(work, device), work.settings.seconds, dtype)


def _sized_as(work: Work, device: str) -> Any:
    """The facts a device's sizes and time estimates go by: its own; under replay a GPU's arithmetic is
    NumPy's on this CPU, so it goes by the CPU's (a recorded H100's sizes would take NumPy minutes)."""
    from devcheck.machine.model.facts import cpu_facts, unknown_facts

    if work.replaying and device != "cpu":
        return work.facts.get("cpu") or cpu_facts()
    return work.facts.get(device) or unknown_facts(device)


def _gpu_shared(name: str) -> str:
    """Read just after the GPU's matmul, while any other job on it is still there; a GPU NVML cannot
    read now is judged as it is (the health and stress steps say what is wrong with it)."""
    from devcheck.commands.check.verdicts import gpu_busy
    from devcheck.machine.model.facts import gpu_sharers

    try:
        return gpu_busy(gpu_sharers(cuda_index(name)))
    except Exception:
        return ""


def speed(work: Work) -> None:
    from devcheck.commands.check.verdicts import cpu_busy, speed_check
    from devcheck.machine.probes.cpu import busy_fraction

    busy = cpu_busy(busy_fraction())
    for device in _in_time(work, "speed", lambda device: _estimate_speed_on(work, device)):
        facts = work.facts.get(device.name)
        if facts is None:
            continue
        for dtype in sizes.DTYPES:
            shape = (speed_size(work, device.name, dtype),) * 3
            record = _guarded(
                work,
                f"check.speed.{device.name}.matmul_{dtype}",
                cases.matmul,
                device,
                facts,
                shape,
                dtype,
                cases.Budget(3, 2.0),
                cases.host_inputs(shape, dtype),
            )
            if record is not None:
                work.records.append(record)
                floor = work.settings.thresholds.floor(f"matmul_{dtype}", device.name, facts.label)
                shared = busy if device.name == "cpu" else _gpu_shared(device.name)
                work.check(
                    speed_check(f"check.speed.{device.name}.matmul_{dtype}", record, floor, work.replaying, shared)
                )
        if device.name != "cpu":
            copies = (
                _guarded(
                    work,
                    f"check.speed.{device.name}.copy",
                    cases.copies,
                    device,
                    facts,
                    cases.Budget(3, 1.0),
                    64 * 2**20,
                )
                or []
            )
            work.records += copies
            for record in copies:
                if record["case"] in ("copy host->device pinned", "copy device->device"):
                    key = "copy_pinned" if "pinned" in record["case"] else "bandwidth"
                    floor = work.settings.thresholds.floor(key, device.name, facts.label)
                    work.check(speed_check(f"check.speed.{device.name}.{key}", record, floor, work.replaying))
    if work.settings.baseline is not None:
        from devcheck.commands.bench.baseline import compare

        work.check(compare(work.records, work.settings.baseline, work.settings.max_regression))


# --- 4. stress: the rest of the budget ------------------------------------------------------------------


def stress(work: Work) -> None:
    before = _link_errors(work)
    _stress(work)
    if before:  # NVLink errors made under load (env already judged those since boot)
        work.check(*growth_checks(before, _link_errors(work)))


def _link_errors(work: Work) -> dict:
    """Every GPU's NVLink error counters, when the stress window runs on a GPU ({} otherwise, or when NVML
    cannot say: the health step has said why)."""
    if not any(d.name.startswith("cuda:") for d in work.selection.devices):
        return {}
    try:
        return counters_now()
    except Exception:
        return {}


def _stress(work: Work) -> None:
    devices = work.selection.devices
    window = _stress_window(work) / max(len(devices), 1)
    for device in devices:
        n = sizes.stress_size(_sized_as(work, device.name), work.settings.seconds)
        limit = work.settings.thresholds.floor("stress_drift", device.name, "")
        if work.replaying and device.name != "cpu":  # a replayed GPU's rate is NumPy's on this CPU: not judged
            limit = float("inf")
        during = _reader(device.name)
        found = _guarded(
            work,
            f"check.stress.{device.name}",
            stress_window,
            device,
            max(window - 0.3, 0.2),
            n,
            limit,
            during,
            work.stop,
        )
        if found is not None:
            record, checks = found
            work.stress.append(record)
            work.check(*checks)
            if device.name != "cpu" and record["under_load"]:  # none if an interrupt came before halfway
                work.check(*health_checks.load_checks(device.name, record["under_load"], work.replaying))
                if not work.replaying:  # a replay's readings are the recorded idle ones
                    health_checks.settle_idle_link(work.report.checks, record["under_load"])
        if work.stop:
            return


def _reader(name: str) -> Any:
    """NVML's view of a GPU, read while it works (none for the CPU)."""
    if not name.startswith("cuda:"):
        return None
    from devcheck.machine.model.facts import under_load

    def read() -> dict:
        try:
            return under_load(cuda_index(name))
        except Exception as e:  # NVML failing midway: said by load_checks, never a pass
            return {"error": f"{type(e).__name__}: {e}"}

    return read


def _in_time(work: Work, step: str, each: Any) -> Any:
    """The selected devices in turn, while the budget has room for the next (`each(device)` seconds): a
    step that fit as estimated can still meet slower devices, on an 8-GPU node most of all. The first
    always runs (the step was planned for it); those left are named in one check, not dropped."""
    devices = work.selection.devices
    for i, device in enumerate(devices):
        if i and work.clock.left < each(device):
            names = ", ".join(d.name for d in devices[i:])
            work.check(
                Check(
                    f"check.{step}.budget",
                    Status.WARN,  # not checked: never a pass, a failure with --strict
                    f"{step} not run on {names}: no time left in the {work.settings.budget} budget",
                    fix="a longer --budget",
                )
            )
            return
        yield device


def _guarded(work: Work, check_id: str, fn: Any, *args: Any) -> Any:
    """A step that raises is a failed check on its device, and the run goes on (fail closed)."""
    try:
        return fn(*args)
    except Exception as e:
        work.check(Check.crashed(check_id, Status.FAIL, f"{check_id} could not run:", e, "run `devcheck env`"))
        return None


# --- the estimates the budget is checked against ----------------------------------------------------------


def _stress_window(work: Work) -> float:
    """Seconds of stress on all devices together: what the budget has left, up to its cap."""
    return min(work.clock.left - 1.0, stress_cap(work.settings.seconds))


def _estimate_correctness(work: Work) -> float:
    return 1.0 + CORRECTNESS_EACH * len(work.selection.devices)


def _estimate_speed_on(work: Work, device: Any) -> float:
    """Planned at a tenth of the device's peak, or at the correctness GEMM's rate where that is faster (a
    256 GEMM runs under a large one's rate): a slower device is cut short by the measurements' own budget
    and by `_in_time`, and judged on what it did."""
    facts, measured = _sized_as(work, device.name), work.rates.get(device.name) or 1.0
    seconds = 0.0
    for dtype in sizes.DTYPES:
        rate = max(measured, (facts.flops_peak(dtype).value or 0.0) * sizes.PLANNED_FRACTION)
        seconds += CHECK_CASES * sizes.gemm_seconds(speed_size(work, device.name, dtype), rate)
    return seconds + (1.5 if device.name != "cpu" else 0.0)  # and the copies


def _estimate_speed(work: Work) -> float:
    return sum(_estimate_speed_on(work, d) for d in work.selection.devices)


def _estimate_stress(work: Work) -> float:
    return max(MIN_STRESS, _stress_window(work))


ORDER = (  # each step: its name, what it checks, the step, and the seconds it is expected to take
    ("health", "env verdict and GPU health (NVML)", health, lambda work: 1.0),
    ("correctness", "GEMM against float64, autograd, first steps across devices", correctness, _estimate_correctness),
    ("p2p", "GPU-to-GPU copies against the link's peak (two or more GPUs)", p2p, _estimate_p2p),
    ("speed", "matmul and copies against each device's peak", speed, _estimate_speed),
    ("stress", "repeated GEMMs compared with the first and with float64", stress, _estimate_stress),
)
