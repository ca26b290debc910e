"""Mutation testing of devcheck's numeric core, module by module, with mutmut 3 (issue 24).

    .venv/bin/pip install mutmut          # 3.x; not a test dependency: this runs outside the suite
    .venv/bin/python scripts/mutation.py                     # the named mutants, then every group but engine
    .venv/bin/python scripts/mutation.py peaks outliers      # some groups (engine only when named: slow)
    .venv/bin/python scripts/mutation.py --named             # only the issue's hand-made mutants

Each group mutates a few modules and runs only the tests that cover them, in its own scratch copy
(.mutation/<group>/: mutmut 3 reads its settings from ./pyproject.toml, so each group gets its own),
one test process at a time under `nice` (a 2-core machine shared with other work). mutmut 3 mutates
code inside functions only; the tables and constants at module level (Z_LIMIT, the PCIe lane rates,
the throttle bits...) are covered by NAMED: the mutations issue 24 found surviving, each applied
alone to a scratch copy and required to fail its tests.

The score of a group is killed / (all - equivalent): tests/mutation/equivalent.txt lists each
surviving mutant judged equivalent (no test can tell it from the original) with its reason.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / ".mutation"
EQUIVALENT = ROOT / "tests" / "mutation" / "equivalent.txt"
VENV_BIN = Path(sys.executable).parent

# group: (modules to mutate, function-name globs within them or None for all, tests that cover them)
GROUPS: dict[str, tuple[list[str], list[str] | None, list[str]]] = {
    "peaks": (["devcheck/machine/model/peaks.py"], None, ["tests/test_peak_tables.py", "tests/test_p2p.py"]),
    "outliers": (
        ["devcheck/commands/compare/outliers.py", "devcheck/commands/compare/drift.py"],
        None,
        ["tests/test_fleet_rules.py"],
    ),
    "agreement": (["devcheck/commands/train/agreement.py"], None, ["tests/test_agreement_rules.py"]),
    "files": (["devcheck/files.py"], None, ["tests/test_file_writers.py", "tests/test_outputs.py"]),
    "nvml": (
        ["devcheck/machine/probes/nvml.py"],
        ["x_slowdowns*", "x_is_geforce*"],  # what NVML's codes mean, not the reading of NVML
        ["tests/test_health_rules.py"],
    ),
    "gpu_health": (["devcheck/commands/gpu_health.py"], None, ["tests/test_health_rules.py"]),
    "check": (
        [
            "devcheck/commands/check/thresholds.py",
            "devcheck/commands/check/verdicts.py",
            "devcheck/commands/check/health.py",
        ],
        ["x*"],
        ["tests/test_health_rules.py", "tests/test_p2p.py"],
    ),
    "timing": (["devcheck/commands/bench/timing.py"], None, ["tests/test_timing_rules.py", "tests/test_limits.py"]),
    "optim": (
        ["devcheck/engine/optim.py", "devcheck/engine/fused.py"],
        None,
        ["tests/test_optim_rules.py", "tests/test_engine_nn.py", "tests/test_forward_values.py"],
    ),
    "functional": (
        ["devcheck/engine/functional.py"],
        None,
        [
            "tests/test_functional_rules.py",
            "tests/test_forward_values.py",
            "tests/test_engine_ops.py",
            "tests/test_engine_nn.py",
        ],
    ),
    "gpu_reading": (  # its sources and the lost-GPU path are read by env's and the failure messages' tests
        ["devcheck/machine/probes/gpu_reading.py"],
        None,
        [
            "tests/test_gpu_reading.py",
            "tests/test_health_rules.py",
            "tests/test_env.py",
            "tests/test_failure_messages.py",
            "tests/test_gpu_families.py",
        ],
    ),
    "composed": (  # abs, clip and flip: composed of other primitives (the engine group's slice that changed last)
        ["devcheck/engine/methods.py"],
        ["x_abs_*", "x_clip*", "x_flip*"],
        ["tests/test_engine_composed.py", "tests/test_forward_values.py", "tests/test_engine_ops.py"],
    ),
    "engine": (
        ["devcheck/engine/ops.py", "devcheck/engine/methods.py"],
        None,
        [
            "tests/test_forward_values.py",
            "tests/test_engine_ops.py",
            "tests/test_engine_composed.py",
            "tests/test_engine_nn.py",
        ],
    ),
}

# The mutations issue 24 found surviving: (file, original text, mutated text, tests that must fail).
NAMED = [
    ("devcheck/engine/methods.py", "tanh(x * 0.5) * 0.5 + 0.5", "tanh(x) * 0.5 + 0.5", "tests/test_forward_values.py"),
    ("devcheck/machine/model/peaks.py", "(8, 9), (12, 0)}", "(8, 9)}", "tests/test_peak_tables.py"),
    ("devcheck/machine/model/peaks.py", "3: 0.985,", "3: 0.8,", "tests/test_peak_tables.py"),
    ("devcheck/commands/compare/outliers.py", "Z_LIMIT = 3.5", "Z_LIMIT = 5.0", "tests/test_fleet_rules.py"),
    ("devcheck/commands/compare/outliers.py", "MIN_GROUP = 3", "MIN_GROUP = 4", "tests/test_fleet_rules.py"),
    ("devcheck/commands/compare/summary.py", '    "ecc_mode",\n', "", "tests/test_fleet_rules.py"),
    (
        "devcheck/commands/train/agreement.py",
        "return 64 * dtype_roundoff",
        "return 640 * dtype_roundoff",
        "tests/test_agreement_rules.py",
    ),
    (
        "devcheck/commands/train/agreement.py",
        "tolerance = lockstep_tolerance(",
        "tolerance = 10 * lockstep_tolerance(",
        "tests/test_agreement_rules.py",
    ),
    ("devcheck/machine/probes/nvml.py", '    0x8: "hardware slowdown",\n', "", "tests/test_health_rules.py"),
    (  # write_atomic writing in place: the file truncated first, then written
        "devcheck/files.py",
        '    if target.kind == "stream":\n        with os.fdopen(target.open(os.O_WRONLY | os.O_NOCTTY), "w"',
        '    if True:\n        with os.fdopen(target.open(os.O_WRONLY | os.O_NOCTTY | os.O_CREAT | os.O_TRUNC), "w"',
        "tests/test_file_writers.py",
    ),
]

PYTEST_ARGS = ["-p", "no:cacheprovider", "-x", "-q", "-m", "slow or not slow", "-p", "no:randomly"]


def scratch_copy(where: Path) -> None:
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", "*.pyc")
    for name in ("devcheck", "tests"):
        shutil.copytree(ROOT / name, where / name, ignore=ignore)
    shutil.copy(ROOT / "README.md", where / "README.md")  # test_env reads its JSON example


def named(only: list[int] | None = None) -> bool:
    """Each named mutant applied alone must fail its tests."""
    where, ok = SCRATCH / "named", True
    for k, (path, old, new, tests) in enumerate(NAMED, 1):
        if only and k not in only:
            continue
        scratch_copy(where)
        shutil.copy(ROOT / "pyproject.toml", where / "pyproject.toml")
        text = (where / path).read_text()
        if text.count(old) != 1:
            print(f"named {k}: {path}: {old!r} is not in it once: the code moved, update NAMED")
            ok = False
            continue
        (where / path).write_text(text.replace(old, new))
        run = subprocess.run(
            ["nice", "-n", "19", str(VENV_BIN / "python"), "-m", "pytest", *PYTEST_ARGS, tests],
            cwd=where,
            capture_output=True,
            text=True,
        )
        killed = run.returncode == 1
        ok &= killed
        print(f"named {k}: {path}: {old.strip()!r} -> {new.strip()!r}: {'killed' if killed else 'SURVIVED'}")
    return ok


def mutmut_config(modules: list[str], tests: list[str]) -> str:
    """The project's pyproject.toml with a [tool.mutmut] section for this group."""
    settings = {
        "source_paths": ["devcheck"],
        "only_mutate": modules,
        "pytest_add_cli_args": PYTEST_ARGS,
        "pytest_add_cli_args_test_selection": tests,
        "use_git_change_detection": False,
        "also_copy": ["README.md"],
    }
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    return (ROOT / "pyproject.toml").read_text() + "\n".join(lines) + "\n"


def equivalents() -> dict[str, str]:
    """mutant name -> why it is equivalent, from tests/mutation/equivalent.txt (`name: reason`)."""
    found = {}
    for line in EQUIVALENT.read_text().splitlines() if EQUIVALENT.exists() else []:
        if line.strip() and not line.startswith("#"):
            name, _, why = line.partition(":")
            found[name.strip()] = why.strip()
    return found


def results(where: Path) -> dict[str, str]:
    """mutant name -> status, from `mutmut results --all true`."""
    out = subprocess.run(
        [str(VENV_BIN / "mutmut"), "results", "--all", "true"], cwd=where, capture_output=True, text=True
    ).stdout
    return dict(re.findall(r"^\s*(\S+__mutmut_\d+): (.+?)\s*$", out, flags=re.M))


def group(name: str, children: int) -> dict:
    modules, functions, tests = GROUPS[name]
    where = SCRATCH / name
    scratch_copy(where)
    (where / "pyproject.toml").write_text(mutmut_config(modules, tests))
    started = time.monotonic()
    patterns = []
    for module in modules:
        dotted = module.removesuffix(".py").replace("/", ".")
        patterns += [f"{dotted}.{f}" for f in functions or ["*"]]
    with open(where / "mutmut.log", "w") as log:
        done = subprocess.run(
            ["nice", "-n", "19", str(VENV_BIN / "mutmut"), "run", "--max-children", str(children), *patterns],
            cwd=where,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=os.environ | {"PYTHONDONTWRITEBYTECODE": "1"},
        )
    if done.returncode:
        print(f"{name}: mutmut ended with {done.returncode}: see {where / 'mutmut.log'}")
    seconds = time.monotonic() - started
    statuses = {m: s for m, s in results(where).items() if any(_matches(m, p) for p in patterns)}
    equivalent = equivalents()
    killed = sum(s in ("killed", "timeout", "segfault", "caught by type check") for s in statuses.values())
    judged_equivalent = [m for m, s in statuses.items() if s == "survived" and m in equivalent]
    left = {m: s for m, s in statuses.items() if s not in ("killed", "timeout", "segfault") and m not in equivalent}
    counted = len(statuses) - len(judged_equivalent)
    score = killed / counted if counted else None
    return {
        "group": name,
        "mutants": len(statuses),
        "killed": killed,
        "equivalent": len(judged_equivalent),
        "score": score,
        "seconds": round(seconds),
        "not killed": left,
    }


def _matches(mutant: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatch(mutant, pattern)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("groups", nargs="*", help=f"groups to run, of {', '.join(GROUPS)} (default: all but engine)")
    parser.add_argument("--named", action="store_true", help="only the issue's named mutants")
    parser.add_argument("--max-children", type=int, default=1)
    args = parser.parse_args()
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; known: {', '.join(GROUPS)}")
    ok = named() if args.named or not args.groups else True
    if args.named:
        return 0 if ok else 1
    for name in args.groups or [g for g in GROUPS if g != "engine"]:
        found = group(name, args.max_children)
        score = "n/a" if found["score"] is None else f"{found['score']:.0%}"
        print(
            f"{name}: {found['killed']} of {found['mutants'] - found['equivalent']} killed ({score}), "
            f"{found['equivalent']} equivalent, {found['seconds']} s"
        )
        for mutant, status in sorted(found["not killed"].items()):
            print(f"    {mutant}: {status}")
        ok &= found["score"] is not None and found["score"] >= 0.9
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
