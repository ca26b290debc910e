"""Where the GPU starts to pay: for the classic matmul and for a training step, the smallest size at
which the GPU beats the CPU, for the kernel alone and with the copies a person moving the work pays
too. A tiny model is slower on a GPU (the H100 ran train's default network at 0.178 s per epoch, the
CPU at 0.028): the crossover says so, and from which size on it is not."""

from __future__ import annotations

import math
from typing import Any

from devcheck.commands.bench import cases, mlp_step
from devcheck.commands.bench.timing import TimeUp, measure

MATMUL_SIZES = (64, 128, 256, 512, 1024, 2048, 4096)  # N of the classic N x N/10 @ N/10 x N/5
BATCHES = (8, 32, 128, 512, 2048)  # of the reference MLP's training step


def _median(fn: Any, device: Any, deadline: float) -> float:
    with device.context():
        _, stats = measure(fn, cases.clock_for(device), 3, 0.2, deadline=deadline)
    return stats.median


def matmul(cpu: Any, gpu: Any, cpu_times: dict | None = None, deadline: float = math.inf) -> dict:
    """`cpu_times` holds the CPU's side across GPUs: on an 8-GPU node it is measured once, not 8 times.
    Sizes stop at `deadline` (bench's --max-time); the summary names the first one not measured."""
    rows, cpu_times = [], {} if cpu_times is None else cpu_times
    try:
        for n in MATMUL_SIZES:
            a, b = cases.host_inputs((n, max(n // 10, 1), max(n // 5, 1)), "float32")
            key = ("matmul", n)
            if key not in cpu_times:
                cpu_times[key] = _median(lambda a=a, b=b: cpu.xp.matmul(a, b), cpu, deadline)
            on_cpu = cpu_times[key]
            da, db = gpu.from_host(a), gpu.from_host(b)
            kernel = _median(lambda da=da, db=db: gpu.xp.matmul(da, db), gpu, deadline)
            copies = _median(
                lambda a=a, b=b: gpu.to_host(gpu.xp.matmul(gpu.from_host(a), gpu.from_host(b))), gpu, deadline
            )
            rows.append({"size": n, "cpu_s": on_cpu, "gpu_kernel_s": kernel, "gpu_with_copies_s": copies})
    except TimeUp:
        pass
    return _summary(gpu.name, "matmul N x N/10 @ N/10 x N/5 (N)", rows, MATMUL_SIZES)


def training_step(cpu: Any, gpu: Any, cpu_times: dict | None = None, deadline: float = math.inf) -> dict:
    sizes, rows, cpu_times = mlp_step.REFERENCE[0], [], {} if cpu_times is None else cpu_times
    try:
        for batch in BATCHES:
            x, y = mlp_step.data(sizes, batch)
            key = ("training_step", batch)
            if key not in cpu_times:
                step_cpu, _ = mlp_step.engine_step(sizes, x, y, cpu.name)
                cpu_times[key] = _median(step_cpu, cpu, deadline)
            step_gpu, _ = mlp_step.engine_step(sizes, x, y, gpu.name)
            on_cpu, on_gpu = cpu_times[key], _median(step_gpu, gpu, deadline)
            # with copies: the batch crosses to the GPU each step, as from a host DataLoader
            copy = _median(lambda x=x, y=y: (gpu.from_host(x), gpu.from_host(y)), gpu, deadline)
            rows.append({"size": batch, "cpu_s": on_cpu, "gpu_kernel_s": on_gpu, "gpu_with_copies_s": on_gpu + copy})
    except TimeUp:
        pass
    return _summary(gpu.name, f"training step, MLP {'-'.join(map(str, sizes))} (batch)", rows, BATCHES)


def _summary(device: str, workload: str, rows: list[dict], planned: tuple[int, ...] = ()) -> dict:
    def first(key: str) -> int | None:
        return next((r["size"] for r in rows if r[key] < r["cpu_s"]), None)

    cut = planned[len(rows)] if len(rows) < len(planned) else None
    return {
        "device": device,
        "workload": workload,
        "kernel_from": first("gpu_kernel_s"),
        "with_copies_from": first("gpu_with_copies_s"),
        "sizes": rows,
    } | ({"not_measured_from": cut} if cut is not None else {})
