"""devcheck grad and devcheck train through the CLI, on the CPU and the simulated GPU."""

import json

import pytest
from typer.testing import CliRunner

from devcheck import devices
from devcheck.cli import app
from devcheck.engine.ops import Tanh

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


@pytest.fixture
def gpu(monkeypatch):
    """`auto` finds one GPU: the simulated device stands in for cuda:0."""
    monkeypatch.setattr(devices, "gpu_names", lambda: (["sim"], []))


def checks(doc):
    return {c["id"]: c for c in doc["checks"]}


# --- grad ---------------------------------------------------------------------------------------------------


def test_grad_on_cpu_and_gpu(gpu):
    result = invoke("grad", "--json")
    assert result.exit_code == 0, result.stdout
    doc = json.loads(result.stdout)
    c = checks(doc)
    for device in ("cpu", "sim"):
        assert c[f"grad.classic.{device}"]["status"] == "ok"
        assert c[f"grad.ops.{device}"]["status"] == "ok"
    assert c["grad.network.sim"]["status"] == "ok"
    assert [r["a.grad"] for r in doc["data"]["classic"]] == [2.0, 2.0]
    ops = doc["data"]["ops"]
    assert {r["dtype"] for r in ops if r["device"] == "sim"} == {"float64", "float32"}
    assert len({r["op"] for r in ops}) == 40


def test_grad_catches_a_broken_backward_and_names_op_and_device(gpu, monkeypatch):
    monkeypatch.setattr(Tanh, "backward", lambda self, gy: (gy * (1 - self.y * self.y) * 1.01,))
    result = invoke("grad", "--json", "--ops", "tanh,add,sigmoid")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    failed = checks(doc)["grad.ops.cpu"]
    assert failed["status"] == "fail" and "tanh (float64 vs finite diff" in failed["summary"]
    assert "add" not in failed["summary"]
    bad = [r for r in doc["data"]["ops"] if r["verdict"] != "ok"]
    assert {(r["op"], r["device"]) for r in bad} == {("tanh", "cpu"), ("tanh", "sim")}
    assert doc["verdict"].startswith("autograd: WRONG")


def test_grad_fast_mode_and_table(gpu):
    result = invoke("grad", "--fast", "--ops", "matmul")
    assert result.exit_code == 0
    assert "y = a**2*x + b*x + c" in result.stderr and "autograd: correct on cpu, sim (1 ops)" in result.stderr


def test_grad_bad_options():
    result = invoke("grad", "--ops", "matmul,nope")
    assert result.exit_code == 2
    assert result.stderr.startswith("devcheck: error: --ops nope: unknown op(s); choose from abs, add,")
    result = invoke("grad", "--device", "tpu")
    assert result.exit_code == 2 and "--device 'tpu': unknown device" in result.stderr


def test_grad_require_gpu_on_a_cpu_machine(monkeypatch):
    monkeypatch.setattr(devices, "gpu_names", lambda: ([], ["cuda: CuPy is not installed (see `devcheck env`)"]))
    result = invoke("grad", "--require-gpu", "--json", "--ops", "add")
    assert result.exit_code == 1
    c = checks(json.loads(result.stdout))
    assert c["gpu.required"]["status"] == "fail" and c["devices.gpu"]["status"] == "skip"
    strict = invoke("grad", "--device", "all", "--json", "--ops", "add")
    assert strict.exit_code == 1 and checks(json.loads(strict.stdout))["devices.gpu"]["status"] == "fail"


# --- train --------------------------------------------------------------------------------------------------

FAST = ["--epochs", "60"]


def test_train_learns_on_cpu_and_gpu_with_the_same_losses(gpu, tmp_path):
    log = tmp_path / "log.jsonl"
    result = invoke("train", "--json", "--log", str(log), *FAST)
    assert result.exit_code == 0, result.stdout
    doc = json.loads(result.stdout)
    c = checks(doc)
    assert c["train.cpu.learned"]["status"] == c["train.sim.learned"]["status"] == "ok"
    assert (
        c["train.agreement.sim"]["status"] == "ok"
        and "largest loss difference 0.00e+00" in c["train.agreement.sim"]["summary"]
    )
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 120 and {"loss", "val_accuracy", "seconds", "device", "epoch"} <= set(lines[0])
    assert all(r["samples/s (median)"] > 0 for r in doc["data"]["devices"])


def test_train_with_broken_gradients_fails_to_learn(monkeypatch):
    monkeypatch.setattr(Tanh, "backward", lambda self, gy: (gy * 0,))  # hidden layers never learn
    result = invoke("train", "--device", "cpu", "--json", *FAST)
    assert result.exit_code == 1
    learned = checks(json.loads(result.stdout))["train.cpu.learned"]
    assert learned["status"] == "fail" and "validation accuracy" in learned["summary"]


def test_train_stops_on_nan_and_names_epoch_and_step():
    result = invoke("train", "--device", "cpu", "--json", "--lr", "1e38")  # weights reach float32 max: logits overflow
    assert result.exit_code == 1
    finite = checks(json.loads(result.stdout))["train.cpu.finite"]
    assert finite["status"] == "fail" and "is not finite at epoch 1, step" in finite["summary"]


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tmp_path):
    whole = json.loads(invoke("train", "--device", "cpu", "--json", "--epochs", "6", "--min-accuracy", "0").stdout)
    ckpt = tmp_path / "ckpt.npz"
    first = invoke("train", "--device", "cpu", "--json", "--epochs", "3", "--save", str(ckpt), "--min-accuracy", "0")
    assert checks(json.loads(first.stdout))["train.checkpoint"]["status"] == "ok"
    second = json.loads(
        invoke(
            "train", "--device", "cpu", "--json", "--epochs", "6", "--resume", str(ckpt), "--min-accuracy", "0"
        ).stdout
    )
    assert [e["loss"] for e in second["data"]["epochs"]] == [e["loss"] for e in whole["data"]["epochs"]]


def test_a_checkpoint_saved_on_the_cpu_resumes_on_the_gpu(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    invoke("train", "--device", "cpu", "--epochs", "2", "--save", str(ckpt), "--min-accuracy", "0", "-q")
    result = invoke("train", "--device", "sim", "--epochs", "4", "--resume", str(ckpt), "--json", "--min-accuracy", "0")
    assert result.exit_code == 0, result.stdout
    epochs = json.loads(result.stdout)["data"]["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4] and epochs[-1]["device"] == "sim"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "--epochs 0: expected a positive integer"),
        (["--batch-size", "-3"], "--batch-size -3: expected a positive integer"),
        (["--lr", "-0.1"], "--lr -0.1: expected a positive number"),
        (["--lr", "nan"], "--lr nan: expected a positive number"),
        (["--device", "cuda:7"], "--device 'cuda:7'"),
        (["--optimizer", "lbfgs"], "--optimizer 'lbfgs': expected adam or sgd"),
        (["--resume", "/nonexistent/ckpt.npz"], "--resume /nonexistent/ckpt.npz: no such file"),
        (
            ["--save", "/nonexistent/dir/ckpt.npz"],
            "--save /nonexistent/dir/ckpt.npz: the folder /nonexistent/dir does not exist",
        ),
        (["--log", "/"], "--log /: is a folder; give a file name"),
    ],
)
def test_train_bad_options_are_one_line_and_exit_2(args, message):
    result = invoke("train", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_train_rejects_a_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    result = invoke("train", "--resume", str(bad), "--device", "cpu")
    assert result.exit_code == 2 and "--resume: checkpoint" in result.stderr and "truncated or corrupt" in result.stderr


def test_train_table_shows_curves_and_progress_is_transient(gpu):
    result = invoke("train", "--epochs", "3", "--min-accuracy", "0")
    assert result.exit_code == 0
    assert "training loss per epoch" in result.stderr and "Per device" in result.stderr
    assert "0.6" in result.stderr.split("first → last")[1] and any(c in result.stderr for c in "▁▂▃▄▅▆▇█")
