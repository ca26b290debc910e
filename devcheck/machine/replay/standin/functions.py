"""CuPy's ufuncs and module functions over the stand-in's arrays: device arrays and scalars in,
device arrays out (0-d ones for reductions), host data only where CuPy takes it (asarray & co)."""

from __future__ import annotations

import functools
from typing import Any

import numpy

from devcheck.machine.replay.standin.arrays import (
    _wrap_indices,
    broadcast,
    compute,
    matmul,
    ndarray,
    operand,
    unwrap,
    wrap,
)
from devcheck.machine.replay.standin.state import COUNTS, state

# The ufuncs with a scatter kernel (ufunc.at) and the dtypes each takes, as its TypeError lists them
# (_routines_indexing.pyx _scatter_op_single: CUDA has atomics for these only).
AT = {
    "add": "int32, int64, float16, float32, float64, uint32, uint64",
    "subtract": "int32, uint32,",
    "maximum": "int32, int64, float32, float64, uint32, uint64",
    "minimum": "int32, int64, float32, float64, uint32, uint64",
    "bitwise_and": "int32, int64, uint32, uint64",
    "bitwise_or": "int32, int64, uint32, uint64",
    "bitwise_xor": "int32, int64, uint32, uint64",
}


class ufunc_:  # noqa: N801
    """cupy.ufunc: device arrays and scalars only; `out`, `dtype`, `casting` only (_kernel.pyx)."""

    def __init__(self, np_ufunc: Any):
        self._u, self.__name__ = np_ufunc, np_ufunc.__name__
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        unknown = set(kwargs) - {"out", "dtype", "casting"}
        if unknown:
            raise TypeError(f"Wrong arguments {kwargs}")
        inputs = [operand(a) for a in args]
        out = kwargs.get("out")
        self._check_outputs(list(args), [o for o in (out if isinstance(out, tuple) else (out,)) if o is not None])
        if self.__name__ == "matmul" and not kwargs:
            COUNTS["launches"] += 1
            return wrap(matmul(*inputs))
        return compute(
            self.__name__, self._u, tuple(wrap(a) if isinstance(a, numpy.ndarray) else a for a in inputs), kwargs
        )

    def _check_outputs(self, args: list[Any], outs: list[Any]) -> None:
        """_get_out_args_from_optionals: an output is a device array of the shape that the inputs and
        outputs broadcast to together (NumPy would broadcast a larger output instead)."""
        if outs and args[self.nin :]:
            raise ValueError("Cannot specify 'out' as both a positional and keyword argument")
        outs += args[self.nin :]
        if not outs:
            return
        for o in outs:  # _preprocess_optional_args: a host array is refused as an input is (a device
            if not isinstance(o, ndarray):  # array's device is checked once, when it is computed into)
                operand(o)
        shape = broadcast(args[: self.nin] + outs)
        for o in outs:
            if not isinstance(o, ndarray):
                raise TypeError("Output arguments type must be cupy.ndarray")
            if o.shape != shape:
                raise ValueError("Out shape is mismatched")

    def at(self, a: ndarray, indices: Any, b: Any = None) -> None:
        if self.__name__ not in AT:
            raise NotImplementedError(f"`cupy_{self.__name__}.at` is not supported yet")
        index = _wrap_indices(unwrap(indices, host_ok=True), a.shape)
        items = [i for i in (index if isinstance(index, tuple) else (index,)) if isinstance(i, numpy.ndarray)]
        one_mask = len(items) == 1 and items[0].dtype == bool  # the mask kernels take any dtype
        if items and not one_mask and a.dtype.name not in AT[self.__name__].replace(",", "").split():
            raise TypeError(f"cupy.{self.__name__}.at only supports {AT[self.__name__]} as data type")
        COUNTS["launches"] += 1
        COUNTS["to_host"] += any(i.dtype == bool for i in items)  # a mask's count, read back first
        self._u.at(unwrap(a), index, *(() if b is None else (unwrap(b, host_ok=True),)))

    def reduce(self, a: Any, axis: Any = 0, dtype: Any = None, out: Any = None, keepdims: bool = False) -> Any:
        """CuPy has add's (a sum) and multiply's (a product) only (_kernel.pyx ufunc.reduce)."""
        if self.__name__ not in ("add", "multiply"):
            raise NotImplementedError(f"`cupy_{self.__name__}.reduce` is not supported yet")
        kwargs = {"axis": axis, "dtype": dtype, "keepdims": keepdims} | ({} if out is None else {"out": out})
        return compute(self.__name__, self._u.reduce, (a,), kwargs)

    def __repr__(self) -> str:
        return f"<ufunc 'cupy_{self.__name__}'>"  # CuPy's ufuncs are named cupy_add & co


ufunc_.__name__ = ufunc_.__qualname__ = "ufunc"
ufunc_.__module__ = "cupy"


def function(name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        return compute(name, fn, args, kwargs)

    return call


def plain(name: str, fn: Any) -> Any:
    """No device data in or out (dtype rules, shapes, print settings)."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        return fn(*(unwrap(a) for a in args), **{k: unwrap(v) for k, v in kwargs.items()})

    return call


def creation(name: str) -> Any:
    fn = getattr(numpy, name)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        return compute(name, fn, args, kwargs)

    return call


# Their keywords besides `dtype` (CuPy 14.2's signatures; none takes NumPy's `device`).
KEYWORDS = {
    "array": {"copy", "order", "subok", "ndmin", "blocking"},
    "ascontiguousarray": set(),
    "asfortranarray": set(),
}
KEYWORDS |= {"asarray": {"order", "copy", "blocking"}, "asanyarray": {"order", "copy", "blocking"}}


def take(a: ndarray, indices: Any, axis: Any = None, out: Any = None) -> Any:
    """cupy.take and ndarray.take: an index out of range wraps around (_take_kernel_core: indices % range)."""
    if out is not None and out.dtype != a.dtype:
        raise TypeError("Output dtype mismatch")
    result = numpy.take(unwrap(a), unwrap(indices, host_ok=True), axis=axis, mode="wrap")
    COUNTS["launches"] += 1
    if out is None:
        return wrap(result, a._device)
    if out.shape != result.shape:
        raise ValueError("Output shape mismatch")
    unwrap(out)[...] = result
    return out


def host_input(name: str) -> Any:
    """cupy.asarray and friends: host data in (a host-to-device copy), device arrays kept or copied."""

    def call(obj: Any, dtype: Any = None, *args: Any, copy: Any = None, **kwargs: Any) -> Any:
        unknown = set(kwargs) - KEYWORDS[name] | ({"copy"} - KEYWORDS[name] if copy is not None else set())
        if unknown:
            raise TypeError(f"{name}() got an unexpected keyword argument '{sorted(unknown)[0]}'")
        if isinstance(obj, list | tuple) and obj and all(isinstance(o, ndarray) for o in obj):
            obj = numpy.stack([o._a for o in obj])
        elif isinstance(obj, ndarray):
            same = dtype is None or numpy.dtype(dtype) == obj.dtype
            if same and (name == "asarray" or copy is False) and obj._device == state.current:
                return obj
            obj = obj._a
        COUNTS["launches"] += 1
        return wrap(numpy.array(obj, dtype=dtype, copy=True))

    call.__name__ = name
    return call


def asnumpy(a: Any, stream: Any = None, order: str = "C", out: Any = None, *, blocking: bool = True) -> numpy.ndarray:
    if isinstance(a, ndarray):
        return a.get(out=out)
    if out is not None:
        out[...] = a
        return out
    return numpy.asarray(a)
