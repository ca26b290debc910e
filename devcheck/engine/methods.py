"""Tensor's operators and methods (`a + b`, `x.sum(axis=1)`, `x[idx]`, `x.to("cuda")`), as thin
wrappers over the ops, attached to Tensor at import so that tensor.py needs to know no op."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy

from devcheck.engine.backend import FLOAT_DTYPES, get_device
from devcheck.engine.ops import (
    Add,
    Axis,
    Cast,
    Concat,
    Exp,
    GetItem,
    Log,
    MatMul,
    MaxMin,
    Mul,
    Permute,
    Pow,
    ReLU,
    Reshape,
    Stack,
    Sum,
    Tanh,
    ToDevice,
    Where,
    reduction_axes,
    take_axis_of,
)
from devcheck.engine.tensor import Tensor, raise_two_devices


def _operands(a: Tensor, b: Any) -> tuple[Tensor, Any]:
    """Python scalars stay scalars (they take the tensor's dtype); arrays and lists become tensors
    on a's device; two float tensors must share a dtype (no silent promotion)."""
    if isinstance(b, int | float | bool):
        return a, b
    if not isinstance(b, Tensor):
        from devcheck.engine.creation import tensor

        b = tensor(b, dtype=a.dtype if a.dtype in FLOAT_DTYPES else None, device=a.device)
    if a.dtype != b.dtype:
        a_float, b_float = a.dtype in FLOAT_DTYPES, b.dtype in FLOAT_DTYPES
        if a_float and b_float:
            raise TypeError(f"dtype mismatch: {a.dtype} and {b.dtype}; convert one with .to('{a.dtype}')")
        if a_float:
            b = b.to(a.dtype)
        elif b_float:
            a = a.to(b.dtype)
    return a, b


def _binary(op: type) -> Any:
    """a + b style: the op on (a, b), b converted to a's device and dtype rules."""

    def apply(a: Tensor, b: Any) -> Tensor:
        return op.apply(*_operands(a, b))

    return apply


def _reflected(op: type) -> Any:
    """2.0 - x style (Python's __rsub__ and friends): the op on (b, a)."""

    def apply(a: Tensor, b: Any) -> Tensor:
        a, b = _operands(a, b)
        return op.apply(b, a)

    return apply


add, mul, pow_, matmul = (_binary(op) for op in (Add, Mul, Pow, MatMul))
rpow, rmatmul = (_reflected(op) for op in (Pow, MatMul))


def _unary(op: type) -> Any:
    def apply(x: Tensor) -> Tensor:
        return op.apply(x)

    return apply


exp, log, tanh, relu = (_unary(op) for op in (Exp, Log, Tanh, ReLU))


# --- composed: their backward follows from the primitives' (micrograd's way) -----------------------------


def neg(x):
    return x * -1.0


def sub(a, b):
    a, b = _operands(a, b)
    return a + (-b if isinstance(b, int | float | bool) else neg(b))


def rsub(a, b):  # b - a, b a Python scalar or an array
    a, b = _operands(a, b)
    return neg(a) + b


def div(a, b):
    a, b = _operands(a, b)
    return a * (1.0 / b if isinstance(b, int | float | bool) else b**-1.0)


def rdiv(a, b):  # b / a
    a, b = _operands(a, b)
    return a**-1.0 * b


def sqrt(x):
    return x**0.5


def sigmoid(x):
    return tanh(x * 0.5) * 0.5 + 0.5  # never overflows, unlike 1 / (1 + exp(-x))


def abs_(x):
    """x times its sign, a constant: the gradient is sign(x), 0 at 0 (PyTorch's) and nan at nan. copysign
    keeps a zero's own sign, so that |-0.0| is -0.0 * -0.0 = 0.0. NumPy's and CuPy's own functions: on CuPy,
    array-api-compat's sign reads a nan mask's count back to the host, a synchronisation on a GPU."""
    xp, real = x.device.native or x.device.xp, x.dtype in FLOAT_DTYPES
    return x * _plain(x, lambda _, a: xp.copysign(xp.sign(a), a) if real else xp.sign(a))


def clip(x, min=None, max=None):  # noqa: A002 (PyTorch's names)
    """Two wheres, the bound where x is beyond it, else x (so nan stays nan, with a gradient of 1 where
    PyTorch's is 0). At a bound the gradient goes to x; a tensor bound gets it where it is picked (PyTorch's)."""
    for bound, beyond in ((min, "__lt__"), (max, "__gt__")):
        if bound is not None and not isinstance(bound, Tensor):  # CuPy refuses a host array, even 0-d, as an operand
            host = numpy.asarray(bound)  # array-api-strict refuses a NumPy scalar
            bound = host.item() if host.ndim == 0 else Tensor(x.device.from_host(host.astype(x.dtype)), x.device)
        if bound is not None:
            x = where(getattr(x, beyond)(bound), bound, x)
    return x


def where(condition, a, b):
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError("where() needs a Tensor as a or b")
    a, b = _operands(a, b) if isinstance(a, Tensor) else _operands(b, a)[::-1]
    cond = condition.data if isinstance(condition, Tensor) else condition
    return Where.apply(cond, a, b)


def sum_(x, axis: Axis = None, keepdims: bool = False):
    return Sum.apply(x, axis=_axis_arg(axis), keepdims=keepdims)


def mean(x, axis: Axis = None, keepdims: bool = False):
    count = 1
    for a in reduction_axes(axis, x.ndim):
        count *= x.shape[a]
    return sum_(x, axis, keepdims) * (1.0 / count)


def max_(x, axis: Axis = None, keepdims: bool = False):
    return MaxMin.apply(x, axis=_axis_arg(axis), keepdims=keepdims, largest=True)


def min_(x, axis: Axis = None, keepdims: bool = False):
    return MaxMin.apply(x, axis=_axis_arg(axis), keepdims=keepdims, largest=False)


def _axis_arg(axis: Axis) -> Axis:
    return axis if axis is None or isinstance(axis, int) else tuple(axis)


def reshape(x, *shape):
    shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
    return Reshape.apply(x, new_shape=shape)


def permute(x, *axes):
    axes = tuple(axes[0]) if len(axes) == 1 and not isinstance(axes[0], int) else axes
    return Permute.apply(x, axes=axes)


def transpose(x, dim0: int = -2, dim1: int = -1):
    """Swap two axes (PyTorch's transpose); with no arguments, the last two."""
    if x.ndim < 2:
        return x
    axes = list(range(x.ndim))
    axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return Permute.apply(x, axes=tuple(axes))


def flip(x, axis: Axis = None):
    """A reversed slice along each axis (a view, as NumPy's flip); NumPy's errors for a bad or repeated axis."""
    axes = range(x.ndim) if axis is None else numpy.lib.array_utils.normalize_axis_tuple(axis, x.ndim)
    return getitem(x, tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim)))


def getitem(x, index):
    index = index if isinstance(index, tuple) else (index,)
    index = [_host_index(item) for item in index]
    _check_index(x, index)  # before anything reaches a device: CuPy wraps out-of-range integer indices
    items = []
    for item in index:
        if isinstance(item, Tensor):
            item = item.data if item.device is x.device else x.device.from_host(item.numpy())
        elif isinstance(item, numpy.ndarray):
            item = x.device.from_host(item)
        items.append(item)
    basic = all(isinstance(i, int | slice) or i is None or i is Ellipsis for i in items)
    if basic and Ellipsis not in items:
        items.append(Ellipsis)  # explicit, as the standard requires for partial indexing
    items = tuple(items)
    return GetItem.apply(x, index=items, take_axis=take_axis_of(items, x.ndim))


def _host_index(item: Any) -> Any:
    """NumPy scalars as Python's; lists as NumPy arrays, which must be integer or boolean."""
    if isinstance(item, numpy.generic):
        return item.item()
    if isinstance(item, list | numpy.ndarray):
        item = numpy.asarray(item)
        if item.size == 0 and item.dtype.kind == "f":  # x[[]]: an empty list picks nothing
            item = item.astype(numpy.int64)
    dtype = item.dtype if isinstance(item, Tensor) else getattr(item, "dtype", None)
    if dtype is not None and not _is_kind(item, "int", "uint", "bool"):
        raise IndexError("tensors used as indices must be of integer (or boolean) type")
    return item


def _is_kind(item: Any, *prefixes: str) -> bool:
    name = item.dtype if isinstance(item, Tensor) else item.dtype.name
    return name.startswith(prefixes)


def _consumed(item: Any) -> int:
    """How many of the indexed tensor's axes an index item uses up."""
    if item is None or item is Ellipsis or isinstance(item, bool):
        return 0
    if hasattr(item, "dtype") and _is_kind(item, "bool"):
        return item.ndim  # a mask covers as many axes as it has
    return 1


def _check_index(x: Tensor, index: list) -> None:
    """NumPy's index errors, raised on the host: integers (Python ints, NumPy arrays, integer
    tensors) in -n..n-1 for the axis of size n they index, boolean masks shaped like their axes."""
    if sum(item is Ellipsis for item in index) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = sum(_consumed(item) for item in index)
    if used > x.ndim:
        raise IndexError(f"too many indices for tensor: tensor is {x.ndim}-dimensional, but {used} were indexed")
    axis = 0
    for item in index:
        if item is Ellipsis:
            axis += x.ndim - used
            continue
        if hasattr(item, "dtype") and _is_kind(item, "bool"):
            for i, (n, m) in enumerate(zip(x.shape[axis:], item.shape)):
                if n != m:
                    raise IndexError(
                        f"boolean index did not match indexed tensor along axis {axis + i}; "
                        f"size of axis is {n} but size of corresponding boolean axis is {m}"
                    )
        elif isinstance(item, int) and not isinstance(item, bool) or hasattr(item, "dtype"):
            _check_bounds(item, axis, x.shape[axis])
        axis += _consumed(item)


def _check_bounds(item: Any, axis: int, n: int) -> None:
    if isinstance(item, int):
        bad = None if -n <= item < n else item
    elif isinstance(item, numpy.ndarray):
        outside = item[(item < -n) | (item >= n)]
        bad = outside.flat[0] if outside.size else None
    elif item.data.size == 0:
        bad = None
    else:  # an integer tensor: its min and max, computed where it lives, are all the host copies (one small sync)
        xp, device = item.device.xp, item.device
        with device.context():
            low, high = (int(v) for v in device.to_host(xp.stack([xp.min(item.data), xp.max(item.data)])))
        bad = high if high >= n else low if low < -n else None
    if bad is not None:
        raise IndexError(f"index {bad} is out of bounds for axis {axis} with size {n}")


def concatenate(tensors: Sequence[Tensor], axis: int = 0):
    return Concat.apply(*tensors, axis=axis)


def stack(tensors: Sequence[Tensor], axis: int = 0):
    return Stack.apply(*tensors, axis=axis)


def to(x, target):
    """x.to('cuda:0') moves (differentiably); x.to('float64') converts the dtype."""
    if isinstance(target, str) and target in (*FLOAT_DTYPES, "int32", "int64", "bool"):
        if target == x.dtype:
            return x
        return Cast.apply(x, target_dtype=x.device.dtype(target))
    device = get_device(target)
    if device is x.device:
        return x
    out = ToDevice.apply(x, target=device, source_device=x.device)
    out.device = device
    return out


# --- non-differentiable helpers -----------------------------------------------------------------------------


def _plain(x: Tensor, compute: Any) -> Tensor:
    """compute(xp, data) on x's device, in its context: on a GPU that is not the current one, CuPy would
    otherwise put the result on the current GPU and refuse (or, with peer access, reach across for) x."""
    with x.device.context():
        return Tensor(compute(x.device.xp, x.data), x.device)


def isnan(x):
    return _plain(x, lambda xp, a: xp.isnan(a))


def isinf(x):
    return _plain(x, lambda xp, a: xp.isinf(a))


def isfinite(x):
    return _plain(x, lambda xp, a: xp.isfinite(a))


def argmax(x, axis: int | None = None, keepdims: bool = False):
    return _plain(x, lambda xp, a: xp.argmax(a, axis=axis, keepdims=keepdims))


def _compare(op: str):
    def compare(a, b):
        if isinstance(b, Tensor) and b.device is not a.device:
            raise_two_devices(a.device, b.device)
        other = b.data if isinstance(b, Tensor) else b
        return _plain(a, lambda xp, data: getattr(data, op)(other))

    return compare


# --- Tensor's operators and methods ----------------------------------------------------------------------------

_METHODS = {
    "__add__": add,
    "__radd__": add,
    "__sub__": sub,
    "__rsub__": rsub,
    "__mul__": mul,
    "__rmul__": mul,
    "__truediv__": div,
    "__rtruediv__": rdiv,
    "__pow__": pow_,
    "__rpow__": rpow,
    "__matmul__": matmul,
    "__rmatmul__": rmatmul,
    "__neg__": neg,
    "__getitem__": getitem,
    "__abs__": abs_,
    "__gt__": _compare("__gt__"),
    "__lt__": _compare("__lt__"),
    "__ge__": _compare("__ge__"),
    "__le__": _compare("__le__"),
    "eq": _compare("__eq__"),  # torch.eq: elementwise (== stays identity, so tensors remain dict keys)
    "ne": _compare("__ne__"),
    "sum": sum_,
    "mean": mean,
    "max": max_,
    "min": min_,
    "reshape": reshape,
    "view": reshape,
    "permute": permute,
    "transpose": transpose,
    "flip": flip,
    "exp": exp,
    "log": log,
    "sqrt": sqrt,
    "abs": abs_,
    "tanh": tanh,
    "sigmoid": sigmoid,
    "relu": relu,
    "clip": clip,
    "clamp": clip,
    "to": to,
    "isnan": isnan,
    "isinf": isinf,
    "isfinite": isfinite,
    "argmax": argmax,
}
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)
Tensor.T = property(lambda x: permute(x, tuple(reversed(range(x.ndim)))))
