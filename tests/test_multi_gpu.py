"""Every command on replays of 2 and 8 GPUs, the servers devcheck is meant to gate.

CuPy runs a kernel on the current GPU. An operand that lives on another GPU is refused there
(ValueError), or, where the pair has peer access, read across the link with a PerformanceWarning:
silent cross-GPU traffic that costs time and hides a placement bug. The replays present both kinds
of machine (`n_gpus(..., peer=...)`), and every run here turns each warning into an error, so either
is a failure. The first real multi-GPU run of the node gate crashed on the second GPU: the backward
seed was allocated on the current GPU, cuda:0.
"""

import json
import warnings

import pytest

from devcheck.cli import app
from devcheck.machine.replay import seam
from tests.cli import runner
from tests.recordings import h100, n_gpus

# Small runs: the stand-in computes with NumPy, so 8 GPUs cost 8 times the CPU's work.
COMMANDS = {
    "env": ["env"],
    "grad": ["grad", "--ops", "matmul,linear,tanh,cross_entropy,sum,index_repeats"],
    "train": ["train", "--epochs", "5", "--min-accuracy", "0.5"],
    "bench": ["bench", "--size", "200", "--repeat", "3", "--cases", "matmul,e2e,autograd", "--max-time", "300"],
    "check": ["check", "--budget", "10s"],
}


def run(gpus: int, peer: bool, *args: str) -> tuple[int, dict]:
    with seam.replay(n_gpus(h100(), gpus, peer=peer)), warnings.catch_warnings():
        warnings.simplefilter("error")  # a PerformanceWarning (peer access used by itself) fails the run
        result = runner.invoke(app, [*args, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "internal error" not in result.stderr and "Peer access" not in result.output, result.stderr
    return result.exit_code, json.loads(result.stdout)


def devices_named(doc: dict) -> set[str]:
    """The devices a report's verdict names, or bench's records measured (its verdict names the fastest)."""
    if doc["command"] == "bench":
        return {r["device"] for r in doc["data"]["records"]}
    return {name for name in ["cpu", *(f"cuda:{k}" for k in range(8))] if name in doc["verdict"]}


def bad_checks(doc: dict) -> list[tuple[str, str, str]]:
    return [(c["id"], c["status"], c["summary"]) for c in doc["checks"] if c["status"] in ("fail", "error")]


def assert_every_gpu_ran(doc: dict, gpus: int, prefix: str) -> None:
    ids = {c["id"] for c in doc["checks"] if c["status"] == "ok"}
    for k in range(gpus):
        assert any(i.startswith(prefix.format(k=k)) for i in ids), (prefix.format(k=k), sorted(ids))


@pytest.mark.parametrize(
    ("command", "device"),
    [
        *(("grad", device) for device in ("all", "auto")),
        *((command, "auto") for command in ("train", "bench")),  # auto: what people run; all, the same GPUs here
        *(pytest.param(command, "all", marks=pytest.mark.slow) for command in ("train", "bench")),
    ],
)
def test_every_computing_command_runs_on_two_gpus_without_peer_access(command, device):
    code, doc = run(2, False, *COMMANDS[command], "--device", device)
    assert code == 0 and not bad_checks(doc), bad_checks(doc)
    assert devices_named(doc) == {"cpu", "cuda:0", "cuda:1"}, doc["verdict"]


def test_env_and_check_on_two_gpus_without_peer_access():
    """check in 5 s (a stress window where time is left: the 8-GPU run in the slow tier has it on each GPU);
    without peer access the GPU-to-GPU step says so and judges no speed."""
    code, doc = run(2, False, *COMMANDS["env"])
    assert code == 0 and [g["cuda_index"]["value"] for g in doc["data"]["gpus"]] == [0, 1]
    code, doc = run(2, False, "check", "--budget", "5s")
    assert code == 0 and not bad_checks(doc), bad_checks(doc)
    assert_every_gpu_ran(doc, 2, "check.gemm.cuda:{k}.float32")
    assert_every_gpu_ran(doc, 2, "check.grad.cuda:{k}")
    assert_every_gpu_ran(doc, 2, "train.agreement.cuda:{k}")
    found = {c["id"]: c for c in doc["checks"]}
    assert found["check.p2p.peer_access"]["status"] == "warn"
    assert (
        found["check.p2p.speed"]["status"] == "skip"
        and "no GPU pair has peer access" in found["check.p2p.speed"]["summary"]
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_on_eight_gpus_with_peer_access(command):
    """An 8x H100 NVLink node: peer access everywhere, so a misplaced array would only warn."""
    code, doc = run(8, True, *COMMANDS[command], *(["--device", "all"] if command != "env" else []))
    assert code == 0 and not bad_checks(doc), bad_checks(doc)
    names = [f"cuda:{k}" for k in range(8)]
    if command == "env":
        assert [g["cuda_index"]["value"] for g in doc["data"]["gpus"]] == list(range(8))
    else:
        assert_every_gpu_ran(
            doc,
            8,
            {
                "grad": "grad.classic.cuda:{k}",
                "train": "train.agreement.cuda:{k}",
                "bench": "bench.matmul.cuda:{k}.float32",
                "check": "check.gemm.cuda:{k}",
            }[command],
        )
    assert devices_named(doc) >= set(names), doc["verdict"]


def test_backward_seeds_and_accumulates_on_the_outputs_gpu_not_the_current_one():
    """The crash of the first multi-GPU node gate, at its smallest: backward on cuda:1 while cuda:0 is current."""
    from devcheck.engine import tensor

    with seam.replay(n_gpus(h100(), 2, peer=True)), warnings.catch_warnings():
        warnings.simplefilter("error")
        x = tensor([1.0, 2.0], device="cuda:1", requires_grad=True)
        y = (x * x).sum() + x.sum()  # x reached twice: its gradient is accumulated
        y.backward()
        y = (x * 3.0).sum()
        y.backward()  # .grad accumulated across two backward calls
        assert x.grad.device.name == "cuda:1" and x.grad.tolist() == [3.0 + 3.0, 5.0 + 3.0]
        assert (x > 1.5).tolist() == [False, True] and x.argmax().item() == 1 and not x.isnan().tolist()[0]


def test_a_gradient_or_an_operand_on_another_device_is_one_clear_error():
    from devcheck.engine import tensor

    with seam.replay(n_gpus(h100(), 2)):
        x = tensor([1.0, 2.0], device="cuda:1", requires_grad=True)
        with pytest.raises(RuntimeError, match="gradient on cuda:0 given for an output on cuda:1"):
            (x * 2.0).backward(tensor([1.0, 1.0], device="cuda:0"))
        with pytest.raises(RuntimeError, match="expected all tensors on one device, got cuda:1 and cuda:0"):
            _ = x > tensor([1.0, 1.0], device="cuda:0")


def test_creation_through_array_api_compat_ignores_device_so_it_follows_the_current_gpu():
    """What the real stack does, and what bit the backward seed: array-api-compat's CuPy namespace drops
    `device=` (its _check_device checks NumPy and Dask only) and CuPy allocates on the current GPU. The
    engine therefore allocates inside the owning device's context, never through `device=`."""
    import numpy

    from devcheck.engine import get_device

    with seam.replay(n_gpus(h100(), 2)):
        gpu1 = get_device("cuda:1")
        on_1 = gpu1.from_host(numpy.ones(2))
        assert on_1.device.id == 1 and gpu1.xp.ones(2, device=on_1.device).device.id == 0
        with gpu1.context():
            assert gpu1.xp.ones(2).device.id == 1
