"""One training step of the reference MLP, two ways on the same device: with devcheck.engine, and
as the same math written out on raw arrays. Their ratio is the engine's overhead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy

LR, MOMENTUM = 0.01, 0.9
REFERENCE = ([784, 512, 512, 10], 256)  # layer sizes, batch


def data(sizes: list[int], batch: int, seed: int = 0) -> tuple[numpy.ndarray, numpy.ndarray]:
    rng = numpy.random.default_rng(seed)
    return rng.standard_normal((batch, sizes[0])).astype(numpy.float32), rng.integers(0, sizes[-1], batch)


def engine_step(
    sizes: list[int], x: numpy.ndarray, y: numpy.ndarray, device: str, optimizer: str = "sgd"
) -> tuple[Callable, list]:
    """The engine's step (SGD with momentum, or Adam); also returns the starting weights (host copies)
    for the raw step."""
    from devcheck.engine import functional as F
    from devcheck.engine import manual_seed, nn, optim, tensor

    manual_seed(0)
    layers: list = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers += [nn.Linear(a, b, device=device)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    model = nn.Sequential(*layers)
    if optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=LR)
    else:
        opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    xt, yt = tensor(x, device=device), tensor(y, device=device)

    def step() -> Any:
        opt.zero_grad()
        loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        return loss.data

    return step, [p.numpy().copy() for p in model.parameters()]


def raw_step(params: list[numpy.ndarray], x: numpy.ndarray, y: numpy.ndarray, device: Any) -> Callable:
    """The same forward, backward and momentum update, written by hand against the Array API."""
    xp, put = device.xp, device.from_host
    params = [put(p.copy()) for p in params]
    bufs: list = [None] * len(params)
    xd = put(x)
    onehot = put((y[:, None] == numpy.arange(params[-1].shape[0])).astype(x.dtype))
    inv_n = 1.0 / len(x)

    def step() -> Any:
        weights, biases = params[0::2], params[1::2]
        acts, masks = [xd], []
        for i, (w, b) in enumerate(zip(weights, biases)):
            z = xp.matmul(acts[-1], xp.matrix_transpose(w)) + b
            if i < len(weights) - 1:
                masks.append(xp.astype(z > 0, z.dtype))
                z = z * masks[-1]
            acts.append(z)
        z = acts[-1]
        shifted = z - xp.max(z, axis=1, keepdims=True)
        e = xp.exp(shifted)
        s = xp.sum(e, axis=1, keepdims=True)
        loss = -xp.sum((shifted - xp.log(s)) * onehot) * inv_n
        g = (e / s - onehot) * inv_n
        grads: list = []
        for i in reversed(range(len(weights))):
            if i < len(weights) - 1:
                g = g * masks[i]
            grads = [xp.matmul(xp.matrix_transpose(g), acts[i]), xp.sum(g, axis=0)] + grads
            if i:
                g = xp.matmul(g, weights[i])
        for j, (p, gp) in enumerate(zip(params, grads)):
            if bufs[j] is None:
                bufs[j] = gp + 0
            else:
                bufs[j] *= MOMENTUM
                bufs[j] += gp
            p -= LR * bufs[j]
        return loss

    return step
