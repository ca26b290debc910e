"""The CUDA toolkit on PATH (nvcc): informational, since CuPy wheels bring their own runtime, but
a toolkit of another CUDA major breaks extension builds and `-local` CuPy installs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping

from devcheck.report import Check, Field, Findings, Section, Status, na


def find_nvcc(environ: Mapping[str, str]) -> str | None:
    home = environ.get("CUDA_HOME") or environ.get("CUDA_PATH")
    candidate = os.path.join(home, "bin", "nvcc") if home else None
    if candidate and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which("nvcc", path=environ.get("PATH"))


def nvcc_version(nvcc: str) -> str | None:
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, errors="replace", timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"release (\d+\.\d+)", out)
    return match.group(1) if match else None


def start(environ: Mapping[str, str]) -> Callable[[int | None], Findings]:
    """Find nvcc and run `nvcc --version` in a thread from now on, so its milliseconds pass beside
    the other probes; the returned function finishes the probe once CuPy's CUDA major is known."""
    nvcc = find_nvcc(environ)
    answer: list = []

    def run() -> None:
        try:
            answer.append(nvcc_version(nvcc))
        except Exception as e:  # raised again in finish(), where env's guard turns it into a check
            answer.append(e)

    thread = threading.Thread(target=run, daemon=True) if nvcc else None
    if thread:
        thread.start()

    def finish(runtime_major: int | None) -> Findings:
        if thread:
            thread.join()
        if answer and isinstance(answer[0], Exception):
            raise answer[0]
        return probe(environ, nvcc, answer[0] if answer else None, runtime_major)

    return finish


def home_field(environ: Mapping[str, str]) -> Field:
    """CUDA_HOME as set (even to ""), else CUDA_PATH: "unset" only when neither is set."""
    for name in ("CUDA_HOME", "CUDA_PATH"):
        if name in environ:
            notes = ["set, to the empty string"] if not environ[name] else []
            notes += ["CUDA_HOME is unset"] if name == "CUDA_PATH" else []
            return Field(environ[name], f"os.environ[{name!r}]", note="; ".join(notes))
    return na("os.environ", "unset, and so is CUDA_PATH")


def probe(environ: Mapping[str, str], nvcc: str | None, version: str | None, runtime_major: int | None) -> Findings:
    fields = {"CUDA_HOME": home_field(environ)}
    if not nvcc:
        fields["nvcc"] = na("PATH", "no CUDA toolkit on PATH (not needed to run CuPy wheels)")
        return Findings([Section("toolkit", "CUDA toolkit (for building, not for running)", fields)])
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
