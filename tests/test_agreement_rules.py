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
from devcheck.machine.replay import seam
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


bad_gradients = "the devices compute different gradients: run `devcheck grad --device cuda:0`"


def run(device, accuracy):
    return Run(get_device(device), epochs=[{"val_accuracy": accuracy, "loss": 0.1}], done=True)


def checks(why, faults=None, gpu_accuracy=0.95, config=CONFIG, environ=None, monkeypatch=None, cpu_accuracy=0.95):
    for name, value in (environ or {}).items():
        monkeypatch.setenv(name, value)
    with seam.replay(h100(why=why, faults=faults or {})):
        found = agreement_checks([run("cpu", cpu_accuracy), run("cuda:0", gpu_accuracy)], config, DATA)
    return {c.id: c for c in found}


@pytest.mark.parametrize(("scale", "expected"), [(1.0, "ok"), (1.0003, "fail"), (1.01, "fail")])
def test_a_backward_003_percent_off_is_caught(scale, expected):
    found = checks(f"tanh's backward x{scale}", {"devcheck_tanh_backward": scale})
    agreement = found["train.agreement.cuda:0"]
    assert str(agreement.status) == expected, agreement.summary
    assert "first 10 steps from the same weights and batches" in agreement.summary
    assert agreement.summary.endswith("tolerance 3.1e-04")
    assert agreement.fix == ("" if expected == "ok" else bad_gradients)


def test_the_largest_difference_is_named_with_its_step_and_column():
    fault = checks("tanh's backward x1.0003", {"devcheck_tanh_backward": 1.0003})["train.agreement.cuda:0"]
    assert fault.summary == (
        "cuda:0 vs cpu, first 10 steps from the same weights and batches: largest relative difference 1.2e-03 "
        "(gradient norm of parameter 1, step 5), tolerance 3.1e-04"
    )
    loss = checks("the loss kernel x1.001", {"devcheck_cross_entropy_loss": 1.001})["train.agreement.cuda:0"]
    assert "largest relative difference 1.0e-03 (loss, step 3)" in loss.summary and str(loss.status) == "fail"


def test_a_small_training_set_is_compared_over_its_one_epoch_of_steps():
    small = {"x_train": X[:64], "y_train": Y[:64], "x_val": X[1600:], "y_val": Y[1600:]}
    with seam.replay(h100()):
        found = agreement_checks([run("cpu", 0.95), run("cuda:0", 0.95)], CONFIG, small)
    assert "first 2 steps from the same weights" in found[0].summary  # 64 samples, batch 32


def test_the_cpu_is_the_reference_wherever_it_is_listed():
    with seam.replay(h100()):
        found = agreement_checks([run("cuda:0", 0.95), run("cpu", 0.95)], CONFIG, DATA)
    assert [c.id for c in found] == ["train.agreement.cuda:0", "train.outcome.cuda:0"]


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
    assert outcome.fix == ("" if expected == "ok" else "run `devcheck grad --device cuda:0`")


@pytest.mark.parametrize("gpu", [0.0, 0.04])
def test_an_accuracy_exactly_the_margin_away_passes(gpu):
    """0.02 and 0.04 are 0.02 apart exactly in binary floating point (0.95 and 0.97 are not)."""
    outcome = checks("healthy", gpu_accuracy=gpu, cpu_accuracy=0.02)["train.outcome.cuda:0"]
    assert str(outcome.status) == "ok", outcome.summary


def test_no_agreement_without_a_cpu_run_or_another_device():
    with seam.replay(h100()):
        assert agreement_checks([run("cuda:0", 0.95)], CONFIG, DATA) == []
        assert agreement_checks([run("cpu", 0.95)], CONFIG, DATA) == []
        diverged = run("cuda:0", 0.5)
        diverged.diverged = "loss became nan at epoch 3"
        assert agreement_checks([run("cpu", 0.95), diverged], CONFIG, DATA) == []
