"""Startup cost of devcheck against its own imports, measured side by side in one run.

    python benchmarks/startup.py [--runs 21]

Whole processes, interleaved (A, B, A, B, ...) so machine noise hits both sides alike; medians.
Targets (2-core CPU machine): `devcheck --help` <= 1.3x `import typer, rich`;
`devcheck env --json` <= 1.3x `import numpy, typer, rich` (issue 13).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def devcheck_cmd() -> list[str]:
    script = shutil.which("devcheck", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "devcheck"]


def time_once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def compare(name: str, cmd: list[str], baseline: list[str], runs: int, target: float) -> bool:
    for _ in range(2):  # warm the page cache and .pyc files
        time_once(cmd), time_once(baseline)
    a, b = [], []
    for _ in range(runs):
        a.append(time_once(cmd))
        b.append(time_once(baseline))
    ratio = statistics.median(a) / statistics.median(b)
    verdict = "ok" if ratio <= target else "OVER TARGET"
    print(
        f"{name:<22} {statistics.median(a) * 1000:7.1f} ms   baseline {statistics.median(b) * 1000:7.1f} ms   "
        f"ratio {ratio:4.2f} (target <= {target})  {verdict}"
    )
    return ratio <= target


def compile_bytecode() -> None:
    """pip compiles bytecode when it installs devcheck, as it did for every dependency; an editable
    checkout under PYTHONDONTWRITEBYTECODE=1 would otherwise recompile devcheck on every run."""
    import compileall

    import devcheck

    compileall.compile_dir(os.path.dirname(devcheck.__file__), quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs
    compile_bytecode()
    py = [sys.executable, "-c"]
    results = [
        compare("devcheck --help", devcheck_cmd() + ["--help"], py + ["import typer, rich"], runs, 1.3),
        compare(
            "devcheck env --json", devcheck_cmd() + ["env", "--json"], py + ["import numpy, typer, rich"], runs, 1.3
        ),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
