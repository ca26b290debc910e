"""Checkpoints of a training run: written atomically, read back and checked at once; resumed only
into a run with the same model, optimizer, seed and data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def load_resume(path: Path, device: Any, config: Config) -> dict:
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
