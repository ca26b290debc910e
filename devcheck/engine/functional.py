"""torch.nn.functional's subset: activations, softmax family, losses, linear, dropout."""

from __future__ import annotations

from devcheck.engine import backend
from devcheck.engine.creation import tensor
from devcheck.engine.ops import CrossEntropy, Linear, LogSoftmax, Softmax, relu, sigmoid, tanh
from devcheck.engine.tensor import Tensor

__all__ = ["relu", "sigmoid", "tanh", "softmax", "log_softmax", "cross_entropy", "mse_loss", "linear", "dropout"]


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    return Softmax.apply(x, axis=axis)


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
