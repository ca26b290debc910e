"""Gradient checking: the engine's analytic gradients against central finite differences.

Slow mode compares whole Jacobians; fast mode (PyTorch's fast_mode, Chainer's check_backward)
compares one random directional derivative, O(1) passes instead of O(numel). Both also check that
backward run twice agrees (reentrancy) and that a zero output gradient gives zero input gradients.
Inputs should be float64 and away from kinks (relu at 0, ties in max).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy

from devcheck.engine.tensor import Tensor, grad


@dataclass
class GradcheckResult:
    ok: bool
    max_abs_error: float
    max_rel_error: float
    reentrant: bool
    zero_grad_ok: bool
    message: str = ""

    def __bool__(self) -> bool:
        return self.ok


def _evaluate(fn: Callable[..., Tensor], hosts: list[numpy.ndarray], like: Sequence[Tensor]) -> numpy.ndarray:
    args = [Tensor(x.device.from_host(h), x.device) for h, x in zip(hosts, like)]
    return fn(*args).numpy().astype(numpy.float64)


def _random_direction(vjp: list, hosts: list, numeric: Callable, rng: numpy.random.Generator) -> tuple[float, float]:
    """One directional derivative, analytic against central differences (fast mode)."""
    directions = [rng.standard_normal(h.shape) for h in hosts]
    norm = numpy.sqrt(sum(float(numpy.sum(d * d)) for d in directions)) or 1.0
    directions = [d / norm for d in directions]
    expected = numeric(directions)
    got = sum(float(numpy.sum(g * d)) for g, d in zip(vjp, directions))
    return abs(got - expected), abs(expected)


def _whole_jacobian(vjp: list, hosts: list, numeric: Callable, atol: float, rtol: float) -> tuple[float, float]:
    """Each input element's column of the Jacobian, contracted with v; the worst element's error."""
    errors, scales = [], []
    for i, h in enumerate(hosts):
        column = numpy.zeros(h.shape)
        for j in range(h.size):
            direction = [numpy.zeros(x.shape) for x in hosts]
            direction[i].flat[j] = 1.0
            column.flat[j] = numeric(direction)
        errors.append(numpy.abs(column - vjp[i]).ravel())
        scales.append(numpy.abs(column).ravel())
    abs_all, scale_all = numpy.concatenate(errors), numpy.concatenate(scales)
    if not abs_all.size:
        return 0.0, 0.0
    worst = int(numpy.argmax(abs_all - (atol + rtol * scale_all)))
    return float(abs_all[worst]), float(scale_all[worst])


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast: bool = False,
    seed: int = 0,
) -> GradcheckResult:
    rng = numpy.random.default_rng(seed)
    inputs = list(inputs)
    hosts = [x.numpy().copy() for x in inputs]
    out = fn(*inputs)
    v = rng.standard_normal(out.shape)
    v_tensor = Tensor(out.device.from_host(v.astype(out.dtype)), out.device)

    def analytic(seed_tensor: Tensor) -> list[numpy.ndarray]:
        found = grad(fn(*inputs), inputs, seed_tensor, allow_unused=True)
        return [numpy.zeros(x.shape) if g is None else g.numpy().astype(numpy.float64) for g, x in zip(found, inputs)]

    def numeric_directional(direction: list[numpy.ndarray]) -> float:
        plus = [h + eps * d for h, d in zip(hosts, direction)]
        minus = [h - eps * d for h, d in zip(hosts, direction)]
        return float(numpy.sum(v * (_evaluate(fn, plus, inputs) - _evaluate(fn, minus, inputs))) / (2 * eps))

    vjp = analytic(v_tensor)
    if fast:
        abs_err, scale = _random_direction(vjp, hosts, numeric_directional, rng)
    else:
        abs_err, scale = _whole_jacobian(vjp, hosts, numeric_directional, atol, rtol)
    ok = abs_err <= atol + rtol * scale
    rel_err = abs_err / scale if scale else abs_err

    again = analytic(v_tensor)
    reentrant = all(numpy.array_equal(a, b) for a, b in zip(vjp, again))
    zero = Tensor(out.device.from_host(numpy.zeros(out.shape, dtype=v.dtype).astype(out.dtype)), out.device)
    zero_grad_ok = all(not numpy.any(g) for g in analytic(zero))
    message = "" if ok else f"gradient differs: abs error {abs_err:.3g} > {atol:g} + {rtol:g} * {scale:.3g}"
    if not reentrant:
        message += " backward run twice disagrees."
    if not zero_grad_ok:
        message += " a zero output gradient gave non-zero input gradients."
    return GradcheckResult(
        ok and reentrant and zero_grad_ok, abs_err, rel_err, reentrant, zero_grad_ok, message.strip()
    )
