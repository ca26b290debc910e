"""Every differentiable op: one Function each, forward and backward side by side (DeZero's
layout), written against the Array API standard. Broadcasting ops reduce their gradients back to
each input's shape with `sum_to`. The operators and methods of Tensor are attached at the end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy

from devcheck.engine.backend import FLOAT_DTYPES, get_device
from devcheck.engine.tensor import Function, Tensor, dtype_name

Axis = int | Sequence[int] | None


def _xp(a: Any) -> Any:
    return a.__array_namespace__() if hasattr(a, "__array_namespace__") else numpy


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "shape") else ()


def sum_to(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum a broadcast gradient back down to `shape` (Chainer's utils.sum_to)."""
    if tuple(g.shape) == shape:
        return g
    xp, lead = _xp(g), g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    g = xp.sum(g, axis=axes, keepdims=True)
    return xp.reshape(g, shape) if lead else g


def _axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim for a in axes))


def _keepdims(gy: Any, axis: Axis, ndim: int, keepdims: bool) -> Any:
    """Reshape a reduction's output gradient so that it broadcasts against the input."""
    if keepdims:
        return gy
    shape = list(gy.shape)
    for a in _axes(axis, ndim):
        shape.insert(a, 1)
    return _xp(gy).reshape(gy, tuple(shape))


# --- arithmetic -------------------------------------------------------------------------------------------


class Add(Function):
    def forward(self, a, b):
        self.shapes = _shape(a), _shape(b)
        return a + b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(gy, self.shapes[1])


class Sub(Function):
    def forward(self, a, b):
        self.shapes = _shape(a), _shape(b)
        return a - b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(-gy, self.shapes[1])


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        a, b = self.a, self.b
        return sum_to(gy * b, _shape(a)), sum_to(gy * a, _shape(b))


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        a, b = self.a, self.b
        ga = gy / b
        return sum_to(ga, _shape(a)), sum_to(-ga * a / b, _shape(b))


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return (-gy,)


class Pow(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        self.y = a**b
        return self.y

    def backward(self, gy):
        a, b = self.a, self.b
        ga = sum_to(gy * b * a ** (b - 1), _shape(a)) if self.needs_grad[0] else None
        if not self.needs_grad[1]:
            return ga, None
        if hasattr(a, "shape"):
            xp = _xp(a)
            log_a = xp.log(xp.where(a > 0, a, xp.ones_like(a)))  # d/db a**b = a**b log a, taken as 0 where a <= 0
        else:
            log_a = math.log(a) if a > 0 else 0.0
        return ga, sum_to(gy * self.y * log_a, _shape(b))


class MatMul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return _xp(a).matmul(a, b)

    def backward(self, gy):
        xp, a, b = _xp(gy), self.a, self.b
        a2 = xp.expand_dims(a, axis=0) if a.ndim == 1 else a  # 1-D operands as matrices, then the
        b2 = xp.expand_dims(b, axis=-1) if b.ndim == 1 else b  # gradient shaped like their product
        batch = numpy.broadcast_shapes(tuple(a2.shape[:-2]), tuple(b2.shape[:-2]))
        gy = xp.reshape(gy, (*batch, a2.shape[-2], b2.shape[-1]))
        ga = gb = None
        if self.needs_grad[0]:
            ga = xp.matmul(gy, xp.matrix_transpose(b2))
            ga = sum_to(xp.squeeze(ga, axis=-2) if a.ndim == 1 else ga, _shape(a))
        if self.needs_grad[1]:
            gb = xp.matmul(xp.matrix_transpose(a2), gy)
            gb = sum_to(xp.squeeze(gb, axis=-1) if b.ndim == 1 else gb, _shape(b))
        return ga, gb


# --- elementwise ----------------------------------------------------------------------------------------


class Exp(Function):
    def forward(self, x):
        self.y = _xp(x).exp(x)
        return self.y

    def backward(self, gy):
        return (gy * self.y,)


class Log(Function):
    def forward(self, x):
        self.x = x
        return _xp(x).log(x)

    def backward(self, gy):
        return (gy / self.x,)


class Sqrt(Function):
    def forward(self, x):
        self.y = _xp(x).sqrt(x)
        return self.y

    def backward(self, gy):
        return (gy / (2 * self.y),)


class Abs(Function):
    def forward(self, x):
        self.x = x
        return _xp(x).abs(x)

    def backward(self, gy):
        return (gy * _xp(gy).sign(self.x),)


class Tanh(Function):
    def forward(self, x):
        self.y = _xp(x).tanh(x)
        return self.y

    def backward(self, gy):
        return (gy * (1 - self.y * self.y),)


class Sigmoid(Function):
    def forward(self, x):
        self.y = _xp(x).tanh(x * 0.5) * 0.5 + 0.5  # never overflows, unlike 1 / (1 + exp(-x))
        return self.y

    def backward(self, gy):
        return (gy * self.y * (1 - self.y),)


class ReLU(Function):
    def forward(self, x):
        self.mask = _xp(x).astype(x > 0, x.dtype)  # multiplying by a mask is ~10x faster than where()
        return x * self.mask

    def backward(self, gy):
        return (gy * self.mask,)


class Clip(Function):
    def forward(self, x):
        self.x = x
        return _xp(x).clip(x, self.low, self.high)

    def backward(self, gy):
        x, xp = self.x, _xp(gy)
        inside = [
            c
            for c in (
                x >= self.low if self.low is not None else None,
                x <= self.high if self.high is not None else None,
            )
            if c is not None
        ]
        if not inside:
            return (gy,)
        return (gy * xp.astype(inside[0] & inside[-1], gy.dtype),)


class Where(Function):
    def forward(self, condition, a, b):
        self.condition, self.shapes = condition, (_shape(a), _shape(b))
        return _xp(condition).where(condition, a, b)

    def backward(self, gy):
        xp = _xp(gy)
        return (
            None,
            sum_to(xp.where(self.condition, gy, 0.0), self.shapes[0]),
            sum_to(xp.where(self.condition, 0.0, gy), self.shapes[1]),
        )


# --- reductions -----------------------------------------------------------------------------------------


class Sum(Function):
    def forward(self, x):
        self.shape = _shape(x)
        return _xp(x).sum(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        gy = _keepdims(gy, self.axis, len(self.shape), self.keepdims)
        return (_xp(gy).broadcast_to(gy, self.shape),)


class MaxMin(Function):
    """max / min over axes; tied elements share the gradient evenly (a valid subgradient that
    is the same on every device)."""

    def forward(self, x):
        xp = _xp(x)
        self.x = x
        self.y = (xp.max if self.largest else xp.min)(x, axis=self.axis, keepdims=True)
        return self.y if self.keepdims else xp.reshape(self.y, _reduced_shape(x.shape, self.axis))

    def backward(self, gy):
        xp = _xp(gy)
        gy = _keepdims(gy, self.axis, self.x.ndim, self.keepdims)
        mask = xp.astype(self.x == self.y, gy.dtype)
        return (mask * gy / xp.sum(mask, axis=self.axis, keepdims=True),)


def _reduced_shape(shape: Sequence[int], axis: Axis) -> tuple[int, ...]:
    axes = _axes(axis, len(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


# --- shape ----------------------------------------------------------------------------------------------


class Reshape(Function):
    def forward(self, x):
        self.shape = _shape(x)
        return _xp(x).reshape(x, self.new_shape)

    def backward(self, gy):
        return (_xp(gy).reshape(gy, self.shape),)


class Permute(Function):
    def forward(self, x):
        return _xp(x).permute_dims(x, self.axes)

    def backward(self, gy):
        return (_xp(gy).permute_dims(gy, tuple(int(i) for i in numpy.argsort(self.axes))),)


class Flip(Function):
    def forward(self, x):
        return _xp(x).flip(x, axis=self.axis)

    def backward(self, gy):
        return (_xp(gy).flip(gy, axis=self.axis),)


class GetItem(Function):
    """Indexing: ints, slices, Ellipsis, None, boolean masks, and integer arrays (whose repeats
    accumulate in backward: x[[0, 0]] gives x[0] a gradient of 2)."""

    def forward(self, x):
        self.shape, self.dtype = _shape(x), x.dtype
        if self.take_axis is not None:  # one 1-D integer array, full slices elsewhere: the standard's take
            return _xp(x).take(x, self.index[self.take_axis], axis=self.take_axis)
        return x[self.key]

    @property
    def key(self):
        return self.index[0] if len(self.index) == 1 else self.index  # a bare mask, as strict namespaces want

    def backward(self, gy):
        xp = _xp(gy)
        gx = xp.zeros(self.shape, dtype=self.dtype, device=getattr(gy, "device", None))
        if not any(_is_int_array(i) for i in self.index):
            gx[self.key] = gy  # no element is picked twice: assignment is accumulation
        elif self.scatter_add is not None:
            self.scatter_add(gx, self.index, gy)
        elif self.take_axis is not None:
            gx = _scatter_add_by_matmul(gx, self.take_axis, self.index[self.take_axis], gy)
        else:
            raise NotImplementedError("this device has no scatter-add for this kind of integer-array index")
        return (gx,)


def _is_int_array(index: Any) -> bool:
    return hasattr(index, "dtype") and dtype_name(index.dtype).startswith(("int", "uint"))


def _take_axis(index: tuple, ndim: int) -> int | None:
    """The axis of a lone 1-D integer-array index among full slices, else None."""
    arrays = [i for i, item in enumerate(index) if _is_int_array(item)]
    if len(arrays) != 1 or index[arrays[0]].ndim != 1 or len(index) > ndim:
        return None
    full = all(item == slice(None) for i, item in enumerate(index) if i != arrays[0] and item is not Ellipsis)
    return arrays[0] if full and Ellipsis not in index[: arrays[0]] else None


def _scatter_add_by_matmul(gx: Any, axis: int, rows: Any, gy: Any) -> Any:
    """Scatter-add for a namespace without one: a one-hot matrix turns it into a matmul."""
    xp, n = _xp(gy), gx.shape[axis]
    onehot = xp.astype(xp.expand_dims(rows, axis=1) == xp.arange(n, device=gy.device), gy.dtype)  # (m, n)
    moved = xp.moveaxis(gy, axis, 0)
    summed = xp.matrix_transpose(onehot) @ xp.reshape(moved, (moved.shape[0], -1))
    return gx + xp.moveaxis(xp.reshape(summed, (n, *moved.shape[1:])), 0, axis)


class Concat(Function):
    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return _xp(xs[0]).concat(list(xs), axis=self.axis)

    def backward(self, gy):
        out, start = [], 0
        head = (slice(None),) * (self.axis % gy.ndim)
        for size in self.sizes:
            out.append(gy[(*head, slice(start, start + size), ...)])
            start += size
        return tuple(out)


class Stack(Function):
    def forward(self, *xs):
        self.count = len(xs)
        return _xp(xs[0]).stack(list(xs), axis=self.axis)

    def backward(self, gy):
        head = (slice(None),) * (self.axis % gy.ndim)
        return tuple(gy[(*head, i, ...)] for i in range(self.count))


class Cast(Function):
    def forward(self, x):
        self.source = x.dtype
        return _xp(x).astype(x, self.target_dtype)

    def backward(self, gy):
        return (_xp(gy).astype(gy, self.source),)


class ToDevice(Function):
    def forward(self, x):
        self.source = self.source_device
        return self.target.from_host(self.source.to_host(x))

    def backward(self, gy):
        return (self.source.from_host(self.target.to_host(gy)),)


# --- the functional layer's fused ops (fewer nodes, numerically stable) -----------------------------------


class Linear(Function):
    """y = x @ W.T + b with W of shape (out, in), as torch.nn.functional.linear."""

    def forward(self, x, w, b=None):
        xp = _xp(x)
        self.x, self.w, self.has_bias = x, w, b is not None
        y = xp.matmul(x, xp.matrix_transpose(w))
        return y + b if b is not None else y

    def backward(self, gy):
        xp, x, w = _xp(gy), self.x, self.w
        gx = xp.matmul(gy, w) if self.needs_grad[0] else None  # a data batch needs none: skip a matmul
        g2 = xp.reshape(gy, (-1, gy.shape[-1]))
        gw = xp.matmul(xp.matrix_transpose(g2), xp.reshape(x, (-1, x.shape[-1])))
        return (gx, gw, xp.sum(g2, axis=0)) if self.has_bias else (gx, gw)


def _log_softmax(x: Any, axis: int) -> Any:
    xp = _xp(x)
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x):
        self.y = _log_softmax(x, self.axis)
        return self.y

    def backward(self, gy):
        xp = _xp(gy)
        return (gy - xp.exp(self.y) * xp.sum(gy, axis=self.axis, keepdims=True),)


class Softmax(Function):
    def forward(self, x):
        self.y = _xp(x).exp(_log_softmax(x, self.axis))
        return self.y

    def backward(self, gy):
        y = self.y
        return (y * (gy - _xp(gy).sum(gy * y, axis=self.axis, keepdims=True)),)


class CrossEntropy(Function):
    """Mean (or summed) negative log-likelihood of integer class targets, from logits.
    The one-hot mask is built in the logits' dtype, so a float32 model stays float32."""

    def forward(self, logits, target):
        xp = _xp(logits)
        classes = xp.arange(logits.shape[-1], dtype=target.dtype, device=getattr(logits, "device", None))
        self.onehot = xp.astype(xp.expand_dims(target, axis=-1) == classes, logits.dtype)
        logp = _log_softmax(logits, -1)
        self.p = xp.exp(logp)
        self.scale = 1.0 / target.shape[0] if self.reduction == "mean" else 1.0
        return -xp.sum(logp * self.onehot) * self.scale

    def backward(self, gy):
        return (self.p - self.onehot) * (gy * self.scale), None


# --- wrappers ---------------------------------------------------------------------------------------------


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


def add(a, b):
    return Add.apply(*_operands(a, b))


def sub(a, b):
    return Sub.apply(*_operands(a, b))


def rsub(a, b):
    a, b = _operands(a, b)
    return Sub.apply(b, a)


def mul(a, b):
    return Mul.apply(*_operands(a, b))


def div(a, b):
    return Div.apply(*_operands(a, b))


def rdiv(a, b):
    a, b = _operands(a, b)
    return Div.apply(b, a)


def pow_(a, b):
    return Pow.apply(*_operands(a, b))


def rpow(a, b):
    a, b = _operands(a, b)
    return Pow.apply(b, a)


def matmul(a, b):
    a, b = _operands(a, b)
    return MatMul.apply(a, b)


def rmatmul(a, b):
    a, b = _operands(a, b)
    return MatMul.apply(b, a)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def abs_(x):
    return Abs.apply(x)


def tanh(x):
    return Tanh.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def relu(x):
    return ReLU.apply(x)


def clip(x, min=None, max=None):  # noqa: A002 (PyTorch's names)
    return Clip.apply(x, low=min, high=max)


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
    for a in _axes(axis, x.ndim):
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
    return Flip.apply(x, axis=_axis_arg(axis))


def getitem(x, index):
    index = index if isinstance(index, tuple) else (index,)
    items = []
    for item in index:
        if isinstance(item, Tensor):
            item = item.data
        elif isinstance(item, list | numpy.ndarray):
            item = x.device.from_host(numpy.asarray(item))
        items.append(item)
    basic = all(isinstance(i, int | slice) or i is None or i is Ellipsis for i in items)
    if basic and Ellipsis not in items:
        items.append(Ellipsis)  # explicit, as the standard requires for partial indexing
    items = tuple(items)
    return GetItem.apply(x, index=items, take_axis=_take_axis(items, x.ndim), scatter_add=x.device.scatter_add)


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


def _plain(x: Tensor, data: Any) -> Tensor:
    return Tensor(data, x.device)


def isnan(x):
    return _plain(x, x.device.xp.isnan(x.data))


def isinf(x):
    return _plain(x, x.device.xp.isinf(x.data))


def isfinite(x):
    return _plain(x, x.device.xp.isfinite(x.data))


def argmax(x, axis: int | None = None, keepdims: bool = False):
    return _plain(x, x.device.xp.argmax(x.data, axis=axis, keepdims=keepdims))


def _compare(op: str):
    def compare(a, b):
        other = b.data if isinstance(b, Tensor) else b
        return _plain(a, getattr(a.data, op)(other))

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
    "__neg__": lambda x: Neg.apply(x),
    "__getitem__": getitem,
    "__abs__": abs_,
    "__gt__": _compare("__gt__"),
    "__lt__": _compare("__lt__"),
    "__ge__": _compare("__ge__"),
    "__le__": _compare("__le__"),
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
