"""What the stand-in knows: the recording it answers from, the current device (per thread, as CUDA's
is), the synthetic faults and roundings, and the counts of what would cost time on a GPU."""

from __future__ import annotations

import collections
import threading
from typing import Any

import numpy

from devcheck.machine.replay.recording import Recording, answers, decode, key_of

# launches: device computations (about one kernel each); to_host: device-to-host copies (each a
# synchronisation); syncs: explicit synchronisations.
COUNTS: collections.Counter = collections.Counter()

# CUDA runtime's error codes (cudaError_t, from the CUDA runtime API): what CUDARuntimeError.status holds.
CUDA_STATUS = {"cudaErrorInsufficientDriver": 35, "cudaErrorNoDevice": 100, "cudaErrorInvalidDevice": 101}


class CUDARuntimeError(RuntimeError):
    """As cupy_backends.cuda.api.runtime.CUDARuntimeError: `str()` is CUDA's own "name: message"."""

    def __init__(self, text: str, status: int | None = None):
        super().__init__(text)
        self.status = status if status is not None else CUDA_STATUS.get(text.split(":")[0], 999)


class _State:
    def __init__(self) -> None:
        self.recording, self.answers = Recording(), {}
        self.faults: dict[str, Any] = {}
        self.rounding: dict[str, str] = {}
        self.local = threading.local()

    @property
    def current(self) -> int:
        return getattr(self.local, "device", 0)

    @current.setter
    def current(self, device: int) -> None:
        self.local.device = device


state = _State()


def use(recording: Recording) -> None:
    state.recording, state.answers = recording, answers(recording.cupy or [])
    state.faults, state.rounding, state.current = dict(recording.faults), dict(recording.rounding), 0


def answer(fn: str, *args: Any) -> Any:
    """The recorded answer to a hardware question, or the recorded error raised again."""
    entry = state.answers.get(key_of(fn, list(args)))
    if entry is None:
        raise CUDARuntimeError(f"cudaErrorUnknown: {fn}{args} is not in the recording")
    if "error" in entry:
        error = entry["error"]
        raise CUDARuntimeError(error.get("str", "cudaErrorUnknown"), error.get("status"))
    return decode(entry.get("result"))


def recorded(fn: str, *args: Any, default: Any) -> Any:
    """The recorded answer to a question CuPy asks by itself (not on a caller's behalf), or `default` where
    the recording does not hold it."""
    entry = state.answers.get(key_of(fn, list(args)))
    return default if entry is None or "error" in entry else decode(entry.get("result"))


def fault(name: str) -> float | None:
    """A synthetic recording's fault on this call of `name`: a number scales its results, a text is the
    error it raises, {"every": 50, "scale": 1.001} scales one call in 50 (a GPU wrong now and then)."""
    found = state.faults.get(name)
    if isinstance(found, dict):
        COUNTS[f"calls:{name}"] += 1
        found = found["scale"] if COUNTS[f"calls:{name}"] % found["every"] == 0 else None
    if isinstance(found, str):
        raise RuntimeError(found)
    return found


def faulty(name: str, out: Any) -> Any:
    """`out` as this call of `name` gives it under the recording's fault, if any."""
    return scaled(out, fault(name))


def scaled(out: Any, scale: float | None) -> Any:
    if scale is not None and isinstance(out, numpy.ndarray) and out.dtype.kind == "f":
        return out * out.dtype.type(scale)
    return out
