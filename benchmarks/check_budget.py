"""`devcheck check --budget B` must never run past its budget by more than 10%: wall time of the
whole process (start-up included), a few runs of each budget measured here, beside the budget.

    python benchmarks/check_budget.py [--budgets 10s,60s] [--runs 3] [--gpus 8]

`--gpus N` runs it on a replay of N GPUs (the recorded H100 copied N times, peer access between all,
as tests/recordings.py builds it): the budget must hold on an 8-GPU node. The stand-in computes with
NumPy, so each replayed GPU costs this machine's CPU time: a harder test of the budget than a real node.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECONDS = {"10s": 10, "60s": 60, "5m": 300, "15m": 900}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budgets", default="10s")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--gpus", type=int, default=0, help="run on a replay of this many GPUs")
    args = parser.parse_args()
    environ = dict(os.environ)
    if args.gpus:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.recordings import h100, n_gpus

        replay = Path(tempfile.mkdtemp()) / f"{args.gpus}-gpus.json"
        n_gpus(h100(), args.gpus, peer=True).save(replay)
        environ["DEVCHECK_REPLAY"] = str(replay)
    print(f"{'budget':>7} {'run':>4} {'wall s':>8} {'of budget':>10}  steps run / skipped")
    worst = 0.0
    for budget in args.budgets.split(","):
        for run in range(args.runs):
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "devcheck", "check", "--budget", budget, "--device", args.device, "--json"],
                capture_output=True,
                text=True,
                env=environ,
            )
            wall = time.perf_counter() - started
            plan = json.loads(out.stdout)["data"]["plan"] if out.stdout else []
            ran = ",".join(p["step"] for p in plan if p["ran"])
            skipped = ",".join(p["step"] for p in plan if not p["ran"]) or "-"
            ratio = wall / SECONDS[budget]
            worst = max(worst, ratio)
            print(f"{budget:>7} {run + 1:>4} {wall:>8.2f} {ratio:>9.0%}  {ran} / {skipped}")
    print(f"worst: {worst:.0%} of its budget (target: at most 110%)")
    sys.exit(0 if worst <= 1.10 else 1)


if __name__ == "__main__":
    main()
