"""The GEMM sizes of check's speed and stress steps: a function of the device's model (its computed peak)
and the budget, never of a speed measured in the run. Identical nodes then run identical cases, so
`devcheck compare` can set their rates side by side and `check --baseline` finds its own earlier run;
a size picked from the speed a node measured gave a slow node a smaller case, and it escaped its peers.

The size is the largest of SIZES, up to the budget's cap, whose GEMM in that dtype takes at most
AT_PEAK_S at the device's peak for it (float32 and float64 apart: a GeForce card's float64 runs at
1/64 of its float32): a device at a tenth of its peak still takes 0.05 s a call, so a slow one is
measured and judged inside the budget. A device with no known peak gets the smallest size. Under
replay a GPU is sized as this CPU, which does its arithmetic (steps._sized_as)."""

from __future__ import annotations

from typing import Any

SIZES = (512, 1024, 2048, 4096, 8192)
SIZE_CAP = {10.0: 1024, 60.0: 2048, 300.0: 4096, 900.0: 8192}  # budget (s) -> largest speed GEMM
STRESS_CAP = 4096  # the stress window's float32 GEMM: many runs of it, not one long one
AT_PEAK_S = 0.005  # seconds one GEMM of the chosen size takes at the device's peak
PLANNED_FRACTION = 0.1  # of the peak: the slowest a device is planned for (its time estimate)
DTYPES = ("float32", "float64")  # the speed step's matmuls


def at_budget(table: dict[float, Any], seconds: float) -> Any:
    """The value of the largest budget in `table` that `seconds` reaches (90 s: 60 s's), else the smallest's."""
    reached = [budget for budget in table if budget <= seconds]
    return table[max(reached) if reached else min(table)]


def size_cap(seconds: float) -> int:
    return at_budget(SIZE_CAP, seconds) if seconds >= min(SIZE_CAP) else SIZES[0]


def gemm_seconds(n: int, gflops: float) -> float:
    return 2.0 * n**3 / (gflops * 1e9)


def speed_size(facts: Any, seconds: float, dtype: str) -> int:
    """n of the speed step's n x n x n GEMM in `dtype` on this device model, in this budget."""
    peak = facts.flops_peak(dtype).value
    if not peak:
        return SIZES[0]
    fits = [n for n in SIZES if n <= size_cap(seconds) and gemm_seconds(n, peak) <= AT_PEAK_S]
    return fits[-1] if fits else SIZES[0]


def stress_size(facts: Any, seconds: float) -> int:
    return min(speed_size(facts, seconds, "float32"), STRESS_CAP)
