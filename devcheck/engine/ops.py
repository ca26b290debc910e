"""The engine's primitive ops: one Function each, forward and backward side by side (DeZero's
layout), written against the Array API standard. Broadcasting ops reduce their gradients back to
each input's shape with `sum_to`. Everything else is composed from these in methods.py (a - b is
a + -b, a / b is a * b**-1, sqrt is **0.5, sigmoid is tanh's, abs is x times its sign, clip is two
wheres, flip is a reversed slice) or fused in functional.py (linear, log-softmax, cross-entropy), so
a new op's backward is right by construction (micrograd's way: few primitives, the rest composed).

A primitive stays one where composing it would cost a kernel launch per step in the training
workloads (train's MLP, bench's MLP step): Tanh, ReLU and MatMul are in every step; Exp, Log, Where,
MaxMin, Sum are elementary (no cheaper composition exists); the shape ops move data. abs, clip and
flip are in no step (only `devcheck grad` checks them), so they are composed, at a few launches more.
The arithmetic ops and Where compute no gradient an input does not need: a composition's constants
(abs's sign, clip's bounds, sigmoid's 0.5) cost no backward kernel.

Every array function comes from `self.xp`, the namespace of the op's device (set by
Function.apply), never from the arrays: a CuPy array has no `__array_namespace__`, and NumPy
functions called on it would fail or silently dispatch through `__array_ufunc__`. `numpy` here
is only for host-side bookkeeping (shapes, axis permutations).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy

from devcheck.engine.tensor import Function, dtype_name

Axis = int | Sequence[int] | None


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "shape") else ()


def sum_to(xp: Any, g: Any, shape: tuple[int, ...]) -> Any:
    """Sum a broadcast gradient back down to `shape` (Chainer's utils.sum_to)."""
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    g = xp.sum(g, axis=axes, keepdims=True)
    return xp.reshape(g, shape) if lead else g


def reduction_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim for a in axes))


def _keepdims(xp: Any, gy: Any, axis: Axis, ndim: int, keepdims: bool) -> Any:
    """Reshape a reduction's output gradient so that it broadcasts against the input."""
    if keepdims:
        return gy
    shape = list(gy.shape)
    for a in reduction_axes(axis, ndim):
        shape.insert(a, 1)
    return xp.reshape(gy, tuple(shape))


# --- arithmetic -------------------------------------------------------------------------------------------


class Add(Function):
    def forward(self, a, b):
        self.shapes = _shape(a), _shape(b)
        return a + b

    def backward(self, gy):
        return tuple(sum_to(self.xp, gy, shape) if need else None for shape, need in zip(self.shapes, self.needs_grad))


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        a, b, needs = self.a, self.b, self.needs_grad
        return (
            sum_to(self.xp, gy * b, _shape(a)) if needs[0] else None,
            sum_to(self.xp, gy * a, _shape(b)) if needs[1] else None,
        )


class Pow(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        self.y = a**b
        return self.y

    def backward(self, gy):
        a, b = self.a, self.b
        ga = sum_to(self.xp, gy * b * a ** (b - 1), _shape(a)) if self.needs_grad[0] else None
        if not self.needs_grad[1]:
            return ga, None
        if hasattr(a, "shape"):
            xp = self.xp
            log_a = xp.log(xp.where(a > 0, a, xp.ones_like(a)))  # d/db a**b = a**b log a, taken as 0 where a <= 0
        else:
            log_a = math.log(a) if a > 0 else 0.0
        return ga, sum_to(self.xp, gy * self.y * log_a, _shape(b))


class MatMul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return self.xp.matmul(a, b)

    def backward(self, gy):
        xp, a, b = self.xp, self.a, self.b
        a2 = xp.expand_dims(a, axis=0) if a.ndim == 1 else a  # 1-D operands as matrices, then the
        b2 = xp.expand_dims(b, axis=-1) if b.ndim == 1 else b  # gradient shaped like their product
        batch = numpy.broadcast_shapes(tuple(a2.shape[:-2]), tuple(b2.shape[:-2]))
        gy = xp.reshape(gy, (*batch, a2.shape[-2], b2.shape[-1]))
        ga = gb = None
        if self.needs_grad[0]:
            ga = xp.matmul(gy, xp.matrix_transpose(b2))
            ga = sum_to(xp, xp.squeeze(ga, axis=-2) if a.ndim == 1 else ga, _shape(a))
        if self.needs_grad[1]:
            gb = xp.matmul(xp.matrix_transpose(a2), gy)
            gb = sum_to(xp, xp.squeeze(gb, axis=-1) if b.ndim == 1 else gb, _shape(b))
        return ga, gb


# --- elementwise ----------------------------------------------------------------------------------------


class Exp(Function):
    def forward(self, x):
        self.y = self.xp.exp(x)
        return self.y

    def backward(self, gy):
        return (gy * self.y,)


class Log(Function):
    def forward(self, x):
        self.x = x
        return self.xp.log(x)

    def backward(self, gy):
        return (gy / self.x,)


class Tanh(Function):
    def forward(self, x):
        self.y = self.xp.tanh(x)
        return self.y

    def backward(self, gy):
        kernel = self.device.fused.get("tanh_backward")  # a GPU: one launch instead of three
        return (kernel(gy, self.y) if kernel else gy * (1 - self.y * self.y),)


class ReLU(Function):
    def forward(self, x):
        kernel = self.device.fused.get("relu")  # a GPU: one launch instead of three
        if kernel:
            y, self.mask = kernel(x)
            return y
        self.mask = self.xp.astype(x > 0, x.dtype)  # multiplying by a mask is ~10x faster than where()
        return x * self.mask

    def backward(self, gy):
        return (gy * self.mask,)


class Where(Function):
    def forward(self, condition, a, b):
        self.condition, self.shapes = condition, (_shape(a), _shape(b))
        return self.xp.where(condition, a, b)

    def backward(self, gy):
        xp, needs = self.xp, self.needs_grad
        return (
            None,
            sum_to(xp, xp.where(self.condition, gy, 0.0), self.shapes[0]) if needs[1] else None,
            sum_to(xp, xp.where(self.condition, 0.0, gy), self.shapes[1]) if needs[2] else None,
        )


# --- reductions -----------------------------------------------------------------------------------------


class Sum(Function):
    def forward(self, x):
        self.shape = _shape(x)
        return self.xp.sum(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        gy = _keepdims(self.xp, gy, self.axis, len(self.shape), self.keepdims)
        return (self.xp.broadcast_to(gy, self.shape),)


class MaxMin(Function):
    """max / min over axes; tied elements share the gradient evenly (a valid subgradient that
    is the same on every device)."""

    def forward(self, x):
        xp = self.xp
        self.x = x
        self.y = (xp.max if self.largest else xp.min)(x, axis=self.axis, keepdims=True)
        return self.y if self.keepdims else xp.reshape(self.y, _reduced_shape(x.shape, self.axis))

    def backward(self, gy):
        xp = self.xp
        gy = _keepdims(xp, gy, self.axis, self.x.ndim, self.keepdims)
        mask = xp.astype(self.x == self.y, gy.dtype)
        return (mask * gy / xp.sum(mask, axis=self.axis, keepdims=True),)


def _reduced_shape(shape: Sequence[int], axis: Axis) -> tuple[int, ...]:
    axes = reduction_axes(axis, len(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


# --- shape ----------------------------------------------------------------------------------------------


class Reshape(Function):
    def forward(self, x):
        self.shape = _shape(x)
        return self.xp.reshape(x, self.new_shape)

    def backward(self, gy):
        return (self.xp.reshape(gy, self.shape),)


class Permute(Function):
    def forward(self, x):
        return self.xp.permute_dims(x, self.axes)

    def backward(self, gy):
        return (self.xp.permute_dims(gy, tuple(int(i) for i in numpy.argsort(self.axes))),)


class GetItem(Function):
    """Indexing: ints, slices, Ellipsis, None, boolean masks, and integer arrays (whose repeats
    accumulate in backward: x[[0, 0]] gives x[0] a gradient of 2)."""

    def forward(self, x):
        self.shape, self.dtype = _shape(x), x.dtype
        if self.take_axis is not None:  # one 1-D integer array, full slices elsewhere: the standard's take
            return self.xp.take(x, self.index[self.take_axis], axis=self.take_axis)
        return x[self.key]

    @property
    def key(self):
        return self.index[0] if len(self.index) == 1 else self.index  # a bare mask, as strict namespaces want

    def backward(self, gy):
        xp = self.xp
        gx = xp.zeros(self.shape, dtype=self.dtype, device=getattr(gy, "device", None))
        if not any(_is_int_array(i) for i in self.index):
            gx[self.key] = gy  # no element is picked twice: assignment is accumulation
        elif self.device.scatter_add is not None:
            self.device.scatter_add(gx, self.index, gy)
        elif self.take_axis is not None:
            gx = _scatter_add_by_matmul(xp, gx, self.take_axis, self.index[self.take_axis], gy)
        else:
            raise NotImplementedError("this device has no scatter-add for this kind of integer-array index")
        return (gx,)


def _is_int_array(index: Any) -> bool:
    return hasattr(index, "dtype") and dtype_name(index.dtype).startswith(("int", "uint"))


def take_axis_of(index: tuple, ndim: int) -> int | None:
    """The axis of a lone 1-D integer-array index among full slices, else None."""
    arrays = [i for i, item in enumerate(index) if _is_int_array(item)]
    if len(arrays) != 1 or index[arrays[0]].ndim != 1 or len(index) > ndim:
        return None
    full = all(item == slice(None) for i, item in enumerate(index) if i != arrays[0] and item is not Ellipsis)
    return arrays[0] if full and Ellipsis not in index[: arrays[0]] else None


def _scatter_add_by_matmul(xp: Any, gx: Any, axis: int, rows: Any, gy: Any) -> Any:
    """Scatter-add for a namespace without one: a one-hot matrix turns it into a matmul."""
    n = gx.shape[axis]
    onehot = xp.astype(xp.expand_dims(rows, axis=1) == xp.arange(n, device=gy.device), gy.dtype)  # (m, n)
    moved = xp.moveaxis(gy, axis, 0)
    summed = xp.matrix_transpose(onehot) @ xp.reshape(moved, (moved.shape[0], -1))
    return gx + xp.moveaxis(xp.reshape(summed, (n, *moved.shape[1:])), 0, axis)


class Concat(Function):
    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return self.xp.concat(list(xs), axis=self.axis)

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
        return self.xp.stack(list(xs), axis=self.axis)

    def backward(self, gy):
        head = (slice(None),) * (self.axis % gy.ndim)
        return tuple(gy[(*head, i, ...)] for i in range(self.count))


class Cast(Function):
    def forward(self, x):
        self.source = x.dtype
        return self.xp.astype(x, self.target_dtype)

    def backward(self, gy):
        return (self.xp.astype(gy, self.source),)


class ToDevice(Function):
    def forward(self, x):
        self.source = self.source_device
        return self.target.from_host(self.source.to_host(x))

    def backward(self, gy):
        return (self.source.from_host(self.target.to_host(gy)),)
