"""Recording wrappers around the real `pynvml` and `cupy`: each call devcheck makes to ask the hardware
a question is passed through unchanged and written down, with its answer or its error. UUIDs and
serial numbers are masked, so a recording can be attached to a public bug report."""

from __future__ import annotations

import ctypes
from typing import Any

from devcheck.machine.replay.recording import MASKED_SERIAL, Handle, Recording, encode, masked_uuid

# What devcheck asks CuPy about the hardware (compute calls pass through unrecorded).
CUPY_FACTS = (
    "is_available",
    "cuda.runtime.getDeviceCount",
    "cuda.runtime.getDevice",
    "cuda.runtime.runtimeGetVersion",
    "cuda.runtime.driverGetVersion",
    "cuda.runtime.getDeviceProperties",
)
DEVICE_FACTS = ("compute_capability", "attributes", "pci_bus_id", "mem_info")


def _error(e: BaseException) -> dict:
    out = {"type": type(e).__name__, "str": str(e)}
    for code in ("value", "status"):  # NVMLError.value, CUDARuntimeError.status
        if isinstance(getattr(e, code, None), int):
            out[code] = getattr(e, code)
    return out


class NvmlRecorder:
    """Stands where `pynvml` stands; every `nvml*` function call is written to `calls`."""

    def __init__(self, real: Any, calls: list[dict]):
        self._real, self._calls, self._handles = real, calls, {}

    def _handle_key(self, value: Any) -> str | None:
        if isinstance(value, Handle):  # recording a replay
            return value.key
        if isinstance(value, ctypes._Pointer):
            return self._handles.get(ctypes.cast(value, ctypes.c_void_p).value)
        return None

    def _name_handle(self, fn: str, args: tuple, handle: Any) -> None:
        address = ctypes.cast(handle, ctypes.c_void_p).value
        if fn == "nvmlDeviceGetHandleByIndex":
            self._handles.setdefault(address, f"gpu{args[0]}")
        elif fn == "nvmlDeviceGetMigDeviceHandleByIndex":
            self._handles.setdefault(address, f"{self._handle_key(args[0])}/mig{args[1]}")
        else:
            self._handles.setdefault(address, f"gpu@{len(self._handles)}")

    def __dir__(self) -> list[str]:
        return dir(self._real)  # NVML_BRAND_* and the other constants are found by name

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._real, name)
        if not (name.startswith("nvml") and callable(value)) or isinstance(value, type):
            return value

        def call(*args: Any) -> Any:
            entry = {"fn": name, "args": [self._mask_arg(a) for a in args]}
            self._calls.append(entry)
            try:
                result = value(*args)
            except Exception as e:
                entry["error"] = _error(e)
                raise
            if "Handle" in name and isinstance(result, ctypes._Pointer):
                self._name_handle(name, args, result)
            entry["result"] = self._mask(name, args, encode(result, self._handle_key))
            return result

        return call

    def _mask_arg(self, arg: Any) -> Any:
        encoded = encode(arg, self._handle_key)
        if isinstance(encoded, str) and encoded.startswith(("GPU-", "MIG-")):
            return masked_uuid("gpu0/mig0" if encoded.startswith("MIG-") else "gpu0")
        return encoded

    def _mask(self, name: str, args: tuple, result: Any) -> Any:
        if name == "nvmlDeviceGetUUID":
            return masked_uuid(str(self._handle_key(args[0]) or "gpu0"))
        if name == "nvmlDeviceGetSerial":
            return MASKED_SERIAL
        return result


class _Node:
    """One attribute path of the real `cupy` (a module or a namespace inside it)."""

    def __init__(self, real: Any, path: str, calls: list[dict]):
        self._real, self._path, self._calls = real, path, calls

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._real, name)
        path = f"{self._path}{name}"
        if path == "__version__":
            self._calls.append({"fn": "__version__", "args": [], "result": value})
            return value
        if path in CUPY_FACTS:
            return _recorded(path, value, self._calls)
        if path == "cuda.Device":
            return lambda *args: _DeviceRecorder(value, args, self._calls)
        if path in ("cuda", "cuda.runtime"):
            return _Node(value, path + ".", self._calls)
        return value


def _recorded(path: str, fn: Any, calls: list[dict]) -> Any:
    def call(*args: Any) -> Any:
        entry = {"fn": path, "args": [encode(a) for a in args]}
        calls.append(entry)
        try:
            result = fn(*args)
        except Exception as e:
            entry["error"] = _error(e)
            raise
        shown = result
        if isinstance(result, dict):  # getDeviceProperties: the board's UUID is private
            shown = {k: (b"(masked)" if k in ("uuid", "luid") else v) for k, v in result.items()}
        entry["result"] = encode(shown)
        return result

    return call


class _DeviceRecorder:
    """`cupy.cuda.Device(i)` whose hardware facts are written down; everything else is the real Device."""

    def __init__(self, cls: Any, args: tuple, calls: list[dict]):
        self._device = cls(*args)
        self._calls, self._index = calls, self._device.id

    def __getattr__(self, name: str) -> Any:
        if name not in DEVICE_FACTS:
            return getattr(self._device, name)
        entry = {"fn": f"Device.{name}", "args": [self._index]}
        self._calls.append(entry)
        try:
            value = getattr(self._device, name)
        except Exception as e:
            entry["error"] = _error(e)
            raise
        entry["result"] = encode(value)
        return value

    def __enter__(self) -> _DeviceRecorder:
        self._device.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._device.__exit__(*exc)

    def __int__(self) -> int:
        return int(self._device.id)

    def __eq__(self, other: Any) -> bool:
        return self._device == getattr(other, "_device", other)

    __hash__ = None

    def __repr__(self) -> str:
        return repr(self._device)


def record_cupy(real: Any, recording: Recording) -> Any:
    recording.cupy = [] if recording.cupy is None else recording.cupy
    return _Node(real, "", recording.cupy)
