"""The stress window: the same large GEMM again and again on one device until the window closes, each
result compared with the first (the same inputs must give the same bits) and, now and then, rows of it
with a float64 reference; the rate of every run kept, so a GPU that slows down as it heats is seen.
gpu-burn's idea, with the verdict gpu-burn lacks."""

from __future__ import annotations

import time
from typing import Any

import numpy

from devcheck.commands.bench import cases
from devcheck.interrupt import Interruption
from devcheck.report import Check, Status

REFERENCE_EVERY = 10  # runs between float64 spot checks


def stress(
    device: Any, seconds: float, n: int, drift_limit: float, during: Any, stop: Interruption
) -> tuple[dict, list[Check]] | None:
    """GEMMs of n x n float32 for `seconds`; `during()` is called once halfway, while the device works
    (what NVML says of it under load); returns a record and its checks. An interrupt is held in `stop`
    and the runs made so far are judged (a wrong result before Ctrl-C must not be lost); None if none ran."""
    a_host, b_host = cases.host_inputs((n, n, n), "float32", seed=7)
    rows = numpy.random.default_rng(8).choice(n, size=min(n, 16), replace=False)
    reference = a_host[rows].astype(numpy.float64) @ b_host.astype(numpy.float64)
    tolerance = cases.matmul_tolerance("float32", n, cases.tf32_on(device))
    clock, xp = cases.clock_for(device), device.xp
    with device.context():
        a, b = device.from_host(a_host), device.from_host(b_host)
        first_on_device = xp.matmul(a, b)
        first = device.to_host(first_on_device)
        done: list[tuple[float, bool, bool]] = []  # per run: GFLOP/s, changed, wrong; one append makes a run count
        ends, halfway, readings = time.perf_counter() + seconds, time.perf_counter() + seconds / 2, None
        result: list = []
        with stop:
            while time.perf_counter() < ends or len(done) < 3:
                if during is not None and readings is None and time.perf_counter() >= halfway:
                    readings = during()
                result.clear()
                elapsed = clock.time(lambda: result.append(xp.matmul(a, b)))
                if len(done) % REFERENCE_EVERY == REFERENCE_EVERY - 1 or len(done) < 2:
                    host = device.to_host(result[0])
                    error = numpy.max(numpy.abs(host[rows] - reference)) / numpy.max(numpy.abs(reference))
                    changed, wrong = not numpy.array_equal(host, first), bool(error > tolerance)
                else:  # compared on the device: one boolean crosses to the host
                    changed, wrong = bool(xp.any(result[0] != first_on_device)), False
                done.append((2.0 * n**3 / elapsed / 1e9, changed, wrong))
    if not done:
        return None
    rates, changed, wrong = (list(column) for column in zip(*done))
    # a window cut short is judged on its results, not on its drift: a few runs are no trend
    limit = float("inf") if stop else drift_limit
    record, checks = _verdict(device.name, n, rates, sum(changed), sum(wrong), len(done), limit)
    record["under_load"] = readings or {}
    return record, checks


def _verdict(
    name: str, n: int, rates: list[float], changed: int, wrong: int, runs: int, drift_limit: float
) -> tuple[dict, list[Check]]:
    quarter = max(len(rates) // 4, 1)
    early, late = float(numpy.median(rates[:quarter])), float(numpy.median(rates[-quarter:]))
    drift = late / early - 1 if early else 0.0
    record = {
        "device": name,
        "n": n,
        "runs": runs,
        "sustained_gflops": float(numpy.median(rates)),
        "drift": drift,
        "changed_results": changed,
        "wrong_results": wrong,
        "rates_gflops": rates,
    }
    checks = []
    if changed or wrong:
        checks.append(
            Check(
                f"check.stress.{name}",
                Status.FAIL,
                f"{name}: {changed} of {runs} identical GEMMs gave different results, {wrong} wrong against float64",
                detail="the same inputs must give the same result every time: the device computes wrongly under load",
                fix="drain the node; `dcgmi diag -r 3`; RMA if it recurs",
            )
        )
    else:
        checks.append(
            Check(
                f"check.stress.{name}",
                Status.OK,
                f"{name}: {runs} identical GEMMs ({n}x{n}) gave identical, right results",
            )
        )
    if drift < -drift_limit:
        checks.append(
            Check(
                f"check.stress.{name}.drift",
                Status.WARN,
                f"{name}: the GEMM rate fell {-drift:.0%} in the stress window ({early:,.0f} -> {late:,.0f} GFLOP/s)",
                detail="a device that slows down under sustained load is throttling (heat or power)",
                fix="check cooling and power; `nvidia-smi -q -d PERFORMANCE` during a run",
            )
        )
    return record, checks
