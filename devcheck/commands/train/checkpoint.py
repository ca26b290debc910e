"""Checkpoints of a training run: written atomically, read back and checked at once; resumed only
into a run with the same model, optimizer, seed and data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy

from devcheck.commands.train.config import Config
from devcheck.commands.train.loop import Run, build
from devcheck.errors import BadInput
from devcheck.report import Check, Status


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


def kept(run: Run, config: Config) -> dict:
    """The checkpoint of the epochs finished, copied to the host between two epochs: the next epoch
    changes the weights in place, and an interrupt inside it must find them as this epoch left them."""
    from devcheck.engine import Tensor, tensor

    def host(value: object) -> object:
        if isinstance(value, dict):
            return {k: host(v) for k, v in value.items()}
        if isinstance(value, list):
            return [host(v) for v in value]
        return tensor(value) if isinstance(value, Tensor) else value  # `tensor` copies, onto the host

    return host(_checkpoint(run, config))


def save_interrupted(run: Run, config: Config, path: Path) -> Check:
    """On an interrupt: the epochs finished, saved atomically, for `--resume` to go on from."""
    from devcheck.engine import save

    save(run.kept, path)
    epoch = run.kept["epoch"]
    return Check(
        "train.checkpoint",
        Status.OK,
        f"interrupted after epoch {epoch} of {config.epochs}: saved to {path}; `--resume {path}` continues",
    )


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


CONFIG_OPTIONS = {"hidden": "--hidden", "optimizer": "--optimizer", "seed": "--seed", "samples": "samples"}
REQUIRED = {"model": dict, "optimizer": dict, "epoch": int, "epochs": list, "rng": str, "config": dict}
EPOCH_FIELDS = ("epoch", "loss", "train_accuracy", "val_loss", "val_accuracy", "seconds", "samples_per_s")


def load_resume(path: Path, config: Config) -> dict:
    """The checkpoint, read onto the host and checked against this run before any work starts: its
    structure, the options it was trained with, every array against the model this run builds, the
    generator state, its epochs, and that some epoch is left to train. Every problem is BadInput."""
    from devcheck.engine import CheckpointError, load

    try:
        state = load(path, device="cpu")
    except CheckpointError as e:
        raise BadInput(f"--resume: {e}") from None
    missing = [
        k
        for k, kind in REQUIRED.items()
        if not isinstance(state, dict) or not isinstance(state.get(k), kind) or isinstance(state.get(k), bool)
    ]
    if missing:
        raise BadInput(f"--resume {path}: not a checkpoint of `devcheck train` (no valid {', '.join(missing)})")
    saved = state["config"]
    hint = "; ".join(
        f"it was trained with {option} {saved.get(k)!r}, this run has {getattr(config, k)!r}"
        for k, option in CONFIG_OPTIONS.items()
        if saved.get(k) != getattr(config, k)
    )
    _check_arrays(path, state, config, f" ({hint})" if hint else "")
    if hint:
        raise BadInput(f"--resume {path}: checkpoint does not match: {hint}; give the same options")
    _check_history(path, state)
    if state["epoch"] >= config.epochs:
        raise BadInput(
            f"--epochs {config.epochs}: the checkpoint {path} has trained {state['epoch']} epochs already, so "
            f"nothing is left to train; give --epochs above {state['epoch']}"
        )
    return state


def _shape(shape: tuple) -> str:
    return "x".join(str(n) for n in shape) or "a scalar"


def _check_arrays(path: Path, state: dict, config: Config, hint: str) -> None:
    """Every array of the checkpoint against the model and optimizer this run builds (on the host)."""
    model, optimizer = build(config, "cpu")
    own, saved = {name: p.shape for name, p in model.named_parameters()}, state["model"]
    problems = [f"layer {name} is missing" for name in own if name not in saved]
    problems += [f"it has a layer {name} this model lacks" for name in saved if name not in own]
    for name, shape in own.items():
        got = tuple(getattr(saved.get(name), "shape", ()))
        if name in saved and got != shape:
            problems.append(f"layer {name} is {_shape(got)}, expected {_shape(shape)}")
    if problems:
        raise BadInput(f"--resume {path}: checkpoint does not match: {'; '.join(problems[:3])}{hint}")
    try:
        model.load_state_dict(saved)
        optimizer.load_state_dict(state["optimizer"])
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as e:
        raise BadInput(f"--resume {path}: checkpoint does not match: {e}{hint}") from None


def _check_history(path: Path, state: dict) -> None:
    """The generator state and one record per epoch trained, as a run writes them."""
    from devcheck.engine import backend

    try:
        type(backend.generator().bit_generator)().state = json.loads(state["rng"])
    except (ValueError, TypeError, KeyError) as e:
        raise BadInput(f"--resume {path}: its random generator state is damaged ({e})") from None
    epochs, count = state["epochs"], state["epoch"]

    def numbers(e: dict) -> bool:  # numbers, or 0-d arrays of them (NumPy scalars are saved as arrays)
        values = [e.get(k) for k in EPOCH_FIELDS]
        return all(not isinstance(v, bool | str | None) and numpy.ndim(v) == 0 for v in values) and all(
            numpy.issubdtype(numpy.asarray(v).dtype, numpy.number) for v in values
        )

    if count < 1 or len(epochs) != count or not all(isinstance(e, dict) and numbers(e) for e in epochs):
        raise BadInput(f"--resume {path}: its epoch history is damaged (epoch {count}, {len(epochs)} records)")
