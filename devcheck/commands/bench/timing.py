"""Clocks and statistics: how one call is timed, and what a set of samples says.

GPU work is timed with CUDA events recorded on the stream around the call (what
cupyx.profiler.benchmark does); anything else with perf_counter after a synchronize, never a host
clock around unsynchronised launches (the classic tutorial's bug, which times the launch only).

A sample times back-to-back calls filling at least MIN_WINDOW_S (torch.utils.benchmark's blocked
autorange), then divides. One short call between two events is not what it seems: the GPU stamps
the start event at once, then idles while Python prepares the call (10-20 us for a CuPy copy or
matmul), and that idle time is counted; for a 64 MiB device copy (~45 us on an H100) it can be a third
of the figure. With calls back to back, the host runs ahead of the GPU and the idle gap is paid once.
A call that takes the GPU less time than Python takes to issue it is then timed at its issue rate,
which is what a program of such calls gets.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

UNSTABLE_SPREAD = 0.10  # IQR / median, as torch.utils.benchmark warns
MIN_SAMPLES = 3
MIN_WINDOW_S = 1e-3  # each sample runs calls back to back for at least this long ...
MAX_CALLS = 1000  # ... but never more calls than this


class TimeUp(Exception):
    """The deadline had passed before a measurement's first call: nothing was measured or started."""


class HostClock:
    name = "perf_counter"

    def __init__(self, synchronize: Callable[[], None] = lambda: None):
        self.synchronize = synchronize

    def time(self, fn: Callable[[], Any], calls: int = 1) -> float:
        """Seconds per call, over `calls` calls back to back."""
        self.synchronize()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        self.synchronize()
        return (time.perf_counter() - start) / calls


class CudaEventClock:
    """Elapsed GPU time between two events on the current stream, in seconds."""

    name = "CUDA events"

    def __init__(self, cupy: Any, device: Any):
        self.cupy, self.device = cupy, device
        with device:
            self.start, self.end = cupy.cuda.Event(), cupy.cuda.Event()

    def time(self, fn: Callable[[], Any], calls: int = 1) -> float:
        """Seconds per call, over `calls` calls back to back."""
        with self.device:
            self.start.record()
            for _ in range(calls):
                fn()
            self.end.record()
            self.end.synchronize()
            return self.cupy.cuda.get_elapsed_time(self.start, self.end) / 1000 / calls


@dataclass(frozen=True)
class Stats:
    median: float
    q1: float
    q3: float
    minimum: float
    maximum: float
    n: int
    unstable: str  # why the spread is too wide to trust, or ""
    calls: int = 1  # calls per sample: each sample is their total time / calls

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def to_dict(self) -> dict:
        return {
            "median_s": self.median,
            "iqr_s": self.iqr,
            "q1_s": self.q1,
            "q3_s": self.q3,
            "min_s": self.minimum,
            "max_s": self.maximum,
            "n": self.n,
            "calls_per_sample": self.calls,
        }


def summarize(samples: list[float], host_timer: bool, calls: int = 1, cut: str = "") -> Stats:
    ordered = sorted(samples)
    if len(ordered) >= 4:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1, q3 = ordered[0], ordered[-1]
    median = statistics.median(ordered)
    reasons = [cut] if cut else []
    if len(ordered) < MIN_SAMPLES:
        reasons.append(f"only {len(ordered)} sample(s) fit the time budget")
    if median and (q3 - q1) / median > UNSTABLE_SPREAD:
        reasons.append(f"spread (IQR) is {(q3 - q1) / median:.0%} of the median, over {UNSTABLE_SPREAD:.0%}")
    if host_timer and median * calls < MIN_WINDOW_S / 2:
        reasons.append("samples under 0.5 ms are dominated by timer and call overhead")
    return Stats(median, q1, q3, ordered[0], ordered[-1], len(ordered), "; ".join(reasons), calls)


def measure(
    fn: Callable[[], Any], clock: Any, repeat: int, budget_s: float, warmup: int = 1, deadline: float = math.inf
) -> tuple[float, Stats]:
    """The first call on its own (context creation, library handles, kernel compilation land there),
    then `warmup` calls and the sizing of a sample, then up to `repeat` samples within `budget_s` (at
    least three), each of as many calls back to back as fill MIN_WINDOW_S. No call starts after
    `deadline` (a perf_counter time: bench's --max-time), so the run ends at most one call past it;
    then the samples are what there is, or the first call alone, and the stats say they were cut
    (TimeUp when the deadline passed before the first call)."""
    started = time.perf_counter()
    if started >= deadline:
        raise TimeUp
    first = clock.time(fn)
    samples: list[float] = []
    calls = 1  # doubled until one sample fills the window (a single slow call cannot size them all)
    if time.perf_counter() < deadline:
        for _ in range(warmup):
            fn()
        while calls < MAX_CALLS and time.perf_counter() < deadline and clock.time(fn, calls) * calls < MIN_WINDOW_S:
            calls = min(2 * calls, MAX_CALLS)
    while len(samples) < repeat and time.perf_counter() < deadline:
        if len(samples) >= MIN_SAMPLES and time.perf_counter() - started >= budget_s:
            break
        samples.append(clock.time(fn, calls))
        if first > budget_s and time.perf_counter() - started > budget_s:
            break  # one call is longer than the whole budget: keep what there is
    host = isinstance(clock, HostClock)
    if not samples:
        return first, summarize([first], host, cut="cut at the time limit: the first call alone")
    late = len(samples) < min(repeat, MIN_SAMPLES) and time.perf_counter() >= deadline
    cut = "cut at the time limit" if late else ""
    return first, summarize(samples, host, calls, cut)
