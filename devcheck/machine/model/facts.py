"""What each device is, for its peaks and for deciding whether a case fits in its memory."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from devcheck import numerics
from devcheck.engine.backend import cuda_index
from devcheck.machine.model import peaks
from devcheck.machine.probes import cpu
from devcheck.report import Status


@dataclass(frozen=True)
class DeviceFacts:
    name: str
    label: str  # "AMD EPYC (2 cores)" or "NVIDIA H100 80GB HBM3"
    free_bytes: int | None  # memory a case may allocate; None when unknown
    flops_peak: Any  # dtype -> Peak
    bandwidth_peak: peaks.Peak
    pcie_peak: peaks.Peak
    cache_bytes: int  # the last-level cache (CPU) or L2 (GPU): bandwidth arrays must be well beyond it
    problem: str = ""  # why the facts could not be read, when they could not
    mig: Any = None  # the MIG slice (devcheck.machine.probes.mig.Slice) a GPU device is, when it is one


def cpu_facts() -> DeviceFacts:
    info = cpu.cpu_info()
    cores = min(info.usable_cpus, info.physical_cores or info.usable_cpus)
    llc = _read_size("/sys/devices/system/cpu/cpu0/cache/index3/size") or 32 * 2**20
    return DeviceFacts(
        name="cpu",
        label=f"{info.model or 'CPU'} ({cores} cores)",
        free_bytes=cpu.memory_bytes()[1],
        flops_peak=lambda dtype: peaks.cpu_peak(
            dtype, cores, info.max_mhz, info.mhz_source, info.isa, info.vendor, info.family
        ),
        bandwidth_peak=peaks.Peak(None, "GB/s", "DRAM channels and speed are not exposed to software"),
        pcie_peak=peaks.Peak(None, "GB/s", "not a GPU"),
        cache_bytes=llc,
    )


def _read_size(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    return int(text[:-1]) * units[text[-1]] if text[-1:] in units else int(text) if text.isdigit() else None


def cuda_facts(index: int) -> DeviceFacts:
    """CUDA's device properties (compute capability, SMs, rated clocks, bus, FP64 ratio) through CuPy,
    with NVML's brand and PCIe link (and its clocks where CUDA gives none) for the same bus id."""

    from devcheck.machine.replay import seam

    cupy = seam.cupy()
    device = cupy.cuda.Device(index)
    props = cupy.cuda.runtime.getDeviceProperties(index)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    cc = device.compute_capability  # "90": the major digits, then one minor digit
    cc = (int(cc[:-1]), int(cc[-1]))
    # CUDA's clockRate is the rated boost clock the datasheets count with (deviceQuery: 2520 MHz on an
    # RTX 4090); NVML's max SM clock is the top of the V/F curve (3105 MHz there): a peak on it is 23% high.
    sm_mhz, mem_mhz = props.get("clockRate", 0) / 1000, props.get("memoryClockRate", 0) / 1000
    nv = _nvml_values(_nvml_gpu(device.pci_bus_id), {**MAXIMA, "geforce": _geforce})
    sm_mhz, mem_mhz = sm_mhz or nv.get("sm_max_mhz"), mem_mhz or nv.get("mem_max_mhz")
    geforce = nv.get("geforce", "GeForce" in name)  # NVML's brand; without NVML, CUDA's name says it too
    gpu = peaks.GpuModel(cc, props["multiProcessorCount"], sm_mhz, geforce)
    gpu = replace(gpu, fp64_ratio=props.get("singleToDoublePrecisionPerfRatio") or None)
    tf32 = numerics.tf32().on
    with device:
        free, _ = device.mem_info
    bandwidth = peaks.gpu_bandwidth_peak(mem_mhz, nv.get("bus_bits") or props.get("memoryBusWidth"))
    on_slice = _mig_slice(device.pci_bus_id)
    return DeviceFacts(
        name=f"cuda:{index}",
        label=name,
        free_bytes=free,
        flops_peak=lambda dtype: _of_slice(peaks.gpu_flops_peak(dtype, gpu, tf32), on_slice),
        bandwidth_peak=_slice_bandwidth(bandwidth, on_slice) if on_slice else bandwidth,
        pcie_peak=peaks.pcie_peak(nv.get("pcie_gen_max"), nv.get("pcie_width_max")),
        cache_bytes=props.get("l2CacheSize") or 64 * 2**20,
        mig=on_slice,
    )


def _mig_slice(bus_id: str) -> Any:
    """The MIG slice a CUDA device is, when its GPU is in MIG mode: CUDA gives a slice its parent's bus id
    and computes on one slice per process, the one CUDA_VISIBLE_DEVICES picks."""
    from devcheck.machine.probes import mig, nvml, visible
    from devcheck.machine.replay import seam

    driver = nvml.read_driver()
    slices = mig.slices(seam.nvml(), driver.gpus) if driver.loaded else []
    chosen = visible.resolve(os.environ, driver.gpus, slices).mig if slices else None
    if chosen is None or driver.gpus[chosen.parent_index].bus_id != nvml.normalize_bus_id(bus_id):
        return None
    return chosen


def _of_slice(peak: peaks.Peak, on_slice: Any) -> peaks.Peak:
    """A slice's peak is its own SMs' (CUDA's multiProcessorCount on a slice is the slice's): say whose."""
    if on_slice is None or peak.value is None:
        return peak
    return peaks.Peak(peak.value, peak.unit, f"{peak.basis} (the SMs of {on_slice.label})")


def _slice_bandwidth(peak: peaks.Peak, on_slice: Any) -> peaks.Peak:
    share = on_slice.memory_share
    if peak.value is None or share is None:
        return peaks.Peak(None, peak.unit, f"{on_slice.label}: its share of the GPU's memory is not known")
    basis = (
        f"{peak.basis} x {on_slice.memory_mib}/{on_slice.parent_memory_mib} MiB: {on_slice.label} has that "
        "share of the memory, and of its bandwidth (NVIDIA's MIG user guide: a memory slice brings its controllers)"
    )
    return peaks.Peak(peak.value * share, peak.unit, basis)


def _nvml_gpu(bus_id: str) -> tuple[Any, Any, Any] | None:
    """NVML's module, a reader and the GPU (handle, NVML index) on `bus_id` (CUDA's and NVML's numbering
    differ)."""
    from devcheck.machine.probes import nvml
    from devcheck.machine.replay import seam

    driver = nvml.read_driver()
    gpu = next((g for g in driver.gpus if g.bus_id == nvml.normalize_bus_id(bus_id)), None) if driver.loaded else None
    if gpu is None or gpu.lost:
        return None
    module = seam.nvml()
    return module, nvml.Reader(module), gpu


def _nvml_gpu_at(index: int) -> tuple[Any, Any, Any] | None:
    """_nvml_gpu for CUDA device `index`."""
    from devcheck.machine.replay import seam

    return _nvml_gpu(seam.cupy().cuda.Device(index).pci_bus_id)


def _nvml_values(found: tuple[Any, Any, Any] | None, reads: dict[str, Any]) -> dict:
    """NVML's answers for the GPU `found` (_nvml_gpu), one per name: `reads` maps a name to its function
    and arguments after the handle (an NVML_ name is the module's constant), or to a function of
    (module, reader, gpu); what NVML cannot say (or no GPU) is left out."""
    if found is None:
        return {}
    module, read, gpu = found

    def value(how: Any) -> Any:
        if callable(how):
            return how(module, read, gpu)
        args = [getattr(module, a) if str(a).startswith("NVML_") else a for a in how[1:]]
        return read(how[0], gpu.handle, *args).value

    values = {name: value(how) for name, how in reads.items()}
    return {name: v for name, v in values.items() if v is not None}


MAXIMA = {  # a GPU's maxima, which its peaks are built from
    "sm_max_mhz": ("nvmlDeviceGetMaxClockInfo", "NVML_CLOCK_SM"),
    "mem_max_mhz": ("nvmlDeviceGetMaxClockInfo", "NVML_CLOCK_MEM"),
    "bus_bits": ("nvmlDeviceGetMemoryBusWidth",),
    "pcie_gen_max": ("nvmlDeviceGetMaxPcieLinkGeneration",),
    "pcie_width_max": ("nvmlDeviceGetMaxPcieLinkWidth",),
}


def _geforce(module: Any, read: Any, gpu: Any) -> bool | None:
    from devcheck.machine.probes import nvml

    return read("nvmlDeviceGetBrand", gpu.handle, convert=lambda b: nvml.is_geforce(module, b)).value


def _held_back(module: Any, read: Any, gpu: Any) -> list[str] | None:
    from devcheck.machine.probes import nvml

    return nvml.slowdowns(read, gpu.handle).value


def under_load(index: int) -> dict:
    """What NVML says of a GPU while it works: SM clock now and at most, PCIe link now and at most,
    and the named reasons it is held back ({} when NVML cannot say)."""
    now = {
        "nvml_index": lambda module, read, gpu: gpu.nvml_index,  # to find what NVML said of it at idle
        "sm_mhz": ("nvmlDeviceGetClockInfo", "NVML_CLOCK_SM"),
        "pcie_gen": ("nvmlDeviceGetCurrPcieLinkGeneration",),
        "pcie_width": ("nvmlDeviceGetCurrPcieLinkWidth",),
        "held_back": _held_back,
    }
    maxima = {name: MAXIMA[name] for name in ("sm_max_mhz", "pcie_gen_max", "pcie_width_max")}
    return _nvml_values(_nvml_gpu_at(index), {**now, **maxima})


def gpu_sharers(index: int) -> tuple[int, list[tuple[int, int | None]], bool] | None:
    """Who else computes on GPU `index`, read while devcheck holds a context there (just after its
    matmul): (how many others, NVML's (pid, bytes or None) entries, whether devcheck's own pid is
    among them). In a container NVML lists host pids, so devcheck cannot find itself: one entry is
    then devcheck's. On a MIG slice, the slice's own processes: jobs on the GPU's other slices do not
    share its SMs. None when NVML cannot say."""
    found = _nvml_gpu_at(index)
    if found is None:
        return None
    _, read, gpu = found
    on_slice = _mig_slice(gpu.bus_id)
    handle = on_slice.handle if on_slice is not None else gpu.handle
    processes = read("nvmlDeviceGetComputeRunningProcesses", handle).value
    if processes is None:
        return None
    entries = [(p.pid, p.usedGpuMemory) for p in processes]
    ours = any(pid == os.getpid() for pid, _ in entries)
    return max(len(entries) - 1, 0), [e for e in entries if e[0] != os.getpid()], ours


def unknown_facts(name: str, why: str = "") -> DeviceFacts:
    """A device devcheck has no hardware model for (the test-suite's simulated GPU), or whose facts failed."""
    none = peaks.Peak(None, "", why or f"no hardware model for device {name!r}")
    return DeviceFacts(name, name, None, lambda dtype: none, none, none, 64 * 2**20, problem=why)


def facts_for(name: str) -> DeviceFacts:
    """The device's facts; a GPU whose facts cannot be read is reported on that GPU, and the run goes on."""
    if name == "cpu":
        return cpu_facts()
    if name.startswith("cuda:"):
        try:
            return cuda_facts(cuda_index(name))
        except Exception as e:
            return unknown_facts(name, f"reading {name}'s facts failed: {type(e).__name__}: {e}")
    return unknown_facts(name)


def link_facts(index: int) -> dict:
    """The few NVML facts a GPU-to-GPU peak needs, for CUDA device `index`: NVLink version (NVML's enum)
    and active link count, PCIe generation and width at most. A minimal per-GPU reader, to give way to
    links.read_interconnect (whose per-pair bonded link count also fits a direct NVLink mesh); a GPU NVML
    cannot read has none (its copies are then not judged)."""
    found = _nvml_gpu_at(index)
    if found is None:
        return {}
    module, read, gpu = found
    h, active, version = gpu.handle, 0, None
    for link in range(module.NVML_NVLINK_MAX_LINKS):
        state = read("nvmlDeviceGetNvLinkState", h, link)
        if state.status is not Status.OK:
            break  # NotSupported: no NVLink on this GPU; InvalidArgument: past its last link (as links.read_links)
        if state.value == module.NVML_FEATURE_ENABLED:
            active += 1
            version = version or read("nvmlDeviceGetNvLinkVersion", h, link).value
    return {
        "nvlink_version": version,
        "nvlink_links": active,
        "pcie_gen_max": read("nvmlDeviceGetMaxPcieLinkGeneration", h).value,
        "pcie_width_max": read("nvmlDeviceGetMaxPcieLinkWidth", h).value,
    }
