"""devcheck grad and devcheck train through the CLI, on the CPU and the simulated GPU."""

import json

import pytest

from devcheck.commands.train import not_learned_fix
from devcheck.commands.train.config import Config
from devcheck.machine.replay import seam, standin
from tests.cli import invoke
from tests.recordings import h100, load

# A GPU whose tanh backward kernel (engine/fused.py) gives results 1% too large: tanh's gradient and
# sigmoid's (made of tanh) are off by 1% while every forward is right: a fault only gradients show.
BACKWARD_OFF_BY_1_PERCENT = {"devcheck_tanh_backward": 1.01}


def checks(doc):
    return {c["id"]: c for c in doc["checks"]}


# --- grad ---------------------------------------------------------------------------------------------------


def test_grad_on_cpu_and_gpu(gpu):
    result = invoke("grad", "--json")
    assert result.exit_code == 0, result.stdout
    doc = json.loads(result.stdout)
    c = checks(doc)
    for device in ("cpu", "cuda:0"):
        assert c[f"grad.classic.{device}"]["status"] == "ok"
        assert c[f"grad.ops.{device}"]["status"] == "ok"
    assert c["grad.network.cuda:0"]["status"] == "ok"
    assert [r["a_grad"] for r in doc["data"]["classic"]] == [2.0, 2.0]
    ops = doc["data"]["ops"]
    assert {r["dtype"] for r in ops if r["device"] == "cuda:0"} == {"float64", "float32"}
    assert len({r["op"] for r in ops}) == 40


def test_grad_catches_a_backward_off_by_1_percent_and_names_op_and_device():
    with seam.replay(h100(why="backward 1% off", faults=BACKWARD_OFF_BY_1_PERCENT)):
        result = invoke("grad", "--json", "--ops", "tanh,add,sigmoid")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    failed = checks(doc)["grad.ops.cuda:0"]
    assert failed["status"] == "fail" and "tanh (float64 vs finite diff" in failed["summary"]
    assert "add" not in failed["summary"] and checks(doc)["grad.ops.cpu"]["status"] == "ok"
    bad = [r for r in doc["data"]["ops"] if r["verdict"] != "ok"]
    assert {(r["op"], r["device"]) for r in bad} == {("tanh", "cuda:0"), ("sigmoid", "cuda:0")}
    assert doc["verdict"].startswith("autograd: WRONG")


def test_grad_float32_tolerance_follows_tf32(monkeypatch):
    """A GPU whose float32 matmuls run as TF32: right when CUPY_TF32=1 says so, flagged when it does not."""
    tf32 = h100(why="float32 matmuls read their inputs as TF32", rounding={"matmul": "tf32"})
    with seam.replay(tf32):
        unannounced = json.loads(invoke("grad", "--json", "--ops", "matmul,linear,tanh").stdout)
        monkeypatch.setenv("CUPY_TF32", "1")
        announced = invoke("grad", "--json", "--ops", "matmul,linear,tanh")
    assert checks(unannounced)["grad.ops.cuda:0"]["status"] == "fail"
    assert announced.exit_code == 0, announced.stdout
    rows = [r for r in json.loads(announced.stdout)["data"]["ops"] if r["dtype"] == "float32"]
    assert {r["op"]: r["tf32"] for r in rows} == {"matmul": True, "linear": True, "tanh": False}


def test_grad_fast_mode_and_table(gpu):
    result = invoke("grad", "--fast", "--ops", "matmul")
    assert result.exit_code == 0
    assert "y = a**2*x + b*x + c" in result.stderr and "autograd: correct on cpu, cuda:0 (1 ops)" in result.stderr


def test_grad_bad_options():
    result = invoke("grad", "--ops", "matmul,nope")
    assert result.exit_code == 2
    assert result.stderr.startswith("devcheck: error: --ops 'matmul,nope': nope unknown; choose from abs, add,")
    result = invoke("grad", "--device", "tpu")
    assert result.exit_code == 2 and "--device 'tpu': expected auto, all, cpu, cuda or cuda:N" in result.stderr
    for empty in ("", "add,,mul"):
        result = invoke("grad", "--ops", empty)
        assert result.exit_code == 2 and "an empty entry; choose from" in result.stderr


def test_grad_require_gpu_on_a_cpu_machine():
    with seam.replay(load("no-driver")):
        result = invoke("grad", "--require-gpu", "--json", "--ops", "add")
        strict = invoke("grad", "--device", "all", "--json", "--ops", "add")
    assert result.exit_code == 1
    c = checks(json.loads(result.stdout))
    assert c["gpu.required"]["status"] == "fail" and c["devices.gpu"]["status"] == "skip"
    assert "CuPy is not installed" in c["devices.gpu"]["summary"]
    assert strict.exit_code == 1 and checks(json.loads(strict.stdout))["devices.gpu"]["status"] == "fail"


# --- train --------------------------------------------------------------------------------------------------

FAST = ["--epochs", "60"]


@pytest.mark.slow  # a whole run of the command: kept in CI (-m "slow or not slow")
def test_train_learns_on_cpu_and_gpu_with_the_same_losses(gpu, tmp_path):
    log = tmp_path / "log.jsonl"
    result = invoke("train", "--json", "--log", str(log), *FAST)
    assert result.exit_code == 0, result.stdout
    doc = json.loads(result.stdout)
    c = checks(doc)
    assert c["train.cpu.learned"]["status"] == c["train.cuda:0.learned"]["status"] == "ok"
    assert c["train.agreement.cuda:0"]["status"] == c["train.outcome.cuda:0"]["status"] == "ok"
    assert "first 10 steps from the same weights and batches" in c["train.agreement.cuda:0"]["summary"]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 120 and {"loss", "val_accuracy", "seconds", "device", "epoch"} <= set(lines[0])
    assert all(r["samples_per_s_median"] > 0 for r in doc["data"]["devices"])


@pytest.mark.slow  # a whole run of the command: kept in CI (-m "slow or not slow")
def test_train_with_broken_gradients_fails_to_learn():
    zeroed = h100(
        why="tanh's backward kernel gives 0: hidden layers never learn", faults={"devcheck_tanh_backward": 0.0}
    )
    with seam.replay(zeroed):
        result = invoke("train", "--device", "cuda", "--json", *FAST)
    assert result.exit_code == 1
    learned = checks(json.loads(result.stdout))["train.cuda:0.learned"]
    assert learned["status"] == "fail" and "validation accuracy" in learned["summary"]


def test_agreement_catches_a_backward_off_by_1_percent_that_still_learns():
    with seam.replay(h100(why="backward 1% off", faults=BACKWARD_OFF_BY_1_PERCENT)):
        result = invoke("train", "--json", "--epochs", "20", "--min-accuracy", "0.9")
    doc = json.loads(result.stdout)
    c = checks(doc)
    assert c["train.cuda:0.learned"]["status"] == "ok"  # it learns: only the comparison shows the fault
    assert c["train.agreement.cuda:0"]["status"] == "fail" and "gradient norm" in c["train.agreement.cuda:0"]["summary"]
    assert result.exit_code == 1


@pytest.mark.slow  # a whole run of the command: kept in CI (-m "slow or not slow")
def test_agreement_holds_on_a_healthy_gpu_that_rounds_differently():
    """float64 accumulation in matmul: a correct device whose float32 results differ from the CPU's in
    the last bits (as cuBLAS's do); 60 epochs later the losses differ, the verdict must not."""
    with seam.replay(h100(why="matmul accumulates in float64", rounding={"matmul": "float64"})):
        result = invoke("train", "--json")
    assert result.exit_code == 0, result.stdout
    c = checks(json.loads(result.stdout))
    assert c["train.agreement.cuda:0"]["status"] == c["train.outcome.cuda:0"]["status"] == "ok"
    assert "largest relative difference 0.0e+00" not in c["train.agreement.cuda:0"]["summary"]


def test_training_makes_no_device_to_host_copy_inside_an_epoch(gpu):
    standin.COUNTS.clear()
    result = invoke("train", "--device", "cuda", "--json", "--epochs", "2", "--min-accuracy", "0")
    assert result.exit_code == 0, result.stdout
    steps_per_epoch = 50  # 1600 training samples, batch 32
    # per epoch: one copy after training and one after validation; then the lockstep and checkpoint-free end
    assert standin.COUNTS["to_host"] <= 2 * 2 + 4, standin.COUNTS
    assert standin.COUNTS["launches"] > 2 * steps_per_epoch * 10  # the work did run on the device


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


def test_a_checkpoint_saved_on_the_cpu_resumes_on_the_gpu(tmp_path, gpu):
    ckpt = tmp_path / "ckpt.npz"
    invoke("train", "--device", "cpu", "--epochs", "2", "--save", str(ckpt), "--min-accuracy", "0", "-q")
    result = invoke(
        "train", "--device", "cuda", "--epochs", "4", "--resume", str(ckpt), "--json", "--min-accuracy", "0"
    )
    assert result.exit_code == 0, result.stdout
    epochs = json.loads(result.stdout)["data"]["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4] and epochs[-1]["device"] == "cuda:0"


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


def test_device_cuda_without_a_driver_is_one_line_with_cudas_reason():
    with seam.replay(load("cupy-no-driver")):
        result = invoke("grad", "--device", "cuda")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("devcheck: error: --device 'cuda'") and "cudaErrorInsufficientDriver" in line


# --- verdicts that say only what is known (issue 23, item 5) ----------------------------------------------


def test_grad_with_no_usable_gpu_is_a_failed_run_not_wrong_autograd():
    """`--device all` with no GPU fails the run, but the CPU's gradients, all checked, are right."""
    with seam.replay(load("no-driver")):
        result = invoke("grad", "--device", "all", "--fast", "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and checks(doc)["devices.gpu"]["status"] == "fail"
    assert "WRONG" not in doc["verdict"], doc["verdict"]
    assert doc["verdict"].startswith("autograd: correct on cpu")
    assert "FAILED — no GPU can compute here" in doc["verdict"]


def test_a_run_with_other_options_that_does_not_learn_is_not_blamed_on_gradients():
    result = invoke("train", "--device", "cpu", "--json", "--epochs", "1", "--hidden", "2")
    doc = json.loads(result.stdout)
    learned = checks(doc)["train.cpu.learned"]
    assert result.exit_code == 1 and learned["status"] == "fail"
    assert "--epochs 1 (default 60)" in learned["fix"] and "--hidden 2 (default 64)" in learned["fix"]
    assert "with the default options this means wrong gradients" not in learned["fix"]


@pytest.mark.parametrize(
    ("config", "blames_gradients"),
    [(Config(), True), (Config(num_workers=2), True), (Config(epochs=3), False), (Config(min_accuracy=0.99), False)],
)
def test_only_the_default_options_blame_gradients(config, blames_gradients):
    assert not_learned_fix(config).startswith("with the default options this means wrong gradients") is blames_gradients


def test_train_json_and_log_name_each_value_alike(tmp_path):
    log = tmp_path / "log.jsonl"
    result = invoke("train", "--device", "cpu", "--json", "--epochs", "2", "--hidden", "4", "--min-accuracy", "0",
                    "--log", str(log))  # fmt: skip
    rows = json.loads(result.stdout)["data"]["epochs"]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [set(line) for line in lines] == [set(row) for row in rows]
    assert "train_accuracy" in rows[0] and "train_acc" not in rows[0]
