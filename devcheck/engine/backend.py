"""Devices: which array library runs a tensor's ops, and the few things the Array API standard
leaves out (host<->device copies, the current-device context, scatter-add, synchronisation).

Ops are written against the Array API standard, so one code path serves NumPy on the CPU, CuPy
on each NVIDIA GPU (imported only when a "cuda" device is asked for) and any other standard
namespace registered here, such as the simulated device the test-suite uses. The namespace always
comes from the Device, never from an array (a CuPy array has no `__array_namespace__`):
array-api-compat's for NumPy and CuPy.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy

from devcheck.engine import fused

FLOAT_DTYPES = ("float16", "float32", "float64")
_NULL_CONTEXT = contextlib.nullcontext()


def cuda_index(name: str) -> int | None:
    """N of a device named `cuda:N` (torch.device's index: CUDA's ordinal, which NVML's index need not
    be); None for the CPU."""
    return int(name.split(":")[1]) if name.startswith("cuda:") else None


@dataclass(eq=False)
class Device:
    """One place arrays live. `name` is what users type and what Tensor.device returns."""

    name: str
    xp: Any  # the Array API namespace
    from_host: Callable[[numpy.ndarray], Any]
    to_host: Callable[[Any], numpy.ndarray]
    owns: Callable[[Any], bool]  # is this array on this device?
    context: Callable[[], Any] = lambda: _NULL_CONTEXT
    synchronize: Callable[[], None] = lambda: None
    scatter_add: Callable[..., None] | None = None  # (target, index, values, unique=False): target[index] += values
    dtypes: dict[str, Any] = field(default_factory=dict)
    native: Any = None  # the library itself (numpy, cupy) for what the standard lacks, such as out=
    fused: dict[str, Callable[..., Any]] = field(default_factory=dict)  # engine/fused.py: optimizers, cross-entropy

    def dtype(self, name: str) -> Any:
        return self.dtypes.get(name) or getattr(self.xp, name)

    @property
    def index(self) -> int | None:
        return cuda_index(self.name)

    def __repr__(self) -> str:
        return f"device(type='{self.name}')"


def _numpy_device() -> Device:
    # The same standard layer as CuPy's below, so both devices spell every function alike. Measured
    # against plain NumPy (benchmarks/step.py, interleaved): +0-1% on the 784-512-512-10 step,
    # +3-4% on the 2-16-16-2 one.
    import array_api_compat.numpy as xp

    return Device(
        name="cpu",
        xp=xp,
        from_host=lambda a: a,
        to_host=lambda a: a,
        owns=lambda a: isinstance(a, numpy.ndarray | numpy.generic),
        scatter_add=_numpy_scatter_add,
        native=numpy,
        fused=fused.NUMPY_KERNELS,
    )


def _numpy_scatter_add(target: Any, index: tuple, values: Any, unique: bool = False) -> None:
    """numpy.add.at adds repeated positions up, and is ~4x slower than plain indexing: a caller that
    knows no position repeats (cross-entropy's one per row) takes the fast way."""
    if unique:
        target[index] += values
    else:
        numpy.add.at(target, index, values)


_devices: dict[str, Device] = {}  # "cpu" is made on first use: array-api-compat takes ~50 ms to import
_DEVICE_NAME = re.compile(r"^cuda(?::(\d+))?$")


def register(device: Device) -> None:
    """Make a device available by name (how the tests add their simulated device)."""
    _devices[device.name] = device


def forget_gpus() -> None:
    """Drop the CUDA devices made so far: the next use makes them again from the CuPy then importable
    (the hardware seam calls it when a replay starts or ends)."""
    for name in [n for n in _devices if n.startswith("cuda")]:
        del _devices[name]


def get_device(spec: str | Device) -> Device:
    """'cpu', 'cuda' (the current GPU), 'cuda:N', or a registered name; anything else is a clear error."""
    if isinstance(spec, Device):
        return spec
    name = str(spec).strip().lower()
    if name in _devices:
        return _devices[name]
    if name == "cpu":
        return _devices.setdefault("cpu", _numpy_device())  # setdefault: two threads still get one device
    match = _DEVICE_NAME.match(name)
    if not match:
        known = ", ".join(sorted({"cpu", *_devices}))
        raise ValueError(f"unknown device {spec!r}: expected cpu, cuda or cuda:N (known here: {known})")
    return _cuda_device(None if match.group(1) is None else int(match.group(1)))


def _cuda_device(index: int | None) -> Device:
    try:
        import cupy
    except ImportError as e:
        raise ValueError(f"device 'cuda' needs CuPy, which cannot be imported ({e}); see `devcheck env`") from None
    count, reason = cuda_device_count(cupy)
    if index is None:
        index = cupy.cuda.runtime.getDevice() if count else 0
    if not 0 <= index < count:
        have = ", ".join(f"cuda:{i}" for i in range(count)) or "none"
        why = f": {reason}" if reason else ""
        raise ValueError(f"unknown device 'cuda:{index}': this machine has {count} CUDA device(s) ({have}){why}")
    name = f"cuda:{index}"
    if name not in _devices:
        _devices[name] = _make_cuda_device(cupy, index)
    return _devices[name]


def cuda_device_count(cupy: Any) -> tuple[int, str]:
    """How many GPUs CUDA shows, and CUDA's own words when it shows none."""
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # cudaErrorInsufficientDriver, cudaErrorNoDevice, ...
        return 0, str(e).splitlines()[0] if str(e) else type(e).__name__
    return count, "" if count else "no CUDA device is visible"


def _make_cuda_device(cupy: Any, index: int) -> Device:
    import array_api_compat.cupy as xp  # CuPy's main namespace predates parts of the standard

    gpu = cupy.cuda.Device(index)

    def from_host(a: numpy.ndarray) -> Any:
        with gpu:
            return cupy.asarray(a)

    def scatter_add(target: Any, index: tuple, values: Any, unique: bool = False) -> None:
        with gpu:  # one kernel, unique positions or not
            if hasattr(cupy, "add") and hasattr(cupy.add, "at"):
                cupy.add.at(target, index, values)
            else:
                import cupyx

                cupyx.scatter_add(target, index, values)

    return Device(
        name=f"cuda:{index}",
        xp=xp,
        from_host=from_host,
        to_host=cupy.asnumpy,
        owns=lambda a: isinstance(a, cupy.ndarray) and a.device.id == index,
        context=lambda: gpu,
        synchronize=gpu.synchronize,
        scatter_add=scatter_add,
        native=cupy,
        fused=fused.cuda_kernels(cupy),
    )


def device_of(array: Any) -> Device:
    get_device("cpu")
    for device in list(_devices.values()):
        if device.owns(array):
            return device
    raise TypeError(f"no registered device holds an array of type {type(array).__name__}")


# --- the one source of randomness -------------------------------------------------------------------
# Weight init, dropout masks, shuffling and synthetic data all come from this host generator and
# are then copied to the device, so the same seed starts CPU and GPU runs bit-identical.

_generator = numpy.random.default_rng(0)


def manual_seed(seed: int) -> numpy.random.Generator:
    global _generator
    _generator = numpy.random.default_rng(seed)
    return _generator


def generator() -> numpy.random.Generator:
    return _generator
