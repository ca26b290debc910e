"""cupy.ndarray, CuPy's ufuncs and functions: NumPy memory and arithmetic, CuPy's rules (CuPy 14.2's
cupy/_core/core.pyx, _kernel.pyx and _routines_indexing.pyx are the reference for each refusal)."""

from __future__ import annotations

import types
import warnings
from typing import Any

import numpy

from devcheck import numerics
from devcheck.machine.replay.standin.state import COUNTS, faulty, recorded, state

_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy array explicitly."
)
_SCALARS = (bool, int, float, complex, numpy.generic)


def wrap(value: Any, device: int | None = None) -> Any:
    if isinstance(value, numpy.ndarray):
        out = ndarray.__new__(ndarray)
        out._a, out._device = value, state.current if device is None else device
        return out
    if isinstance(value, numpy.generic):
        return wrap(numpy.asarray(value), device)
    if isinstance(value, tuple):
        return tuple(wrap(v, device) for v in value)
    if isinstance(value, list) and value and all(isinstance(v, numpy.ndarray) for v in value):
        return [wrap(v, device) for v in value]
    return value


class PerformanceWarning(RuntimeWarning):
    """cupy._util.PerformanceWarning: what CuPy warns when it turns on peer access by itself."""


PerformanceWarning.__module__ = "cupy._util"


def check_peer(device: int) -> None:
    """CuPy's _check_peer_access (_kernel.pyx; reductions and concatenation too): a kernel on the current
    device given an array that lives on another refuses it, or, where the recording says the two GPUs can
    reach each other's memory (cudaDeviceCanAccessPeer), turns peer access on and warns. A recording that
    does not say is taken as no peer access."""
    current = state.current
    if device == current:
        return
    message = f"The device where the array resides ({device}) is different from the current device ({current})."
    if not recorded("cuda.runtime.deviceCanAccessPeer", current, device, default=0):
        raise ValueError(f"{message} Peer access is unavailable between these devices.")
    warnings.warn(f"{message} Peer access has been activated automatically.", PerformanceWarning, stacklevel=4)


def unwrap(value: Any, host_ok: bool = False) -> Any:
    """A stand-in array's memory (on the current device); a NumPy array only where CuPy takes host data."""
    if isinstance(value, ndarray):
        check_peer(value._device)
        return value._a
    if isinstance(value, numpy.ndarray) and not host_ok and value.ndim:
        raise TypeError(f"Unsupported type {type(value)}")
    if isinstance(value, tuple | list):
        return type(value)(unwrap(v, host_ok) for v in value)
    if type(value).__name__ == "Device" and type(value).__module__.startswith("devcheck.machine.replay.standin"):
        return None
    return value


def operand(value: Any) -> Any:
    """What CuPy's elementwise kernels take: device arrays and scalars, nothing else: no lists, and no
    NumPy array, not even a 0-d one (_kernel.pyx _preprocess_arg, _scalar.pyx CScalar)."""
    if isinstance(value, (ndarray, *_SCALARS)):
        return unwrap(value)
    raise TypeError(f"Unsupported type {type(value)}")


def broadcast(values: list[Any]) -> tuple[int, ...]:
    """The shape the device arrays among `values` broadcast to (internal.pyx _broadcast_core's message)."""
    try:
        return numpy.broadcast_shapes(*(v.shape for v in values if isinstance(v, ndarray)))
    except ValueError:
        shapes = " ".join(str(v.shape) if isinstance(v, ndarray) else "()" for v in values)
        raise ValueError(f"operands could not be broadcast together with shapes {shapes}") from None


def _tf32(a: Any) -> Any:
    """float32 rounded to TF32's 10-bit mantissa, as tensor cores read it (round to nearest)."""
    if not (isinstance(a, numpy.ndarray) and a.dtype == numpy.float32):
        return a
    bits = a.view(numpy.uint32)
    return ((bits + numpy.uint32(0x1000)) & numpy.uint32(0xFFFFE000)).view(numpy.float32)


def _compute_type(a: Any, b: Any, mode: str | None) -> str | None:
    """CuPy's get_compute_type for the output's dtype: float32 and complex64 read CUPY_TF32 as an
    integer (raising where it is none), and TF32 applies from compute capability 8.0 on."""
    if numpy.result_type(a, b).char not in "fF":
        return mode
    tf32 = numerics.tf32()
    if tf32.error:
        raise ValueError(tf32.error.removeprefix("ValueError: "))
    cc = int(recorded("Device.compute_capability", state.current, default="0"))
    return "tf32" if tf32.on and (cc // 10, cc % 10) >= numerics.TF32_FROM else mode


def matmul(a: Any, b: Any) -> Any:
    """A recording's "rounding" models another correct device: "float64" accumulates in float64 (a
    different rounding from NumPy's float32 BLAS), "tf32" reads float32 inputs as TF32 (as CUPY_TF32=1)."""
    mode = _compute_type(a, b, state.rounding.get("matmul"))
    if mode == "float64" and getattr(a, "dtype", None) == numpy.float32:
        out = numpy.matmul(a.astype(numpy.float64), b.astype(numpy.float64)).astype(numpy.float32)
    elif mode == "tf32":
        out = numpy.matmul(_tf32(a), _tf32(b))
    else:
        out = numpy.matmul(a, b)
    return faulty("matmul", out)


def _is_view(out: Any, inputs: tuple) -> bool:
    """A reshape, transpose or slice of an input shares its memory: on a GPU that is no kernel."""
    return isinstance(out, numpy.ndarray) and any(
        isinstance(a, numpy.ndarray) and out.size and numpy.shares_memory(out, a) for a in inputs
    )


# Results whose shape depends on the data: CuPy reads a count back from the device first (a copy to
# the host, so a synchronisation: _routines_indexing.pyx _ndarray_nonzero, "# synchronize!").
COUNTING = {"nonzero", "argwhere", "flatnonzero", "compress", "extract"}
COUNTING |= {"unique", "unique_all", "unique_counts", "unique_inverse", "unique_values"}
NO_KERNEL = {"empty", "empty_like"}  # an allocation, no kernel


def reads_a_count(name: str, args: tuple) -> bool:
    return name in COUNTING or (name == "where" and len(args) == 1)


def compute(name: str, fn: Any, args: tuple, kwargs: dict) -> Any:
    """One device computation: CuPy returns arrays, 0-d ones for reductions and for allclose & co.;
    none of CuPy's functions takes NumPy's `device=` (nor a `stream=`)."""
    for key in ("device", "stream"):
        if key in kwargs:
            raise TypeError(f"{name}() got an unexpected keyword argument '{key}'")
    if name == "where" and len(args) == 3:  # cupy.where(c, x, y) is a ufunc (_where_ufunc): no host arrays
        for a in args:
            operand(a)
    given = kwargs.get("out")
    args = tuple(unwrap(a) for a in args)
    kwargs = {k: unwrap(v) for k, v in kwargs.items()}
    COUNTS["to_host"] += reads_a_count(name, args)
    out = faulty(name, fn(*args, **kwargs))
    COUNTS["launches"] += not _is_view(out, args) and name not in NO_KERNEL
    if isinstance(given, ndarray):
        return given  # CuPy returns the `out` it was given
    if isinstance(out, bool | int | float) and not isinstance(out, numpy.generic):
        out = numpy.asarray(out)
    return wrap(out)


def to_host(a: numpy.ndarray) -> numpy.ndarray:
    COUNTS["to_host"] += 1
    return a


def _wrap_indices(key: Any, shape: tuple[int, ...]) -> Any:
    """CuPy wraps out-of-range integer-array indices around (NumPy raises)."""
    items = key if isinstance(key, tuple) else (key,)
    consuming = [i for i in items if i is not None and i is not Ellipsis]
    widths = [i.ndim if isinstance(i, numpy.ndarray) and i.dtype == bool else 1 for i in consuming]
    out, axis = [], 0
    for item in items:
        if item is Ellipsis:
            axis = len(shape) - sum(widths[len([o for o in out if o is not None and o is not Ellipsis]) :])
        elif item is not None:
            if isinstance(item, list):
                item = numpy.asarray(item)
            if isinstance(item, numpy.ndarray) and item.dtype.kind in "iu" and axis < len(shape) and shape[axis]:
                item = item % shape[axis]
            axis += item.ndim if isinstance(item, numpy.ndarray) and item.dtype == bool else 1
        out.append(item)
    return tuple(out) if isinstance(key, tuple) else out[0]


def _masked(key: Any) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return any(isinstance(i, numpy.ndarray) and i.dtype == bool and i.ndim for i in items)


def _advanced(key: Any) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return any(isinstance(i, list | numpy.ndarray) for i in items)


class ndarray:  # noqa: N801 (CuPy's name)
    """cupy.ndarray: device memory (here NumPy memory) that never turns into a NumPy array by itself."""

    __slots__ = ("_a", "_device", "__weakref__")
    __array_priority__ = 100.0
    __hash__ = None

    def __init__(self, shape: Any, dtype: Any = float, memptr: Any = None, strides: Any = None, order: str = "C"):
        self._a, self._device = numpy.empty(shape, dtype, order=order), state.current  # no kernel

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: wrap(self._a.T, self._device))

    @property
    def device(self) -> Any:
        from devcheck.machine.replay.standin.cuda import Device

        return Device(self._device)

    def __len__(self) -> int:
        return len(self._a)

    def __repr__(self) -> str:
        return repr(to_host(self._a))  # CuPy prints a copy on the host

    def __format__(self, spec: str) -> str:
        return format(to_host(self._a), spec)

    # the only ways out to the host, with CuPy's checks (core.pyx get/set)
    def get(self, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True) -> numpy.ndarray:
        if out is None:
            return to_host(self._a).copy()
        if not isinstance(out, numpy.ndarray):
            raise TypeError("Only numpy.ndarray can be obtained from cupy.ndarray")
        if out.dtype != self.dtype:
            raise TypeError(f"{out.dtype} array cannot be obtained from {self.dtype} array")
        if out.shape != self.shape:
            raise ValueError(f"Shape mismatch. Expected shape: {self.shape}, actual shape: {out.shape}")
        out[...] = to_host(self._a)
        return out

    def set(self, arr: Any, stream: Any = None) -> None:
        if not isinstance(arr, numpy.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if arr.dtype != self.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if arr.shape != self.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        COUNTS["launches"] += 1
        self._a[...] = arr

    def item(self) -> Any:
        return to_host(self._a).item()

    def tolist(self) -> Any:
        return to_host(self._a).tolist()

    def tobytes(self, order: str = "C") -> bytes:
        return to_host(self._a).tobytes(order)

    def fill(self, value: Any) -> None:
        COUNTS["launches"] += 1
        self._a.fill(value)

    def __float__(self) -> float:
        return float(to_host(self._a))

    def __int__(self) -> int:
        return int(to_host(self._a))

    def __complex__(self) -> complex:
        return complex(to_host(self._a))

    def __bool__(self) -> bool:
        if self._a.size == 0:
            warnings.warn("The truth value of an empty array is ambiguous.", DeprecationWarning, stacklevel=2)
            return False
        return bool(to_host(self._a))

    def __array__(self, dtype: Any = None) -> numpy.ndarray:
        raise TypeError(_IMPLICIT)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        for i in range(len(self)):
            yield self[i]

    # dispatch from NumPy, as CuPy does (core.pyx __array_ufunc__ / __array_function__)
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        from devcheck.machine.replay.standin import MODULES
        from devcheck.machine.replay.standin.functions import ufunc_

        own = getattr(MODULES["cupy"], ufunc.__name__, None)
        if not isinstance(own, ufunc_) or method not in ("__call__", "at", "reduce"):
            return NotImplemented
        if "out" in kwargs:
            kwargs["out"] = kwargs["out"][0] if len(kwargs["out"]) == 1 else kwargs["out"]
        return getattr(own, method)(*inputs, **kwargs)

    def __array_function__(self, func: Any, kinds: Any, args: Any, kwargs: Any) -> Any:
        from devcheck.machine.replay.standin import MODULES

        if not all(issubclass(t, ndarray | numpy.ndarray) for t in kinds):
            return NotImplemented
        own = MODULES.get(func.__module__.replace("numpy", "cupy", 1))
        fn = getattr(own, func.__name__, None) if own is not None else None
        if fn is None or fn is func or isinstance(fn, types.ModuleType):
            return NotImplemented
        return fn(*args, **kwargs)

    # indexing (_routines_indexing.pyx): wrapping integer arrays; `fill` for a basic index
    def __getitem__(self, key: Any) -> Any:
        key = _wrap_indices(unwrap(key, host_ok=True), self._a.shape)
        COUNTS["to_host"] += _masked(key)  # the mask's count of True, read back (_prepare_mask_indexing_single)
        return _result(self, self._a[key])

    def __setitem__(self, key: Any, value: Any) -> None:
        key = unwrap(key, host_ok=True)
        if _advanced(key):
            value = unwrap(value, host_ok=True)
        elif isinstance(value, list) or (isinstance(value, numpy.ndarray) and value.ndim):
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        else:
            value = unwrap(value)
        check_peer(self._device)
        COUNTS["launches"] += 1
        COUNTS["to_host"] += _masked(key)
        self._a[_wrap_indices(key, self._a.shape)] = value


_BINARY = "add radd sub rsub mul rmul truediv rtruediv floordiv rfloordiv mod rmod pow rpow matmul rmatmul"
_BINARY += " and rand or ror xor rxor lshift rlshift rshift rrshift lt le gt ge eq ne"
_INPLACE = "iadd isub imul itruediv ifloordiv imod ipow iand ior ixor"
_UNARY = "neg pos abs invert"


def _operator(name: str) -> Any:
    def op(self: ndarray, *args: Any) -> Any:
        mine, other = unwrap(self), [operand(a) for a in args]
        COUNTS["launches"] += 1
        if name in ("matmul", "rmatmul"):
            out = matmul(mine, other[0]) if name == "matmul" else matmul(other[0], mine)
        else:
            out = faulty(f"__{name}__", getattr(mine, f"__{name}__")(*other))
        return NotImplemented if out is NotImplemented else wrap(out)

    return op


def _inplace(name: str) -> Any:
    def op(self: ndarray, other: Any) -> ndarray:
        COUNTS["launches"] += 1
        getattr(unwrap(self), f"__{name}__")(operand(other))
        return self

    return op


def _method(name: str) -> Any:
    def method(self: ndarray, *args: Any, **kwargs: Any) -> Any:
        args = tuple(unwrap(a) for a in args)
        kwargs = {k: unwrap(v) for k, v in kwargs.items()}
        COUNTS["to_host"] += reads_a_count(name, (self, *args))
        return _result(self, getattr(self._a, name)(*args, **kwargs))

    return method


def _result(self: ndarray, out: Any) -> Any:
    """A view of `self` stays where it is; anything else a kernel computed on the current device from `self`."""
    if _is_view(out, (self._a,)):
        return wrap(out, self._device)
    check_peer(self._device)
    COUNTS["launches"] += 1
    return wrap(out)


def install_methods(names: list[str]) -> None:
    for n in _BINARY.split() + _UNARY.split():
        setattr(ndarray, f"__{n}__", _operator(n))
    for n in _INPLACE.split():
        setattr(ndarray, f"__{n}__", _inplace(n))
    for n in set(names) - {"item", "tolist", "fill", "dump", "dumps", "tofile", "tobytes"}:
        setattr(ndarray, n, _method(n))
    ndarray.__module__ = "cupy"
