"""A CuPy stand-in: the hardware facts of a recording, NumPy arithmetic behind CuPy's rules.

What a real GPU answers (device count, properties, attributes, compute capability, memory, errors)
comes only from a recording (`devcheck.machine.recording`); nothing here invents a hardware value.
Where CuPy behaves differently from NumPy, the stand-in behaves like CuPy, because that is where
code written against NumPy breaks on a GPU:
- arrays are not numpy.ndarray subclasses and have no `__array_namespace__`;
- implicit conversion to NumPy raises TypeError (`numpy.asarray(x)`); `.get()` / `cupy.asnumpy` copy out;
- NumPy arrays are refused as operands of device arithmetic (CuPy: "Unsupported type");
- NumPy's ufuncs and functions dispatch to the stand-in through `__array_ufunc__` / `__array_function__`;
- reductions return 0-d device arrays, not scalars; arrays carry `.device` (a `cupy.cuda.Device` with `.id`);
- out-of-range integer-array indices wrap around instead of raising.
Every name it offers exists on the real module with the same kind (tests/test_contract.py).

It also counts what costs time on a real GPU: `COUNTS["launches"]` (device computations, about one
kernel each), `COUNTS["to_host"]` (device-to-host copies, each a synchronisation) and `COUNTS["syncs"]`
(explicit synchronisations). `ElementwiseKernel` runs its operation as Python over NumPy arrays when
it is also valid Python (`y = 2 * x + 1`); `RawKernel` cannot be compiled without a GPU and says so.
"""

from __future__ import annotations

import collections
import sys
import time
import types
from typing import Any

import numpy

from devcheck.machine import cupy_names as names
from devcheck.machine.recording import Recording, answers, decode, key_of

COUNTS: collections.Counter = collections.Counter()
_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy array explicitly."
)


class _State:
    recording: Recording = Recording()
    answers: dict = {}
    current: int = 0
    faults: dict = {}
    rounding: dict = {}


_state = _State()


class CUDARuntimeError(RuntimeError):
    """As cupy_backends.cuda.api.runtime.CUDARuntimeError: CUDA's own words."""


def _answer(fn: str, *args: Any) -> Any:
    entry = _state.answers.get(key_of(fn, list(args)))
    if entry is None:
        raise CUDARuntimeError(f"cudaErrorUnknown: {fn}{args} is not in the recording")
    if "error" in entry:
        raise CUDARuntimeError(entry["error"].get("str", "cudaErrorUnknown"))
    return decode(entry.get("result"))


# --- arrays -----------------------------------------------------------------------------------------------


def _wrap(value: Any, device: int | None = None) -> Any:
    if isinstance(value, numpy.ndarray):
        out = ndarray.__new__(ndarray)
        out._a, out._device = value, _state.current if device is None else device
        return out
    if isinstance(value, numpy.generic):
        return _wrap(numpy.asarray(value), device)
    if isinstance(value, tuple):
        return tuple(_wrap(v, device) for v in value)
    if isinstance(value, list) and value and all(isinstance(v, numpy.ndarray) for v in value):
        return [_wrap(v, device) for v in value]
    return value


def _unwrap(value: Any, host_ok: bool = False) -> Any:
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, numpy.ndarray) and not host_ok:
        raise TypeError(f"Unsupported type {type(value)}")
    if isinstance(value, tuple):
        return tuple(_unwrap(v, host_ok) for v in value)
    if isinstance(value, list):
        return [_unwrap(v, host_ok) for v in value]
    if isinstance(value, Device):
        return None
    return value


def _faulty(name: str, out: Any) -> Any:
    """A synthetic recording's faults: a number scales `name`'s results, a text is the error it raises."""
    fault = _state.faults.get(name)
    if isinstance(fault, str):
        raise RuntimeError(fault)
    if fault is not None and isinstance(out, numpy.ndarray) and out.dtype.kind == "f":
        return out * out.dtype.type(fault)
    return out


def _tf32(a: Any) -> Any:
    """float32 rounded to TF32's 10-bit mantissa, as tensor cores read it (round to nearest)."""
    if not (isinstance(a, numpy.ndarray) and a.dtype == numpy.float32):
        return a
    bits = a.view(numpy.uint32)
    return ((bits + numpy.uint32(0x1000)) & numpy.uint32(0xFFFFE000)).view(numpy.float32)


def _matmul(a: Any, b: Any) -> Any:
    """A recording's "rounding" models another correct device: "float64" accumulates in float64 (a
    different rounding from NumPy's float32 BLAS), "tf32" reads float32 inputs as TF32 (CUPY_TF32=1)."""
    mode = _state.rounding.get("matmul")
    if mode == "float64" and getattr(a, "dtype", None) == numpy.float32:
        return numpy.matmul(a.astype(numpy.float64), b.astype(numpy.float64)).astype(numpy.float32)
    if mode == "tf32":
        return numpy.matmul(_tf32(a), _tf32(b))
    return numpy.matmul(a, b)


def _compute(name: str, fn: Any, args: tuple, kwargs: dict, host_ok: bool = False) -> Any:
    args = tuple(_unwrap(a, host_ok) for a in args)
    kwargs = {k: _unwrap(v, host_ok) for k, v in kwargs.items() if k not in ("device", "stream")}
    COUNTS["launches"] += 1
    if name == "matmul" and not kwargs:
        return _wrap(_faulty(name, _matmul(*args)))
    return _wrap(_faulty(name, fn(*args, **kwargs)))


def _to_host(a: numpy.ndarray) -> numpy.ndarray:
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
            out.append(item)
            continue
        if item is None:
            out.append(item)
            continue
        if isinstance(item, list):
            item = numpy.asarray(item)
        if isinstance(item, numpy.ndarray) and item.dtype.kind in "iu" and axis < len(shape) and shape[axis]:
            item = item % shape[axis]
        out.append(item)
        axis += item.ndim if isinstance(item, numpy.ndarray) and item.dtype == bool else 1
    return tuple(out) if isinstance(key, tuple) else out[0]


class ndarray:  # noqa: N801 (CuPy's name)
    """cupy.ndarray: device memory (here NumPy memory) that never turns into a NumPy array by itself."""

    __slots__ = ("_a", "_device", "__weakref__")
    __array_priority__ = 100.0
    __hash__ = None

    def __init__(self, shape: Any, dtype: Any = float, memptr: Any = None, strides: Any = None, order: str = "C"):
        self._a, self._device = numpy.empty(shape, dtype, order=order), _state.current
        COUNTS["launches"] += 1

    # facts
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    device = property(lambda self: Device(self._device))
    T = property(lambda self: _wrap(self._a.T, self._device))

    def __len__(self) -> int:
        return len(self._a)

    def __repr__(self) -> str:
        return repr(self._a).replace("array", "array", 1)

    __str__ = __repr__

    # the only ways out to the host
    def get(self, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True) -> numpy.ndarray:
        host = _to_host(self._a)
        if out is not None:
            out[...] = host
            return out
        return host.copy()

    def set(self, arr: Any, stream: Any = None) -> None:
        COUNTS["launches"] += 1
        self._a[...] = numpy.asarray(arr)

    def item(self) -> Any:
        return _to_host(self._a).item()

    def tolist(self) -> Any:
        return _to_host(self._a).tolist()

    def tobytes(self, order: str = "C") -> bytes:
        return _to_host(self._a).tobytes(order)

    def fill(self, value: Any) -> None:
        COUNTS["launches"] += 1
        self._a.fill(value)

    def __float__(self) -> float:
        return float(_to_host(self._a))

    def __int__(self) -> int:
        return int(_to_host(self._a))

    def __bool__(self) -> bool:
        return bool(_to_host(self._a))

    def __array__(self, dtype: Any = None, copy: Any = None) -> numpy.ndarray:
        raise TypeError(_IMPLICIT)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # dispatch from NumPy, as CuPy does
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        own = getattr(_cupy, ufunc.__name__, None)
        if not isinstance(own, ufunc_):
            return NotImplemented
        if "out" in kwargs:
            kwargs["out"] = tuple(_unwrap(o) for o in kwargs["out"])
        target = getattr(ufunc, method)
        return _compute(ufunc.__name__, target, inputs, kwargs)

    def __array_function__(self, func: Any, kinds: Any, args: Any, kwargs: Any) -> Any:
        own = getattr(_cupy, func.__name__, None)
        if own is None or isinstance(own, types.ModuleType):
            return NotImplemented
        return own(*args, **kwargs)

    # indexing
    def __getitem__(self, key: Any) -> Any:
        key = _wrap_indices(_unwrap(key, host_ok=True), self._a.shape)
        COUNTS["launches"] += 1
        return _wrap(self._a[key], self._device)

    def __setitem__(self, key: Any, value: Any) -> None:
        key = _wrap_indices(_unwrap(key, host_ok=True), self._a.shape)
        COUNTS["launches"] += 1
        self._a[key] = _unwrap(value)


_BINARY = "add radd sub rsub mul rmul truediv rtruediv floordiv rfloordiv mod rmod pow rpow matmul rmatmul"
_BINARY += " and rand or ror xor rxor lshift rlshift rshift rrshift lt le gt ge eq ne"
_INPLACE = "iadd isub imul itruediv ifloordiv imod ipow iand ior ixor"
_UNARY = "neg pos abs invert"


def _operator(name: str) -> Any:
    def op(self: ndarray, *args: Any) -> Any:
        other = [_unwrap(a) for a in args]
        COUNTS["launches"] += 1
        if name in ("matmul", "rmatmul"):
            out = _matmul(self._a, other[0]) if name == "matmul" else _matmul(other[0], self._a)
        else:
            out = getattr(self._a, f"__{name}__")(*other)
        if out is NotImplemented:
            return NotImplemented
        return _wrap(_faulty("matmul" if name in ("matmul", "rmatmul") else f"__{name}__", out), self._device)

    return op


def _inplace(name: str) -> Any:
    def op(self: ndarray, other: Any) -> ndarray:
        COUNTS["launches"] += 1
        getattr(self._a, f"__{name}__")(_unwrap(other))
        return self

    return op


def _method(name: str) -> Any:
    def method(self: ndarray, *args: Any, **kwargs: Any) -> Any:
        args = tuple(_unwrap(a) for a in args)
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        COUNTS["launches"] += 1
        return _wrap(getattr(self._a, name)(*args, **kwargs), self._device)

    return method


for _n in _BINARY.split() + _UNARY.split():
    setattr(ndarray, f"__{_n}__", _operator(_n))
for _n in _INPLACE.split():
    setattr(ndarray, f"__{_n}__", _inplace(_n))
for _n in set(names.NDARRAY_METHODS) - {"item", "tolist", "fill", "dump", "dumps", "tofile", "tobytes"}:
    setattr(ndarray, _n, _method(_n))
ndarray.__module__ = "cupy"


# --- functions and ufuncs ---------------------------------------------------------------------------------


class ufunc_:  # noqa: N801
    """cupy.ufunc: callable, with `.at` for scatter updates (cupy.add.at)."""

    def __init__(self, np_ufunc: Any):
        self._u, self.__name__ = np_ufunc, np_ufunc.__name__
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _compute(self.__name__, self._u, args, kwargs)

    def at(self, a: ndarray, indices: Any, b: Any = None) -> None:
        COUNTS["launches"] += 1
        self._u.at(_unwrap(a), _unwrap(indices, host_ok=True), *(() if b is None else (_unwrap(b),)))

    def reduce(self, a: Any, axis: Any = 0, dtype: Any = None, out: Any = None, keepdims: bool = False) -> Any:
        return _compute(self.__name__, self._u.reduce, (a,), {"axis": axis, "dtype": dtype, "keepdims": keepdims})

    def __repr__(self) -> str:
        return f"<ufunc '{self.__name__}'>"


ufunc_.__name__ = ufunc_.__qualname__ = "ufunc"
ufunc_.__module__ = "cupy"

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


def _plain(name: str, fn: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        return fn(*(_unwrap(a) for a in args), **{k: _unwrap(v) for k, v in kwargs.items()})

    call.__name__ = name
    return call


def _function(name: str, fn: Any, host_ok: bool = False) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        return _compute(name, fn, args, kwargs, host_ok)

    call.__name__ = name
    return call


def _creation(name: str) -> Any:
    fn = getattr(numpy, name)

    def call(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("device", None)
        return _compute(name, fn, args, kwargs)

    call.__name__ = name
    return call


def _host_input(name: str) -> Any:
    def call(obj: Any, dtype: Any = None, *args: Any, copy: Any = None, **kwargs: Any) -> Any:
        if isinstance(obj, ndarray):
            same = dtype is None or numpy.dtype(dtype) == obj.dtype
            if same and (name == "asarray" or copy is False) and obj._device == _state.current:
                return obj
            COUNTS["launches"] += 1
            return _wrap(numpy.array(obj._a, dtype=dtype, copy=True))
        COUNTS["launches"] += 1  # a host-to-device copy
        host = numpy.array(obj, dtype=dtype, copy=True)
        return _wrap(host)

    call.__name__ = name
    return call


def asnumpy(a: Any, stream: Any = None, order: str = "C", out: Any = None, blocking: bool = True) -> numpy.ndarray:
    if isinstance(a, ndarray):
        return a.get(out=out)
    return numpy.asarray(a)


def get_array_module(*args: Any) -> Any:
    return _cupy if any(isinstance(a, ndarray) for a in args) else numpy


def is_available() -> bool:
    return bool(_answer("is_available"))


class ElementwiseKernel:
    """Runs `operation` as Python over NumPy arrays when it is also valid Python; NVRTC cannot run here."""

    def __init__(self, in_params: str, out_params: str, operation: str, name: str = "kernel", **kwargs: Any):
        self.in_names, self.out_names = _param_names(in_params), _param_names(out_params)
        self.out_types = _param_types(out_params)
        self.operation, self.name = operation, name
        try:
            self._code = compile(operation.replace(";", "\n").strip(), name, "exec")
        except SyntaxError as e:
            raise NotImplementedError(
                f"the CuPy stand-in runs only elementwise operations that are also valid Python: {e}"
            ) from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ins = [_unwrap(a) for a in args[: len(self.in_names)]]
        outs = list(args[len(self.in_names) :])
        shape = numpy.broadcast_shapes(*(numpy.shape(a) for a in ins))
        arrays = [a for a in ins if isinstance(a, numpy.ndarray)]
        for dtype in self.out_types[len(outs) :]:
            like = arrays[0].dtype if arrays else numpy.float64
            outs.append(_wrap(numpy.empty(shape, numpy.dtype(like if dtype == "T" else dtype))))
        scope = {"__builtins__": {}, **_MATH, **dict(zip(self.in_names, ins))}
        scope.update({n: o._a.copy() for n, o in zip(self.out_names, outs)})
        COUNTS["launches"] += 1
        _faulty("ElementwiseKernel", None)
        exec(self._code, scope)
        for n, o in zip(self.out_names, outs):
            o._a[...] = scope[n]
        return outs[0] if len(outs) == 1 else tuple(outs)


_MATH = {n: getattr(numpy, n) for n in ("sqrt", "exp", "log", "tanh", "abs", "fabs", "maximum", "minimum")}
_MATH |= {"max": numpy.maximum, "min": numpy.minimum}


def _param_names(params: str) -> list[str]:
    return [p.split()[-1] for p in params.split(",") if p.strip()]


def _param_types(params: str) -> list[str]:
    return [p.split()[0] for p in params.split(",") if p.strip()]


class RawKernel:
    """CUDA C needs NVRTC and a GPU: the stand-in refuses it the way a broken NVRTC would."""

    def __init__(self, code: str, name: str, options: tuple = (), **kwargs: Any):
        self.code, self.name = code, name

    def __call__(self, grid: Any, block: Any, args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"the CuPy stand-in cannot compile CUDA C (kernel {self.name!r}) without a GPU")


# --- cupy.cuda ------------------------------------------------------------------------------------------


class Device:
    """cupy.cuda.Device: facts from the recording; `with Device(i):` makes it current."""

    def __init__(self, device: Any = None):
        self.id = _state.current if device is None else int(getattr(device, "id", device))
        self._previous: list[int] = []

    def _check(self) -> None:
        count = _answer("cuda.runtime.getDeviceCount")
        if not 0 <= self.id < count:
            raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")

    def use(self) -> None:
        self._check()
        _state.current = self.id

    def __enter__(self) -> Device:
        self._check()
        self._previous.append(_state.current)
        _state.current = self.id
        return self

    def __exit__(self, *exc: Any) -> None:
        _state.current = self._previous.pop()

    def synchronize(self) -> None:
        COUNTS["syncs"] += 1

    compute_capability = property(lambda self: _answer("Device.compute_capability", self.id))
    attributes = property(lambda self: _answer("Device.attributes", self.id))
    pci_bus_id = property(lambda self: _answer("Device.pci_bus_id", self.id))
    mem_info = property(lambda self: _answer("Device.mem_info", self.id))

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Device) and other.id == self.id

    __hash__ = None  # as CuPy's: a Device is not a dict key

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


class Event:
    def __init__(self, block: bool = False, disable_timing: bool = False, interprocess: bool = False):
        self.time = 0.0

    def record(self, stream: Any = None) -> None:
        self.time = time.perf_counter()

    def synchronize(self) -> None:
        COUNTS["syncs"] += 1


def get_elapsed_time(start_event: Event, end_event: Event) -> float:
    return (end_event.time - start_event.time) * 1e3


class Stream:
    null: Stream

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False):
        pass

    def synchronize(self) -> None:
        COUNTS["syncs"] += 1

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


Stream.null = Stream(null=True)


def alloc_pinned_memory(size: int) -> bytearray:
    return bytearray(size)


def get_current_stream(device_id: int = -1) -> Stream:
    return Stream.null


def _runtime() -> types.ModuleType:
    runtime = types.ModuleType("cupy.cuda.runtime")
    runtime.CUDARuntimeError = CUDARuntimeError
    runtime.getDeviceCount = lambda: _answer("cuda.runtime.getDeviceCount")
    runtime.runtimeGetVersion = lambda: _answer("cuda.runtime.runtimeGetVersion")
    runtime.driverGetVersion = lambda: _answer("cuda.runtime.driverGetVersion")
    runtime.getDeviceProperties = lambda device: _answer("cuda.runtime.getDeviceProperties", device)

    def get_device() -> int:
        Device(_state.current)._check()
        return _state.current

    def set_device(device: int) -> None:
        Device(device).use()

    def device_synchronize() -> None:
        COUNTS["syncs"] += 1

    runtime.getDevice, runtime.setDevice, runtime.deviceSynchronize = get_device, set_device, device_synchronize
    return runtime


# --- the module tree ------------------------------------------------------------------------------------------


def _build() -> dict[str, types.ModuleType]:
    cupy = types.ModuleType("cupy", "CuPy stand-in (devcheck.machine.standin): NumPy arithmetic, recorded facts")
    for name in names.UFUNCS:
        setattr(cupy, name, ufunc_(getattr(numpy, name)))
    for name in set(names.FUNCTIONS) - NOT_OFFERED:
        fn = getattr(numpy, name)
        if name in CREATION:
            setattr(cupy, name, _creation(name))
        elif name in HOST_INPUT:
            setattr(cupy, name, _host_input(name))
        elif name in PLAIN:
            setattr(cupy, name, _plain(name, fn))
        else:
            setattr(cupy, name, _function(name, fn))
    for name in NUMPY_CLASSES | VALUES:
        setattr(cupy, name, getattr(numpy, name))
    cupy.ndarray, cupy.ufunc, cupy.asnumpy, cupy.get_array_module = ndarray, ufunc_, asnumpy, get_array_module
    cupy.is_available, cupy.ElementwiseKernel, cupy.RawKernel = is_available, ElementwiseKernel, RawKernel

    cuda = types.ModuleType("cupy.cuda")
    device_module = types.ModuleType("cupy.cuda.device")
    device_module.Device = Device
    cuda.runtime, cuda.device, cuda.Device, cuda.Event, cuda.Stream = _runtime(), device_module, Device, Event, Stream
    cuda.get_elapsed_time, cuda.alloc_pinned_memory = get_elapsed_time, alloc_pinned_memory
    cuda.get_current_stream = get_current_stream
    cupy.cuda = cuda

    linalg, fft = types.ModuleType("cupy.linalg"), types.ModuleType("cupy.fft")
    for module, host, offered in ((linalg, numpy.linalg, names.LINALG), (fft, numpy.fft, names.FFT)):
        for name in offered:
            setattr(module, name, _function(name, getattr(host, name)))
    cupy.linalg, cupy.fft = linalg, fft

    cupyx = types.ModuleType("cupyx")
    cupyx.scatter_add = lambda a, slices, value: cupy.add.at(a, slices, value)
    cupyx.scatter_max = lambda a, slices, value: cupy.maximum.at(a, slices, value)
    cupyx.scatter_min = lambda a, slices, value: cupy.minimum.at(a, slices, value)
    return {
        "cupy": cupy,
        "cupy.cuda": cuda,
        "cupy.cuda.runtime": cuda.runtime,
        "cupy.cuda.device": device_module,
        "cupy.linalg": linalg,
        "cupy.fft": fft,
        "cupyx": cupyx,
    }


MODULES = _build()
_cupy = MODULES["cupy"]


def activate(recording: Recording) -> types.ModuleType:
    """Answer with this recording's facts from now on; returns the `cupy` module."""
    if recording.cupy is None:
        raise ImportError(
            f"No module named 'cupy' (the recording comes from a machine without CuPy: {recording.about})"
        )
    _state.recording, _state.answers = recording, answers(recording.cupy)
    _state.faults, _state.rounding, _state.current = dict(recording.faults), dict(recording.rounding), 0
    version = _state.answers.get(key_of("__version__", []))
    _cupy.__version__ = version["result"] if version else "unknown (not in the recording)"
    return _cupy


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
