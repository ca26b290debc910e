"""Recordings of real machines, and variants of them for the failures no machine here can produce.

Every stand-in in the suite is a replay of a recording (devcheck.machine.seam.replay): values only
hardware gives come from `tests/fixtures/recordings/*.json`, recorded on real machines. A variant
changes named answers of a real recording and says so in its `synthetic` field; the values it puts
in come from a real source (NVML's own error codes, public `nvidia-smi -q` dumps and verbatim error
messages in shared/fixtures/public/, named in each variant).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pynvml
import pytest

from devcheck.machine import seam
from devcheck.machine.recording import Handle, Recording, encode, key_of

FOLDER = Path(__file__).parent / "fixtures" / "recordings"
GPU0, GPU1 = Handle("gpu0"), Handle("gpu1")


def load(name: str) -> Recording:
    return Recording.load(FOLDER / f"{name}.json")


def nvml_error(code: int) -> dict:
    error = pynvml.NVMLError(code)
    return {"type": type(error).__name__, "value": code, "str": str(error)}


def _replace(calls: list[dict], fn: str, args: list, answer: dict) -> None:
    encoded = [encode(a) for a in args]
    calls[:] = [c for c in calls if key_of(c["fn"], c.get("args", [])) != key_of(fn, encoded)]
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


def two_gpus(base: Recording, why: str = "") -> Recording:
    """The recorded GPU twice, the second with its own UUID and bus id (CUDA enumerates both)."""
    return n_gpus(base, 2, why or "a second GPU copied from the recorded one")


def n_gpus(base: Recording, n: int, why: str = "") -> Recording:
    """The recorded GPU n times (a node of 8, say), each copy with its own NVML and CUDA index, UUID and
    bus id (PCI device 6 + k, after the recorded 00:06.0); every other answer is the recorded GPU's."""
    out = copy.deepcopy(base)
    why = why or f"{n - 1} more GPUs copied from the recorded one"
    out.synthetic = "; ".join(x for x in (base.synthetic, why) if x)
    for k in range(1, n):
        out.nvml = [c for c in out.nvml if not (c["fn"] == "nvmlDeviceGetHandleByIndex" and c["args"] == [k])]
        out.nvml += [_copied_call(call, k) for call in base.nvml if '"gpu0"' in json.dumps(call)]
        if out.cupy is not None:
            for call in [c for c in base.cupy if c.get("args") == [0]]:
                copied = {**copy.deepcopy(call), "args": [k]}
                if call["fn"] == "Device.pci_bus_id":
                    copied["result"] = f"0000:00:{6 + k:02x}.0"
                out.cupy.append(copied)
    _replace(out.nvml, "nvmlDeviceGetCount", [], {"result": n})
    if out.cupy is not None:
        _replace(out.cupy, "cuda.runtime.getDeviceCount", [], {"result": n})
    return out


def _copied_call(call: dict, k: int) -> dict:
    copied = json.loads(json.dumps(call).replace('"gpu0"', f'"gpu{k}"'))
    if copied["fn"] == "nvmlDeviceGetHandleByIndex":
        copied["args"] = [k]
    if copied["fn"] == "nvmlDeviceGetUUID":
        copied["result"] = f"GPU-5e1f0c2a-0000-4000-8000-{k + 1:012d}"
    if copied["fn"] == "nvmlDeviceGetPciInfo":
        copied["result"] = {**copied["result"], "busId": f"00000000:00:{6 + k:02X}.0", "device": 6 + k}
    return copied


def h100(**changes: Any) -> Recording:
    base = load("h100-sxm")
    return variant(base, changes.pop("why"), **changes) if changes else base


@pytest.fixture
def replay():
    """`with replay(recording):` inside a test: every NVML and CuPy question is answered by it."""
    return seam.replay
