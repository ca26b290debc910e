"""torch.nn.functional's subset: activations, softmax family, losses, linear, dropout. Linear,
the softmax family and cross-entropy are fused ops: fewer graph nodes, and numerically stable."""

from __future__ import annotations

from typing import Any

import numpy

from devcheck.engine import backend
from devcheck.engine.creation import tensor
from devcheck.engine.methods import relu, sigmoid, tanh
from devcheck.engine.tensor import Function, Tensor

__all__ = ["relu", "sigmoid", "tanh", "softmax", "log_softmax", "cross_entropy", "mse_loss", "linear", "dropout"]


class Linear(Function):
    """y = x @ W.T + b with W of shape (out, in), as torch.nn.functional.linear."""

    def forward(self, x, w, b=None):
        xp = self.xp
        self.x, self.w, self.has_bias = x, w, b is not None
        y = xp.matmul(x, xp.matrix_transpose(w))
        if b is None:
            return y
        if b.dtype == y.dtype:  # y is ours: add in place, one temporary fewer
            y += b
            return y
        return y + b

    def backward(self, gy):
        xp, x, w = self.xp, self.x, self.w
        gx = xp.matmul(gy, w) if self.needs_grad[0] else None  # a data batch needs none: skip a matmul
        if gy.ndim != 2:  # batch dimensions folded into one (a reshape costs a small step ~1 us)
            gy, x = xp.reshape(gy, (-1, gy.shape[-1])), xp.reshape(x, (-1, x.shape[-1]))
        gw = xp.matmul(xp.matrix_transpose(gy), x)
        return (gx, gw, xp.sum(gy, axis=0)) if self.has_bias else (gx, gw)


def _log_softmax(xp: Any, x: Any, axis: int) -> Any:
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x):
        self.y = _log_softmax(self.xp, x, self.axis)
        return self.y

    def backward(self, gy):
        xp = self.xp
        return (gy - xp.exp(self.y) * xp.sum(gy, axis=self.axis, keepdims=True),)


class CrossEntropy(Function):
    """Mean (or summed) negative log-likelihood of integer class targets, from logits, by log-sum-exp:
    loss_i = log(sum_j exp(z_ij - m_i)) - (z_it - m_i) with m_i the row's max, so every exp is <= 1.
    Only each row's target is picked (integer-array indexing, no one-hot matrix; on a GPU, fused
    kernels compare classes with targets instead); the exps are kept, so the backward,
    softmax - onehot = e / s minus 1 at each target, needs no second exp."""

    def forward(self, logits, target):
        xp, n, kernels = self.xp, target.shape[0], self.device.fused
        self.scale = (1.0 / n if n else float("nan")) if self.reduction == "mean" else 1.0  # torch: 0/0 is nan
        self.fuse = bool(n) and "cross_entropy_loss" in kernels  # a GPU: engine/fused.py
        m = xp.max(logits, axis=-1, keepdims=True)
        # row and class numbers in the default index dtype: in the target's (uint8, say) they would wrap past 255
        if self.fuse:
            self.e = kernels["cross_entropy_exp"](logits, m)
            self.s = xp.sum(self.e, axis=-1, keepdims=True)
            self.target = xp.expand_dims(target, axis=-1)
            self.classes = xp.arange(logits.shape[-1], device=target.device)
            lowest = float(xp.finfo(logits.dtype).min)
            return xp.sum(kernels["cross_entropy_loss"](logits, m, self.s, lowest, *self._labels()))
        shifted = logits - m
        self.e = xp.exp(shifted)
        self.s = xp.sum(self.e, axis=-1, keepdims=True)
        self.rows, self.target = xp.arange(n, device=getattr(target, "device", None)), target
        picked = shifted[self.rows, target] - xp.log(self.s[:, 0])  # the targets' log-probabilities
        return (0.0 - xp.sum(picked)) * self.scale  # 0 - x: no batch sums to 0, not to -0

    def _labels(self) -> tuple:
        """The fused kernels' last four arguments: targets, class numbers, their count, the scale."""
        return self.target, self.classes, self.classes.shape[0], self.scale

    def backward(self, gy):
        xp, target = self.xp, self.target
        if self.fuse:
            return self.device.fused["cross_entropy_grad"](self.e, self.s, gy, *self._labels()), None
        weight = gy * self.scale
        g = self.e * (weight / self.s)  # softmax(logits) * weight, then minus weight at each target
        if self.device.scatter_add is not None:
            self.device.scatter_add(g, (self.rows, target), -weight, unique=True)  # one position per row
            return g, None
        classes = xp.arange(g.shape[-1], device=getattr(target, "device", None))
        return g - xp.astype(xp.expand_dims(target, axis=-1) == classes, g.dtype) * weight, None


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(log_softmax): composed, stable for any logits."""
    return LogSoftmax.apply(x, axis=axis).exp()


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    return LogSoftmax.apply(x, axis=axis)


def _reduction(reduction: str) -> str:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction={reduction!r}: expected 'mean' or 'sum'")
    return reduction


def cross_entropy(logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy from logits (N, C) and integer class targets (N,), via log-sum-exp."""
    if logits.ndim != 2 or target.shape != (logits.shape[0],):
        raise ValueError(f"cross_entropy needs logits (N, C) and targets (N,), got {logits.shape} and {target.shape}")
    if not target.dtype.startswith(("int", "uint")):
        raise TypeError(f"cross_entropy targets must be integer class indices, got {target.dtype}")
    # NumPy's indexing refuses a target >= C but reads -1 as the last class; a negative one is caught
    # here on the CPU (on a GPU a check would cost a synchronisation every step: the fused kernels
    # make such a row's loss and gradient infinite or nan instead)
    if isinstance(target.data, numpy.ndarray) and target.shape[0] and target.data.min() < 0:
        raise IndexError(f"cross_entropy targets must be in [0, {logits.shape[1]}), got {target.data.min()}")
    return CrossEntropy.apply(logits, target, reduction=_reduction(reduction))


def mse_loss(prediction: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    diff = prediction - target
    squared = diff * diff
    return squared.mean() if _reduction(reduction) == "mean" else squared.sum()


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    return Linear.apply(x, weight) if bias is None else Linear.apply(x, weight, bias)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p). The mask comes from the
    host generator, so a CPU and a GPU run with the same seed drop the same units."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability p={p}: expected 0 <= p < 1")
    if not training or p == 0:
        return x
    keep = backend.generator().random(x.shape) >= p
    return x * tensor((keep / (1 - p)).astype(x.dtype), device=x.device)
