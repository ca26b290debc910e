"""`devcheck train`: does a small network really learn on every device, and do the devices agree?

Two interleaved spirals, generated from the seed on the host: a small MLP learns them in seconds
on a CPU, a linear model (or a network whose hidden layers get broken gradients) cannot. Every
device starts from the same weights and sees the same batches, so their loss curves must agree.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy

from devcheck.commands import grad
from devcheck.errors import BadInput, check_writable
from devcheck.machine.devices import select, selection_checks
from devcheck.report import Chart, Check, Report, Section, Status

LOCKSTEP_STEPS = 10  # steps compared one by one across devices
ACCURACY_MARGIN = 0.02  # final validation accuracy, each GPU against the CPU
Progress = Callable[..., None]


@dataclass(frozen=True)
class Config:
    epochs: int = 60
    batch_size: int = 32
    lr: float = 0.005
    hidden: int = 64
    optimizer: str = "adam"
    seed: int = 0
    num_workers: int = 0
    min_accuracy: float = 0.95
    samples: int = 2000

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "hidden", "samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise BadInput(f"--{name.replace('_', '-')} {value}: expected a positive integer")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise BadInput(f"--lr {self.lr}: expected a positive number")
        if self.optimizer not in ("adam", "sgd"):
            raise BadInput(f"--optimizer {self.optimizer!r}: expected adam or sgd")
        if self.num_workers < 0:
            raise BadInput(f"--num-workers {self.num_workers}: expected 0 or more")
        if not 0 <= self.min_accuracy <= 1:
            raise BadInput(f"--min-accuracy {self.min_accuracy}: expected a number between 0 and 1")


def spirals(samples: int, seed: int, noise: float = 0.05) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Two spirals, one and a half turns each, wound into one another."""
    rng = numpy.random.default_rng(seed)
    labels = rng.integers(0, 2, samples)
    t = numpy.sqrt(rng.random(samples)) * 3 * numpy.pi
    angle = t + numpy.pi * labels
    points = numpy.stack([t * numpy.cos(angle), t * numpy.sin(angle)], axis=1) / (3 * numpy.pi)
    points += noise * rng.standard_normal(points.shape)
    return points.astype(numpy.float32), labels.astype(numpy.int64)


def build(config: Config, device: str) -> tuple[Any, Any]:
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
    device: str
    epochs: list[dict] = field(default_factory=list)
    diverged: str = ""
    model: Any = None
    optimizer: Any = None

    @property
    def losses(self) -> list[float]:
        return [e["loss"] for e in self.epochs]


def train_on(device: str, config: Config, data: dict, resume: dict | None, log: Any, progress: Progress) -> Run:
    from devcheck.engine import backend, manual_seed
    from devcheck.engine.data import DataLoader, TensorDataset

    manual_seed(config.seed)
    model, optimizer = build(config, device)
    run, first_epoch = Run(device, model=model, optimizer=optimizer), 1
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
        record.update(seconds=seconds, samples_per_s=len(data["x_train"]) / seconds, device=device, epoch=epoch)
        run.epochs.append(record)
        if log is not None:
            log.write(json.dumps(record) + "\n")
            log.flush()
        progress(
            f"{device} epoch {epoch}/{config.epochs}  loss {record['loss']:.4f}  "
            f"val acc {record['val_accuracy']:.3f}  {record['samples_per_s']:,.0f} samples/s",
            advance=1,
        )
    return run


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


def _evaluate(model: Any, data: dict, device: str) -> dict:
    from devcheck.engine import functional as F
    from devcheck.engine import no_grad, stack, tensor

    model.eval()
    with no_grad():
        logits = model(tensor(data["x_val"], device=device))
        target = tensor(data["y_val"], device=device)
        loss = F.cross_entropy(logits, target)
        loss_value, correct = stack([loss, logits.argmax(axis=1).eq(target).sum().to(loss.dtype)]).numpy()
    return {"val_loss": float(loss_value), "val_accuracy": float(correct) / len(data["y_val"])}


def lockstep(config: Config, data: dict, device: str, steps: int) -> numpy.ndarray:
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


def _checkpoint(run: Run, config: Config) -> dict:
    from devcheck.engine import backend

    return {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "epoch": run.epochs[-1]["epoch"],
        "epochs": run.epochs,
        "rng": json.dumps(backend.generator().bit_generator.state),
        "config": {k: getattr(config, k) for k in ("hidden", "optimizer", "seed", "samples")},
    }


def save_and_verify(run: Run, config: Config, path: Path, data: dict) -> Check:
    """Write the checkpoint atomically, read it back into a fresh model, and compare predictions."""
    from devcheck.engine import load, no_grad, save, tensor

    save(_checkpoint(run, config), path)
    state = load(path, device=run.device)
    fresh, _ = build(config, run.device)
    fresh.load_state_dict(state["model"])
    with no_grad():
        x = tensor(data["x_val"], device=run.device)
        same = numpy.array_equal(fresh.eval()(x).numpy(), run.model.eval()(x).numpy())
    if same:
        return Check("train.checkpoint", Status.OK, f"saved to {path}; reloaded, it predicts identically")
    return Check(
        "train.checkpoint", Status.FAIL, f"the checkpoint at {path} does not reproduce the model's predictions"
    )


def load_resume(path: Path, device: str, config: Config) -> dict:
    from devcheck.engine import CheckpointError, load

    try:
        state = load(path, device=device)
    except CheckpointError as e:
        raise BadInput(f"--resume: {e}") from None
    saved = state.get("config", {}) if isinstance(state, dict) else {}
    expected = {k: getattr(config, k) for k in ("hidden", "optimizer", "seed", "samples")}
    if saved != expected:
        raise BadInput(f"--resume {path}: it was trained with {saved}, this run asks for {expected}")
    return state


def run(
    config: Config = Config(),
    device: str = "auto",
    require_gpu: bool = False,
    save: Path | None = None,
    resume: Path | None = None,
    log: Path | None = None,
    progress: Progress = lambda *a, **k: None,
) -> Report:
    config.validate()
    for option, path in (("--save", save), ("--log", log)):
        if path is not None:
            check_writable(option, path)
    if resume is not None and not resume.is_file():
        raise BadInput(f"--resume {resume}: no such file")
    sel = select(device)
    x, y = spirals(config.samples, config.seed)
    cut = int(0.8 * len(x))
    data = {"x_train": x[:cut], "y_train": y[:cut], "x_val": x[cut:], "y_val": y[cut:]}

    report = Report("train")
    report.checks += selection_checks(sel, require_gpu)
    progress("training", total=config.epochs * len(sel.names))
    runs = []
    with open(log, "w", encoding="utf-8") if log is not None else contextlib.nullcontext() as log_file:
        for name in sel.names:
            state = load_resume(resume, name, config) if resume is not None else None
            with numpy.errstate(all="ignore"):  # non-finite values are detected and reported, not warned about
                runs.append(train_on(name, config, data, state, log_file, progress))

    for r in runs:
        report.checks.append(_learned_check(r, config))
    report.checks += _agreement_checks(runs, config, data)
    if save is not None and runs and runs[0].epochs and not runs[0].diverged:
        report.checks.append(save_and_verify(runs[0], config, save, data))

    rows = [
        {
            "device": r.device,
            "epoch": e["epoch"],
            "loss": e["loss"],
            "train acc": e["train_accuracy"],
            "val loss": e["val_loss"],
            "val acc": e["val_accuracy"],
            "seconds": e["seconds"],
            "samples/s": e["samples_per_s"],
        }
        for r in runs
        for e in r.epochs
    ]
    report.sections.append(Section("epochs", "Training, per epoch", rows=rows))
    report.sections.append(Section("devices", "Per device", rows=[_device_row(r) for r in runs]))
    report.charts.append(Chart("training loss per epoch", {r.device: r.losses for r in runs if r.epochs}))
    report.data["config"] = {k: getattr(config, k) for k in Config.__dataclass_fields__}
    failure = report.first_failure
    report.verdict = (
        f"training: FAILED — {failure.summary}"
        if failure
        else f"training: learns on {', '.join(r.device for r in runs)}"
    )
    return report


def _device_row(r: Run) -> dict:
    last = r.epochs[-1] if r.epochs else {}
    seconds = [e["seconds"] for e in r.epochs]
    return {
        "device": r.device,
        "epochs": len(r.epochs),
        "final loss": last.get("loss"),
        "val acc": last.get("val_accuracy"),
        "s/epoch (median)": float(numpy.median(seconds)) if seconds else None,
        "samples/s (median)": float(numpy.median([e["samples_per_s"] for e in r.epochs])) if seconds else None,
    }


def _learned_check(r: Run, config: Config) -> Check:
    if r.diverged:
        return Check(
            f"train.{r.device}.finite",
            Status.FAIL,
            f"{r.device}: {r.diverged}",
            fix="lower --lr; if the defaults diverge, the device computes wrong values (`devcheck grad`)",
        )
    accuracy = r.epochs[-1]["val_accuracy"] if r.epochs else 0.0
    if accuracy >= config.min_accuracy:
        return Check(
            f"train.{r.device}.learned",
            Status.OK,
            f"{r.device}: validation accuracy {accuracy:.3f} >= {config.min_accuracy}",
        )
    return Check(
        f"train.{r.device}.learned",
        Status.FAIL,
        f"{r.device}: validation accuracy {accuracy:.3f} < {config.min_accuracy} after {len(r.epochs)} epochs",
        fix="with the default options this means wrong gradients or arithmetic: run `devcheck grad`",
    )


def _agreement_checks(runs: list[Run], config: Config, data: dict) -> list[Check]:
    """Each GPU against the CPU: the first steps from identical weights and batches agree to rounding,
    and the trained outcomes agree (the long run is chaotic: late float32 losses differ by design)."""
    reference = next((r for r in runs if r.device == "cpu" and r.epochs), None)
    others = [r for r in runs if r is not reference and r.epochs and not r.diverged]
    if reference is None or not others:
        return []
    steps = min(LOCKSTEP_STEPS, math.ceil(len(data["x_train"]) / config.batch_size))
    expected = lockstep(config, data, "cpu", steps)
    checks = []
    for r in others:
        roundoff = 2.0**-11 if grad.tf32_on(r.device) else 2.0**-24  # float32, or TF32 matmuls (CUPY_TF32)
        tolerance = lockstep_tolerance(roundoff, max(config.hidden, config.batch_size), steps)
        got = lockstep(config, data, r.device, steps)
        diff = numpy.abs(got - expected) / numpy.maximum(numpy.abs(expected), 1e-30)
        step, column = numpy.unravel_index(int(numpy.argmax(diff)), diff.shape)
        what = "loss" if column == 0 else f"gradient norm of parameter {column - 1}"
        text = (
            f"{r.device} vs cpu, first {steps} steps from the same weights and batches: largest relative "
            f"difference {diff[step, column]:.1e} ({what}, step {step + 1}), tolerance {tolerance:.1e}"
        )
        ok = bool(diff[step, column] <= tolerance)
        checks.append(
            Check(
                f"train.agreement.{r.device}",
                Status.OK if ok else Status.FAIL,
                text,
                fix="" if ok else f"the devices compute different gradients: run `devcheck grad --device {r.device}`",
            )
        )
        ours, theirs = r.epochs[-1]["val_accuracy"], reference.epochs[-1]["val_accuracy"]
        close = abs(ours - theirs) <= ACCURACY_MARGIN
        checks.append(
            Check(
                f"train.outcome.{r.device}",
                Status.OK if close else Status.FAIL,
                f"{r.device} vs cpu: validation accuracy {ours:.3f} vs {theirs:.3f} "
                f"(margin {ACCURACY_MARGIN}, {round(ACCURACY_MARGIN * len(data['y_val']))} of "
                f"{len(data['y_val'])} samples)",
                fix="" if close else f"run `devcheck grad --device {r.device}`",
            )
        )
    return checks
