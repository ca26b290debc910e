"""An all-reduce across every selected GPU from one process, as nccl-tests' all_reduce_perf measures it:
NCCL communicators from ncclCommInitAll (CuPy's NcclCommunicator.initAll), one float32 sum per GPU
inside groupStart/groupEnd, message sizes doubling from 8 B to 1 GiB (as far as the budget and memory
allow), timed with CUDA events across the GPUs' streams. Each size gives algbw = bytes / time and
busbw = algbw x 2(n-1)/n, what each GPU's link carries (nccl-tests doc/PERFORMANCE.md), set against
the slowest GPU's link peak. CuPy's NCCL API is cupy_backends/cuda/libs/nccl.pyx (CuPy 14.2)."""

from __future__ import annotations

import re
from typing import Any

from devcheck.commands.bench.cases import Budget, rate_record
from devcheck.commands.bench.interconnect import Gpus, StreamsClock, link_peak
from devcheck.commands.bench.timing import measure
from devcheck.machine.model import peaks

SMALLEST, LARGEST = 8, 2**30  # nccl-tests' -b 8 -e 1G -f 2
# The oldest nvidia-nccl-cuXX wheel CuPy 14.2 loads, per CUDA major (cupyx/tools/install_library.py).
NCCL_MIN_PYPI = {12: "2.18.1", 13: "2.27.7"}


def missing(cupy: Any) -> str:
    """Why an all-reduce cannot run here, with the line that installs NCCL; "" when NCCL loads."""
    from devcheck.machine.replay import seam

    nccl, warned = seam.nccl()
    if nccl.available:
        return ""
    found = re.search(r'pip install "[^"]+"', warned)
    if found:
        line = found.group(0)
    else:  # imported earlier, so CuPy warned then: its own formula for this CUDA major
        major = cupy.cuda.runtime.runtimeGetVersion() // 1000
        minimum = f">={NCCL_MIN_PYPI[major]}," if major in NCCL_MIN_PYPI else ""
        line = f'pip install "nvidia-nccl-cu{major}{minimum}<3"'
    return f"NCCL does not load (cupy.cuda.nccl.available is False): `{line}`"


def sizes(free_bytes: int | None) -> list[int]:
    """8 B to 1 GiB, doubling; the largest whose two buffers take at most half the GPU's free memory."""
    top = LARGEST if free_bytes is None else max(SMALLEST, min(LARGEST, free_bytes // 4))
    out, size = [], SMALLEST
    while size <= top:
        out.append(size)
        size *= 2
    return out


def allreduce(gpus: Gpus, budget: Budget) -> list[dict]:
    from devcheck.machine.replay import seam

    nccl, _ = seam.nccl()
    cupy = gpus.members[0][0].native
    ids, n = [d.index for d, _ in gpus.members], len(gpus.members)
    free = [f.free_bytes for _, f in gpus.members if f.free_bytes is not None]
    plan = sizes(min(free) if free else None)
    comms = nccl.NcclCommunicator.initAll(ids)
    send, receive, lanes = {}, {}, []
    for d in ids:
        with cupy.cuda.Device(d):
            send[d], receive[d] = cupy.cuda.alloc(plan[-1]), cupy.cuda.alloc(plan[-1])
            lanes.append((d, cupy.cuda.Stream(non_blocking=True)))
    clock = StreamsClock(cupy, lanes)
    link = min((link_peak(d, f) for d, f in gpus.members), key=lambda p: p.value if p.value is not None else -1.0)
    factor = 2 * (n - 1) / n
    peak = peaks.Peak(
        link.value / factor if link.value is not None else None,
        "GB/s",
        f"algbw at which busbw (algbw x {factor:g}) reaches the slowest link: {link.basis}",
    )
    records, spent = [], 0.0
    for size in plan:
        count = max(size // 4, 1)

        def run(count: int = count) -> None:
            nccl.groupStart()
            for comm, (d, stream) in zip(comms, lanes, strict=True):
                comm.allReduce(send[d].ptr, receive[d].ptr, count, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, stream.ptr)
            nccl.groupEnd()

        left = budget.seconds - spent
        first, stats = measure(run, clock, budget.repeat, left / (len(plan) - len(records)))
        spent += first + stats.median * stats.calls * (stats.n + 2)
        record = rate_record(
            f"nccl all-reduce {n} GPUs", gpus, "float32", [size], first, stats, clock, size, "GB/s", peak
        )
        record.update(ranks=n, busbw_gbps=peaks.bus_bandwidth(record["rate"], n))
        records.append(record)
        if spent > budget.seconds:
            break  # the budget's share of nccl-tests' sizes
    for comm in comms:
        comm.destroy()
    return records
