"""Recordings of real machines, and variants of them for the failures no machine here can produce.

Every stand-in in the suite is a replay of a recording (devcheck.machine.replay.seam.replay): values only
hardware gives come from `tests/fixtures/recordings/*.json`, recorded on real machines. A variant
changes named answers of a real recording and says so in its `synthetic` field; the values it puts
in come from a real source (NVML's own error codes, public `nvidia-smi -q` dumps and verbatim error
messages in tests/fixtures/public/, named in each variant).

It imports no pytest: benchmarks/step.py loads the H100's recording from here, outside any test run.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pynvml

from devcheck.machine.probes.nvml import normalize_bus_id
from devcheck.machine.replay.recording import Handle, Recording, encode, key_of, masked_uuid

FOLDER = Path(__file__).parent / "fixtures" / "recordings"
GPU0, GPU1 = Handle("gpu0"), Handle("gpu1")


def load(name: str) -> Recording:
    return Recording.load(FOLDER / f"{name}.json")


def nvml_error(code: int) -> dict:
    error = pynvml.NVMLError(code)
    return {"type": type(error).__name__, "value": code, "str": str(error)}


def _replace(calls: list[dict], fn: str, args: list, answer: dict) -> None:
    encoded = [encode(a) for a in args]
    key = key_of(fn, encoded)
    calls[:] = [c for c in calls if c["fn"] != fn or key_of(fn, c.get("args", [])) != key]
    calls.append({"fn": fn, "args": encoded, **answer})


def variant(
    base: Recording,
    why: str,
    nvml: dict[tuple, Any] | None = None,
    cupy: dict[tuple, Any] | None = None,
    faults: dict[str, Any] | None = None,
    rounding: dict[str, str] | None = None,
    packages: dict[str, str] | None = None,
) -> Recording:
    """A copy of `base` whose named calls answer otherwise: {(fn, *args): value or {"error": {...}}}."""
    out = copy.deepcopy(base)
    out.synthetic = "; ".join(x for x in (base.synthetic, why) if x)
    for calls, changes in ((out.nvml, nvml or {}), (out.cupy, cupy or {})):
        for (fn, *args), answer in changes.items():
            _replace(
                calls,
                fn,
                args,
                answer if isinstance(answer, dict) and "error" in answer else {"result": encode(answer)},
            )
    out.faults.update(faults or {})
    out.rounding.update(rounding or {})
    if packages is not None:
        out.packages = packages
    return out


def n_gpus(base: Recording, n: int, why: str = "", peer: bool = False) -> Recording:
    """The recorded GPU n times, GPU k with its own handle, NVML and CUDA index, UUID and bus id
    (device 6 + k on bus 0, as the recorded H100 sits at 00:06.0). `peer`: every pair can reach the
    other's memory (cudaDeviceCanAccessPeer 1), as on an NVLink H100 node (`nvidia-smi topo -p2p r`
    reads OK for all 56 pairs of a public 8x H100 dump); without it no pair can (0), as on a PCIe box
    whose `topo -p2p` reads NS (a public 2x RTX 2080 Ti dump), and the CuPy stand-in refuses an operand
    on another GPU, as CuPy does then."""
    out = copy.deepcopy(base)
    about = why or f"{n} GPUs copied from the recorded one" + (", peer access between all" if peer else "")
    out.synthetic = "; ".join(x for x in (base.synthetic, about) if x)
    mine = [json.dumps(c) for c in base.nvml if '"gpu0"' in json.dumps(c)]
    extra = []
    for k in range(1, n):
        for text in mine:
            call = json.loads(text.replace('"gpu0"', f'"gpu{k}"'))
            if call["fn"] == "nvmlDeviceGetHandleByIndex":
                call["args"] = [k]
            if call["fn"] == "nvmlDeviceGetUUID":
                call["result"] = f"GPU-5e1f0c2a-0000-4000-8000-{k + 1:012d}"
            if call["fn"] == "nvmlDeviceGetPciInfo":
                call["result"] = {**call["result"], "busId": f"00000000:00:{6 + k:02X}.0", "device": 6 + k}
            extra.append(call)
    past = [c for c in out.nvml if c["fn"] == "nvmlDeviceGetHandleByIndex" and c["args"] != [0]]
    out.nvml = (
        [c for c in out.nvml if c not in past] + extra + [{**c, "args": [n]} for c in past[:1]]
    )  # n: past the end
    _replace(out.nvml, "nvmlDeviceGetCount", [], {"result": n})
    if out.cupy is not None:
        for k in range(1, n):
            for call in [c for c in base.cupy if c.get("args") == [0]]:
                copied = {**copy.deepcopy(call), "args": [k]}
                if call["fn"] == "Device.pci_bus_id":
                    copied["result"] = f"0000:00:{6 + k:02x}.0"
                out.cupy.append(copied)
        _replace(out.cupy, "cuda.runtime.getDeviceCount", [], {"result": n})
        for i in range(n):
            for j in range(n):
                if i != j:
                    _replace(out.cupy, "cuda.runtime.deviceCanAccessPeer", [i, j], {"result": int(peer)})
    return out


def two_gpus(base: Recording, why: str = "") -> Recording:
    """The recorded GPU twice, the second with its own UUID and bus id (CUDA enumerates both)."""
    return n_gpus(base, 2, why or "a second GPU copied from the recorded one")


def h100(**changes: Any) -> Recording:
    base = load("h100-sxm")
    return variant(base, changes.pop("why"), **changes) if changes else base


def mig_slice(dump: str, k: int = 0) -> Recording:
    """A job's view of MIG device `k` of a public A100 MIG dump (`a100-sxm4-40gb-mig.xml`...): NVML as
    the dump's stand-in answers; CuPy as CUDA describes a MIG device: one device named and sized as the
    slice (NVML's name, SMs and memory for it, from the dump), on its parent's bus."""
    base = Recording.load(FOLDER / "public" / f"{dump}.json")
    nvml = {key_of(c["fn"], c["args"]): c.get("result") for c in base.nvml}
    mig, gpu = {"__handle__": f"gpu0/mig{k}"}, {"__handle__": "gpu0"}
    name = nvml[key_of("nvmlDeviceGetName", [mig])]
    sms = nvml[key_of("nvmlDeviceGetAttributes", [mig])]["multiprocessorCount"]
    memory = nvml[key_of("nvmlDeviceGetMemoryInfo", [mig])]
    pci = nvml[key_of("nvmlDeviceGetPciInfo", [gpu])]
    mem_mhz = nvml[key_of("nvmlDeviceGetMaxClockInfo", [gpu, pynvml.NVML_CLOCK_MEM])]
    a100 = next(m for m in json.loads((FOLDER.parent / "gpu_specs.json").read_text()) if m["name"] == "A100 SXM4 80GB")
    major, minor = (int(x) for x in a100["compute_capability"].split("."))
    shown = {"major": major, "minor": minor, "multiProcessorCount": sms, "totalGlobalMem": memory["total"]}
    shown |= {"clockRate": a100["boost_mhz"] * 1000, "memoryClockRate": mem_mhz * 1000}
    shown |= {"memoryBusWidth": a100["bus_width_bits"], "pciBusID": pci["bus"], "pciDeviceID": pci["device"]}
    shown |= {"pciDomainID": pci["domain"]}
    h100 = load("h100-sxm")
    props = next(c["result"] for c in h100.cupy if c["fn"] == "cuda.runtime.getDeviceProperties")
    attributes = next(c["result"] for c in h100.cupy if c["fn"] == "Device.attributes")
    as_attribute = {"ClockRate": "clockRate", "MemoryClockRate": "memoryClockRate", "PciBusId": "pciBusID"}
    as_attribute |= {"MultiProcessorCount": "multiProcessorCount", "GlobalMemoryBusWidth": "memoryBusWidth"}
    as_attribute |= {"PciDeviceId": "pciDeviceID", "PciDomainId": "pciDomainID"}
    as_attribute |= {"ComputeCapabilityMajor": "major", "ComputeCapabilityMinor": "minor"}
    cuda12 = load("cupy-no-driver")  # this VM's real cupy-cuda12x: CuPy for the dump's CUDA 12 driver
    out = variant(
        h100,
        f"MIG device {k} of the public dump {dump} as CUDA shows it: NVML from that dump's stand-in; CuPy "
        f"cupy-cuda12x 14.2.0 (runtime as in cupy-no-driver.json) on the dump's driver; one device named as "
        f"NVML names the slice, with its SMs and memory from the dump, on the GPU's bus; compute capability, "
        f"rated boost clock and bus width of the A100 from tests/fixtures/gpu_specs.json, memory clock from the "
        f"dump; its other properties the recorded H100's",
        cupy={
            ("cuda.runtime.runtimeGetVersion",): next(
                c["result"] for c in cuda12.cupy if c["fn"] == "cuda.runtime.runtimeGetVersion"
            ),
            ("cuda.runtime.driverGetVersion",): nvml[key_of("nvmlSystemGetCudaDriverVersion_v2", [])],
            ("cuda.runtime.getDeviceCount",): 1,
            ("cuda.runtime.getDeviceProperties", 0): props | shown | {"name": {"__bytes__": name}},
            ("Device.attributes", 0): attributes
            | {a: shown[p] for a, p in as_attribute.items() if a in attributes and p in shown},
            ("Device.compute_capability", 0): f"{major}{minor}",
            ("Device.pci_bus_id", 0): normalize_bus_id(pci["busId"]),
            ("Device.mem_info", 0): (memory["free"], memory["total"]),
        },
        packages={"cupy-cuda12x": "14.2.0", **base.packages},
    )
    out.about, out.nvml = base.about, base.nvml
    out.synthetic = f"{base.synthetic}; {out.synthetic.removeprefix(h100.synthetic).lstrip('; ')}"
    return out


def mig_uuid(k: int) -> str:
    """The masked UUID of MIG device k of GPU 0 in a stand-in (CUDA_VISIBLE_DEVICES=MIG-<uuid>)."""
    return masked_uuid(f"gpu0/mig{k}")
