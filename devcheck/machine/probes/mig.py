"""MIG slices: a GPU in MIG mode is cut into instances, and CUDA computes on one of them, never on the whole.

On an A100 or H100 shared through MIG (Kubernetes' GPU Operator, Slurm GRES) a job sees one CUDA
device with the slice's SMs and memory, named `MIG-<uuid>` in CUDA_VISIBLE_DEVICES (drivers from
R470; R450 and R460 spell it `MIG-GPU-<uuid>/<gpu instance>/<compute instance>`). NVML still lists
the parent GPU, which holds the health a slice shares (ECC, clocks, temperature, the PCIe link), and
reaches the slice through the parent's MIG device handles. This maps one to the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from devcheck.machine.probes.nvml import Gpu, GpuLost, Reader, _text
from devcheck.report import Check, Field, Findings, Section, Status

MIB = 1024 * 1024


@dataclass(frozen=True)
class Slice:
    """One MIG device (a compute instance inside a GPU instance) and the GPU it is cut from."""

    parent_index: int  # NVML's index of the whole GPU
    index: int  # NVML's MIG device index under that GPU
    uuid: str | None  # "MIG-..." as NVML gives it
    name: str | None  # NVML's, e.g. "NVIDIA A100-SXM4-40GB MIG 3g.20gb"
    parent_name: str | None
    parent_uuid: str | None
    gpu_instance: int | None
    compute_instance: int | None
    sms: int | None
    memory_mib: int | None
    parent_memory_mib: int | None
    handle: Any = field(default=None, compare=False, repr=False)  # NVML's MIG device handle

    @property
    def profile(self) -> str | None:
        """The profile, e.g. 3g.20gb: NVML names a MIG device after its parent GPU and its profile."""
        return self.name.rsplit(" MIG ", 1)[1] if self.name and " MIG " in self.name else None

    @property
    def label(self) -> str:
        return f"MIG slice {self.profile or '?'} of GPU {self.parent_index} ({self.parent_name or 'unknown GPU'})"

    @property
    def memory_share(self) -> float | None:
        """The slice's part of the GPU's memory, and so of its memory bandwidth (each memory slice brings
        its own memory controllers: NVIDIA's MIG user guide, Terminology)."""
        if not self.memory_mib or not self.parent_memory_mib:
            return None
        return self.memory_mib / self.parent_memory_mib

    def named_by(self, token: str) -> bool:
        """Whether a CUDA_VISIBLE_DEVICES entry names this slice, in either spelling CUDA accepts."""
        if self.uuid and token == self.uuid:
            return True
        uuid, _, ids = token.removeprefix("MIG-").partition("/")
        return (
            token.startswith("MIG-GPU-")
            and uuid == self.parent_uuid
            and ids == f"{self.gpu_instance}/{self.compute_instance}"
        )


def slices(nvml: ModuleType | None, gpus: list[Gpu]) -> list[Slice]:
    """Every MIG device of every GPU in MIG mode, in NVML's order (GPU, then MIG index)."""
    return [s for gpu in gpus for s in slices_of(nvml, gpu)] if nvml is not None else []


def slices_of(nvml: ModuleType, gpu: Gpu) -> list[Slice]:
    if gpu.lost or gpu.error or gpu.handle is None:
        return []
    read, h = Reader(nvml), gpu.handle
    try:
        mode = read("nvmlDeviceGetMigMode", h)
        if mode.status is not Status.OK or not mode.value[0]:
            return []
        slots = read("nvmlDeviceGetMaxMigDeviceCount", h).value or 0
        total = read("nvmlDeviceGetMemoryInfo", h, convert=lambda m: m.total // MIB).value
        found = []
        for k in range(slots):  # indices can be sparse: an empty one answers NVML_ERROR_NOT_FOUND
            handle = read("nvmlDeviceGetMigDeviceHandleByIndex", h, k)
            if handle.status is Status.OK:
                found.append(_slice(read, gpu, k, handle.value, total))
        return found
    except GpuLost:  # env's own GPU probe says so
        return []


def _slice(read: Reader, gpu: Gpu, k: int, h: Any, parent_mib: int | None) -> Slice:
    return Slice(
        parent_index=gpu.nvml_index,
        index=k,
        uuid=read("nvmlDeviceGetUUID", h, convert=_text).value,
        name=read("nvmlDeviceGetName", h, convert=_text).value,
        parent_name=gpu.name,
        parent_uuid=gpu.uuid,
        gpu_instance=read("nvmlDeviceGetGpuInstanceId", h).value,
        compute_instance=read("nvmlDeviceGetComputeInstanceId", h).value,
        sms=read("nvmlDeviceGetAttributes", h, convert=lambda a: a.multiprocessorCount).value,
        memory_mib=read("nvmlDeviceGetMemoryInfo", h, convert=lambda m: m.total // MIB).value,
        parent_memory_mib=parent_mib,
        handle=h,
    )


def findings(s: Slice, cuda_index: Field) -> Findings:
    """The slice as env shows it: beside its parent GPU's section, never instead of it."""
    fields = {
        "parent GPU": Field(f"GPU {s.parent_index} ({s.parent_name}, {s.parent_uuid})", "NVML"),
        "MIG device index": Field(s.index, "NVML nvmlDeviceGetMigDeviceHandleByIndex"),
        "CUDA index": cuda_index,
        "UUID": Field(s.uuid, "NVML nvmlDeviceGetUUID"),
        "profile": Field(s.profile, "NVML nvmlDeviceGetName"),
        "GPU instance id": Field(s.gpu_instance, "NVML nvmlDeviceGetGpuInstanceId"),
        "compute instance id": Field(s.compute_instance, "NVML nvmlDeviceGetComputeInstanceId"),
        "SMs": Field(s.sms, "NVML nvmlDeviceGetAttributes"),
        "memory total MiB": Field(s.memory_mib, "NVML nvmlDeviceGetMemoryInfo"),
    }
    title = f"{s.label}, MIG device {s.index}"
    return Findings([Section(f"gpu{s.parent_index}.mig{s.index}", title, fields, group="mig")])


def selected_check(s: Slice) -> Check:
    """What `env` and `check` say when CUDA computes on a slice: which one, and whose health it has."""
    return Check(
        "visible.mig",
        Status.OK,
        f"cuda:0 is {s.label}: {s.sms or '?'} SMs, {s.memory_mib or '?'} MiB",
        detail=f"peaks come from the slice's own SMs; ECC, clocks and temperature are GPU {s.parent_index}'s; "
        "CUDA computes on one MIG device per process",
    )
