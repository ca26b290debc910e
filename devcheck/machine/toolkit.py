"""The CUDA toolkit on PATH (nvcc): informational, since CuPy wheels bring their own runtime, but
a toolkit of another CUDA major breaks extension builds and `-local` CuPy installs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping

from devcheck.report import Check, Field, Findings, Section, Status, na


def find_nvcc(environ: Mapping[str, str]) -> str | None:
    home = environ.get("CUDA_HOME") or environ.get("CUDA_PATH")
    candidate = os.path.join(home, "bin", "nvcc") if home else None
    if candidate and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which("nvcc", path=environ.get("PATH"))


def nvcc_version(nvcc: str) -> str | None:
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"release (\d+\.\d+)", out)
    return match.group(1) if match else None


def probe(environ: Mapping[str, str], runtime_major: int | None) -> Findings:
    nvcc = find_nvcc(environ)
    home = environ.get("CUDA_HOME") or environ.get("CUDA_PATH")
    fields = {"CUDA_HOME": Field(home, "os.environ") if home else na("os.environ", "unset")}
    if not nvcc:
        fields["nvcc"] = na("PATH", "no CUDA toolkit on PATH (not needed to run CuPy wheels)")
        return Findings([Section("toolkit", "CUDA toolkit (for building, not for running)", fields)])
    version = nvcc_version(nvcc)
    fields["nvcc"] = Field(nvcc, "CUDA_HOME / PATH")
    fields["nvcc version"] = (
        Field(version, "nvcc --version") if version else Field(None, "nvcc --version", Status.ERROR, "could not run it")
    )
    checks = []
    if version and runtime_major and int(version.split(".")[0]) != runtime_major:
        checks.append(
            Check(
                "toolkit.major",
                Status.WARN,
                f"the CUDA toolkit on PATH is {version}, CuPy's runtime is CUDA {runtime_major}",
                detail="this matters only when building CUDA extensions or using a `-local` CuPy install",
                fix=f"point CUDA_HOME and PATH at a CUDA {runtime_major}.x toolkit",
            )
        )
    return Findings([Section("toolkit", "CUDA toolkit (for building, not for running)", fields)], checks)
