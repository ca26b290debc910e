"""Fused kernels: an optimizer's update of one parameter in one launch instead of six or seven,
cross-entropy's forward and backward in seven launches instead of sixteen (three fused kernels,
three reductions and an arange), ReLU's forward and tanh's backward in one instead of three.

Each is written once, as an operation that is both CUDA C and Python, and becomes a CuPy
ElementwiseKernel on a GPU (one launch; `p`, `buf`, `m`, `v` are updated in place). On the CPU only
Adam has its own version (its denominator built in place with NumPy's `out=`): the generic code of
the rest is as fast there (cross-entropy picks each row's target by indexing; a fused ReLU measured
slower in a whole step). A device with none (the test-suite's simulated device) keeps the generic code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy

# d = g + decay * p is the gradient with L2 weight decay folded in (PyTorch's SGD and Adam).
SGD = ("T g, T lr, T decay", "T p", "p = p - lr * (g + decay * p)")
# PyTorch's momentum: buf = momentum * buf + d (buf starts at 0, so the first step sets buf = d), p -= lr * buf.
SGD_MOMENTUM = (
    "T g, T lr, T decay, T momentum",
    "T p, T buf",
    "buf = momentum * buf + (g + decay * p); p = p - lr * buf",
)
# Adam: m, v the running moments of d; `step` = lr / (1 - b1^t) and `bc2` = 1 - b2^t are computed on the host.
ADAM = (
    "T g, T step, T b1, T b2, T eps, T bc2, T decay",
    "T p, T m, T v",
    "m = b1 * m + (1 - b1) * (g + decay * p); v = b2 * v + (1 - b2) * (g + decay * p) * (g + decay * p); "
    "p = p - step * m / (sqrt(v / bc2) + eps)",
)
# float16 parameters: the same update with float32 scalars, so computed in float (CuPy's float16 has no
# arithmetic of its own: it converts to float), and stored in float16, as PyTorch's fused Adam does. With
# float16 scalars eps = 1e-8 is 0, and a parameter whose gradient has been 0 becomes 0 / 0 = nan.
ADAM_HALF = ("T g, " + ", ".join(f"float32 {name}" for name in ("step", "b1", "b2", "eps", "bc2", "decay")), *ADAM[1:])

# Cross-entropy of logits z (N, C), row maxima m and integer targets t (N, 1), by log-sum-exp:
# e = exp(z - m) (every exp <= 1), s = the row sums of e (a reduction), loss_i = log(s_i) - (z_it - m_i).
# Element (i, j) compares its class j (C,) with its row's target instead of gathering z_it: no one-hot
# matrix, no index arithmetic. z - m is held at T's lowest finite value, so that a class masked with
# -inf adds 0 and not 0 * inf = nan (a target at -inf so costs ~3.4e38 in float32, not inf); that
# value comes as a double, since CuPy's float16 arithmetic gives floats and max(float, float16) is
# ambiguous. A target outside [0, C) divides its row by 0: its loss and gradient are infinite or nan,
# where indexing on a GPU would wrap to another class and no kernel can raise.
CROSS_ENTROPY_EXP = ("T z, T m", "T e", "e = exp(z - m)")
CROSS_ENTROPY_LOSS = (
    "T z, T m, T s, float64 lowest, I t, J j, J classes, T scale",
    "T loss",
    "loss = (j == t) * (log(s) - max(z - m, lowest)) * scale / ((t >= 0) * (t < classes))",
)
# d loss / d z_ij = (softmax_ij - [j == t_i]) * scale * gy, with softmax = e / s from the forward's exps.
CROSS_ENTROPY_GRAD = (
    "T e, T s, T gy, I t, J j, J classes, T scale",
    "T g",
    "g = (e / s - (j == t)) * (gy * scale) / ((t >= 0) * (t < classes))",
)
# Activations: ReLU's output and the mask its backward multiplies by, in one pass; tanh's backward
# from its output, d tanh(x) / dx = 1 - tanh(x)^2.
RELU = ("T x", "T y, T mask", "mask = x > 0; y = x * mask")
TANH_BACKWARD = ("T gy, T y", "T gx", "gx = gy * (1 - y * y)")
CUDA = {
    "relu": RELU,
    "tanh_backward": TANH_BACKWARD,
    "sgd": SGD,
    "sgd_momentum": SGD_MOMENTUM,
    "adam": ADAM,
    "adam_half": ADAM_HALF,
    "cross_entropy_exp": CROSS_ENTROPY_EXP,
    "cross_entropy_loss": CROSS_ENTROPY_LOSS,
    "cross_entropy_grad": CROSS_ENTROPY_GRAD,
}


def cuda_kernels(cupy: Any) -> dict[str, Callable[..., Any]]:
    """CuPy compiles each with NVRTC at its first call and caches it."""
    return {name: cupy.ElementwiseKernel(*spec, f"devcheck_{name}") for name, spec in CUDA.items()}


def _adam(g, step, b1, b2, eps, bc2, decay, p, m, v):
    d = g if not decay else g + decay * p
    m *= b1
    m += (1 - b1) * d
    v *= b2
    v += (1 - b2) * (d * d)
    denom = numpy.sqrt(v / bc2, out=numpy.empty_like(v))
    denom += eps
    numpy.divide(m, denom, out=denom)
    denom *= step
    p -= denom


def _adam_half(g, step, b1, b2, eps, bc2, decay, p, m, v):
    """float16 computed in float32 and stored in float16 (ADAM_HALF)."""
    wide = [a.astype(numpy.float32) for a in (p, m, v)]
    _adam(g.astype(numpy.float32), step, b1, b2, eps, bc2, decay, *wide)
    for narrow, value in zip((p, m, v), wide):
        narrow[...] = value


NUMPY_KERNELS: dict[str, Callable[..., Any]] = {"adam": _adam, "adam_half": _adam_half}
