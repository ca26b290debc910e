"""`devcheck compare` at fleet scale: 10, 100 and 1,000 reports of 8 GPUs each, timed and measured.

    python benchmarks/compare_scale.py [--sizes 10,100,1000] [--base REPORT.json]

The reports are synthetic but shaped as real ones: a real `devcheck check --budget 10s --json` of the
replayed H100 (DEVCHECK_REPLAY=tests/fixtures/recordings/h100-sxm.json; or --base), its GPU copied to 8
and each node given its own host, run id and +-1% noise (tests/fleet.py), written as `--json` writes
them (indented) into a folder. Timed: the whole comparison as `devcheck compare FOLDER --json` does it
in process (read, reduce, judge, build the report, render its JSON), best of 3; peak memory by
tracemalloc in a separate run. Target (2-core machine): 1,000 reports in under 5 s, memory linear.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devcheck.commands import compare  # noqa: E402
from devcheck.render.text import to_json  # noqa: E402
from tests.fleet import fleet  # noqa: E402


def base_report() -> dict:
    env = {**os.environ, "DEVCHECK_REPLAY": str(ROOT / "tests/fixtures/recordings/h100-sxm.json")}
    cmd = [sys.executable, "-m", "devcheck", "check", "--budget", "10s", "--device", "cuda", "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    return json.loads(done.stdout)


def once(folder: Path) -> tuple[float, int]:
    start = time.perf_counter()
    report = compare.run(compare.Settings(inputs=(str(folder),)))
    text = to_json(report)
    return time.perf_counter() - start, len(text)


def peak_memory(folder: Path) -> int:
    tracemalloc.start()
    compare.run(compare.Settings(inputs=(str(folder),)))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--base", type=Path, help="a `devcheck check --json` to build the fleet from")
    args = parser.parse_args()
    base = json.loads(args.base.read_text()) if args.base else base_report()
    print(f"{'reports':>8} {'MB read':>8} {'seconds':>8} {'s/report':>9} {'peak MiB':>9} {'KiB/report':>10}")
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for host, text in fleet(base, size, kinds=()).items():
                (folder / f"{host}.json").write_text(text)
            megabytes = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
            seconds = min(once(folder)[0] for _ in range(3))
            peak = peak_memory(folder)
        print(
            f"{size:>8} {megabytes:>8.1f} {seconds:>8.2f} {seconds / size * 1e3:>7.2f}ms "
            f"{peak / 2**20:>9.1f} {peak / size / 1024:>10.1f}"
        )


if __name__ == "__main__":
    main()
