"""NVML answered from a recording: a module that stands where `pynvml` stands.

It carries nvidia-ml-py's own constants and exception classes (so `NVMLError(code)` builds the real
subclass) and, for every `nvml*` function of the real module, the recorded answer: the value, or the
recorded error raised again. A call the recording does not hold fails as NVML_ERROR_UNKNOWN with
"not in the recording", never with a made-up value.
"""

from __future__ import annotations

import time
import types
from typing import Any

from devcheck.machine.replay.recording import Recording, answers, decode, encode, key_of


class NotRecorded(Exception):
    """A recorded error that is not one of nvidia-ml-py's."""


def nvml_module(recording: Recording) -> types.ModuleType:
    import pynvml as real

    module = types.ModuleType("pynvml", f"NVML replayed from a recording: {recording.about}")
    for name in dir(real):
        if name.startswith(("NVML_", "NVMLError", "nvmlClocks", "nvmlMemory", "c_nvml", "nvmlFriendlyObject")):
            setattr(module, name, getattr(real, name))
    recorded = answers(recording.nvml)

    def replay(name: str) -> Any:
        def call(*args: Any) -> Any:
            entry = recorded.get(key_of(name, [encode(a) for a in args]))
            if entry is None:
                raise _not_recorded(real, name)
            if entry.get("hang"):  # a synthetic recording's driver that never answers
                time.sleep(3600)
            if "error" in entry:
                raise _error(real, entry["error"])
            return decode(entry.get("result"))

        call.__name__ = name
        return call

    for name in dir(real):
        value = getattr(real, name)
        if name.startswith("nvml") and isinstance(value, type):
            setattr(module, name, value)  # ctypes structures and helper classes, as they are
        elif name.startswith("nvml") and callable(value):
            setattr(module, name, replay(name))
    return module


def _not_recorded(real: Any, name: str) -> Exception:
    class NotInRecording(real.NVMLError_Unknown):
        def __str__(self) -> str:
            return f"{name}: not in the recording"

    return NotInRecording(real.NVML_ERROR_UNKNOWN)


def _error(real: Any, recorded: dict) -> Exception:
    value = recorded.get("value")
    if isinstance(value, int):
        return real.NVMLError(value)
    cls = getattr(real, recorded.get("type", ""), None)
    if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, real.NVMLError):
        return cls(recorded.get("str", ""))
    return NotRecorded(f"{recorded.get('type')}: {recorded.get('str')}")
