"""The NVIDIA driver and every GPU, read through NVML (nvidia-ml-py), never by parsing nvidia-smi.

NVML comes from the hardware seam (`devcheck.machine.replay.seam`), so a recording can answer instead of a
driver. Every per-GPU read is wrapped: a field the card does not support is n/a, not an error, and a
GPU that has fallen off the bus is reported as lost while the others are still read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from devcheck.machine.probes.nvml_init import LIBRARY_NOT_FOUND, init_failure
from devcheck.report import Check, Field, Section, Status, na

ARCHITECTURES = {
    2: "Kepler",
    3: "Maxwell",
    4: "Pascal",
    5: "Volta",
    6: "Turing",
    7: "Ampere",
    8: "Ada Lovelace",  # as nvidia-smi says it
    9: "Hopper",
    10: "Blackwell",
    13: "Rubin",
}
COMPUTE_MODES = {0: "Default", 1: "Exclusive_Thread", 2: "Prohibited", 3: "Exclusive_Process"}
_BRAND_WORDS = {"GEFORCE": "GeForce", "QUADRO": "Quadro", "TESLA": "Tesla", "TITAN": "Titan"}


def brand_name(nvml: ModuleType, code: int) -> str:
    """NVML's brand code in words, from nvidia-ml-py's own NVML_BRAND_* names (14 is NVIDIA, 15 GeForce RTX)."""
    names = [n for n in dir(nvml) if n.startswith("NVML_BRAND_") and n != "NVML_BRAND_COUNT"]
    name = min((n for n in names if getattr(nvml, n) == code), key=len, default=None)
    if name is None:
        return f"unknown ({code})"
    return " ".join(_BRAND_WORDS.get(w, w) for w in name.removeprefix("NVML_BRAND_").split("_"))


def is_geforce(nvml: ModuleType, code: int | None) -> bool:
    """Consumer boards, whose tensor cores run FP32-accumulate math at half rate."""
    return code in (getattr(nvml, "NVML_BRAND_GEFORCE", None), getattr(nvml, "NVML_BRAND_GEFORCE_RTX", None))


# Clock-event reasons that mean the GPU is being held back, not merely idle or at a set clock.
SLOWDOWNS = {
    0x4: "software power cap",
    0x8: "hardware slowdown",
    0x20: "software thermal slowdown",
    0x40: "hardware thermal slowdown",
    0x80: "power brake",
}


@dataclass
class Gpu:
    nvml_index: int
    handle: Any = None
    name: str | None = None
    uuid: str | None = None
    bus_id: str | None = None
    lost: bool = False
    error: str | None = None  # why NVML gave no handle to it
    cc: tuple[int, int] | None = None  # CUDA compute capability, as NVML reads it


@dataclass
class Driver:
    """What later probes need from NVML: is there a working driver, which CUDA it supports, which GPUs."""

    check: Check
    version: str | None = None
    cuda_version: int | None = None  # e.g. 12040 for CUDA 12.4
    gpus: list[Gpu] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        return self.check.status is Status.OK

    @property
    def cuda_major(self) -> int | None:
        return self.cuda_version // 1000 if self.cuda_version else None

    @property
    def oldest_cc(self) -> tuple[int, int] | None:
        """The lowest compute capability among the GPUs: the one a CuPy wheel must still compile for."""
        return min((g.cc for g in self.gpus if g.cc), default=None)


class GpuLost(Exception):
    pass


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def cuda_version_text(version: int | None) -> str | None:
    return f"{version // 1000}.{version % 1000 // 10}" if version else None


def normalize_bus_id(bus_id: str) -> str:
    """NVML says 00000000:3B:00.0, CUDA says 0000:3b:00.0: compare as domain:bus:device.function."""
    domain, _, rest = _text(bus_id).strip().rpartition(":")
    domain, _, bus = domain.rpartition(":") if domain.count(":") else ("0", "", domain)
    return f"{int(domain or '0', 16):04x}:{bus.lower()}:{rest.lower()}"


class Reader:
    """Calls one NVML function and turns its outcome into a Field (n/a, error, or the value)."""

    def __init__(self, nvml: ModuleType):
        self.nvml = nvml

    def __call__(self, fn_name: str, *args: Any, convert=lambda v: v) -> Field:
        source = f"NVML {fn_name}"
        fn = getattr(self.nvml, fn_name, None)
        if fn is None:
            return na(source, "not in this nvidia-ml-py version")
        try:
            return Field(convert(fn(*args)), source)
        except self.nvml.NVMLError as e:
            code = getattr(e, "value", None)
            if code == self.nvml.NVML_ERROR_GPU_IS_LOST:
                raise GpuLost(str(e)) from None
            if code == self.nvml.NVML_ERROR_NOT_SUPPORTED:
                return na(source, "not supported on this GPU")
            if code == self.nvml.NVML_ERROR_FUNCTION_NOT_FOUND:
                return na(source, "the driver is older than this NVML call")
            if code == self.nvml.NVML_ERROR_NO_PERMISSION:
                return na(source, "not permitted (needs root; in a container given a MIG device, NVML refuses it)")
            if code == getattr(self.nvml, "NVML_ERROR_DEPRECATED", None):
                return na(source, "deprecated: this driver no longer answers it")
            return Field(None, source, Status.ERROR, str(e))


def read_driver() -> Driver:
    """Initialise NVML and list the GPUs; tell apart no driver, driver not loaded, and mismatch."""
    from devcheck.machine.replay import seam

    missing = seam.nvml_library_missing()
    if missing:
        return Driver(init_failure(LIBRARY_NOT_FOUND, "dlopen", missing))
    try:
        nvml = seam.nvml()
    except ImportError as e:
        return Driver(
            Check(
                "nvml.driver",
                Status.ERROR,
                f"cannot import NVML bindings: {e}",
                fix="pip install --force-reinstall nvidia-ml-py",
            )
        )
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as e:
        return Driver(init_failure(getattr(e, "value", None), "nvmlInit", str(e)))
    read = Reader(nvml)
    version = read("nvmlSystemGetDriverVersion", convert=_text).value
    cuda = read("nvmlSystemGetCudaDriverVersion_v2").value or read("nvmlSystemGetCudaDriverVersion").value
    count = read("nvmlDeviceGetCount")
    if count.status is not Status.OK:
        return Driver(Check("nvml.driver", Status.ERROR, f"cannot count GPUs: {count.note}"), version, cuda)
    gpus = [_identify(read, i) for i in range(count.value)]
    summary = f"driver {version}, supports CUDA up to {cuda_version_text(cuda)}, {len(gpus)} GPU(s)"
    return Driver(Check("nvml.driver", Status.OK, summary), version, cuda, gpus)


def _identify(read: Reader, index: int) -> Gpu:
    gpu = Gpu(index)
    try:
        handle = read("nvmlDeviceGetHandleByIndex", index)
        gpu.handle, gpu.error = handle.value, None if handle.status is Status.OK else handle.note
        if gpu.error:
            return gpu
        gpu.name = read("nvmlDeviceGetName", gpu.handle, convert=_text).value
        gpu.uuid = read("nvmlDeviceGetUUID", gpu.handle, convert=_text).value
        gpu.bus_id = read("nvmlDeviceGetPciInfo", gpu.handle, convert=lambda p: normalize_bus_id(p.busId)).value
        gpu.cc = read("nvmlDeviceGetCudaComputeCapability", gpu.handle, convert=lambda c: (int(c[0]), int(c[1]))).value
    except GpuLost:
        gpu.lost = True
    return gpu


def system_section(nvml_driver: Driver, nvml: ModuleType | None) -> Section:
    src = "NVML"
    fields = {
        "driver": Field(nvml_driver.version, f"{src} nvmlSystemGetDriverVersion")
        if nvml_driver.version
        else na(src, nvml_driver.check.summary),
        "max CUDA supported": Field(
            cuda_version_text(nvml_driver.cuda_version), f"{src} nvmlSystemGetCudaDriverVersion"
        )
        if nvml_driver.cuda_version
        else na(src, "no driver"),
    }
    if nvml is not None and nvml_driver.loaded:
        fields["NVML version"] = Reader(nvml)("nvmlSystemGetNVMLVersion", convert=_text)
    fields["GPUs"] = (
        Field(len(nvml_driver.gpus), f"{src} nvmlDeviceGetCount") if nvml_driver.loaded else na(src, "no driver")
    )
    return Section("driver", "NVIDIA driver", fields)


def slowdowns(read: Reader, h: Any) -> Field:
    reasons = read("nvmlDeviceGetCurrentClocksEventReasons", h)
    if reasons.status is not Status.OK:  # drivers before 535 answer only the older name
        reasons = read("nvmlDeviceGetCurrentClocksThrottleReasons", h)
    if reasons.status is not Status.OK:
        return reasons
    return Field([name for bit, name in SLOWDOWNS.items() if reasons.value & bit], reasons.source)
