"""`devcheck train`: does a small network really learn on every device, and do the devices agree?

Two interleaved spirals, generated from the seed on the host: a small MLP learns them in seconds
on a CPU, a linear model (or a network whose hidden layers get broken gradients) cannot. Every
device starts from the same weights and sees the same batches; their first steps must agree to
rounding and their outcomes within a stated margin (train/agreement.py).
"""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path

import numpy

from devcheck.commands.train import preflight
from devcheck.commands.train.agreement import agreement_checks
from devcheck.commands.train.checkpoint import kept, load_resume, save_and_verify, save_interrupted
from devcheck.commands.train.config import Config
from devcheck.commands.train.loop import Run, spirals, train_on
from devcheck.files import open_text
from devcheck.interrupt import Interruption
from devcheck.machine.model.devices import Selection, selection_checks
from devcheck.report import Chart, Check, Progress, Report, Section, Status, no_progress


def run(
    config: Config,
    selection: Selection,
    *,
    require_gpu: bool = False,
    save: Path | None = None,
    resume: Path | None = None,
    log: Path | None = None,
    progress: Progress = no_progress,
) -> Report:
    sel = selection.to_run(require_gpu)
    preflight.check_memory(config, sel.devices)
    preflight.check_files(save, resume, log)
    state = load_resume(resume, config) if resume is not None else None  # checked, before any work
    data = _split(*spirals(config.samples, config.seed))
    keep = partial(kept, config=config) if save is not None else None  # the epochs finished, for an interrupt

    report = Report("train")
    report.checks += selection_checks(selection, require_gpu)
    runs: list[Run] = []
    stop = Interruption()  # Ctrl-C or a signal: the epochs trained so far still make a report
    with preflight.locked({"--save": save, "--log": log}):
        progress("training", total=config.epochs * len(sel.names))
        mode = "a" if state is not None else "w"  # a resumed run continues its log
        with open_text(log, mode, "--log") if log else contextlib.nullcontext() as log_file, stop:
            for device in sel.devices:
                runs.append(Run(device))
                with numpy.errstate(all="ignore"):  # non-finite values are detected and reported, not warned about
                    train_on(runs[-1], config, data, state, log_file, progress, keep)
        # a run cut short is not judged (it has not failed to learn), nor, after an interrupt, the
        # devices' agreement (it trains them all again for a few steps)
        report.checks += [_learned_check(r, config) for r in runs if r.done]
        report.checks += [] if stop else agreement_checks(runs, config, data)
        if save is not None and runs and runs[0].epochs and not runs[0].diverged:
            report.checks += _saved(runs[0], config, save, data, interrupted=bool(stop))

    rows = [
        {
            "device": r.name,
            "epoch": e["epoch"],
            "loss": e["loss"],
            "train accuracy": e["train_accuracy"],
            "val loss": e["val_loss"],
            "val accuracy": e["val_accuracy"],
            "seconds": e["seconds"],
            "samples/s": e["samples_per_s"],
        }
        for r in runs
        for e in r.epochs
    ]
    report.sections.append(Section("epochs", "Training, per epoch", rows=rows))
    report.sections.append(Section("devices", "Per device", rows=[_device_row(r) for r in runs]))
    report.charts.append(Chart("training loss per epoch", {r.name: r.losses for r in runs if r.epochs}))
    report.data["config"] = {k: getattr(config, k) for k in Config.__dataclass_fields__}
    failure = report.first_failure
    report.verdict = (
        f"training: FAILED — {failure.summary}" if failure else f"training: learns on {', '.join(r.name for r in runs)}"
    )
    return stop.hand_over(report)


def _split(x: numpy.ndarray, y: numpy.ndarray) -> dict:
    cut = int(0.8 * len(x))
    return {"x_train": x[:cut], "y_train": y[:cut], "x_val": x[cut:], "y_val": y[cut:]}


def _saved(run: Run, config: Config, save: Path, data: dict, interrupted: bool) -> list[Check]:
    """The checkpoint of a finished run, verified; of an interrupted one, the epochs it finished."""
    if not interrupted:
        return [save_and_verify(run, config, save, data)]
    return [save_interrupted(run, config, save)] if run.kept is not None else []


def _device_row(r: Run) -> dict:
    last = r.epochs[-1] if r.epochs else {}
    seconds = [e["seconds"] for e in r.epochs]
    return {
        "device": r.name,
        "epochs": len(r.epochs),
        "final loss": last.get("loss"),
        "val accuracy": last.get("val_accuracy"),
        "s/epoch (median)": float(numpy.median(seconds)) if seconds else None,
        "samples/s (median)": float(numpy.median([e["samples_per_s"] for e in r.epochs])) if seconds else None,
    }


def _learned_check(r: Run, config: Config) -> Check:
    if r.diverged:
        return Check(
            f"train.{r.name}.finite",
            Status.FAIL,
            f"{r.name}: {r.diverged}",
            fix="lower --lr; if the defaults diverge, the device computes wrong values (`devcheck grad`)",
        )
    accuracy = r.epochs[-1]["val_accuracy"] if r.epochs else 0.0
    if accuracy >= config.min_accuracy:
        return Check(
            f"train.{r.name}.learned",
            Status.OK,
            f"{r.name}: validation accuracy {accuracy:.3f} >= {config.min_accuracy}",
        )
    return Check(
        f"train.{r.name}.learned",
        Status.FAIL,
        f"{r.name}: validation accuracy {accuracy:.3f} < {config.min_accuracy} after {len(r.epochs)} epochs",
        fix=not_learned_fix(config),
    )


def not_learned_fix(config: Config) -> str:
    """Only the defaults are known to learn: with other options a model may simply be too small or too short."""
    changed = [
        f"--{name.replace('_', '-')} {getattr(config, name)} (default {default})"
        for name, default in ((f, getattr(Config(), f)) for f in Config.__dataclass_fields__)
        if name != "num_workers" and getattr(config, name) != default
    ]
    if not changed:
        return "with the default options this means wrong gradients or arithmetic: run `devcheck grad`"
    return (
        f"{', '.join(changed)}: with these options the model may not reach the threshold; "
        "if it fails with the default options too, run `devcheck grad`"
    )
