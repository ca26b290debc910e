"""Installed distributions found from their `*.dist-info` folder names, without importing them
(a broken CuPy install must be diagnosable without `import cupy`) and without parsing every
METADATA file (which costs tens of milliseconds)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable

from devcheck.machine.replay.recording import cupy_dists
from devcheck.report import Check, Findings, Status

__all__ = ["cupy_dists", "installed", "normalize", "probe"]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(paths: Iterable[str] | None = None) -> dict[str, str]:
    """Normalized distribution name -> version, first one on sys.path winning (as import does)."""
    found: dict[str, str] = {}
    for entry in paths if paths is not None else sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            stem, dot, kind = folder.rpartition(".")
            if dot and kind in ("dist-info", "egg-info"):
                name, _, version = stem.partition("-")
                found.setdefault(normalize(name), version.partition("-")[0] or "?")
    return found


def nvml_bindings_check(dists: dict[str, str]) -> Check:
    """`pynvml` (deprecated, warns at import) and `nvidia-ml-py3` both overwrite nvidia-ml-py's module."""
    rivals = [name for name in ("pynvml", "nvidia-ml-py3") if name in dists]
    if rivals:
        return Check(
            "nvml.bindings",
            Status.WARN,
            f"{' and '.join(rivals)} installed beside nvidia-ml-py: they replace or wrap its `pynvml` module",
            detail="the `pynvml` package is deprecated and warns on every import; nvidia-ml-py3 is unmaintained",
            fix=f"pip uninstall -y {' '.join(rivals)} && pip install --force-reinstall nvidia-ml-py",
        )
    if "nvidia-ml-py" not in dists:
        return Check(
            "nvml.bindings",
            Status.FAIL,
            "nvidia-ml-py (NVML's Python bindings) is not installed",
            fix="pip install nvidia-ml-py",
        )
    return Check("nvml.bindings", Status.OK, f"nvidia-ml-py {dists['nvidia-ml-py']}")


def probe(dists: dict[str, str]) -> Findings:
    return Findings(checks=[nvml_bindings_check(dists)])
