"""Recordings: every question devcheck asked NVML and CuPy, with the answer or the error, as JSON.

`devcheck env --record FILE` writes one (the support bundle for a bug report); `DEVCHECK_REPLAY=FILE`
answers from one instead of the hardware, so every recording is a test fixture and a user's report
can be reproduced on any machine.

    {"format": "devcheck recording", "version": 1, "about": "...", "synthetic": "" or what is made up,
     "packages": {"cupy-cuda13x": "14.2.0", "nvidia-ml-py": "13.610.43"},
     "nvml": [{"fn": "nvmlDeviceGetBrand", "args": [{"__handle__": "gpu0"}], "result": 14}, ...],
     "cupy": [{"fn": "cuda.runtime.getDeviceCount", "args": [], "result": 1}, ...],
     "faults": {}}

Values keep their Python type: {"__bytes__": latin-1 text}, {"__tuple__": [...]}, {"__list__": [...]},
{"__struct__": "c_nvmlMemory_t", "total": ...} for a ctypes structure, {"__handle__": "gpu0"} for an NVML
device handle. An error is {"type": "NVMLError_NotSupported", "value": 3, "str": "Not Supported"}. A
recording without "cupy" comes from a machine where CuPy was not installed. Only hardware facts are
recorded (versions, counts, properties, NVML reads), never array data. "faults" and "rounding" are for
synthetic recordings only: faults make the CuPy stand-in compute wrong ({"matmul": 1.01}: 1% too large;
{"matmul": "CUBLAS_STATUS_NOT_INITIALIZED"}: that error; {"devcheck_relu": 0.5}: that kernel's results
halved), rounding makes it round like another correct device ({"matmul": "float64"}: accumulate in
float64; {"matmul": "tf32"}: TF32 inputs, as CUPY_TF32=1).
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT, VERSION = "devcheck recording", 1
MASKED_UUID = "GPU-00000000-0000-4000-8000-{:012d}"
MASKED_MIG_UUID = "MIG-00000000-0000-4000-8000-{:06d}{:06d}"  # GPU index, then MIG device index
MASKED_SERIAL = "0000000000000"
CUPY_DIST = re.compile(r"^(cupy|cupy-cuda\d+x?|cupy-rocm-[\d-]+|amd-cupy)$")


def cupy_dists(dists: dict[str, str]) -> dict[str, str]:
    """The CuPy distributions among installed ones (normalized names): a recording carries the recorded
    machine's, and a replay shows them in place of this machine's."""
    return {name: v for name, v in dists.items() if CUPY_DIST.match(name)}


class RecordingError(ValueError):
    """A file that is not a devcheck recording, or one this version cannot read."""


@dataclass
class Handle:
    """An NVML device handle in a recording or a replay: only its identity matters."""

    key: str

    def __hash__(self) -> int:
        return hash(self.key)


@dataclass
class Recording:
    about: str = ""
    synthetic: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    nvml: list[dict] = field(default_factory=list)
    cupy: list[dict] | None = None  # None: CuPy was not installed
    faults: dict[str, float | str] = field(default_factory=dict)
    rounding: dict[str, str] = field(default_factory=dict)

    @property
    def nvml_hangs(self) -> bool:
        """Whether a synthetic driver here has a call that never returns ("hang"): every other answer is
        a lookup, which needs no time limit."""
        return any(c.get("hang") for c in self.nvml)

    def to_dict(self) -> dict:
        out = {"format": FORMAT, "version": VERSION, "about": self.about, "synthetic": self.synthetic}
        out |= {"packages": self.packages, "nvml": self.nvml}
        if self.cupy is not None:
            out["cupy"] = self.cupy
        if self.faults:
            out["faults"] = self.faults
        if self.rounding:
            out["rounding"] = self.rounding
        return out

    @classmethod
    def from_dict(cls, doc: Any, where: str = "recording") -> Recording:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise RecordingError(f"{where}: not a devcheck recording (written by `devcheck env --record FILE`)")
        if doc.get("version") != VERSION:
            raise RecordingError(f"{where}: recording version {doc.get('version')!r}, this devcheck reads {VERSION}")
        return cls(
            doc.get("about", ""),
            doc.get("synthetic", ""),
            dict(doc.get("packages", {})),
            list(doc.get("nvml", [])),
            None if doc.get("cupy") is None else list(doc["cupy"]),
            dict(doc.get("faults", {})),
            dict(doc.get("rounding", {})),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> Recording:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RecordingError(f"{path}: no such file") from None
        except (OSError, ValueError) as e:
            raise RecordingError(f"{path}: not a JSON file ({e})") from None
        return cls.from_dict(doc, str(path))

    def save(self, path: str | os.PathLike) -> None:
        from devcheck.files import write_atomic

        write_atomic(Path(path), json.dumps(self.to_dict(), indent=1) + "\n")


# --- values ---------------------------------------------------------------------------------------------


def encode(value: Any, handle_key: Any = None) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Handle):
        return {"__handle__": value.key}
    if handle_key is not None and (key := handle_key(value)) is not None:
        return {"__handle__": key}
    if isinstance(value, bytes):
        return {"__bytes__": value.decode("latin-1")}
    if isinstance(value, tuple | list):
        return {f"__{type(value).__name__}__": [encode(v, handle_key) for v in value]}
    if isinstance(value, dict):
        return {str(k): encode(v, handle_key) for k, v in value.items()}
    if isinstance(value, ctypes.Structure):
        fields = {name: encode(getattr(value, name), handle_key) for name, *_ in value._fields_}
        return {"__struct__": type(value).__name__, **fields}
    if isinstance(value, ctypes.Array):
        return {"__list__": [encode(v, handle_key) for v in value]}
    if hasattr(value, "__dict__"):  # pynvml's friendly objects
        return {"__struct__": type(value).__name__, **{k: encode(v, handle_key) for k, v in vars(value).items()}}
    return {"__repr__": repr(value)}


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__handle__" in value:
        return Handle(value["__handle__"])
    if "__bytes__" in value:
        return value["__bytes__"].encode("latin-1")
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    if "__list__" in value:
        return [decode(v) for v in value["__list__"]]
    if "__struct__" in value:
        return types.SimpleNamespace(**{k: decode(v) for k, v in value.items() if k != "__struct__"})
    return {k: decode(v) for k, v in value.items()}


def masked_uuid(handle_key: str) -> str:
    """The masked UUID of the GPU or MIG device whose handle is named `handle_key` ("gpu1", "gpu1/mig2"):
    a MIG device keeps the MIG- spelling NVML gives it, so a replay resolves CUDA_VISIBLE_DEVICES as the
    machine did."""
    gpu, _, mig = handle_key.partition("/")
    index = int(gpu[3:]) if gpu[3:].isdigit() else 0
    return MASKED_MIG_UUID.format(index, int(mig[3:])) if mig[3:].isdigit() else MASKED_UUID.format(index)


def key_of(fn: str, args: list) -> str:
    """How a call is looked up in a replay: its name and its encoded arguments, as canonical JSON; where
    they are all plain ints and strings (an index, a bus id, a flag), their repr, which is as canonical
    and cheaper (an 8-GPU env asks thousands of questions)."""
    if all(type(a) in (int, str) for a in args):
        return fn + repr(list(args))
    return fn + json.dumps(args, sort_keys=True)


def answers(calls: list[dict]) -> dict[str, dict]:
    """The first answer recorded for each call: what the program saw when it first asked."""
    found: dict[str, dict] = {}
    for c in calls:
        found.setdefault(key_of(c["fn"], c.get("args", [])), c)
    return found
