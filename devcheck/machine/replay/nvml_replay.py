"""NVML answered from a recording: a module that stands where `pynvml` stands.

It carries nvidia-ml-py's own constants and exception classes (so `NVMLError(code)` builds the real
subclass) and, for every `nvml*` function of the real module, the recorded answer: the value, or the
recorded error raised again. A call the recording does not hold fails as NVML_ERROR_UNKNOWN with
"not in the recording", never with a made-up value.
"""

from __future__ import annotations

import functools
import time
import types
from typing import Any

from devcheck.machine.replay.recording import Recording, answers, decode, encode, key_of


class NotRecorded(Exception):
    """A recorded error that is not one of nvidia-ml-py's."""


@functools.cache
def _taken_from(real: types.ModuleType) -> tuple[dict[str, Any], frozenset[str]]:
    """What a replay takes from nvidia-ml-py as it is (constants, error classes, ctypes structures and
    helper classes), and the names of the NVML functions it answers: read once, not per replay."""
    as_is, functions = {}, set()
    for name in dir(real):
        value = getattr(real, name)
        if name.startswith("nvml") and callable(value) and not isinstance(value, type):
            functions.add(name)
        elif isinstance(value, type) and name.startswith("nvml"):
            as_is[name] = value
        elif name.startswith(("NVML_", "NVMLError", "nvmlClocks", "nvmlMemory", "c_nvml", "nvmlFriendlyObject")):
            as_is[name] = value
    return as_is, frozenset(functions)


def nvml_module(recording: Recording) -> types.ModuleType:
    import pynvml as real

    module = types.ModuleType("pynvml", f"NVML replayed from a recording: {recording.about}")
    as_is, functions = _taken_from(real)
    module.__dict__.update(as_is)
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

    def function(name: str) -> Any:  # made when first asked for: a run asks for a few dozen of ~700
        if name not in functions:
            raise AttributeError(f"module 'pynvml' has no attribute {name!r}")
        setattr(module, name, replay(name))
        return module.__dict__[name]

    module.__getattr__ = function  # PEP 562: called for a name not (yet) in the module
    module.__dir__ = lambda: sorted({*as_is, *functions})
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
