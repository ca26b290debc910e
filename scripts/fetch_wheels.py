"""Download into ./.whl every wheel `benchmarks/gpu_smoke.sh` needs that a bare GPU machine lacks,
so the smoke run works there with no network (`pip install --no-index`).

    python3 scripts/fetch_wheels.py        # where there is network; then carry .whl with the tree

A GPU machine lent for a few minutes has Python, NumPy, CuPy, nvidia-ml-py and perhaps torch, and
nothing else: no Typer for `python -m devcheck`, no pytest for `pytest -m gpu`, no array-api-compat
for the engine. The list is not written by hand: it is what pip resolves, for every Python devcheck
supports, from pyproject.toml's dependencies and the test extra's packages that the GPU tests
import, less what the machine already has. Every wheel must be pure Python (`none-any`), so one
folder serves whatever Python and CPU the machine has; the script fails, naming the package, if
one is not. jsonschema and hypothesis (the rest of the test extra) stay out: the GPU tests do not
use them, and jsonschema needs rpds-py, compiled for each Python and CPU.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / ".whl"
PYTHONS = ("3.11", "3.12", "3.13", "3.14")  # requires-python >= 3.11, up to the newest release
GPU_TESTS_NEED = ("pytest", "array-api-strict")  # of the test extra: tests/test_gpu.py and conftest.py
ON_THE_MACHINE = re.compile(r"numpy|cupy(-cuda\w+)?|torch|nvidia-.*")  # on the GPU machine already: never carried


def name_of(requirement: str) -> str:
    """PEP 503's normalized name of a requirement (`array_api_strict>=2.2` -> `array-api-strict`)."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group()).lower()


def requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [
        r for r in project["optional-dependencies"]["test"] if name_of(r) in GPU_TESTS_NEED
    ]
    return [r for r in wanted if not ON_THE_MACHINE.fullmatch(name_of(r))]


def resolve(reqs: list[str], python: str) -> dict[str, str]:
    """{name: version} pip would install on an empty `python`, less what the machine has."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        pip("install", "--dry-run", "--ignore-installed", "--only-binary=:all:", "--python-version", python,
            "--target", f"{tmp}/target", "--report", str(report), *reqs)  # fmt: skip
        chosen = [item["metadata"] for item in json.loads(report.read_text())["install"]]
    return {name_of(m["name"]): m["version"] for m in chosen if not ON_THE_MACHINE.fullmatch(name_of(m["name"]))}


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args], check=True)


def main() -> int:
    reqs = requirements()
    pins = sorted({f"{name}=={version}" for python in PYTHONS for name, version in resolve(reqs, python).items()})
    shutil.rmtree(FOLDER, ignore_errors=True)  # one version of each, not those of every earlier fetch
    pip("download", "--no-deps", "--only-binary=:all:", "--ignore-requires-python", "--dest", str(FOLDER), *pins)
    compiled = [w.name for w in FOLDER.glob("*.whl") if not w.name.endswith("-none-any.whl")]
    if compiled:
        print(f"fetch_wheels: not pure Python, so not one wheel for every machine: {', '.join(compiled)}")
        return 1
    # gpu_smoke.sh installs these names with --no-index --no-deps: pip picks, from the folder, the
    # version each Python accepts (where the newest release of a package left an older Python behind)
    names = sorted({pin.split("==")[0] for pin in pins})
    (FOLDER / "requirements.txt").write_text("\n".join(names) + "\n")
    size = sum(f.stat().st_size for f in FOLDER.iterdir()) / 2**20
    print(f"fetch_wheels: {len(pins)} wheels, {size:.1f} MiB in {FOLDER}: {' '.join(pins)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
