"""GPU health under load, read from NVML halfway through check's stress window: the clock and the PCIe
link against their maxima, and why the GPU was held back. At idle, devcheck/commands/gpu_health.py
judges each GPU (env's probes, in a gate's context)."""

from __future__ import annotations

from dataclasses import replace

from devcheck.commands.check.thresholds import Thresholds
from devcheck.commands.gpu_health import HELD_BACK, Gate
from devcheck.report import Check, Status


def gate(thresholds: Thresholds, strict: bool) -> Gate:
    """How check judges each GPU at idle: with its thresholds' temperature margin (per model, then CUDA
    device: cuda:N is CUDA's N, which NVML's index need not be), and --strict."""

    def margin(cuda: int | None, model: str) -> float:
        return thresholds.floor("temperature_margin_c", "" if cuda is None else f"cuda:{cuda}", model)

    return Gate(margin, strict)


def settle_idle_link(checks: list[Check], readings: dict) -> None:
    """An idle link below its maximum warned; read at full speed under load, it was saving power:
    the warning becomes ok (short under load, load_checks fails it, and the warning stays)."""
    keys = ("nvml_index", "pcie_gen", "pcie_gen_max", "pcie_width", "pcie_width_max")
    if "error" in readings or any(readings.get(k) is None for k in keys):
        return
    index, gen, gen_max, width, width_max = (readings[k] for k in keys)
    if gen < gen_max or width < width_max:
        return
    for i, c in enumerate(checks):
        if c.id == f"gpu{index}.pcie" and c.status is Status.WARN:
            settled = f"{c.summary}; gen {gen}, x{width} under load: it saves power at idle"
            checks[i] = replace(c, status=Status.OK, summary=settled, detail="", fix="")


def load_checks(name: str, readings: dict, replaying: bool) -> list[Check]:
    """What NVML said of a GPU halfway through the stress window: its clock against its maximum, its
    PCIe link against its maximum, and why it was held back, if it was."""
    tag = f"check.{name}.under_load"
    if replaying:
        return [
            Check(tag, Status.SKIP, f"{name}: under-load clocks not judged (replay: the recorded clocks are idle ones)")
        ]
    if "error" in readings or not readings:
        why = readings.get("error", "NVML gave no readings")
        return [Check(tag, Status.WARN, f"{name}: NVML could not be read under load: {why}", fix="run `devcheck env`")]
    clock, top = readings.get("sm_mhz"), readings.get("sm_max_mhz")
    held = [r for r in readings.get("held_back") or [] if r in HELD_BACK]
    gen, gen_max = readings.get("pcie_gen"), readings.get("pcie_gen_max")
    checks = []
    if held:
        checks.append(
            Check(
                tag,
                Status.FAIL,
                f"{name} was held back under load: {', '.join(held)} ({clock} of {top} MHz)",
                fix="check cooling and power delivery (`nvidia-smi -q -d PERFORMANCE`)",
            )
        )
    elif clock and top and clock < 0.7 * top:
        checks.append(
            Check(
                tag,
                Status.WARN,
                f"{name} ran at {clock} of {top} MHz under load",
                detail=f"slowdown reasons: {', '.join(readings.get('held_back') or []) or 'none reported'}",
                fix="check application clocks and power limits (`nvidia-smi -q -d CLOCK,POWER`)",
            )
        )
    width, width_max = readings.get("pcie_width"), readings.get("pcie_width_max")
    if gen and gen_max and gen < gen_max or width and width_max and width < width_max:
        checks.append(
            Check(
                f"{tag}.pcie",
                Status.FAIL,
                f"{name}: PCIe link at gen {gen} of {gen_max}"
                + (f", x{width} of x{width_max}" if width and width_max else "")
                + " under load",
                detail="host<->device copies run at a fraction of their speed",
                fix="reseat the card or check the riser, the slot and its BIOS settings; `nvidia-smi -q -d PCIE`",
            )
        )
    return checks or [
        Check(tag, Status.OK, f"{name} under load: {clock} of {top} MHz, PCIe gen {gen} of {gen_max}, x{width or '?'}")
    ]
