"""The training loop: data, model, and epochs with no device-to-host copy inside them."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy

from devcheck.commands.train.config import Config
from devcheck.report import Progress


def spirals(samples: int, seed: int, noise: float = 0.05) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Two spirals, one and a half turns each, wound into one another."""
    rng = numpy.random.default_rng(seed)
    labels = rng.integers(0, 2, samples)
    t = numpy.sqrt(rng.random(samples)) * 3 * numpy.pi
    angle = t + numpy.pi * labels
    points = numpy.stack([t * numpy.cos(angle), t * numpy.sin(angle)], axis=1) / (3 * numpy.pi)
    points += noise * rng.standard_normal(points.shape)
    return points.astype(numpy.float32), labels.astype(numpy.int64)


def build(config: Config, device: Any) -> tuple[Any, Any]:
    from devcheck.engine import nn, optim

    h = config.hidden
    model = nn.Sequential(
        nn.Linear(2, h, device=device),
        nn.Tanh(),
        nn.Linear(h, h, device=device),
        nn.Tanh(),
        nn.Linear(h, 2, device=device),
    )
    if config.optimizer == "adam":
        return model, optim.Adam(model.parameters(), lr=config.lr)
    return model, optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)


@dataclass
class Run:
    device: Any  # the engine Device
    epochs: list[dict] = field(default_factory=list)
    diverged: str = ""
    done: bool = False  # trained to the end, or diverged: not cut short by an interrupt
    model: Any = None
    optimizer: Any = None
    kept: dict | None = None  # a copy of the state after the last epoch finished (with --save): `keep` below

    @property
    def name(self) -> str:
        return self.device.name

    @property
    def losses(self) -> list[float]:
        return [e["loss"] for e in self.epochs]


def train_on(
    run: Run,
    config: Config,
    data: dict,
    resume: dict | None,
    log: Any,
    progress: Progress,
    keep: Callable[[Run], dict] | None = None,
) -> None:
    """Train on `run.device`, each epoch added to `run` as it ends (an interrupted run keeps them),
    and with `keep`, the state it ends in: an interrupt inside the next epoch leaves it whole."""
    from devcheck.engine import backend, manual_seed
    from devcheck.engine.data import DataLoader, TensorDataset

    manual_seed(config.seed)
    device = run.device
    run.model, run.optimizer = model, optimizer = build(config, device)
    first_epoch = 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        backend.generator().bit_generator.state = json.loads(resume["rng"])
        run.epochs = list(resume["epochs"])
        first_epoch = int(resume["epoch"]) + 1
    loader = DataLoader(
        TensorDataset(data["x_train"], data["y_train"]),
        batch_size=config.batch_size,
        shuffle=True,
        num_workers=config.num_workers,
        device=device,
    )
    for epoch in range(first_epoch, config.epochs + 1):
        started = time.perf_counter()
        record = _epoch(model, optimizer, loader, epoch, run)
        if run.diverged:
            break
        record.update(_evaluate(model, data, device))
        seconds = time.perf_counter() - started
        record.update(seconds=seconds, samples_per_s=len(data["x_train"]) / seconds, device=device.name, epoch=epoch)
        run.epochs.append(record)
        if keep is not None:
            run.kept = keep(run)
        if log is not None:
            log.write(json.dumps(record) + "\n")
            log.flush()
        progress(
            f"{device.name} epoch {epoch}/{config.epochs}  loss {record['loss']:.4f}  "
            f"val acc {record['val_accuracy']:.3f}  {record['samples_per_s']:,.0f} samples/s",
            advance=1,
        )
    run.done = True


def _epoch(model: Any, optimizer: Any, loader: Any, epoch: int, run: Run) -> dict:
    """One epoch with no device-to-host copy inside it: losses and hits stay on the device, and one
    copy at the end brings them back, with a sum of every parameter (non-finite if any weight is)."""
    from devcheck.engine import functional as F
    from devcheck.engine import no_grad, stack

    model.train()
    losses, hits, sizes = [], [], []
    for x, y in loader:
        optimizer.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        with no_grad():
            losses.append(loss.detach())
            hits.append(logits.argmax(axis=1).eq(y).sum().to(loss.dtype))
        sizes.append(len(y))
    with no_grad():
        weights = stack([p.detach().sum() for p in model.parameters()]).sum()
        host = stack([*losses, *hits, weights.to(losses[0].dtype)]).numpy().astype(numpy.float64)
    steps = len(losses)
    step_losses, correct, weight_sum = host[:steps], host[steps : 2 * steps].sum(), host[-1]
    bad = numpy.flatnonzero(~numpy.isfinite(step_losses))
    if bad.size:
        run.diverged = f"loss {step_losses[bad[0]]} is not finite at epoch {epoch}, step {bad[0] + 1}"
        return {}
    if not math.isfinite(weight_sum):
        run.diverged = f"the weights are not finite after epoch {epoch} (a gradient overflowed)"
        return {}
    count = sum(sizes)
    return {"loss": float(numpy.dot(step_losses, sizes) / count), "train_accuracy": correct / count}


def _evaluate(model: Any, data: dict, device: Any) -> dict:
    from devcheck.engine import functional as F
    from devcheck.engine import no_grad, stack, tensor

    model.eval()
    with no_grad():
        logits = model(tensor(data["x_val"], device=device))
        target = tensor(data["y_val"], device=device)
        loss = F.cross_entropy(logits, target)
        loss_value, correct = stack([loss, logits.argmax(axis=1).eq(target).sum().to(loss.dtype)]).numpy()
    return {"val_loss": float(loss_value), "val_accuracy": float(correct) / len(data["y_val"])}
