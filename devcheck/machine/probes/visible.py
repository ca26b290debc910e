"""Which physical GPUs CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER select, by UUID and bus id.

CUDA numbers GPUs fastest-first unless CUDA_DEVICE_ORDER=PCI_BUS_ID, while NVML and nvidia-smi
number them by bus id, so on a mixed machine "GPU 0" means two different cards. CUDA also stops
reading the list at the first entry it cannot resolve, silently hiding the rest. On a GPU in MIG
mode CUDA sees a MIG slice, never the whole GPU, and only one slice per process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from devcheck.machine.probes.mig import Slice, selected_check
from devcheck.machine.probes.nvml import Gpu
from devcheck.report import Check, Field, Findings, Section, Status


@dataclass
class CudaOrder:
    """Which GPUs CUDA sees, in CUDA's order, as CUDA_VISIBLE_DEVICES selects them (the devices a command
    computes on are model/devices.py's Selection)."""

    nvml_indices: list[int] = field(default_factory=list)  # position = CUDA index
    checks: list[Check] = field(default_factory=list)
    certain: bool = True  # False when CUDA's fastest-first order may differ from NVML's
    mig: Slice | None = None  # the MIG slice CUDA computes on (then cuda:0, on GPU nvml_indices[0])


def resolve(environ: Mapping[str, str], gpus: list[Gpu], slices: list[Slice] | None = None) -> CudaOrder:
    raw, order = environ.get("CUDA_VISIBLE_DEVICES"), environ.get("CUDA_DEVICE_ORDER", "FASTEST_FIRST")
    on_slice = _mig_selection(raw, gpus, slices or [])
    if on_slice is not None:
        return on_slice
    mixed = len({g.name for g in gpus}) > 1
    sel = CudaOrder(certain=order == "PCI_BUS_ID" or not mixed)
    if raw is None:
        sel.nvml_indices = [g.nvml_index for g in gpus]
    else:
        for token in (t.strip() for t in raw.split(",")):
            index = _lookup(token, gpus)
            if index is None:
                if token not in ("", "-1"):  # the usual ways of hiding every GPU on purpose
                    sel.checks.append(
                        Check(
                            "visible.invalid",
                            Status.WARN,
                            f"CUDA_VISIBLE_DEVICES={raw!r}: entry {token!r} matches no GPU, "
                            "so CUDA ignores it and every entry after it",
                            fix=f"use indices 0..{len(gpus) - 1}, GPU UUIDs or MIG device UUIDs (`nvidia-smi -L`)",
                        )
                    )
                break
            if index in sel.nvml_indices:
                sel.checks.append(
                    Check(
                        "visible.duplicate",
                        Status.FAIL,
                        f"CUDA_VISIBLE_DEVICES={raw!r} names GPU {index} twice: CUDA then exposes no GPU at all",
                        detail="CUDA answers cudaErrorInvalidDevice: invalid device ordinal",
                        fix="list each GPU once",
                    )
                )
                sel.nvml_indices = []
                return sel
            sel.nvml_indices.append(index)
    if gpus and not sel.nvml_indices:
        sel.checks.append(
            Check(
                "visible.none",
                Status.WARN,
                f"CUDA_VISIBLE_DEVICES={raw!r} hides every GPU",
                fix="unset CUDA_VISIBLE_DEVICES, or set it to the GPUs you want (e.g. 0)",
            )
        )
    if not sel.certain and raw is not None and any(t.strip().isdigit() for t in raw.split(",")):
        sel.checks.append(
            Check(
                "visible.order",
                Status.WARN,
                "CUDA_VISIBLE_DEVICES uses indices on a machine with different GPU models",
                detail="CUDA numbers GPUs fastest-first, nvidia-smi by PCI bus: "
                "the same index can mean two different cards",
                fix="export CUDA_DEVICE_ORDER=PCI_BUS_ID, or use GPU UUIDs",
            )
        )
    return sel


def _lookup(token: str, gpus: list[Gpu]) -> int | None:
    if token.isdigit():
        return int(token) if int(token) < len(gpus) else None
    if token.startswith("GPU-"):
        matches = [g.nvml_index for g in gpus if g.uuid and g.uuid.startswith(token)]
        return matches[0] if len(matches) == 1 else None
    return None


def _mig_selection(raw: str | None, gpus: list[Gpu], slices: list[Slice]) -> CudaOrder | None:
    """CUDA's rule on a machine with MIG slices: it enumerates a single MIG device, the first the list
    names (by its MIG UUID, its R450/R460 spelling, or its parent GPU's index or UUID), or the first
    there is when the list is unset, and then no GPU without MIG (NVIDIA's MIG user guide, CUDA device
    enumeration). None when CUDA sees no slice: the list names only GPUs without MIG."""
    if not slices:
        return None
    tokens = [t.strip() for t in raw.split(",")] if raw is not None else None
    named = list(slices) if tokens is None else []
    for token in tokens or []:
        hits = [s for s in slices if s.named_by(token)]
        index = None if hits else _lookup(token, gpus)
        if not hits and index is None:
            break  # CUDA stops reading at an entry it cannot resolve
        named += hits or [s for s in slices if s.parent_index == index]
    if not named:
        return None
    chosen = named[0]
    sel = CudaOrder([chosen.parent_index], [selected_check(chosen)], mig=chosen)
    if tokens is not None and len([t for t in tokens if t]) > 1:
        sel.checks.append(
            Check(
                "visible.mig_single",
                Status.WARN,
                f"CUDA_VISIBLE_DEVICES={raw!r} names several devices, but CUDA computes on one MIG device per "
                f"process: only {chosen.uuid or chosen.label} is visible",
                detail="CUDA enumerates a single MIG device, and no GPU without MIG once it has one",
                fix="give each process one MIG device (CUDA_VISIBLE_DEVICES=MIG-<uuid>, from `nvidia-smi -L`)",
            )
        )
    return sel


def findings(
    environ: Mapping[str, str], gpus: list[Gpu], sel: CudaOrder, cuda_bus_ids: dict[int, str] | None
) -> Findings:
    """The selection as a section; CuPy's own answer (bus ids per CUDA index, or none) wins when it has one."""
    by_bus = {g.bus_id: g for g in gpus}
    if cuda_bus_ids is not None:
        chosen = [by_bus.get(bus) for bus in cuda_bus_ids.values()]
        source = "CUDA runtime (CuPy Device.pci_bus_id) matched to NVML bus ids"
    else:
        chosen = [gpus[i] for i in sel.nvml_indices]
        source = "CUDA_VISIBLE_DEVICES resolved by devcheck against NVML" + (
            "" if sel.certain else " (order uncertain: mixed GPU models)"
        )
    lines = [_line(i, g, sel.mig) for i, g in enumerate(chosen)]
    fields = {
        "CUDA_VISIBLE_DEVICES": Field(environ.get("CUDA_VISIBLE_DEVICES", "unset (all GPUs)"), "os.environ"),
        "CUDA_DEVICE_ORDER": Field(environ.get("CUDA_DEVICE_ORDER", "unset (FASTEST_FIRST)"), "os.environ"),
        "selected": Field(lines, source),
    }
    return Findings([Section("visible", "CUDA device selection", fields)], sel.checks)


def _line(i: int, gpu: Gpu | None, on_slice: Slice | None) -> str:
    if gpu is None:
        return f"cuda:{i} = ?"
    if on_slice is not None and on_slice.parent_index == gpu.nvml_index:
        return f"cuda:{i} = {on_slice.label} ({on_slice.uuid}, {gpu.bus_id})"
    return f"cuda:{i} = GPU {gpu.nvml_index} ({gpu.uuid}, {gpu.bus_id})"


def cuda_index_of(nvml_index: int, gpus: list[Gpu], sel: CudaOrder, cuda_bus_ids: dict[int, str] | None) -> Field:
    index = _cuda_index_of(nvml_index, gpus, sel, cuda_bus_ids)
    if sel.mig is not None and sel.mig.parent_index == nvml_index and index.value is not None:
        return Field(index.value, index.source, index.status, f"through its MIG slice {sel.mig.profile or '?'}")
    return index


def _cuda_index_of(nvml_index: int, gpus: list[Gpu], sel: CudaOrder, cuda_bus_ids: dict[int, str] | None) -> Field:
    if cuda_bus_ids is not None:
        bus = gpus[nvml_index].bus_id
        hits = [i for i, b in cuda_bus_ids.items() if b == bus]
        return Field(hits[0] if hits else None, "CUDA runtime (CuPy)", note="" if hits else "not visible to CUDA")
    if nvml_index in sel.nvml_indices:
        return Field(
            sel.nvml_indices.index(nvml_index),
            "CUDA_VISIBLE_DEVICES (resolved by devcheck)",
            note="" if sel.certain else "order uncertain",
        )
    return Field(None, "CUDA_VISIBLE_DEVICES", Status.NA, "hidden from CUDA")
