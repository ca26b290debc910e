"""One training step with devcheck.engine against the same math hand-written in NumPy, side by
side in one process (interleaved, medians).

    python benchmarks/engine_step.py

Targets (2-core CPU machine): reference MLP 784-512-512-10, batch 256, float32, cross-entropy,
SGD with momentum <= 1.10x; tiny MLP 2-16-16-2, batch 32 (overhead-bound) <= 4x.
"""

from __future__ import annotations

import statistics
import sys
import time

from devcheck.commands.bench.mlp_step import data, engine_step, raw_step
from devcheck.engine import get_device


def compare(name: str, sizes: list[int], batch: int, repeats: int, target: float) -> bool:
    x, y = data(sizes, batch)
    engine, start = engine_step(sizes, x, y, "cpu")
    handwritten = raw_step(start, x, y, get_device("cpu"))
    assert abs(float(engine()) - float(handwritten())) < 1e-4, "the two steps must compute the same loss"
    for _ in range(3):
        engine(), handwritten()
    a, b = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        engine()
        t1 = time.perf_counter()
        handwritten()
        t2 = time.perf_counter()
        a.append(t1 - t0)
        b.append(t2 - t1)
    ratio = statistics.median(a) / statistics.median(b)
    print(
        f"{name:<32} engine {statistics.median(a) * 1e6:9.1f} us   numpy {statistics.median(b) * 1e6:9.1f} us   "
        f"ratio {ratio:4.2f} (target <= {target})  {'ok' if ratio <= target else 'OVER TARGET'}"
    )
    return ratio <= target


def main() -> int:
    results = [
        compare("MLP 784-512-512-10, batch 256", [784, 512, 512, 10], 256, 40, 1.10),
        compare("MLP 2-16-16-2, batch 32", [2, 16, 16, 2], 32, 2000, 4.0),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
