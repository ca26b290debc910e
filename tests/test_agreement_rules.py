"""`devcheck train`'s agreement rules at their boundaries: the lockstep tolerance's value, a backward
0.03% off caught (it is 4x over the float32 tolerance, and would pass one 10x wider), a healthy
stand-in passing, and the final accuracy margin on both sides. The GPU is the CuPy stand-in over the
recorded H100, its faults synthetic (named in each recording's `why`)."""

import math

import pytest

from devcheck.commands.train.agreement import ACCURACY_MARGIN, LOCKSTEP_STEPS, agreement_checks, lockstep_tolerance
from devcheck.commands.train.config import Config
from devcheck.commands.train.loop import Run, spirals
from devcheck.engine import get_device
from devcheck.machine import seam
from tests.recordings import h100

CONFIG = Config()
X, Y = spirals(CONFIG.samples, CONFIG.seed)
DATA = {"x_train": X[:1600], "y_train": Y[:1600], "x_val": X[1600:], "y_val": Y[1600:]}


def test_the_lockstep_tolerance_formula():
    """64 x unit roundoff x sqrt(width) x steps: float32, width 64, 10 steps: 3.05e-4; TF32: 2.5."""
    assert lockstep_tolerance(2.0**-24, 64, 10) == pytest.approx(64 * 2.0**-24 * 8 * 10)
    assert lockstep_tolerance(2.0**-24, 64, 10) == pytest.approx(3.0518e-4, rel=1e-4)
    assert lockstep_tolerance(2.0**-11, 128, 5) == pytest.approx(64 * 2.0**-11 * math.sqrt(128) * 5)
    assert LOCKSTEP_STEPS == 10 and ACCURACY_MARGIN == 0.02


def run(device, accuracy):
    return Run(get_device(device), epochs=[{"val_accuracy": accuracy, "loss": 0.1}], done=True)


def checks(why, faults=None, gpu_accuracy=0.95, config=CONFIG, environ=None, monkeypatch=None):
    for name, value in (environ or {}).items():
        monkeypatch.setenv(name, value)
    with seam.replay(h100(why=why, faults=faults or {})):
        found = agreement_checks([run("cpu", 0.95), run("cuda:0", gpu_accuracy)], config, DATA)
    return {c.id: c for c in found}


@pytest.mark.parametrize(("scale", "expected"), [(1.0, "ok"), (1.0003, "fail"), (1.01, "fail")])
def test_a_backward_003_percent_off_is_caught(scale, expected):
    found = checks(f"tanh's backward x{scale}", {"devcheck_tanh_backward": scale})
    agreement = found["train.agreement.cuda:0"]
    assert str(agreement.status) == expected, agreement.summary
    assert "first 10 steps from the same weights and batches" in agreement.summary
    assert agreement.summary.endswith("tolerance 3.1e-04")
    assert bool(agreement.fix) == (expected == "fail")


def test_the_width_is_the_larger_of_hidden_and_batch():
    wide = checks("healthy", config=Config(batch_size=128))
    assert wide["train.agreement.cuda:0"].summary.endswith("tolerance 4.3e-04")  # 64 x 2^-24 x sqrt(128) x 10


def test_tf32_widens_the_tolerance(monkeypatch):
    tf32 = checks("healthy, TF32 on", environ={"CUPY_TF32": "1"}, monkeypatch=monkeypatch)
    assert tf32["train.agreement.cuda:0"].summary.endswith("tolerance 2.5e+00")  # 64 x 2^-11 x 8 x 10


@pytest.mark.parametrize(
    ("accuracy", "expected"), [(0.93, "ok"), (0.9301, "ok"), (0.9699, "ok"), (0.9299, "fail"), (0.9701, "fail")]
)
def test_the_final_accuracy_margin_on_both_sides(accuracy, expected):
    outcome = checks("healthy", gpu_accuracy=accuracy)["train.outcome.cuda:0"]
    assert str(outcome.status) == expected and "margin 0.02, 8 of 400 samples" in outcome.summary


def test_no_agreement_without_a_cpu_run_or_another_device():
    with seam.replay(h100()):
        assert agreement_checks([run("cuda:0", 0.95)], CONFIG, DATA) == []
        assert agreement_checks([run("cpu", 0.95)], CONFIG, DATA) == []
        diverged = run("cuda:0", 0.5)
        diverged.diverged = "loss became nan at epoch 3"
        assert agreement_checks([run("cpu", 0.95), diverged], CONFIG, DATA) == []
