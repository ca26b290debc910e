"""The benchmark cases. Each returns plain records (dicts) for one device; the caller decides
budgets, order and reporting. Inputs come from a seeded host generator (never zeros), the same
on every device, and are copied to the device before timing starts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy

from devcheck import numerics
from devcheck.commands.bench import mlp_step
from devcheck.commands.bench.timing import CudaEventClock, HostClock, TimeUp, measure
from devcheck.engine.backend import Device
from devcheck.machine.model import peaks
from devcheck.machine.model.facts import DeviceFacts
from devcheck.numerics import UNIT_ROUNDOFF


@dataclass(frozen=True)
class Budget:
    repeat: int
    seconds: float  # this case's share
    deadline: float = math.inf  # perf_counter time after which no call starts (the whole run's limit)


def clock_for(device: Device) -> Any:
    if device.name.startswith("cuda:"):
        cupy = device.native
        return CudaEventClock(cupy, cupy.cuda.Device(device.index))
    return HostClock(device.synchronize)


def tf32_on(device: Device) -> bool:
    return numerics.tf32_on(device.name)


def matmul_tolerance(dtype: str, k: int, tf32: bool) -> float:
    """Rounding of a K-term dot product grows like sqrt(K) unit roundoffs; 8x for margin."""
    return 8 * UNIT_ROUNDOFF["tf32" if tf32 and dtype == "float32" else dtype] * math.sqrt(k)


def rate_record(
    case: str,
    device: Device,
    dtype: str,
    shape: Any,
    first: float,
    stats: Any,
    clock: Any,
    work: float,
    unit: str,
    peak_value: peaks.Peak,
) -> dict:
    rate = work / stats.median / (1 if unit == "samples/s" else 1e9)
    pct, note = peaks.percent(rate, peak_value)
    return {
        "case": case,
        "device": device.name,
        "dtype": dtype,
        "shape": shape,
        "timer": clock.name,
        "first_call_s": first,
        "stats": stats.to_dict(),
        "rate": rate,
        "unit": unit,
        {"GFLOP/s": "flops", "GB/s": "bytes"}.get(unit, "samples"): work,
        "peak": peak_value.to_dict(),
        "percent_of_peak": pct,
        "peak_note": note,
        "unstable": stats.unstable,
    }


def host_inputs(shape: tuple[int, int, int], dtype: str, seed: int = 0) -> tuple[numpy.ndarray, numpy.ndarray]:
    m, k, n = shape
    rng = numpy.random.default_rng(seed)
    return (
        rng.standard_normal((m, k), dtype=numpy.float32).astype(dtype),
        rng.standard_normal((k, n), dtype=numpy.float32).astype(dtype),
    )


def stream_input(elements: int, seed: int) -> numpy.ndarray:
    """A large float32 array for the memory cases: a random block of 1 Mi values, repeated. Its traffic
    is that of any data (no value is 0), and it is made in milliseconds where drawing every element took
    seconds on a loaded 2-core VM: time that --max-time counted before any call."""
    block = numpy.random.default_rng(seed).standard_normal(min(elements, 2**20), dtype=numpy.float32)
    return numpy.resize(block, elements)


def matmul(
    device: Device,
    facts: DeviceFacts,
    shape: tuple[int, int, int],
    dtype: str,
    budget: Budget,
    inputs: tuple[numpy.ndarray, numpy.ndarray],
) -> dict:
    """The classic experiment, timed right and checked against a float64 reference."""
    m, k, n = shape
    xp, clock = device.xp, clock_for(device)
    a_host, b_host = inputs
    with device.context():
        a, b = device.from_host(a_host), device.from_host(b_host)
        out: dict = {}  # the last call's result is the one checked: no call more, past a deadline

        def call() -> None:
            out["c"] = xp.matmul(a, b)

        first, stats = measure(call, clock, budget.repeat, budget.seconds, deadline=budget.deadline)
        c = out["c"]
        rows = numpy.random.default_rng(1).choice(m, size=min(m, 64), replace=False)
        got = device.to_host(xp.take(c, device.from_host(rows), axis=0)).astype(numpy.float64)
        norm = float(xp.linalg.vector_norm(xp.astype(c, xp.float32) if dtype == "float16" else c))
    reference = a_host[rows].astype(numpy.float64) @ b_host.astype(numpy.float64)
    rel_error = float(numpy.max(numpy.abs(got - reference)) / numpy.max(numpy.abs(reference)))
    tf32 = tf32_on(device) and dtype == "float32"
    tolerance = matmul_tolerance(dtype, k, tf32)
    record = rate_record(
        "matmul", device, dtype, [m, k, n], first, stats, clock, 2.0 * m * k * n, "GFLOP/s", facts.flops_peak(dtype)
    )
    record.update(
        tf32=tf32,
        correctness={
            "rel_error": rel_error,
            "tolerance": tolerance,
            "ok": rel_error <= tolerance,
            "rows_checked": len(rows),
            "norm": norm,
        },
    )
    return record


def matmul_end_to_end(
    device: Device, shape: tuple[int, int, int], dtype: str, budget: Budget, inputs: tuple[numpy.ndarray, numpy.ndarray]
) -> dict:
    """Host arrays in, host result out: the copies a person moving this work to the GPU pays too."""
    m, k, n = shape
    xp, clock = device.xp, clock_for(device)
    a_host, b_host = inputs
    with device.context():
        first, stats = measure(
            lambda: device.to_host(xp.matmul(device.from_host(a_host), device.from_host(b_host))),
            clock,
            budget.repeat,
            budget.seconds,
            deadline=budget.deadline,
        )
    no_peak = peaks.Peak(None, "GFLOP/s", "copies included: no single peak applies")
    return rate_record(
        "matmul end-to-end", device, dtype, [m, k, n], first, stats, clock, 2.0 * m * k * n, "GFLOP/s", no_peak
    )


def bandwidth(device: Device, facts: DeviceFacts, budget: Budget, elements: int) -> dict:
    """a = b + c over float32 arrays well beyond the last cache: two reads and one write per element."""
    xp, clock = device.xp, clock_for(device)
    with device.context():
        b, c = (device.from_host(stream_input(elements, seed)) for seed in (2, 3))
        a = xp.empty_like(b)
        native = device.native
        add = (lambda: native.add(b, c, out=a)) if native is not None else (lambda: xp.add(b, c))
        first, stats = measure(add, clock, budget.repeat, budget.seconds, deadline=budget.deadline)
    return rate_record(
        "bandwidth a=b+c",
        device,
        "float32",
        [elements],
        first,
        stats,
        clock,
        3.0 * 4 * elements,
        "GB/s",
        facts.bandwidth_peak,
    )


def copies(device: Device, facts: DeviceFacts, budget: Budget, nbytes: int) -> list[dict]:
    """Host->device and device->host, pageable and pinned, and device->device (counted twice: read + write).

    Each done the way PyTorch copies (CuPy v14.2 source): `dst.set(host)` and `src.get(out=host)` are one
    cudaMemcpyAsync, pageable memory staged by the driver, as torch's `.to()` / `.cpu()`; not
    `cupy.asarray(host)`, which first copies the array into a pinned buffer with one host thread.
    `cupy.copyto` of contiguous arrays is one cudaMemcpyAsync, as torch's `clone()`; `src.copy()`
    would launch CuPy's elementwise copy kernel instead."""
    clock, n = clock_for(device), nbytes // 4
    pageable = stream_input(n, 4)
    records = []
    for label, fn, moved, peak_value in _copy_fns(device, pageable, facts):
        try:
            first, stats = measure(fn, clock, budget.repeat, budget.seconds, deadline=budget.deadline)
        except TimeUp:
            if records:  # the copies measured before the time limit
                return records
            raise
        records.append(
            rate_record(f"copy {label}", device, "float32", [n], first, stats, clock, moved, "GB/s", peak_value)
        )
    return records


def _copy_fns(device: Device, pageable: numpy.ndarray, facts: DeviceFacts) -> list[tuple]:
    nbytes, pcie = pageable.nbytes, facts.pcie_peak
    if device.native is not None and device.name.startswith("cuda:"):
        cupy = device.native
        with device.context():
            src = cupy.asarray(pageable)
            dst = cupy.empty_like(src)
        memory = cupy.cuda.alloc_pinned_memory(nbytes)
        pinned = numpy.frombuffer(memory, numpy.float32, pageable.size)
        pinned[...] = pageable

        def on_device(fn: Any) -> Any:
            def run() -> None:
                with device.context():
                    fn()

            return run

        return [
            ("host->device pageable", on_device(lambda: dst.set(pageable)), nbytes, pcie),
            ("host->device pinned", on_device(lambda: dst.set(pinned)), nbytes, pcie),
            ("device->host pageable", on_device(lambda: src.get(out=pageable)), nbytes, pcie),
            ("device->host pinned", on_device(lambda: src.get(out=pinned)), nbytes, pcie),
            ("device->device", on_device(lambda: cupy.copyto(dst, src)), 2 * nbytes, facts.bandwidth_peak),
        ]
    src = device.from_host(pageable)  # a device without pinned host memory: the generic copies only
    return [
        ("host->device pageable", lambda: device.from_host(pageable), nbytes, pcie),
        ("device->host pageable", lambda: device.to_host(src), nbytes, pcie),
        ("device->device", lambda: device.xp.asarray(src, copy=True), 2 * nbytes, facts.bandwidth_peak),
    ]


def training_step(device: Device, budget: Budget) -> dict:
    """The reference MLP's training step with the engine, and the same math on raw arrays."""
    sizes, batch = mlp_step.REFERENCE
    x, y = mlp_step.data(sizes, batch)
    engine, start = mlp_step.engine_step(sizes, x, y, device.name)
    raw = mlp_step.raw_step(start, x, y, device)
    clock = clock_for(device)
    with device.context():
        first, stats = measure(engine, clock, budget.repeat, budget.seconds / 2, deadline=budget.deadline)
        _, raw_stats = measure(raw, clock, budget.repeat, budget.seconds / 2, deadline=budget.deadline)
    none = peaks.Peak(None, "samples/s", "a whole training step has no single peak")
    record = rate_record(
        "autograd step", device, "float32", [*sizes, batch], first, stats, clock, batch, "samples/s", none
    )
    record.update(raw_stats=raw_stats.to_dict(), overhead=stats.median / raw_stats.median)
    return record
