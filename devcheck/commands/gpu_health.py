"""The GPU-health policy, in one place: what NVML's readings of one GPU say is wrong with it.

Each fault is one check, `gpuN.<fault>`, whichever command asks. `env` reports: a pending memory repair
or a slowdown warns, since the GPU still computes. `check` gates a node: the same faults fail it, and
it also judges what only a gate asks about: the PCIe link at idle (read again under load, where an
idle link that was only saving power turns ok), the temperature against its slowdown threshold,
persistence mode, and fields NVML could not read. A GPU NVML lost is judged by the probe that lost it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from devcheck.machine.probes.gpu_reading import GpuReading
from devcheck.report import Check, Status

HELD_BACK = ("hardware slowdown", "software thermal slowdown", "hardware thermal slowdown", "power brake")


@dataclass(frozen=True)
class Gate:
    """check's context: the temperature margin for a GPU (from its CUDA index, None where CUDA does not
    see it, and its model: check's thresholds, which name devices as CUDA does), and --strict (a field
    NVML could not read fails)."""

    margin_c: Callable[[int | None, str], float]
    strict: bool = False


def judge(gpu: GpuReading, gate: Gate | None = None) -> list[Check]:
    """The checks of one GPU that NVML read (a field it could not read has no value); `gate`: judged for a
    node gate."""
    checks = [*_ecc(gpu), *_memory(gpu, gate), *_clocks(gpu, gate), *_compute_mode(gpu)]
    if gate is not None:
        margin = gate.margin_c(gpu.cuda_index.value, gpu.name.value or "unknown GPU")
        checks += [*_pcie(gpu), *_temperature(gpu, margin), *_unreadable(gpu, gate), *_persistence(gpu)]
    ok = f"GPU {gpu.index}: no ECC, memory, clock or mode problem reported"
    return checks or [Check(f"{gpu.key}.health", Status.OK, ok)]


def _ecc(gpu: GpuReading) -> list[Check]:
    ecc = gpu.ecc_uncorrected_since_boot.value
    if not ecc:
        return []
    return [
        Check(
            f"{gpu.key}.ecc",
            Status.FAIL,
            f"GPU {gpu.index}: {ecc} uncorrected ECC errors since boot",
            detail="results computed on this GPU may be wrong",
            fix=f"drain the GPU, reset it (sudo nvidia-smi -r -i {gpu.index}), run `dcgmi diag -r 3`; RMA if it recurs",
        )
    ]


def _memory(gpu: GpuReading, gate: Gate | None) -> list[Check]:
    """A failed row remap needs service; a pending repair takes effect at the next reset, and until
    then the bad memory is still in use: a gate drains the node for it."""
    rows = gpu.remapped_rows.value
    if rows and rows.failed:
        fix = "the GPU needs service (RMA); stop scheduling work on it"
        return [Check(f"{gpu.key}.memory", Status.FAIL, f"GPU {gpu.index}: a memory row remap failed", fix=fix)]
    if not (rows and rows.pending or gpu.retired_pages_pending.value):
        return []
    return [
        Check(
            f"{gpu.key}.memory",
            Status.FAIL if gate else Status.WARN,
            f"GPU {gpu.index}: memory repairs are pending (remapped rows or retired pages)",
            detail="they take effect at the next GPU reset; until then the bad memory is still in use",
            fix=("drain the node, then " if gate else "when the GPU is idle: ")
            + f"`sudo nvidia-smi -r -i {gpu.index}` or reboot",
        )
    ]


def _clocks(gpu: GpuReading, gate: Gate | None) -> list[Check]:
    """A power cap alone is the card's own setting, not a fault; a hardware or thermal slowdown or a
    power brake holds the GPU back: a gate fails it."""
    slow = [r for r in (gpu.clock_slowdowns.value or []) if "power cap" not in r]
    if not slow:
        return []
    held = gate is not None and any(r in HELD_BACK for r in slow)
    return [
        Check(
            f"{gpu.key}.clocks",
            Status.FAIL if held else Status.WARN,
            f"GPU {gpu.index} is {'held back' if held else 'slowed down'}: {', '.join(slow)}",
            detail=f"temperature {gpu.temperature_c.value} C (slowdown at {gpu.slowdown_temperature_c.value} C), "
            f"power {gpu.power_draw_w.value} W",
            fix="check cooling, airflow and power delivery (`nvidia-smi -q -d PERFORMANCE`)",
        )
    ]


def _compute_mode(gpu: GpuReading) -> list[Check]:
    if gpu.compute_mode.value != "Prohibited":
        return []
    return [
        Check(
            f"{gpu.key}.compute_mode",
            Status.FAIL,
            f"GPU {gpu.index} is in Prohibited compute mode: no CUDA context can be created on it",
            fix=f"sudo nvidia-smi -i {gpu.index} -c DEFAULT",
        )
    ]


def _pcie(gpu: GpuReading) -> list[Check]:
    width, width_max = gpu.pcie_width.value, gpu.pcie_width_max.value
    gen, gen_max = gpu.pcie_generation.value, gpu.pcie_generation_max.value
    if None in (width, width_max, gen, gen_max) or width_max <= 1 and width <= 1:
        return []  # not reported, or a part with no PCIe data link to speak of (a GH200's C2C: x1)
    if width >= width_max and gen >= gen_max:
        return []
    return [
        Check(
            f"{gpu.key}.pcie",
            Status.WARN,
            f"GPU {gpu.index}: PCIe link at gen {gen} of {gen_max}, x{width} of x{width_max} at idle",
            detail="an idle GPU may slow and narrow its link to save power (an idle L4 read gen 1 of 4, x8 of "
            "x16); check's stress window reads it again under load, and this turns ok or fails there",
            fix="if the stress window did not run on it: `nvidia-smi -q -d PCIE` while a job runs",
        )
    ]


def _temperature(gpu: GpuReading, margin: float) -> list[Check]:
    temp, slowdown = gpu.temperature_c.value, gpu.slowdown_temperature_c.value
    if temp is None or slowdown is None or temp < slowdown - margin:
        return []
    return [
        Check(
            f"{gpu.key}.temperature",
            Status.FAIL if temp >= slowdown else Status.WARN,
            f"GPU {gpu.index} at {temp} C, {slowdown - temp} C under its slowdown threshold ({slowdown} C)",
            fix="check cooling and airflow",
        )
    ]


def _unreadable(gpu: GpuReading, gate: Gate) -> list[Check]:
    """Fail closed: a field NVML could not read (an error, not 'not supported') is never a pass."""
    errors = [f"{label}: {field.note}" for label, field in gpu.unreadable()]
    if not errors:
        return []
    return [
        Check(
            f"{gpu.key}.nvml",
            Status.FAIL if gate.strict else Status.WARN,
            f"GPU {gpu.index}: NVML could not read {len(errors)} field(s)",
            detail="; ".join(errors),
            fix="run `nvidia-smi -q`; an NVML error mid-run often precedes a lost GPU (check `dmesg` for Xid)",
        )
    ]


def _persistence(gpu: GpuReading) -> list[Check]:
    if gpu.persistence_mode.value is not False:
        return []
    return [
        Check(
            f"{gpu.key}.persistence",
            Status.WARN,
            f"GPU {gpu.index}: persistence mode is off: each new process waits while the driver sets the GPU up",
            fix=f"sudo nvidia-smi -i {gpu.index} -pm 1 (or run nvidia-persistenced)",
        )
    ]
