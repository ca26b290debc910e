"""cupy.cuda: devices, events, streams, pinned memory and the runtime, every hardware fact from the
recording (cupy/cuda/device.pyx and cupy_backends/cuda/api/runtime.pyx are the reference)."""

from __future__ import annotations

import time
import types
from typing import Any

from devcheck.machine.replay.standin import peer
from devcheck.machine.replay.standin.state import COUNTS, CUDARuntimeError, answer, state


class Device:
    """cupy.cuda.Device: the constructor does not check the id; using the device does."""

    def __init__(self, device: Any = None):
        self.id = get_device() if device is None else int(getattr(device, "id", device))
        self._previous: list[int] = []

    def _check(self) -> None:
        if not 0 <= self.id < answer("cuda.runtime.getDeviceCount"):
            raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")

    def use(self) -> Device:
        self._check()
        state.current = self.id
        return self

    def __enter__(self) -> Device:
        self._check()
        self._previous.append(state.current)
        state.current = self.id
        return self

    def __exit__(self, *exc: Any) -> None:
        state.current = self._previous.pop()

    def synchronize(self) -> None:
        self._check()
        COUNTS["syncs"] += 1

    compute_capability = property(lambda self: answer("Device.compute_capability", self.id))
    attributes = property(lambda self: answer("Device.attributes", self.id))
    pci_bus_id = property(lambda self: answer("Device.pci_bus_id", self.id))
    mem_info = property(lambda self: answer("Device.mem_info", self.id))

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Device) and other.id == self.id

    __hash__ = None  # as CuPy's: a Device is not a dict key

    def __int__(self) -> int:
        return self.id

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


class Event:
    """cupy.cuda.Event, made on the current device; CUDA refuses to record it on another device's stream."""

    def __init__(self, block: bool = False, disable_timing: bool = False, interprocess: bool = False):
        self.time, self._device = 0.0, state.current

    def record(self, stream: Any = None) -> None:
        on = state.current if stream is None or stream._null else stream._device  # the null stream: the current one's
        if on != self._device:
            raise CUDARuntimeError("cudaErrorInvalidResourceHandle: invalid resource handle", 400)
        self.time = time.perf_counter()

    def synchronize(self) -> None:
        COUNTS["syncs"] += 1


def get_elapsed_time(start_event: Event, end_event: Event) -> float:
    """Milliseconds, as CuPy's."""
    return (end_event.time - start_event.time) * 1e3


class Stream:
    """cupy.cuda.Stream: made on the current device (the null stream is every device's); `ptr` its handle."""

    null: Stream
    _handles = iter(range(0x1000, 1 << 62, 0x100))

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False):
        self._null, self._device = null, state.current
        self.ptr = 0 if null else next(Stream._handles)

    def synchronize(self) -> None:
        COUNTS["syncs"] += 1

    def record(self, event: Any = None) -> Event:
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event: Any) -> None:
        """Work queued after this waits for `event` (any device's); the stand-in runs everything at once."""

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


Stream.null = Stream(null=True)


def alloc_pinned_memory(size: int) -> bytearray:
    """CuPy returns a PinnedMemoryPointer with the buffer protocol; a bytearray has it too."""
    return bytearray(size)


def get_current_stream(device_id: int = -1) -> Stream:
    return Stream.null


def get_device() -> int:
    Device(state.current)._check()
    return state.current


def runtime() -> types.ModuleType:
    module = types.ModuleType("cupy.cuda.runtime")
    module.CUDARuntimeError = CUDARuntimeError
    module.getDeviceCount = lambda: answer("cuda.runtime.getDeviceCount")
    module.runtimeGetVersion = lambda: answer("cuda.runtime.runtimeGetVersion")
    module.driverGetVersion = lambda: answer("cuda.runtime.driverGetVersion")
    module.getDeviceProperties = lambda device: answer("cuda.runtime.getDeviceProperties", device)
    module.getDevice = get_device
    module.deviceCanAccessPeer = lambda device, peer: answer("cuda.runtime.deviceCanAccessPeer", device, peer)
    module.setDevice = lambda device: Device(device).use() and None
    module.deviceSynchronize = lambda: COUNTS.update(syncs=1)
    peer.add_to_runtime(module)
    return module
