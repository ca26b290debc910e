"""What each device is, for its peaks and for deciding whether a case fits in its memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devcheck.bench import peak
from devcheck.env import cpu


@dataclass(frozen=True)
class DeviceFacts:
    name: str
    label: str  # "AMD EPYC (2 cores)" or "NVIDIA H100 80GB HBM3"
    free_bytes: int | None  # memory a case may allocate; None when unknown
    flops_peak: Any  # dtype -> Peak
    bandwidth_peak: peak.Peak
    pcie_peak: peak.Peak
    cache_bytes: int  # the last-level cache (CPU) or L2 (GPU): bandwidth arrays must be well beyond it


def cpu_facts() -> DeviceFacts:
    info = cpu.cpu_info()
    cores = min(info.usable_cpus, info.physical_cores or info.usable_cpus)
    llc = _read_size("/sys/devices/system/cpu/cpu0/cache/index3/size") or 32 * 2**20
    return DeviceFacts(
        name="cpu",
        label=f"{info.model or 'CPU'} ({cores} cores)",
        free_bytes=cpu.memory_bytes()[1],
        flops_peak=lambda dtype: peak.cpu_peak(
            dtype, cores, info.max_mhz, info.mhz_source, info.isa, info.vendor, info.family
        ),
        bandwidth_peak=peak.Peak(None, "GB/s", "DRAM channels and speed are not exposed to software"),
        pcie_peak=peak.Peak(None, "GB/s", "not a GPU"),
        cache_bytes=llc,
    )


def _read_size(path: str) -> int | None:
    try:
        text = open(path).read().strip()
    except OSError:
        return None
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    return int(text[:-1]) * units[text[-1]] if text[-1:] in units else int(text) if text.isdigit() else None


def cuda_facts(cupy: Any, index: int, nvml_module: Any = None) -> DeviceFacts:
    """CuPy's device attributes, with NVML's max clocks and PCIe link where NVML answers."""
    import os

    device = cupy.cuda.Device(index)
    attrs = device.attributes
    name = cupy.cuda.runtime.getDeviceProperties(index)["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    cc = (attrs["ComputeCapabilityMajor"], attrs["ComputeCapabilityMinor"])
    sms = attrs["MultiProcessorCount"]
    sm_mhz, mem_mhz, bus = (
        attrs.get("ClockRate", 0) / 1000,
        attrs.get("MemoryClockRate", 0) / 1000,
        attrs.get("GlobalMemoryBusWidth"),
    )
    nv = _nvml_facts(nvml_module, device.pci_bus_id)
    sm_mhz, mem_mhz = nv.get("sm_mhz") or sm_mhz, nv.get("mem_mhz") or mem_mhz
    tf32 = os.environ.get("CUPY_TF32", "0") not in ("", "0")
    with device:
        free, _ = device.mem_info
    return DeviceFacts(
        name=f"cuda:{index}",
        label=name,
        free_bytes=free,
        flops_peak=lambda dtype: peak.gpu_flops_peak(dtype, cc, sms, sm_mhz, nv.get("brand", ""), tf32),
        bandwidth_peak=peak.gpu_bandwidth_peak(mem_mhz, nv.get("bus_bits") or bus),
        pcie_peak=peak.pcie_peak(nv.get("pcie_gen"), nv.get("pcie_width")),
        cache_bytes=attrs.get("L2CacheSize") or 64 * 2**20,
    )


def _nvml_facts(nvml_module: Any, bus_id: str) -> dict:
    from devcheck.env import nvml

    driver = nvml.read_driver(nvml_module)
    if not driver.loaded:
        return {}
    module = nvml_module or nvml.load()
    gpu = next((g for g in driver.gpus if g.bus_id == nvml.normalize_bus_id(bus_id)), None)
    if gpu is None or gpu.lost:
        return {}
    read, h = nvml.Reader(module), gpu.handle
    values = {
        "sm_mhz": read("nvmlDeviceGetMaxClockInfo", h, module.NVML_CLOCK_SM).value,
        "mem_mhz": read("nvmlDeviceGetMaxClockInfo", h, module.NVML_CLOCK_MEM).value,
        "bus_bits": read("nvmlDeviceGetMemoryBusWidth", h).value,
        "pcie_gen": read("nvmlDeviceGetMaxPcieLinkGeneration", h).value,
        "pcie_width": read("nvmlDeviceGetMaxPcieLinkWidth", h).value,
        "brand": read("nvmlDeviceGetBrand", h, convert=lambda b: nvml.BRANDS.get(b, "")).value or "",
    }
    return {k: v for k, v in values.items() if v is not None}


def unknown_facts(name: str) -> DeviceFacts:
    """A device devcheck has no hardware model for (the test-suite's simulated GPU)."""
    none = peak.Peak(None, "", f"no hardware model for device {name!r}")
    return DeviceFacts(name, name, None, lambda dtype: none, none, none, 64 * 2**20)


def facts_for(name: str) -> DeviceFacts:
    if name == "cpu":
        return cpu_facts()
    if name.startswith("cuda:"):
        import cupy

        return cuda_facts(cupy, int(name.split(":")[1]))
    return unknown_facts(name)
