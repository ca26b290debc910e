"""Which Python is running, and from which environment: the first thing a bug report needs."""

from __future__ import annotations

import os
import platform
import sys

from devcheck.report import Field, Findings, Section, na


def probe() -> Findings:
    src = "sys / platform"
    fields = {
        "version": Field(platform.python_version(), src),
        "implementation": Field(platform.python_implementation(), src),
        "executable": Field(sys.executable, src),
        "environment": Field(_environment(), "sys.prefix / CONDA_PREFIX"),
        "platform": Field(_platform(), src),
        "machine": Field(platform.machine(), src),
    }
    libc, version = platform.libc_ver()
    fields["libc"] = Field(f"{libc} {version}", "platform.libc_ver") if libc else na("platform.libc_ver", "not glibc")
    return Findings(sections=[Section("python", "Python", fields)])


def _platform() -> str:
    """platform.platform()'s text, without the `uname -p` subprocess it starts on Linux (8 ms of `env`)."""
    if sys.platform != "linux":
        return platform.platform()
    u, (libc, version) = os.uname(), platform.libc_ver()
    return f"{u.sysname}-{u.release}-{u.machine}" + (f"-with-{libc}{version}" if libc else "")


def _environment() -> str:
    conda = os.environ.get("CONDA_PREFIX")
    if conda and os.path.isdir(os.path.join(sys.prefix, "conda-meta")):
        return f"conda ({os.environ.get('CONDA_DEFAULT_ENV') or conda})"
    if sys.prefix != sys.base_prefix:
        return f"virtualenv ({sys.prefix})"
    return f"system ({sys.prefix})"
