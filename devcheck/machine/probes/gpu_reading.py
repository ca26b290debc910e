"""One GPU as NVML reads it: a typed record filled once, and the report's section of it derived apart.

The GPU-health policy (devcheck/commands/gpu_health.py) reads the record's attributes and the report
shows its labels, as gpustat's GPUStat keeps typed properties over one NVML query and renders them
elsewhere: a label can be reworded for people without a rule silently reading a field that is no longer
there, and a rule never compares against a string formatted for display.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from types import ModuleType
from typing import Any

from devcheck.machine.probes.nvml import (
    ARCHITECTURES,
    COMPUTE_MODES,
    Gpu,
    GpuLost,
    Reader,
    brand_name,
    slowdowns,
)
from devcheck.report import Check, Field, Findings, Section, Status, na


@dataclass(frozen=True)
class RemappedRows:
    """nvmlDeviceGetRemappedRows' answer: rows remapped for correctable and uncorrectable errors, and
    whether a remap waits for the next reset or failed."""

    correctable: int
    uncorrectable: int
    pending: bool
    failed: bool


@dataclass(frozen=True)
class GpuReading:
    """What NVML said of one GPU. Each attribute is a Field: where NVML answered, its value has the type
    annotated; where it did not, the value is None and the status and note say why (n/a: the card or
    driver does not offer it; error: NVML failed to read it). An attribute that is None was not read:
    every one past the identity on a GPU NVML lost (`state` says so), `mig_instances` off MIG mode."""

    nvml_index: Field[int]
    cuda_index: Field[int]  # CUDA's index of it, where CUDA sees it (CUDA_VISIBLE_DEVICES may reorder)
    name: Field[str]
    uuid: Field[str]
    bus_id: Field[str]
    brand: Field[str] | None = None
    compute_capability: Field[tuple[int, int]] | None = None
    architecture: Field[str] | None = None
    vbios_version: Field[str] | None = None  # one node's older VBIOS: compare's drift
    memory_total_mib: Field[int] | None = None
    memory_used_mib: Field[int] | None = None
    memory_free_mib: Field[int] | None = None
    memory_bus_width_bits: Field[int] | None = None
    utilization_percent: Field[int] | None = None
    temperature_c: Field[int] | None = None
    slowdown_temperature_c: Field[int] | None = None
    power_draw_w: Field[float] | None = None
    power_limit_w: Field[float] | None = None
    sm_clock_mhz: Field[int] | None = None
    sm_clock_max_mhz: Field[int] | None = None
    memory_clock_mhz: Field[int] | None = None
    memory_clock_max_mhz: Field[int] | None = None
    pcie_generation: Field[int] | None = None
    pcie_generation_max: Field[int] | None = None
    pcie_width: Field[int] | None = None
    pcie_width_max: Field[int] | None = None
    ecc_mode: Field[bool] | None = None
    ecc_uncorrected_since_boot: Field[int] | None = None
    retired_pages_pending: Field[bool] | None = None
    remapped_rows: Field[RemappedRows] | None = None
    persistence_mode: Field[bool] | None = None
    compute_mode: Field[str] | None = None  # as nvidia-smi names it: "Default", "Prohibited"...
    mig_mode: Field[bool] | None = None
    compute_processes: Field[int] | None = None
    clock_slowdowns: Field[list[str]] | None = None  # the reasons held back by (SLOWDOWNS' names)
    mig_instances: Field[int] | None = None
    state: Field[str] | None = None  # "lost" or "unreachable": NVML could not read the GPU at all

    @property
    def index(self) -> int:
        return self.nvml_index.value

    @property
    def key(self) -> str:
        """The GPU's name in the report: its section's key and its checks' prefix (NVML's index)."""
        return f"gpu{self.index}"

    def unreadable(self) -> list[tuple[str, Field]]:
        """The fields NVML failed to read (an error, not 'not supported'), each with its label, which is
        how people find it in the report."""
        fields = ((label, getattr(self, attr)) for attr, label in LABELS.items())
        return [(label, f) for label, f in fields if f is not None and f.status is Status.ERROR]


LABELS = {  # each attribute's name in the report, in the report's order (JSON: the label in snake_case)
    "nvml_index": "NVML index",
    "cuda_index": "CUDA index",
    "name": "name",
    "uuid": "UUID",
    "bus_id": "PCI bus id",
    "brand": "brand",
    "compute_capability": "compute capability",
    "architecture": "architecture",
    "vbios_version": "VBIOS version",
    "memory_total_mib": "memory total MiB",
    "memory_used_mib": "memory used MiB",
    "memory_free_mib": "memory free MiB",
    "memory_bus_width_bits": "memory bus width bits",
    "utilization_percent": "utilization %",
    "temperature_c": "temperature C",
    "slowdown_temperature_c": "slowdown temperature C",
    "power_draw_w": "power draw W",
    "power_limit_w": "power limit W",
    "sm_clock_mhz": "SM clock MHz",
    "sm_clock_max_mhz": "SM clock max MHz",
    "memory_clock_mhz": "memory clock MHz",
    "memory_clock_max_mhz": "memory clock max MHz",
    "pcie_generation": "PCIe generation",
    "pcie_generation_max": "PCIe generation max",
    "pcie_width": "PCIe width",
    "pcie_width_max": "PCIe width max",
    "ecc_mode": "ECC mode",
    "ecc_uncorrected_since_boot": "ECC uncorrected errors (since boot)",
    "retired_pages_pending": "retired pages pending",
    "remapped_rows": "remapped rows",
    "persistence_mode": "persistence mode",
    "compute_mode": "compute mode",
    "mig_mode": "MIG mode",
    "compute_processes": "compute processes",
    "clock_slowdowns": "clock slowdowns",
    "mig_instances": "MIG instances",
    "state": "state",
}


def _on_off(value: bool) -> str:
    return "on" if value else "off"


SHOWN: dict[str, Callable[[Any], Any]] = {  # how the report shows a typed value, where not as it is
    "compute_capability": lambda cc: f"{cc[0]}.{cc[1]}",
    "ecc_mode": _on_off,
    "persistence_mode": _on_off,
    "mig_mode": _on_off,
    "remapped_rows": asdict,
}


def section(reading: GpuReading) -> Section:
    """The one place a reading becomes labels and display forms (LABELS, SHOWN), so that what people read
    can change without a rule noticing, and each attribute read shows exactly once."""
    fields = {}
    for attr, label in LABELS.items():
        f = getattr(reading, attr)
        if f is not None:
            shown = SHOWN.get(attr)
            fields[label] = replace(f, value=shown(f.value)) if shown and f.status is Status.OK else f
    return Section(reading.key, f"GPU {reading.index}: {reading.name.value or 'unknown'}", fields, group="gpus")


def read(nvml: ModuleType, gpu: Gpu, cuda_index: Field) -> GpuReading:
    """Every fact nvidia-smi -q shows that matters for compute, read once; a GPU NVML lost has only its
    identity and `state`."""
    identity = {
        "nvml_index": Field(gpu.nvml_index, "NVML"),
        "cuda_index": cuda_index,
        "name": Field(gpu.name, "NVML nvmlDeviceGetName"),
        "uuid": Field(gpu.uuid, "NVML nvmlDeviceGetUUID"),
        "bus_id": Field(gpu.bus_id, "NVML nvmlDeviceGetPciInfo"),
    }
    if not (gpu.lost or gpu.error):
        try:
            return GpuReading(**identity, **_measures(Reader(nvml), nvml, gpu.handle))
        except GpuLost:  # it fell off the bus between being listed and being read
            pass
    return GpuReading(
        **identity, state=Field("unreachable" if gpu.error else "lost", "NVML", Status.FAIL, gpu.error or "")
    )


def findings(reading: GpuReading) -> Findings:
    """The reading's section, and a GPU NVML lost, which only this probe can tell; the rest is judged by
    devcheck/commands/gpu_health.py."""
    return Findings([section(reading)], [] if reading.state is None else [_gone(reading)])


def _gone(reading: GpuReading) -> Check:  # NVML lost it (Xid 79, "GPU is lost") or gave no handle ("Unknown Error")
    i = reading.index
    if reading.state.value == "unreachable":
        return Check(
            f"{reading.key}.unreachable",
            Status.FAIL,
            f"GPU {i}: NVML cannot get a handle to it ({reading.state.note})",
            detail="nvidia-smi says 'Unable to determine the device handle for GPU <bus id>: Unknown Error'",
            fix="check `dmesg | grep NVRM` for Xid errors; reseat the card or reboot; in a container only: restart it",
        )
    return Check(
        f"{reading.key}.lost",
        Status.FAIL,
        f"GPU {i} ({reading.bus_id.value or '?'}) is lost: it stopped answering the driver",
        detail="usually Xid 79 'fallen off the bus' in `dmesg`",
        fix=f"sudo nvidia-smi -r -i {i} or reboot; if it recurs, reseat the card or check power/cooling",
    )


def _measures(read: Reader, nvml: ModuleType, h: Any) -> dict[str, Field]:
    mib, watts = 1024 * 1024, 1000
    mem = read("nvmlDeviceGetMemoryInfo", h)
    memory = {
        f"memory_{part}_mib": Field(getattr(mem.value, part) // mib, mem.source) if mem.status is Status.OK else mem
        for part in ("total", "used", "free")
    }
    ecc = read("nvmlDeviceGetEccMode", h, convert=lambda m: bool(m[0]))
    fields = {
        "brand": read("nvmlDeviceGetBrand", h, convert=lambda b: brand_name(nvml, b)),
        "compute_capability": read("nvmlDeviceGetCudaComputeCapability", h, convert=lambda c: (int(c[0]), int(c[1]))),
        "architecture": read("nvmlDeviceGetArchitecture", h, convert=lambda a: ARCHITECTURES.get(a, f"unknown ({a})")),
        "vbios_version": read("nvmlDeviceGetVbiosVersion", h),
        **memory,
        "memory_bus_width_bits": read("nvmlDeviceGetMemoryBusWidth", h),
        "utilization_percent": read("nvmlDeviceGetUtilizationRates", h, convert=lambda u: u.gpu),
        "temperature_c": read("nvmlDeviceGetTemperature", h, nvml.NVML_TEMPERATURE_GPU),
        "slowdown_temperature_c": read(
            "nvmlDeviceGetTemperatureThreshold", h, nvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
        ),
        "power_draw_w": read("nvmlDeviceGetPowerUsage", h, convert=lambda p: round(p / watts, 1)),
        "power_limit_w": read("nvmlDeviceGetEnforcedPowerLimit", h, convert=lambda p: round(p / watts, 1)),
        "sm_clock_mhz": read("nvmlDeviceGetClockInfo", h, nvml.NVML_CLOCK_SM),
        "sm_clock_max_mhz": read("nvmlDeviceGetMaxClockInfo", h, nvml.NVML_CLOCK_SM),
        "memory_clock_mhz": read("nvmlDeviceGetClockInfo", h, nvml.NVML_CLOCK_MEM),
        "memory_clock_max_mhz": read("nvmlDeviceGetMaxClockInfo", h, nvml.NVML_CLOCK_MEM),
        "pcie_generation": read("nvmlDeviceGetCurrPcieLinkGeneration", h),
        "pcie_generation_max": read("nvmlDeviceGetMaxPcieLinkGeneration", h),
        "pcie_width": read("nvmlDeviceGetCurrPcieLinkWidth", h),
        "pcie_width_max": read("nvmlDeviceGetMaxPcieLinkWidth", h),
        "ecc_mode": ecc,
        "ecc_uncorrected_since_boot": read(
            "nvmlDeviceGetTotalEccErrors", h, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC
        )
        if ecc.value
        else na("NVML nvmlDeviceGetTotalEccErrors", "ECC is off or not supported"),
        "retired_pages_pending": read("nvmlDeviceGetRetiredPagesPendingStatus", h, convert=bool),
        "remapped_rows": read(
            "nvmlDeviceGetRemappedRows", h, convert=lambda r: RemappedRows(r[0], r[1], bool(r[2]), bool(r[3]))
        ),
        "persistence_mode": read("nvmlDeviceGetPersistenceMode", h, convert=bool),
        "compute_mode": read("nvmlDeviceGetComputeMode", h, convert=lambda m: COMPUTE_MODES.get(m, str(m))),
        "mig_mode": read("nvmlDeviceGetMigMode", h, convert=lambda m: bool(m[0])),
        "compute_processes": read("nvmlDeviceGetComputeRunningProcesses", h, convert=len),
        "clock_slowdowns": slowdowns(read, h),
    }
    if fields["mig_mode"].value:
        fields["mig_instances"] = _mig_count(read, h)
    return fields


def _mig_count(read: Reader, h: Any) -> Field:
    slots = read("nvmlDeviceGetMaxMigDeviceCount", h)
    if slots.status is not Status.OK:
        return slots
    found = sum(read("nvmlDeviceGetMigDeviceHandleByIndex", h, i).status is Status.OK for i in range(slots.value))
    return Field(
        found, "NVML nvmlDeviceGetMigDeviceHandleByIndex", note="CUDA sees these MIG instances, not the whole GPU"
    )
