"""A CuPy stand-in: the hardware facts of a recording, NumPy arithmetic behind CuPy's rules.

What a real GPU answers (device count, properties, attributes, compute capability, memory, errors)
comes only from a recording (`devcheck.machine.replay.recording`); nothing here invents a hardware value.
Where CuPy behaves differently from NumPy, the stand-in behaves like CuPy, because that is where
code written against NumPy breaks on a GPU:
- arrays are not numpy.ndarray subclasses and have no `__array_namespace__`;
- implicit conversion to NumPy raises TypeError (`numpy.asarray(x)`); `.get()` / `cupy.asnumpy` copy out;
- NumPy arrays, 0-d ones too, are refused as operands of device arithmetic and kernels (CuPy:
  "Unsupported type"), and so is NumPy's `device=` keyword;
- user kernels check their keywords, names, raw parameters, output shapes and types as CuPy does;
- NumPy's ufuncs and functions dispatch to the stand-in through `__array_ufunc__` / `__array_function__`;
- reductions return 0-d device arrays, not scalars; arrays carry `.device` (a `cupy.cuda.Device` with `.id`);
- out-of-range integer-array indices wrap around instead of raising (in `take` too).
Every name it offers exists on the real module with the same kind (tests/test_contract.py).

It also counts what costs time on a real GPU (`COUNTS`: launches, copies to the host, synchronisations),
including the count a boolean mask, nonzero or unique reads back before it can size its result.
What it cannot show, tests must allow for: CuPy compiles kernels with -ftz=true (float32 subnormals
flush to 0), NVRTC contracts a * b + c into an FMA, CUDA's libm is a few ulps from NumPy's, float16
kernels compute in float and round once, and atomic scatters (add.at) add in no fixed order.
state.py holds what it knows, arrays.py the arrays, ufuncs and functions, kernels.py the user kernels,
cuda.py the devices and the runtime, names.py the names it offers.
"""

from __future__ import annotations

import sys
import types

import numpy

from devcheck.machine.replay.recording import Recording
from devcheck.machine.replay.standin import arrays, cuda, functions, names, peer
from devcheck.machine.replay.standin.arrays import ndarray
from devcheck.machine.replay.standin.functions import asnumpy, ufunc_
from devcheck.machine.replay.standin.kernels import ElementwiseKernel, RawKernel
from devcheck.machine.replay.standin.state import COUNTS, answer, use

__all__ = ["COUNTS", "MODULES", "activate", "install", "uninstall"]

CREATION = {"arange", "empty", "eye", "full", "identity", "linspace", "logspace", "ones", "zeros", "tri", "indices"}
HOST_INPUT = {"array", "asarray", "asanyarray", "ascontiguousarray", "asfortranarray"}
PLAIN = {  # no device data in or out: dtype rules, shapes, printing settings
    "result_type", "can_cast", "issubdtype", "isdtype", "promote_types", "min_scalar_type", "ndim", "shape",
    "size", "isscalar", "iterable", "typename", "base_repr", "binary_repr", "mintypecode", "common_type",
    "may_share_memory", "shares_memory", "get_printoptions", "set_printoptions", "printoptions",
}  # fmt: skip
NOT_OFFERED = {  # files, text and host buffers: nothing a device check needs, and NumPy's would take host data
    "load", "save", "savez", "savez_compressed", "savetxt", "loadtxt", "genfromtxt", "fromfile", "frombuffer",
    "fromstring", "fromiter", "from_dlpack", "array2string", "array_repr", "array_str", "format_float_positional",
    "format_float_scientific", "show_config", "fromfunction", "asarray_chkfinite", "require",
}  # fmt: skip
VALUES = {"e", "euler_gamma", "inf", "nan", "newaxis", "pi"}
NUMPY_CLASSES = set(names.NUMPY_CLASSES) - {
    "ndarray",
    "ufunc",
    "broadcast",
    "flatiter",
    "ndindex",
    "poly1d",
    "vectorize",
}


def _numpy_names(cupy: types.ModuleType) -> None:
    for name in names.UFUNCS:
        setattr(cupy, name, ufunc_(getattr(numpy, name)))
    for name in set(names.FUNCTIONS) - NOT_OFFERED:
        fn = getattr(numpy, name)
        if name in CREATION:
            setattr(cupy, name, functions.creation(name))
        elif name in HOST_INPUT:
            setattr(cupy, name, functions.host_input(name))
        elif name in PLAIN:
            setattr(cupy, name, functions.plain(name, fn))
        else:
            setattr(cupy, name, functions.function(name, fn))
    for name in NUMPY_CLASSES | VALUES:
        setattr(cupy, name, getattr(numpy, name))


def _build() -> dict[str, types.ModuleType]:
    cupy = types.ModuleType("cupy", "CuPy stand-in (devcheck.machine.replay.standin): NumPy arithmetic, recorded facts")
    _numpy_names(cupy)
    arrays.install_methods(names.NDARRAY_METHODS)
    cupy.take = ndarray.take = functions.take
    cupy.ndarray, cupy.ufunc, cupy.asnumpy = ndarray, ufunc_, asnumpy
    cupy.get_array_module = lambda *args: cupy if any(isinstance(a, ndarray) for a in args) else numpy
    cupy.is_available = lambda: bool(answer("is_available"))
    cupy.ElementwiseKernel, cupy.RawKernel = ElementwiseKernel, RawKernel

    gpu = types.ModuleType("cupy.cuda")
    device_module = types.ModuleType("cupy.cuda.device")
    device_module.Device = gpu.Device = cuda.Device
    gpu.runtime, gpu.device, gpu.Event, gpu.Stream = cuda.runtime(), device_module, cuda.Event, cuda.Stream
    gpu.get_elapsed_time, gpu.alloc_pinned_memory = cuda.get_elapsed_time, cuda.alloc_pinned_memory
    gpu.get_current_stream = cuda.get_current_stream
    gpu.alloc, gpu.MemoryPointer = peer.alloc, peer.MemoryPointer
    cupy.cuda = gpu

    linalg, fft = types.ModuleType("cupy.linalg"), types.ModuleType("cupy.fft")
    for module, host, offered in ((linalg, numpy.linalg, names.LINALG), (fft, numpy.fft, names.FFT)):
        for name in offered:
            setattr(module, name, functions.function(name, getattr(host, name)))
    cupy.linalg, cupy.fft = linalg, fft

    cupyx = types.ModuleType("cupyx")
    cupyx.scatter_add = lambda a, slices, value: cupy.add.at(a, slices, value)
    cupyx.scatter_max = lambda a, slices, value: cupy.maximum.at(a, slices, value)
    cupyx.scatter_min = lambda a, slices, value: cupy.minimum.at(a, slices, value)
    return {
        "cupy": cupy,
        "cupy.cuda": gpu,
        "cupy.cuda.runtime": gpu.runtime,
        "cupy.cuda.device": device_module,
        "cupy.cuda.nccl": peer.nccl_module(),  # imported on its own, as CuPy's is
        "cupy.linalg": linalg,
        "cupy.fft": fft,
        "cupyx": cupyx,
    }


MODULES = _build()


def activate(recording: Recording) -> types.ModuleType:
    """Answer with this recording's facts from now on; returns the `cupy` module."""
    if recording.cupy is None:
        raise ImportError(
            f"No module named 'cupy' (the recording comes from a machine without CuPy: {recording.about})"
        )
    use(recording)
    version = next((c.get("result") for c in recording.cupy if c["fn"] == "__version__"), None)
    MODULES["cupy"].__version__ = version or "unknown (not in the recording)"
    return MODULES["cupy"]


def install(recording: Recording) -> types.ModuleType:
    """Put the stand-in where `import cupy` finds it (the engine and array-api-compat import it there)."""
    cupy = activate(recording)
    for name in [n for n in sys.modules if n == "array_api_compat.cupy" or n.startswith("array_api_compat.cupy.")]:
        del sys.modules[name]
    for name in [n for n in sys.modules if n.split(".")[0] in ("cupy", "cupyx", "cupy_backends")]:
        del sys.modules[name]
    sys.modules.update(MODULES)
    return cupy


def uninstall() -> None:
    for name in list(sys.modules):
        if sys.modules[name] in MODULES.values() or name.startswith("array_api_compat.cupy"):
            del sys.modules[name]
