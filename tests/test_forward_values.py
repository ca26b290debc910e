"""Every op's forward value against NumPy written out independently, on the CPU, the simulated device
and the CuPy stand-in. Gradcheck cannot see a wrong forward whose backward follows it (a sigmoid
computed as tanh(x) / 2 + 1/2 is differentiated consistently), and the cross-device tests compare the
engine only with itself: only an outside reference catches it."""

import numpy
import pytest

from devcheck.commands.grad_cases import cases, input_for
from devcheck.engine import functional as F
from devcheck.engine import tensor

RNG = numpy.random.default_rng(1)  # the constants grad_cases builds from the same seed
W, BIAS = RNG.standard_normal((4, 2)), RNG.standard_normal(2)
TARGET = numpy.array([0, 1, 1])
GRID = numpy.arange(12.0).reshape(2, 6)


def _log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - numpy.log(numpy.exp(x - m).sum(axis=axis, keepdims=True))


def _sigmoid(x):
    return 1.0 / (1.0 + numpy.exp(-x))


def _cross_entropy(logits):
    return -numpy.log(numpy.exp(logits) / numpy.exp(logits).sum(axis=1, keepdims=True))[range(3), TARGET]


REFERENCE = {
    "add": lambda x: (x + 2.0 + x[0:1]).sum(),
    "sub": lambda x: (1.0 - x - x[:, 0:1]).sum(),
    "mul": lambda x: (x * x * 3.0).sum(),
    "div": lambda x: (1.0 / (x * x + 1) + x / 2.0).sum(),
    "neg": lambda x: (-x * x).sum(),
    "pow": lambda x: ((x * x + 1) ** 1.5).sum(),
    "pow_tensor": lambda x: ((x * x + 1) ** (x * 0.5)).sum(),
    "rpow": lambda x: (2.0**x).sum(),
    "matmul": lambda x: (x @ W).sum(),
    "matmul_1d": lambda x: (x @ W[:, 0]).sum() + x[0] @ x[1],
    "matmul_batched": lambda x: (numpy.stack([x, x * 2]) @ W).sum(),
    "exp": lambda x: numpy.exp(x).sum(),
    "log": lambda x: numpy.log(x * x + 1).sum(),
    "sqrt": lambda x: numpy.sqrt(x * x + 1).sum(),
    "abs": lambda x: (numpy.abs(x) * x).sum(),
    "tanh": lambda x: numpy.tanh(x).sum(),
    "sigmoid": lambda x: _sigmoid(x).sum(),
    "relu": lambda x: (numpy.maximum(x, 0) * x).sum(),
    "clip": lambda x: (numpy.clip(x, -0.5, 0.5) * x).sum(),
    "where": lambda x: numpy.where(x > 0, x, x * x).sum(),
    "sum": lambda x: (x.sum(axis=1) ** 2).sum(),
    "mean": lambda x: (x.mean(axis=0, keepdims=True) * x).sum(),
    "max": lambda x: (x.max(axis=1) ** 2).sum(),
    "min": lambda x: (x.min(axis=0, keepdims=True) * x).sum(),
    "reshape": lambda x: (x.reshape(2, 6) * GRID).sum(),
    "transpose": lambda x: (x.T @ x).sum(),
    "permute": lambda x: (x.reshape(3, 2, 2).transpose(2, 0, 1) * x.reshape(2, 3, 2)).sum(),
    "flip": lambda x: (x[::-1] * x).sum(),
    "slice": lambda x: (x[1:, ::2] * 3 + x[0, ::2]).sum(),
    "index_repeats": lambda x: (x[[0, 0, 2]] * x[[1, 1, 1]]).sum(),
    "index_axis1": lambda x: (x[:, [3, 3, 1]] ** 2).sum(),
    "mask": lambda x: (x[x > 0] ** 2).sum(),
    "concatenate": lambda x: (numpy.concatenate([x, x * 2], axis=1) ** 2).sum(),
    "stack": lambda x: (numpy.stack([x, x * x], axis=1) * 1.5).sum(),
    "softmax": lambda x: (numpy.exp(x) / numpy.exp(x).sum(axis=-1, keepdims=True) * x).sum(),
    "log_softmax": lambda x: (_log_softmax(x, 0) * x).sum(),
    "cross_entropy": lambda x: _cross_entropy(x).mean(),
    "cross_entropy_sum": lambda x: _cross_entropy(x * 2).sum(),
    "mse_loss": lambda x: ((x - (x * 0.5 + 1)) ** 2).mean(),
    "linear": lambda x: ((x @ W + BIAS) ** 2).sum(),
}


def test_every_op_has_a_reference():
    assert set(REFERENCE) == set(cases("cpu"))


@pytest.mark.parametrize("op", sorted(REFERENCE))
def test_every_op_forward_matches_numpy(op, fused_device):
    x = input_for(fused_device)
    got = cases(fused_device)[op](x).item()
    assert got == pytest.approx(REFERENCE[op](x.numpy()), rel=1e-12, abs=1e-12), op


# Elementwise, at points where a wrong formula cannot hide in a sum (sigmoid(0) is 0.5 either way).
POINTS = numpy.array([-30.0, -3.0, -1.0, -0.25, 0.0, 0.4, 1.0, 2.5, 30.0])
ELEMENTWISE = {
    "sigmoid": (lambda t: t.sigmoid(), _sigmoid),
    "tanh": (lambda t: t.tanh(), numpy.tanh),
    "exp": (lambda t: t.exp(), numpy.exp),
    "relu": (lambda t: t.relu(), lambda x: numpy.maximum(x, 0.0)),
    "abs": (lambda t: abs(t), numpy.abs),
    "neg": (lambda t: -t, numpy.negative),
    "clip": (lambda t: t.clip(-0.5, 0.5), lambda x: numpy.clip(x, -0.5, 0.5)),
    "log": (lambda t: (t * t + 1).log(), lambda x: numpy.log(x * x + 1)),
    "sqrt": (lambda t: (t * t + 1).sqrt(), lambda x: numpy.sqrt(x * x + 1)),
    "functional.sigmoid": (F.sigmoid, _sigmoid),
    "functional.relu": (F.relu, lambda x: numpy.maximum(x, 0.0)),
    "functional.tanh": (F.tanh, numpy.tanh),
}


@pytest.mark.parametrize("op", sorted(ELEMENTWISE))
def test_elementwise_forward_matches_numpy(op, fused_device):
    ours, theirs = ELEMENTWISE[op]
    got = ours(tensor(POINTS, dtype="float64", device=fused_device)).numpy()
    numpy.testing.assert_allclose(
        got, theirs(POINTS), rtol=1e-13, atol=1e-15
    )  # tanh-based sigmoid: absolute error at -30


def test_sigmoid_at_known_points():
    """1 / (1 + e^-x): 0.5 at 0, 0.7310585786 at 1, 0.1192029220 at -2 (tanh(x) / 2 + 1/2 gives 0.88 at 1)."""
    got = tensor([0.0, 1.0, -2.0], dtype="float64").sigmoid().numpy()
    numpy.testing.assert_allclose(got, [0.5, 0.7310585786300049, 0.11920292202211755], rtol=1e-14)
