"""One training step with devcheck.engine against the same math hand-written in NumPy, side by
side in one process (interleaved, medians).

    python benchmarks/engine_step.py

Targets (2-core CPU machine): reference MLP 784-512-512-10, batch 256, float32, cross-entropy,
SGD with momentum <= 1.10x; tiny MLP 2-16-16-2, batch 32 (overhead-bound) <= 4x.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy

from devcheck.engine import functional as F
from devcheck.engine import manual_seed, nn, optim, tensor

LR, MOMENTUM = 0.01, 0.9


def engine_step_fn(sizes: list[int], x: numpy.ndarray, y: numpy.ndarray):
    manual_seed(0)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    model = nn.Sequential(*layers)
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    xt, yt = tensor(x), tensor(y)

    def step() -> float:
        opt.zero_grad()
        loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        return loss

    return step, [p.numpy().copy() for p in model.parameters()]


def numpy_step_fn(params: list[numpy.ndarray], x: numpy.ndarray, y: numpy.ndarray):
    """The same forward, backward and momentum update, written out by hand."""
    params = [p.copy() for p in params]
    bufs = [numpy.zeros_like(p) for p in params]
    onehot = (y[:, None] == numpy.arange(params[-1].shape[0])).astype(x.dtype)
    n, first = len(x), [True]

    def step() -> float:
        weights, biases = params[0::2], params[1::2]
        acts, pre = [x], []
        for i, (w, b) in enumerate(zip(weights, biases)):
            z = acts[-1] @ w.T + b
            pre.append(z)
            acts.append(numpy.maximum(z, 0) if i < len(weights) - 1 else z)
        z = acts[-1]
        shifted = z - z.max(axis=1, keepdims=True)
        e = numpy.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        loss = -((shifted - numpy.log(s)) * onehot).sum() / n
        g = (e / s - onehot) * numpy.float32(1 / n)
        grads = []
        for i in reversed(range(len(weights))):
            if i < len(weights) - 1:
                g = g * (pre[i] > 0)
            grads = [g.T @ acts[i], g.sum(axis=0)] + grads
            if i:
                g = g @ weights[i]
        for p, gp, buf in zip(params, grads, bufs):
            if first[0]:
                buf[...] = gp
            else:
                buf *= MOMENTUM
                buf += gp
            p -= LR * buf
        first[0] = False
        return loss

    return step


def compare(name: str, sizes: list[int], batch: int, repeats: int, target: float) -> bool:
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((batch, sizes[0])).astype(numpy.float32)
    y = rng.integers(0, sizes[-1], batch)
    engine, start = engine_step_fn(sizes, x, y)
    handwritten = numpy_step_fn(start, x, y)
    assert abs(float(engine().item()) - float(handwritten())) < 1e-4, "the two steps must compute the same loss"
    for _ in range(3):
        engine(), handwritten()
    a, b = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        engine()
        t1 = time.perf_counter()
        handwritten()
        t2 = time.perf_counter()
        a.append(t1 - t0)
        b.append(t2 - t1)
    ratio = statistics.median(a) / statistics.median(b)
    print(
        f"{name:<32} engine {statistics.median(a) * 1e6:9.1f} us   numpy {statistics.median(b) * 1e6:9.1f} us   "
        f"ratio {ratio:4.2f} (target <= {target})  {'ok' if ratio <= target else 'OVER TARGET'}"
    )
    return ratio <= target


def main() -> int:
    results = [
        compare("MLP 784-512-512-10, batch 256", [784, 512, 512, 10], 256, 40, 1.10),
        compare("MLP 2-16-16-2, batch 32", [2, 16, 16, 2], 32, 2000, 4.0),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
