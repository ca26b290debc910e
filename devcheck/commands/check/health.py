"""GPU health for a node gate, read from NVML (through `devcheck env`'s probes), not inferred from
speed: the PCIe link against what the card and slot support, slowdowns by name, memory errors and
pending repairs, modes, temperature against the slowdown threshold, and NVML itself failing."""

from __future__ import annotations

from dataclasses import replace

from devcheck.commands.check.thresholds import Thresholds
from devcheck.report import Check, Field, Report, Section, Status

HELD_BACK = ("hardware slowdown", "software thermal slowdown", "hardware thermal slowdown", "power brake")


def gpu_sections(report: Report) -> list[Section]:
    return [s for s in report.sections if s.group == "gpus"]


def health_checks(env: Report, thresholds: Thresholds, strict: bool) -> list[Check]:
    """Checks beyond env's own (which check keeps as they are): one set per GPU NVML lists."""
    checks = []
    for section in gpu_sections(env):
        f = section.fields
        if "state" in f:  # a lost GPU: env's gpuN.lost says so
            continue
        index, model = f["NVML index"].value, f["name"].value or "unknown GPU"
        tag = f"check.gpu{index}"
        checks += _pcie(tag, index, f)
        checks += _temperature(tag, index, f, thresholds.floor("temperature_margin_c", f"cuda:{index}", model))
        checks += _memory_repairs(tag, index, f)
        checks += _unreadable(tag, index, f, strict)
        if f.get("persistence mode") and f["persistence mode"].value == "off":
            checks.append(
                Check(
                    f"{tag}.persistence",
                    Status.WARN,
                    f"GPU {index}: persistence mode is off: each new process waits while the driver sets the GPU up",
                    fix=f"sudo nvidia-smi -i {index} -pm 1 (or run nvidia-persistenced)",
                )
            )
    return checks


def _value(f: dict[str, Field], name: str):
    field = f.get(name)
    return field.value if field is not None and field.status is Status.OK else None


def _pcie(tag: str, index: int, f: dict[str, Field]) -> list[Check]:
    width, width_max = _value(f, "PCIe width"), _value(f, "PCIe width max")
    gen, gen_max = _value(f, "PCIe generation"), _value(f, "PCIe generation max")
    if None in (width, width_max, gen, gen_max) or width_max <= 1 and width <= 1:
        return []  # not reported, or a part with no PCIe data link to speak of (a GH200's C2C: x1)
    if width < width_max or gen < gen_max:
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
    return []


def _temperature(tag: str, index: int, f: dict[str, Field], margin: float) -> list[Check]:
    temp, slowdown = _value(f, "temperature C"), _value(f, "slowdown temperature C")
    slow = [r for r in (_value(f, "clock slowdowns") or []) if r in HELD_BACK]
    checks = []
    if slow:
        checks.append(
            Check(
                f"{tag}.slowdown",
                Status.FAIL,
                f"GPU {index} is held back: {', '.join(slow)}",
                detail=f"temperature {temp} C, slowdown at {slowdown} C",
                fix="check cooling, airflow and power delivery (`nvidia-smi -q -d PERFORMANCE`)",
            )
        )
    if temp is not None and slowdown is not None and temp >= slowdown - margin:
        checks.append(
            Check(
                f"{tag}.temperature",
                Status.FAIL if temp >= slowdown else Status.WARN,
                f"GPU {index} at {temp} C, {slowdown - temp} C under its slowdown threshold ({slowdown} C)",
                fix="check cooling and airflow",
            )
        )
    return checks


def _memory_repairs(tag: str, index: int, f: dict[str, Field]) -> list[Check]:
    rows = _value(f, "remapped rows") or {}
    if rows.get("pending") or _value(f, "retired pages pending"):
        return [
            Check(
                f"{tag}.repairs",
                Status.FAIL,
                f"GPU {index}: memory repairs are pending (remapped rows or retired pages)",
                detail="they take effect at the next GPU reset; until then the bad memory is still in use",
                fix=f"drain the node, then `sudo nvidia-smi -r -i {index}` or reboot",
            )
        ]
    return []


def _unreadable(tag: str, index: int, f: dict[str, Field], strict: bool) -> list[Check]:
    """Fail closed: a field NVML could not read (an error, not 'not supported') is never a pass."""
    errors = [f"{name}: {field.note}" for name, field in f.items() if field.status is Status.ERROR]
    if not errors:
        return []
    return [
        Check(
            f"{tag}.nvml",
            Status.FAIL if strict else Status.WARN,
            f"GPU {index}: NVML could not read {len(errors)} field(s)",
            detail="; ".join(errors),
            fix="run `nvidia-smi -q`; an NVML error mid-run often precedes a lost GPU (check `dmesg` for Xid)",
        )
    ]


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
        if c.id == f"check.gpu{index}.pcie" and c.status is Status.WARN:
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
