"""Making tensors: from data, or from the one host generator (so every device starts alike)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy

from devcheck.engine import backend
from devcheck.engine.backend import FLOAT_DTYPES, Device, get_device
from devcheck.engine.tensor import Tensor

DEFAULT_DTYPE = "float32"


def tensor(data: Any, dtype: str | None = None, device: str | Device = "cpu", requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (a Tensor, an array of any registered device, or
    nested Python numbers). Python floats become float32, as in PyTorch; arrays keep their dtype."""
    target = get_device(device)
    if isinstance(data, Tensor):
        host = data.numpy()
    elif isinstance(data, numpy.ndarray | numpy.generic):
        host = numpy.asarray(data)
    else:
        try:
            host = numpy.asarray(backend.device_of(data).to_host(data))
        except TypeError:
            host = numpy.asarray(data)
            if host.dtype == numpy.float64:
                host = host.astype(DEFAULT_DTYPE)
    if dtype is not None:
        host = host.astype(dtype)
    if requires_grad and host.dtype.name not in FLOAT_DTYPES:
        raise TypeError(f"only float tensors can require grad, this one is {host.dtype.name}")
    return Tensor(target.from_host(numpy.array(host, copy=True)), target, requires_grad=requires_grad)


def _shape(shape: Sequence[Any]) -> tuple[int, ...]:
    return tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else tuple(shape)


def zeros(*shape, dtype: str = DEFAULT_DTYPE, device: str | Device = "cpu", requires_grad: bool = False) -> Tensor:
    return tensor(numpy.zeros(_shape(shape), dtype=dtype), device=device, requires_grad=requires_grad)


def ones(*shape, dtype: str = DEFAULT_DTYPE, device: str | Device = "cpu", requires_grad: bool = False) -> Tensor:
    return tensor(numpy.ones(_shape(shape), dtype=dtype), device=device, requires_grad=requires_grad)


def zeros_like(x: Tensor) -> Tensor:
    return zeros(x.shape, dtype=x.dtype, device=x.device)


def ones_like(x: Tensor) -> Tensor:
    return ones(x.shape, dtype=x.dtype, device=x.device)


def randn(*shape, dtype: str = DEFAULT_DTYPE, device: str | Device = "cpu", requires_grad: bool = False) -> Tensor:
    """Standard normal samples drawn on the host generator, then copied to the device."""
    data = backend.generator().standard_normal(_shape(shape)).astype(dtype)
    return tensor(data, device=device, requires_grad=requires_grad)


def rand(*shape, dtype: str = DEFAULT_DTYPE, device: str | Device = "cpu", requires_grad: bool = False) -> Tensor:
    data = backend.generator().random(_shape(shape)).astype(dtype)
    return tensor(data, device=device, requires_grad=requires_grad)


def arange(*args, dtype: str = "int64", device: str | Device = "cpu") -> Tensor:
    return tensor(numpy.arange(*args, dtype=dtype), device=device)
