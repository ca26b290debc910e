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

from devcheck.report import Check, Field, Status

HELD_BACK = ("hardware slowdown", "software thermal slowdown", "hardware thermal slowdown", "power brake")


@dataclass(frozen=True)
class Gate:
    """check's context: the temperature margin for a GPU (from its CUDA index, None where CUDA does not
    see it, and its model: check's thresholds, which name devices as CUDA does), and --strict (a field
    NVML could not read fails)."""

    margin_c: Callable[[int | None, str], float]
    strict: bool = False


def judge(index: int, f: dict[str, Field], gate: Gate | None = None) -> list[Check]:
    """The checks of one GPU's NVML fields (env's section of it: a field NVML could not read has no
    value); `gate`: judged for a node gate."""
    tag = f"gpu{index}"
    checks = [*_ecc(tag, index, f), *_memory(tag, index, f, gate), *_clocks(tag, index, f, gate)]
    checks += _compute_mode(tag, index, f)
    if gate is not None:
        margin = gate.margin_c(f["CUDA index"].value, f["name"].value or "unknown GPU")
        checks += [*_pcie(tag, index, f), *_temperature(tag, index, f, margin), *_unreadable(tag, index, f, gate)]
        checks += _persistence(tag, index, f)
    return checks or [Check(f"{tag}.health", Status.OK, f"GPU {index}: no ECC, memory, clock or mode problem reported")]


def _ecc(tag: str, index: int, f: dict[str, Field]) -> list[Check]:
    ecc = f["ECC uncorrected errors (since boot)"].value
    if not ecc:
        return []
    return [
        Check(
            f"{tag}.ecc",
            Status.FAIL,
            f"GPU {index}: {ecc} uncorrected ECC errors since boot",
            detail="results computed on this GPU may be wrong",
            fix=f"drain the GPU, reset it (sudo nvidia-smi -r -i {index}), run `dcgmi diag -r 3`; RMA if it recurs",
        )
    ]


def _memory(tag: str, index: int, f: dict[str, Field], gate: Gate | None) -> list[Check]:
    """A failed row remap needs service; a pending repair takes effect at the next reset, and until
    then the bad memory is still in use: a gate drains the node for it."""
    rows = f["remapped rows"].value or {}
    if rows.get("failed"):
        fix = "the GPU needs service (RMA); stop scheduling work on it"
        return [Check(f"{tag}.memory", Status.FAIL, f"GPU {index}: a memory row remap failed", fix=fix)]
    if not (rows.get("pending") or f["retired pages pending"].value):
        return []
    return [
        Check(
            f"{tag}.memory",
            Status.FAIL if gate else Status.WARN,
            f"GPU {index}: memory repairs are pending (remapped rows or retired pages)",
            detail="they take effect at the next GPU reset; until then the bad memory is still in use",
            fix=("drain the node, then " if gate else "when the GPU is idle: ")
            + f"`sudo nvidia-smi -r -i {index}` or reboot",
        )
    ]


def _clocks(tag: str, index: int, f: dict[str, Field], gate: Gate | None) -> list[Check]:
    """A power cap alone is the card's own setting, not a fault; a hardware or thermal slowdown or a
    power brake holds the GPU back: a gate fails it."""
    slow = [r for r in (f["clock slowdowns"].value or []) if "power cap" not in r]
    if not slow:
        return []
    held = gate is not None and any(r in HELD_BACK for r in slow)
    return [
        Check(
            f"{tag}.clocks",
            Status.FAIL if held else Status.WARN,
            f"GPU {index} is {'held back' if held else 'slowed down'}: {', '.join(slow)}",
            detail=f"temperature {f['temperature C'].value} C (slowdown at {f['slowdown temperature C'].value} C), "
            f"power {f['power draw W'].value} W",
            fix="check cooling, airflow and power delivery (`nvidia-smi -q -d PERFORMANCE`)",
        )
    ]


def _compute_mode(tag: str, index: int, f: dict[str, Field]) -> list[Check]:
    if f["compute mode"].value != "Prohibited":
        return []
    return [
        Check(
            f"{tag}.compute_mode",
            Status.FAIL,
            f"GPU {index} is in Prohibited compute mode: no CUDA context can be created on it",
            fix=f"sudo nvidia-smi -i {index} -c DEFAULT",
        )
    ]


def _pcie(tag: str, index: int, f: dict[str, Field]) -> list[Check]:
    width, width_max = f["PCIe width"].value, f["PCIe width max"].value
    gen, gen_max = f["PCIe generation"].value, f["PCIe generation max"].value
    if None in (width, width_max, gen, gen_max) or width_max <= 1 and width <= 1:
        return []  # not reported, or a part with no PCIe data link to speak of (a GH200's C2C: x1)
    if width >= width_max and gen >= gen_max:
        return []
    return [
        Check(
            f"{tag}.pcie",
            Status.WARN,
            f"GPU {index}: PCIe link at gen {gen} of {gen_max}, x{width} of x{width_max} at idle",
            detail="an idle GPU may slow and narrow its link to save power (an idle L4 read gen 1 of 4, x8 of "
            "x16); check's stress window reads it again under load, and this turns ok or fails there",
            fix="if the stress window did not run on it: `nvidia-smi -q -d PCIE` while a job runs",
        )
    ]


def _temperature(tag: str, index: int, f: dict[str, Field], margin: float) -> list[Check]:
    temp, slowdown = f["temperature C"].value, f["slowdown temperature C"].value
    if temp is None or slowdown is None or temp < slowdown - margin:
        return []
    return [
        Check(
            f"{tag}.temperature",
            Status.FAIL if temp >= slowdown else Status.WARN,
            f"GPU {index} at {temp} C, {slowdown - temp} C under its slowdown threshold ({slowdown} C)",
            fix="check cooling and airflow",
        )
    ]


def _unreadable(tag: str, index: int, f: dict[str, Field], gate: Gate) -> list[Check]:
    """Fail closed: a field NVML could not read (an error, not 'not supported') is never a pass."""
    errors = [f"{name}: {field.note}" for name, field in f.items() if field.status is Status.ERROR]
    if not errors:
        return []
    return [
        Check(
            f"{tag}.nvml",
            Status.FAIL if gate.strict else Status.WARN,
            f"GPU {index}: NVML could not read {len(errors)} field(s)",
            detail="; ".join(errors),
            fix="run `nvidia-smi -q`; an NVML error mid-run often precedes a lost GPU (check `dmesg` for Xid)",
        )
    ]


def _persistence(tag: str, index: int, f: dict[str, Field]) -> list[Check]:
    if f["persistence mode"].value != "off":
        return []
    return [
        Check(
            f"{tag}.persistence",
            Status.WARN,
            f"GPU {index}: persistence mode is off: each new process waits while the driver sets the GPU up",
            fix=f"sudo nvidia-smi -i {index} -pm 1 (or run nvidia-persistenced)",
        )
    ]
