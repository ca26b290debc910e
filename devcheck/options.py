"""Option values from the command line, parsed once into typed values. A value that cannot be used is
BadInput: one line naming the option, the value and what is allowed (exit 2), before any work starts.
Commands receive only what this module returns."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from devcheck.errors import BadInput

DEVICE = re.compile(r"^(auto|all|cpu|cuda(:\d+)?)$")
DEFAULT_SIZE = 10_000


@dataclass(frozen=True)
class MatmulShape:
    """A (M x K) @ (K x N); `chosen` when the user gave it (a size that cannot fit is then exit 2, not a skip)."""

    m: int
    k: int
    n: int
    chosen: bool = False

    @property
    def mkn(self) -> tuple[int, int, int]:
        return self.m, self.k, self.n


def device(text: str) -> str:
    """Names are exact, as every choice's is (--format, --ops, --optimizer): `CPU` is refused, not guessed."""
    spec = text.strip()
    if not DEVICE.match(spec):
        case = " (names are lower case)" if DEVICE.match(spec.lower()) else ""
        raise BadInput(f"--device {text!r}: expected auto, all, cpu, cuda or cuda:N{case}")
    return spec


def matmul_shape(size: int | None, shape: str | None) -> MatmulShape:
    if size is not None and shape is not None:
        raise BadInput("--size and --shape: give one of them, not both")
    if shape is not None:
        try:
            m, k, n = (int(part) for part in shape.split(","))
        except ValueError:
            raise BadInput(f"--shape {shape!r}: expected three positive integers M,K,N (A is MxK, B is KxN)") from None
        if min(m, k, n) < 1:
            raise BadInput(f"--shape {shape!r}: expected three positive integers M,K,N")
        return MatmulShape(m, k, n, chosen=True)
    if size is not None and size < 10:
        raise BadInput(f"--size {size}: expected an integer >= 10 (A is N x N/10, B is N/10 x N/5)")
    n = DEFAULT_SIZE if size is None else size
    return MatmulShape(n, n // 10, n // 5, chosen=size is not None)


def choices(option: str, text: str | None, allowed: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated choice; an empty one (`--ops ''`, `--ops add,,mul`) is refused, not read as all."""
    if text is None:
        return default
    parts = [part.strip() for part in text.split(",")]
    unknown = [p for p in parts if p not in allowed]
    if unknown:
        why = "an empty entry; " if "" in unknown else f"{', '.join(u for u in unknown if u)} unknown; "
        raise BadInput(f"{option} {text!r}: {why}choose from {', '.join(allowed)}")
    return tuple(dict.fromkeys(parts))


def positive_int(option: str, value: int) -> int:
    if value < 1:
        raise BadInput(f"--{option} {value}: expected a positive integer")
    return value


def at_least(option: str, value: int, low: int) -> int:
    if value < low:
        raise BadInput(f"--{option} {value}: expected an integer >= {low}")
    return value


def positive_number(option: str, value: float, unit: str = "number") -> float:
    if not (math.isfinite(value) and value > 0):
        raise BadInput(f"--{option} {value}: expected a positive {unit}")
    return value


def percentage(option: str, value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise BadInput(f"--{option} {value}: expected a percentage >= 0")
    return value


DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|m|min|h)?$")
UNIT_SECONDS = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def duration(option: str, text: str, low: float = 1.0) -> float:
    """`90`, `90s`, `1.5m`, `2h`: seconds, at least `low` (a budget too small to run anything is a typo)."""
    found = DURATION.match(text.strip().lower())
    seconds = float(found[1]) * UNIT_SECONDS[found[2]] if found else math.nan
    if not (math.isfinite(seconds) and seconds >= low):
        raise BadInput(f"{option} {text!r}: expected a duration of at least {low:g} s, such as 10s, 90s, 5m or 1h")
    return seconds


def one_of(option: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise BadInput(f"{option} {value!r}: expected {' or '.join(allowed)}")
    return value


def fraction(option: str, value: float) -> float:
    if not 0 <= value <= 1:
        raise BadInput(f"--{option} {value}: expected a number between 0 and 1")
    return value


def input_file(option: str, path: Path | None) -> Path | None:
    if path is not None and not path.is_file():
        raise BadInput(f"{option} {path}: " + ("is a folder; give a file" if path.is_dir() else "no such file"))
    return path


def environment() -> None:
    """devcheck's own environment variables, checked before any work as its options are."""
    from devcheck.machine.replay import seam

    seam.probe_timeout()


def bench_baseline(path: Path | None) -> list[dict] | None:
    """The records of an earlier `devcheck bench --json`."""
    return report_records("--baseline", path, ("bench",))


def baseline_records(option: str, path: Path, doc: dict) -> list[dict]:
    """A report's records, refused when a newer devcheck wrote them (its fields may mean other things) or
    when a record lacks what a comparison reads."""
    from devcheck.report import SCHEMA_VERSION

    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BadInput(f"{option} {path}: no schema_version number; not the JSON of a devcheck report")
    if version > SCHEMA_VERSION:
        raise BadInput(
            f"{option} {path}: schema_version {version} is newer than this devcheck reads ({SCHEMA_VERSION}): "
            "upgrade devcheck or make the baseline with this one"
        )
    records = doc["data"]["records"]
    need = {"case": str, "device": str, "dtype": str, "shape": list, "unit": str}
    for i, r in enumerate(records if isinstance(records, list) else [None]):
        bad = not isinstance(r, dict) or any(not isinstance(r.get(k), t) for k, t in need.items())
        bad = bad or not all(isinstance(n, int) for n in r["shape"])
        rate = r.get("rate") if isinstance(r, dict) else None
        if bad or not (rate is None or isinstance(rate, int | float) and math.isfinite(rate) and rate >= 0):
            raise BadInput(
                f"{option} {path}: record {i} is not a measured case (needs case, device, dtype, shape, unit "
                "and a rate >= 0)"
            )
    return records


def report_records(option: str, path: Path | None, commands: tuple[str, ...]) -> list[dict] | None:
    """The measured records of an earlier devcheck report (`bench --json`, `check --json`): one loader,
    so every command refuses a malformed file with the same clear line."""
    if path is None:
        return None
    input_file(option, path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BadInput(f"{option} {path}: not a JSON file ({e})") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict) or doc.get("command") not in commands or "records" not in data:
        raise BadInput(f"{option} {path}: not the JSON of `devcheck {' or '.join(commands)} --json`")
    return baseline_records(option, path, doc)


def fail_on(text: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """`--fail-on outlier,drift`: a comma list of what fails the run, or `none`."""
    if text.strip() == "none":
        return ()
    return choices("--fail-on", text, allowed, ())


def report_inputs(inputs: list[str] | None) -> tuple[str, ...]:
    """compare's REPORT arguments: at least one (a file, folder, glob, or `-` for stdin), `-` at most once."""
    if not inputs:
        raise BadInput("compare: no reports given: name report files, folders or globs, or - to read stdin")
    if inputs.count("-") > 1:
        raise BadInput("compare: - (stdin) given more than once")
    return tuple(inputs)
