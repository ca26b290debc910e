"""On a real NVIDIA GPU with CuPy (`pytest -m gpu`); skipped cleanly everywhere else. These are the
checks no stand-in can make: the real driver, the real CuPy, real kernels, cuBLAS and events."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.gpu


def _gpu_count() -> int:
    if os.environ.get("DEVCHECK_REPLAY"):
        return 0
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount()
    except Exception:
        return 0


if not _gpu_count():
    pytest.skip("no NVIDIA GPU usable through CuPy here", allow_module_level=True)


def devcheck(*args: str, env: dict | None = None) -> tuple[int, dict]:
    result = subprocess.run(
        [sys.executable, "-m", "devcheck", *args, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def failing(doc: dict) -> list[str]:
    return [f"{c['id']}: {c['summary']}" for c in doc["checks"] if c["status"] in ("fail", "error")]


def test_env_reports_the_gpu_ready():
    code, doc = devcheck("env")
    assert code == 0, failing(doc)
    assert doc["verdict"].startswith("GPU compute: ready on")
    gpu = doc["data"]["gpus"][0]
    assert gpu["name"]["value"] and gpu["compute_capability"]["status"] == "ok"
    assert not gpu["brand"]["value"].startswith("unknown")
    assert doc["data"]["cuda_devices"][0]["sms"] > 0


def test_grad_on_the_gpu_is_correct_and_agrees_with_the_cpu():
    code, doc = devcheck("grad", "--device", "auto")
    assert code == 0, failing(doc)
    ids = {c["id"]: c["status"] for c in doc["checks"]}
    assert ids["grad.ops.cuda:0"] == ids["grad.network.cuda:0"] == ids["grad.classic.cuda:0"] == "ok"


def test_train_learns_on_the_gpu_and_agrees_with_the_cpu():
    code, doc = devcheck("train", "--device", "auto")
    assert code == 0, failing(doc)
    ids = {c["id"]: c["status"] for c in doc["checks"]}
    assert ids["train.cuda:0.learned"] == ids["train.agreement.cuda:0"] == ids["train.outcome.cuda:0"] == "ok"


def test_bench_on_the_gpu_is_timed_with_events_and_correct():
    code, doc = devcheck("bench", "--device", "auto", "--size", "4000", "--max-time", "30")
    assert code == 0, failing(doc)
    gpu = [r for r in doc["data"]["records"] if r["device"] == "cuda:0"]
    assert {r["timer"] for r in gpu} == {"CUDA events"}
    matmuls = [r for r in gpu if r["case"] == "matmul"]
    assert matmuls and all(r["correctness"]["ok"] for r in matmuls)
    assert all(r["peak"]["value"] for r in matmuls), [r["peak"]["basis"] for r in matmuls]


def test_the_engine_runs_on_real_cupy_arrays():
    import cupy

    from devcheck.engine import functional as F
    from devcheck.engine import tensor

    x = tensor([[1.0, -2.0, 3.0]], device="cuda", requires_grad=True)
    assert isinstance(x.data, cupy.ndarray) and not hasattr(x.data, "__array_namespace__")
    loss = F.cross_entropy(x * 2.0, tensor([2], device="cuda"))
    loss.backward()
    assert isinstance(x.grad.data, cupy.ndarray) and x.grad.device.name == "cuda:0"
    with pytest.raises(IndexError, match="out of bounds"):
        x[[0, 5]]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_fused_kernels_compute_on_the_gpu_what_the_cpu_computes(dtype):
    """engine/fused.py's kernels, compiled by NVRTC and run for real: cross-entropy's loss and gradient
    (and nan for a target outside [0, C)), then SGD-momentum and Adam steps, against the CPU's code."""
    import numpy

    from devcheck.engine import functional as F
    from devcheck.engine import nn, optim, tensor

    rng = numpy.random.default_rng(4)
    z, t = rng.standard_normal((300, 7)).astype(dtype), rng.integers(0, 7, 300).astype("uint8")
    rel = 1e-5 if dtype == "float32" else 1e-12
    grads, losses = {}, {}
    for device in ("cpu", "cuda:0"):
        logits = tensor(z, device=device, requires_grad=True)
        loss = F.cross_entropy(logits, tensor(t, device=device))
        loss.backward()
        losses[device], grads[device] = loss.item(), logits.grad.numpy()
    assert losses["cuda:0"] == pytest.approx(losses["cpu"], rel=rel)
    numpy.testing.assert_allclose(grads["cuda:0"], grads["cpu"], rtol=rel, atol=rel / 100)
    outside = t.copy()
    outside[5] = 7
    assert numpy.isnan(F.cross_entropy(tensor(z, device="cuda"), tensor(outside, device="cuda")).item())

    for make in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01), lambda ps: optim.Adam(ps, lr=0.1)):
        weights = {}
        for device in ("cpu", "cuda:0"):
            p = nn.Parameter(tensor(z, device=device))
            opt = make([p])
            for _ in range(3):
                opt.zero_grad()
                (p * p * p).sum().backward()
                opt.step()
            weights[device] = p.numpy()
        numpy.testing.assert_allclose(weights["cuda:0"], weights["cpu"], rtol=rel * 10, atol=rel)


def test_a_recording_made_here_replays_to_the_same_report(tmp_path):
    path = tmp_path / "here.json"
    code, live = devcheck("env", "--record", str(path))
    assert code == 0 and path.stat().st_size > 1000
    code, replayed = devcheck("env", env={"DEVCHECK_REPLAY": str(path)})
    assert replayed["verdict"] == live["verdict"]
    assert replayed["data"]["gpus"][0]["name"] == live["data"]["gpus"][0]["name"]
    assert any(c["id"] == "machine.replay" for c in replayed["checks"])
