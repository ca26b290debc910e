"""Every differentiable op of the engine as a small scalar-valued function of one input, for
`devcheck grad` and the engine's tests. Inputs stay away from kinks (relu, abs and clip at their
corners, ties in max/min), where a finite difference is meaningless."""

import numpy

from devcheck.engine import concatenate, stack, tensor, where
from devcheck.engine import functional as F

INPUT_SHAPE = (3, 4)
USES_MATMUL = frozenset({"matmul", "matmul_1d", "matmul_batched", "transpose", "linear"})  # TF32 rounds these


def input_for(device, dtype="float64", seed=0):
    data = numpy.random.default_rng(seed).standard_normal(INPUT_SHAPE)
    data[numpy.abs(data) < 0.05] = 0.3
    data[numpy.abs(numpy.abs(data) - 0.5) < 0.05] = 0.3  # clip's corners at +-0.5
    return tensor(data, dtype=dtype, device=device, requires_grad=True)


def cases(device, dtype="float64"):
    rng = numpy.random.default_rng(1)
    w = tensor(rng.standard_normal((4, 2)), dtype=dtype, device=device)
    bias = tensor(rng.standard_normal(2), dtype=dtype, device=device)
    target = tensor([0, 1, 1], device=device)
    grid = tensor(numpy.arange(12.0).reshape(2, 6), dtype=dtype, device=device)
    return {
        "add": lambda x: (x + 2.0 + x[0:1]).sum(),
        "sub": lambda x: (1.0 - x - x[:, 0:1]).sum(),
        "mul": lambda x: (x * x * 3.0).sum(),
        "div": lambda x: (1.0 / (x * x + 1) + x / 2.0).sum(),
        "neg": lambda x: (-x * x).sum(),
        "pow": lambda x: ((x * x + 1) ** 1.5).sum(),
        "pow_tensor": lambda x: ((x * x + 1) ** (x * 0.5)).sum(),
        "rpow": lambda x: (2.0**x).sum(),
        "matmul": lambda x: (x @ w).sum(),
        "matmul_1d": lambda x: (x @ w[:, 0]).sum() + (x[0] @ x[1]),
        "matmul_batched": lambda x: (stack([x, x * 2]) @ w).sum(),
        "exp": lambda x: x.exp().sum(),
        "log": lambda x: (x * x + 1).log().sum(),
        "sqrt": lambda x: (x * x + 1).sqrt().sum(),
        "abs": lambda x: (abs(x) * x).sum(),
        "tanh": lambda x: x.tanh().sum(),
        "sigmoid": lambda x: x.sigmoid().sum(),
        "relu": lambda x: (x.relu() * x).sum(),
        "clip": lambda x: (x.clip(-0.5, 0.5) * x).sum(),
        "where": lambda x: where(x > 0, x, x * x).sum(),
        "sum": lambda x: (x.sum(axis=1) ** 2).sum(),
        "mean": lambda x: (x.mean(axis=0, keepdims=True) * x).sum(),
        "max": lambda x: (x.max(axis=1) ** 2).sum(),
        "min": lambda x: (x.min(axis=0, keepdims=True) * x).sum(),
        "reshape": lambda x: (x.reshape(2, 6) * grid).sum(),
        "transpose": lambda x: (x.T @ x).sum(),
        "permute": lambda x: (x.reshape(3, 2, 2).permute(2, 0, 1) * x.reshape(2, 3, 2)).sum(),
        "flip": lambda x: (x.flip(0) * x).sum(),
        "slice": lambda x: (x[1:, ::2] * 3 + x[0, ::2]).sum(),
        "index_repeats": lambda x: (x[[0, 0, 2]] * x[[1, 1, 1]]).sum(),
        "index_axis1": lambda x: (x[:, [3, 3, 1]] ** 2).sum(),
        "mask": lambda x: (x[x > 0] ** 2).sum(),
        "concatenate": lambda x: (concatenate([x, x * 2], axis=1) ** 2).sum(),
        "stack": lambda x: (stack([x, x * x], axis=1) * 1.5).sum(),
        "softmax": lambda x: (F.softmax(x) * x).sum(),
        "log_softmax": lambda x: (F.log_softmax(x, axis=0) * x).sum(),
        "cross_entropy": lambda x: F.cross_entropy(x, target),
        "cross_entropy_sum": lambda x: F.cross_entropy(x * 2, target, reduction="sum"),
        "mse_loss": lambda x: F.mse_loss(x, x * 0.5 + 1),
        "linear": lambda x: (F.linear(x, w.T, bias) ** 2).sum(),
    }
