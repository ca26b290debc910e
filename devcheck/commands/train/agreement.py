"""Do the devices agree? The first steps from identical weights and batches, step by step, to
rounding; then the outcomes. A long float32 run diverges chaotically on any two devices (the healthy
H100 differed by 0.16 in epoch 59's loss), so its late losses are no test of a device."""

from __future__ import annotations

import math
from typing import Any

import numpy

from devcheck import numerics
from devcheck.commands.train.config import Config
from devcheck.commands.train.loop import Run, build
from devcheck.report import Check, Status

LOCKSTEP_STEPS = 10  # steps compared one by one across devices
ACCURACY_MARGIN = 0.02  # final validation accuracy, each GPU against the CPU


def lockstep(config: Config, data: dict, device: Any, steps: int) -> numpy.ndarray:
    """The first `steps` training steps from the seed's weights and batches: per step, the loss and
    each parameter's squared gradient norm (one copy to the host at the end)."""
    from devcheck.engine import functional as F
    from devcheck.engine import manual_seed, no_grad, stack
    from devcheck.engine.data import DataLoader, TensorDataset

    manual_seed(config.seed)
    model, optimizer = build(config, device)
    loader = DataLoader(
        TensorDataset(data["x_train"], data["y_train"]), batch_size=config.batch_size, shuffle=True, device=device
    )
    rows = []
    for _, (x, y) in zip(range(steps), loader):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        with no_grad():
            rows.append(stack([loss.detach(), *((p.grad * p.grad).sum() for p in model.parameters())]))
        optimizer.step()
    with no_grad():
        return stack(rows).numpy().astype(numpy.float64)


def lockstep_tolerance(dtype_roundoff: float, width: int, steps: int) -> float:
    """Two correct devices round each reduction differently, by about sqrt(width) unit roundoffs, and
    training adds such differences up step after step; 64x for margin. float32, width 64, 10 steps:
    3e-4, while a backward that is 1% off moves a gradient norm by 1e-2."""
    return 64 * dtype_roundoff * math.sqrt(width) * steps


def agreement_checks(runs: list[Run], config: Config, data: dict) -> list[Check]:
    """Each GPU against the CPU: the first steps from identical weights and batches agree to rounding,
    and the trained outcomes agree (the long run is chaotic: late float32 losses differ by design)."""
    reference = next((r for r in runs if r.name == "cpu" and r.epochs), None)
    others = [r for r in runs if r is not reference and r.epochs and not r.diverged]
    if reference is None or not others:
        return []
    steps = min(LOCKSTEP_STEPS, math.ceil(len(data["x_train"]) / config.batch_size))
    checks = agreement_steps(config, data, [reference.device, *(r.device for r in others)], steps)
    for r in others:
        ours, theirs = r.epochs[-1]["val_accuracy"], reference.epochs[-1]["val_accuracy"]
        close = abs(ours - theirs) <= ACCURACY_MARGIN
        checks.append(
            Check(
                f"train.outcome.{r.name}",
                Status.OK if close else Status.FAIL,
                f"{r.name} vs cpu: validation accuracy {ours:.3f} vs {theirs:.3f} "
                f"(margin {ACCURACY_MARGIN}, {round(ACCURACY_MARGIN * len(data['y_val']))} of "
                f"{len(data['y_val'])} samples)",
                fix="" if close else f"run `devcheck grad --device {r.name}`",
            )
        )
    return checks


def agreement_steps(config: Config, data: dict, devices: list[Any], steps: int) -> list[Check]:
    """The first `steps` steps on every GPU against the CPU's (devices[0]), loss and gradient norms."""
    expected = lockstep(config, data, devices[0], steps)
    checks = []
    for device in devices[1:]:
        roundoff = numerics.matmul_roundoff("float32", device.name)
        tolerance = lockstep_tolerance(roundoff, max(config.hidden, config.batch_size), steps)
        diff = numpy.abs(lockstep(config, data, device, steps) - expected) / numpy.maximum(numpy.abs(expected), 1e-30)
        step, column = numpy.unravel_index(int(numpy.argmax(diff)), diff.shape)
        what = "loss" if column == 0 else f"gradient norm of parameter {column - 1}"
        text = (
            f"{device.name} vs cpu, first {steps} steps from the same weights and batches: largest relative "
            f"difference {diff[step, column]:.1e} ({what}, step {step + 1}), tolerance {tolerance:.1e}"
        )
        ok = bool(diff[step, column] <= tolerance)
        fix = "" if ok else f"the devices compute different gradients: run `devcheck grad --device {device.name}`"
        checks.append(Check(f"train.agreement.{device.name}", Status.OK if ok else Status.FAIL, text, fix=fix))
    return checks
