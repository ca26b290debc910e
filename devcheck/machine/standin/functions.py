"""CuPy's ufuncs and module functions over the stand-in's arrays: device arrays and scalars in,
device arrays out (0-d ones for reductions), host data only where CuPy takes it (asarray & co)."""

from __future__ import annotations

import functools
from typing import Any

import numpy

from devcheck.machine.standin.arrays import _wrap_indices, compute, matmul, ndarray, operand, unwrap, wrap
from devcheck.machine.standin.state import COUNTS, state

# The ufuncs with a scatter kernel (ufunc.at), and the dtypes cupy.add.at takes.
AT = {"add", "subtract", "maximum", "minimum", "bitwise_and", "bitwise_or", "bitwise_xor"}
ADD_AT_DTYPES = {"int32", "int64", "uint32", "uint64", "float16", "float32", "float64"}


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
        if self.__name__ == "matmul" and not kwargs:
            COUNTS["launches"] += 1
            return wrap(matmul(*inputs))
        return compute(
            self.__name__, self._u, tuple(wrap(a) if isinstance(a, numpy.ndarray) else a for a in inputs), kwargs
        )

    def at(self, a: ndarray, indices: Any, b: Any = None) -> None:
        if self.__name__ not in AT or (self.__name__ == "add" and a.dtype.name not in ADD_AT_DTYPES):
            raise NotImplementedError(f"`{self.__name__}.at` is not supported for {a.dtype}")
        index = _wrap_indices(unwrap(indices, host_ok=True), a.shape)
        COUNTS["launches"] += 1
        self._u.at(unwrap(a), index, *(() if b is None else (unwrap(b, host_ok=True),)))

    def reduce(self, a: Any, axis: Any = 0, dtype: Any = None, out: Any = None, keepdims: bool = False) -> Any:
        if self.__name__ not in ("add", "multiply"):
            raise NotImplementedError(f"reduction for {self.__name__} is not supported")
        return compute(self.__name__, self._u.reduce, (a,), {"axis": axis, "dtype": dtype, "keepdims": keepdims})

    def __repr__(self) -> str:
        return f"<ufunc '{self.__name__}'>"


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
        kwargs.pop("device", None)
        return compute(name, fn, args, kwargs)

    return call


def host_input(name: str) -> Any:
    """cupy.asarray and friends: host data in (a host-to-device copy), device arrays kept or copied."""

    def call(obj: Any, dtype: Any = None, *args: Any, copy: Any = None, **kwargs: Any) -> Any:
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
