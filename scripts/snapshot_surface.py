"""Write tests/contract/surface.json: the public surface of the real cupy, cupyx and pynvml.

Run it with a Python that has cupy-cuda12x (>= 14) and nvidia-ml-py installed (no GPU needed; CuPy
imports without one), outside the project's own venv, which must not carry CuPy:

    python3 -m venv /tmp/cupyvenv && /tmp/cupyvenv/bin/pip install cupy-cuda12x nvidia-ml-py numpy
    /tmp/cupyvenv/bin/python scripts/snapshot_surface.py

then commit the JSON. `--check` only compares and exits 1 when the committed file is stale
(ignoring the date). What is recorded, and the kinds, are defined in tests/contract/surface.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.contract import surface  # noqa: E402  (after the path above)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=surface.SURFACE_PATH)
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args()
    try:
        fresh = surface.snapshot()
    except ImportError as e:
        print(f"snapshot_surface: {e}; run this with a Python that has cupy-cuda12x and nvidia-ml-py", file=sys.stderr)
        return 2
    if args.check:
        old = surface.load_surface(args.output)
        old["about"]["date"] = fresh["about"]["date"]
        if old != fresh:
            print(f"{args.output} is stale: rerun scripts/snapshot_surface.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(surface.dumps(fresh))
    counts = ", ".join(f"{name} {len(names)}" for name, names in fresh["modules"].items())
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes): {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
