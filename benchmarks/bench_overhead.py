"""Does devcheck's harness add anything to what it measures? The CPU matmul GFLOP/s that
`devcheck bench` reports against a bare `a @ b` timed with perf_counter, side by side in one
process (alternating rounds, medians).

    python benchmarks/bench_overhead.py [--size 10000] [--rounds 3]

Target: within 5%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from devcheck.commands.bench import cases
from devcheck.engine import get_device
from devcheck.machine.model.facts import cpu_facts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    shape = (args.size, args.size // 10, args.size // 5)
    flops = 2.0 * shape[0] * shape[1] * shape[2]
    device, facts = get_device("cpu"), cpu_facts()
    ratios = []
    for dtype in ("float32", "float64"):
        a, b = inputs = cases.host_inputs(shape, dtype)
        reported, bare = [], []
        for _ in range(args.rounds):
            record = cases.matmul(device, facts, shape, dtype, cases.Budget(args.repeat, 1e9), inputs)
            reported.append(record["rate"])
            a @ b  # warm, as the harness does
            samples = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                a @ b
                samples.append(time.perf_counter() - start)
            bare.append(flops / statistics.median(samples) / 1e9)
        ratio = statistics.median(reported) / statistics.median(bare)
        ratios.append(ratio)
        print(
            f"{dtype}: devcheck {statistics.median(reported):7.1f} GFLOP/s   bare a @ b "
            f"{statistics.median(bare):7.1f} GFLOP/s   ratio {ratio:.3f} (target within 5%)  "
            f"{'ok' if abs(ratio - 1) <= 0.05 else 'OFF TARGET'}"
        )
    return 0 if all(abs(r - 1) <= 0.05 for r in ratios) else 1


if __name__ == "__main__":
    sys.exit(main())
