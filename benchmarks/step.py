"""One training step (forward, cross-entropy, backward, optimizer), float32: what it costs a GPU in
kernel launches and host synchronisations, beside PyTorch eager's count for the same step, and its
time beside the same math written directly in NumPy.

    python benchmarks/step.py            # launches on the CuPy stand-in (the recorded H100), CPU times
    python benchmarks/step.py --quick    # the two small models, a tenth of the repeats (gpu_smoke.sh, no GPU)

On a machine with a GPU, CuPy and a CUDA build of torch it also times the engine's step against
torch eager's on the same GPU (CUDA events, steps back to back), and counts the kernels each ran
there (torch.profiler's CUDA activity, which sees CuPy's kernels too).

A small step on a GPU costs what its launches (5-10 us each on an H100) and synchronisations
(~20 us) cost, so both are counted; the CuPy stand-in counts them without a GPU. PyTorch's count is
the number of compute operators its profiler records for the same step (leaf aten ops that are not
views or allocations: one kernel each on a GPU).

Targets (issue 13): launches <= 1.2x PyTorch's; 0 synchronisations inside a step; on the CPU the
tiny step <= 2x raw NumPy and the reference step <= 1.05x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devcheck.commands.bench.mlp_step import data, engine_step, raw_step  # noqa: E402
from devcheck.engine import get_device  # noqa: E402

MODELS = [  # (name, layer sizes, batch): the three of issue 13
    ("tiny 2-64-64-2 b32", [2, 64, 64, 2], 32),
    ("reference 784-512-512-10 b256", [784, 512, 512, 10], 256),
    ("big 784-2048-2048-10 b4096", [784, 2048, 2048, 10], 4096),
]
NOT_KERNELS = ("view", "reshape", "t", "transpose", "expand", "as_strided", "detach", "empty", "empty_like",
               "zeros", "zero_", "resize_", "squeeze", "unsqueeze", "permute", "_reshape_alias", "alias",
               "numpy_T", "select", "slice", "lift_fresh", "to", "_to_copy", "result_type", "item",
               "_local_scalar_dense", "empty_strided", "ones_like", "fill_", "zeros_like")  # fmt: skip


def launches_on_the_standin(sizes: list[int], batch: int, optimizer: str) -> tuple[int, int]:
    from devcheck.machine.replay import seam, standin
    from tests.recordings import h100

    with seam.replay(h100()):
        x, y = data(sizes, batch)
        step, _ = engine_step(sizes, x, y, "cuda:0", optimizer)
        step()  # the first step allocates the optimizer's state
        standin.COUNTS.clear()
        step()
        return standin.COUNTS["launches"], standin.COUNTS["to_host"] + standin.COUNTS["syncs"]


def torch_step(torch, sizes: list[int], batch: int, optimizer: str, device: str, foreach: bool | None = None):
    """PyTorch eager's step for the same model (its default optimizer code unless `foreach` says)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.ReLU()] if i < len(sizes) - 2 else [])
    model = torch.nn.Sequential(*layers).to(device)
    opt = (
        torch.optim.Adam(model.parameters(), lr=0.01, foreach=foreach)
        if optimizer == "adam"
        else torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=foreach)
    )
    x = torch.randn(batch, sizes[0], device=device)
    y = torch.randint(0, sizes[-1], (batch,), device=device)

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def torch_kernels(sizes: list[int], batch: int, optimizer: str) -> int | None:
    """Compute operators per step, one optimizer update per parameter (foreach=False), as the engine."""
    try:
        import torch
    except ImportError:
        return None
    step = torch_step(torch, sizes, batch, optimizer, "cpu", foreach=False)
    step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step()
    leaf = [e for e in prof.events() if e.name.startswith("aten::") and not e.cpu_children]
    return sum(e.name.removeprefix("aten::") not in NOT_KERNELS for e in leaf)


def have_gpu() -> bool:
    """A GPU through CuPy, and a CUDA build of torch to compare with."""
    try:
        import cupy
        import torch

        return bool(cupy.cuda.runtime.getDeviceCount()) and torch.cuda.is_available()
    except Exception:
        return False


def gpu_times(sizes: list[int], batch: int, optimizer: str) -> tuple[float, float, str]:
    """The engine on cuda:0 and torch eager (its defaults) on the same GPU: CUDA events around steps
    run back to back, as devcheck bench times them; and the kernels each step ran on the GPU."""
    import cupy
    import torch
    from copies import TorchEvents  # each library's own events, on its own current stream

    from devcheck.commands.bench.timing import CudaEventClock, measure

    x, y = data(sizes, batch)
    engine, _ = engine_step(sizes, x, y, "cuda:0", optimizer)
    reference = torch_step(torch, sizes, batch, optimizer, "cuda")
    engine_s = measure(engine, CudaEventClock(cupy, cupy.cuda.Device(0)), 20, 5.0, warmup=3)[1].median
    torch_s = measure(reference, TorchEvents(torch), 20, 5.0, warmup=3)[1].median
    return engine_s, torch_s, f"{gpu_kernels(torch, cupy, engine)} vs {gpu_kernels(torch, cupy, reference)}"


def gpu_kernels(torch, cupy, step) -> int | str:
    """Kernels and copies one step ran on the GPU, as CUPTI saw them: torch.profiler's CUDA activity
    records every kernel of the process, CuPy's too, so the stand-in's count is checked on a GPU."""
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            step()
            cupy.cuda.Device(0).synchronize()
            torch.cuda.synchronize()
        return sum(e.device_type == torch.autograd.DeviceType.CUDA for e in prof.events())
    except Exception as e:  # figures to read: a profiler that cannot attach must not end the run
        return f"? ({type(e).__name__}: {e})"


def cpu_times(sizes: list[int], batch: int, repeats: int) -> tuple[float, float, float]:
    """Engine and raw steps interleaved, so a busy neighbour slows both alike: their medians, and the
    median of the paired ratios (the figure held to the target; steadier than a ratio of medians)."""
    x, y = data(sizes, batch)
    engine, start = engine_step(sizes, x, y, "cpu")
    raw = raw_step(start, x, y, get_device("cpu"))
    for _ in range(3):
        engine(), raw()
    a, b = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        engine()
        t1 = time.perf_counter()
        raw()
        a.append(t1 - t0)
        b.append(time.perf_counter() - t1)
    return statistics.median(a), statistics.median(b), statistics.median(e / r for e, r in zip(a, b))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the two small models, a tenth of the CPU repeats: "
                        "proves the script runs where there is no GPU (gpu_smoke.sh), rough figures")  # fmt: skip
    quick = parser.parse_args().quick
    models = MODELS[:2] if quick else MODELS
    ok = True
    print(f"{'model':<32} {'opt':<5} {'launches':>8} {'torch':>6} {'ratio':>6} {'syncs':>5}")
    for name, sizes, batch in models:
        for optimizer in ("sgd", "adam"):
            launches, syncs = launches_on_the_standin(sizes, batch, optimizer)
            reference = torch_kernels(sizes, batch, optimizer)
            ratio = launches / reference if reference else float("nan")
            ok &= syncs == 0 and (reference is None or ratio <= 1.2)
            print(f"{name:<32} {optimizer:<5} {launches:>8} {reference or '-':>6} {ratio:>6.2f} {syncs:>5}")
    print()
    gpu = have_gpu()
    for (name, sizes, batch), target in zip(models, (1.2, 1.0, 1.0)) if gpu else ():
        for optimizer in ("sgd", "adam"):
            engine, torch_eager, kernels = gpu_times(sizes, batch, optimizer)
            ok &= engine / torch_eager <= target
            print(f"gpu {name:<28} {optimizer:<5} engine {engine * 1e6:8.1f} us  torch {torch_eager * 1e6:8.1f} us  "
                  f"ratio {engine / torch_eager:4.2f} (target <= {target})  GPU kernels {kernels}")  # fmt: skip
    if not gpu:
        print("gpu: no GPU with CuPy and a CUDA build of torch here: step times on a GPU not measured")
    print()
    for (name, sizes, batch), target, repeats in zip(MODELS[:2], (2.0, 1.05), (3000, 200)):
        engine, raw, ratio = cpu_times(sizes, batch, repeats // 10 if quick else repeats)
        ok &= ratio <= target
        print(f"cpu {name:<28} engine {engine * 1e6:9.1f} us  numpy {raw * 1e6:9.1f} us  "
              f"ratio {ratio:4.2f} (target <= {target})")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
