"""GPU-to-GPU in the stand-in: device memory by pointer, peer access and peer copies, and NCCL.

As CUDA does (cupy_backends/cuda/api/runtime.pyx passes each call through and raises CUDA's own error):
cudaDeviceEnablePeerAccess refuses a pair the recording says cannot reach each other
(cudaErrorPeerAccessUnsupported), a second enable (cudaErrorPeerAccessAlreadyEnabled) and the current
device itself (cudaErrorInvalidDevice); cudaMemcpyPeerAsync copies between any two devices, peer access
or not (without it the driver stages the copy through host memory), and refuses a pointer that is not
an allocation of the device named with it (cudaErrorInvalidValue). NCCL is not in any recording, so
`cupy.cuda.nccl` is what CuPy is without it: `available` False.
"""

from __future__ import annotations

import ctypes
import types
import weakref
from typing import Any

import numpy

from devcheck.machine.replay.standin.state import COUNTS, CUDARuntimeError, answer, fault, recorded, state

# CUDA's status codes and messages, as CuPy's CUDARuntimeError prints them (str(CUDARuntimeError(code))).
ERRORS = {
    1: "cudaErrorInvalidValue: invalid argument",
    101: "cudaErrorInvalidDevice: invalid device ordinal",
    217: "cudaErrorPeerAccessUnsupported: peer access is not supported between these two devices",
    704: "cudaErrorPeerAccessAlreadyEnabled: peer access is already enabled",
    705: "cudaErrorPeerAccessNotEnabled: peer access has not been enabled",
}

_memory: dict[int, tuple[int, numpy.ndarray]] = {}  # pointer -> (device, its bytes)
_peers: list[Any] = [None, set()]  # [the recording, {(device, peer) with access enabled}]


def fail(code: int) -> CUDARuntimeError:
    return CUDARuntimeError(ERRORS[code], code)


def _valid(device: int) -> None:
    if not 0 <= device < answer("cuda.runtime.getDeviceCount"):
        raise fail(101)


class MemoryPointer:
    """cupy.cuda.MemoryPointer: device memory at an address; its bytes live as long as it does."""

    def __init__(self, device: int, size: int):
        self._bytes = numpy.empty(max(size, 1), numpy.uint8)
        self._bytes.fill(0)  # mapped now, as cudaMalloc's memory is (numpy.zeros maps a page on first touch)
        self._device, self._ptr = device, self._bytes.ctypes.data
        _memory[self._ptr] = (device, self._bytes)
        weakref.finalize(self, _memory.pop, self._ptr, None)

    ptr = property(lambda self: self._ptr)
    device_id = property(lambda self: self._device)

    def copy_from_host(self, mem: Any, size: int) -> None:
        """From host memory at `mem` (an int or a ctypes.c_void_p), as cudaMemcpy does."""
        ctypes.memmove(self._ptr, mem if isinstance(mem, int) else mem.value, size)

    def copy_to_host(self, mem: Any, size: int) -> None:
        ctypes.memmove(mem if isinstance(mem, int) else mem.value, self._ptr, size)
        COUNTS["to_host"] += 1


def alloc(size: int) -> MemoryPointer:
    """cupy.cuda.alloc: `size` bytes on the current device."""
    _valid(state.current)
    return MemoryPointer(state.current, size)


def _buffer(ptr: int, device: int, size: int) -> numpy.ndarray:
    """The bytes [ptr, ptr + size) of an allocation on `device`."""
    for start, (owner, data) in _memory.items():
        if owner == device and start <= ptr and ptr + size <= start + data.nbytes:
            return data[ptr - start : ptr - start + size]
    raise fail(1)


def memcpy_peer_async(dst: int, dst_device: int, src: int, src_device: int, size: int, stream: int) -> None:
    for device in (dst_device, src_device):
        _valid(device)
    target, source = _buffer(dst, dst_device, size), _buffer(src, src_device, size)
    ctypes.memmove(target.ctypes.data, source.ctypes.data, size)
    if fault("memcpyPeerAsync") is not None and size:  # a synthetic recording's link that flips a bit
        target[0] ^= 0x10
    COUNTS["peer_copies"] += 1


def _enabled() -> set:
    if _peers[0] is not state.recording:  # a new replay starts with peer access off, as a new process does
        _peers[:] = [state.recording, set()]
    return _peers[1]


def enable_peer_access(peer: int) -> None:
    """cudaDeviceEnablePeerAccess(peer, 0) from the current device."""
    _valid(peer)
    current = state.current
    if peer == current:
        raise fail(101)
    if not recorded("cuda.runtime.deviceCanAccessPeer", current, peer, default=0):
        raise fail(217)
    if (current, peer) in _enabled():
        raise fail(704)
    _enabled().add((current, peer))


def disable_peer_access(peer: int) -> None:
    _valid(peer)
    if (state.current, peer) not in _enabled():
        raise fail(705)
    _enabled().discard((state.current, peer))


def add_to_runtime(runtime: types.ModuleType) -> None:
    runtime.deviceEnablePeerAccess = enable_peer_access
    runtime.deviceDisablePeerAccess = disable_peer_access
    runtime.memcpyPeerAsync = memcpy_peer_async


def nccl_module() -> types.ModuleType:
    """cupy.cuda.nccl where NCCL does not load: CuPy sets `available = False` and exports nothing else."""
    module = types.ModuleType("cupy.cuda.nccl", "NCCL Wrapper (stand-in: no NCCL in any recording)")
    module.available = False
    return module
