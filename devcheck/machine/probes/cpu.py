"""The CPU and memory this process can really use: containers and batch schedulers often give a
process fewer CPUs than the machine has, and BLAS sizes its thread pool from the wrong one."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from devcheck.report import Field, Findings, Section, na

# ISA features that decide which BLAS kernels run, best first.
_X86_ISA = ("avx512f", "avx2", "fma", "avx", "sse4_2")
_ARM_ISA = ("sve2", "sve", "asimd")


@dataclass(frozen=True)
class CpuInfo:
    vendor: str
    family: int | None
    model: str | None
    physical_cores: int | None
    logical_cpus: int | None
    usable_cpus: int
    quota_cpus: float | None
    isa: list[str]
    max_mhz: float | None
    mhz_source: str


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def parse_cpuinfo(text: str) -> tuple[str | None, int | None, set[str]]:
    """Model name, physical core count and feature flags from /proc/cpuinfo."""
    model, cores, flags = None, set(), set()
    physical = core = None
    for line in text.splitlines() + [""]:
        key, _, value = (part.strip() for part in line.partition(":"))
        if key in ("model name", "Model", "cpu model") and not model:
            model = value
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
        elif key in ("flags", "Features"):
            flags.update(value.split())
        elif not key:
            if core is not None:
                cores.add((physical, core))
            physical = core = None
    return model, (len(cores) or None), flags


def vendor_family(text: str) -> tuple[str, int | None]:
    """('AuthenticAMD', 25) from /proc/cpuinfo: which microarchitecture the ISA flags belong to."""
    vendor, family = "", None
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "vendor_id" and not vendor:
            vendor = value
        elif key == "cpu family" and family is None and value.isdigit():
            family = int(value)
    return vendor, family


def cgroup_cpu_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs allowed by a cgroup v2 (cpu.max) or v1 (cfs quota) limit; None when unlimited."""
    v2 = _read(f"{root}/cpu.max")
    if v2:
        quota, *period = v2.split()
        return None if quota == "max" else int(quota) / int(period[0] if period else 100000)
    quota, period = _read(f"{root}/cpu/cpu.cfs_quota_us"), _read(f"{root}/cpu/cpu.cfs_period_us")
    if quota and period and int(quota) > 0:
        return int(quota) / int(period)
    return None


def max_clock_mhz() -> tuple[float | None, str]:
    """The CPU's rated clock, and where it came from (many VMs expose only the base clock)."""
    khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if khz and khz.strip().isdigit():
        return int(khz) / 1000, "cpufreq cpuinfo_max_freq"
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]), "/proc/cpuinfo cpu MHz (current clock, may be the base clock)"
    return None, "not exposed"


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def cpu_info() -> CpuInfo:
    text = _read("/proc/cpuinfo") or ""
    model, physical, flags = parse_cpuinfo(text)
    wanted = _ARM_ISA if platform.machine().lower() in ("aarch64", "arm64") else _X86_ISA
    mhz, source = max_clock_mhz()
    vendor, family = vendor_family(text)
    return CpuInfo(
        vendor=vendor,
        family=family,
        model=model or platform.processor() or None,
        physical_cores=physical,
        logical_cpus=os.cpu_count(),
        usable_cpus=usable_cpus(),
        quota_cpus=cgroup_cpu_quota(),
        isa=[f for f in wanted if f in flags],
        max_mhz=mhz,
        mhz_source=source,
    )


def memory_bytes() -> tuple[int | None, int | None]:
    """(total, available) RAM, the cgroup limit taking precedence when it is lower."""
    info = {}
    for line in (_read("/proc/meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            info[key] = int(rest.split()[0]) * 1024
    total, available = info.get("MemTotal"), info.get("MemAvailable")
    limit = (_read("/sys/fs/cgroup/memory.max") or "").strip()
    if limit.isdigit() and total and int(limit) < total:
        used = int((_read("/sys/fs/cgroup/memory.current") or "0").strip() or 0)
        total, available = int(limit), min(available or 0, int(limit) - used)
    return total, available


def probe() -> Findings:
    cpu = cpu_info()
    total, available = memory_bytes()
    gib = 1024**3
    fields = {
        "model": Field(cpu.model, "/proc/cpuinfo"),
        "architecture": Field(platform.machine(), "platform.machine"),
        "physical cores": Field(cpu.physical_cores, "/proc/cpuinfo")
        if cpu.physical_cores
        else na("/proc/cpuinfo", "not exposed"),
        "logical CPUs": Field(cpu.logical_cpus, "os.cpu_count"),
        "usable CPUs": Field(cpu.usable_cpus, "os.sched_getaffinity"),
        "cgroup CPU quota": Field(cpu.quota_cpus, "cgroup cpu.max")
        if cpu.quota_cpus
        else Field("unlimited", "cgroup cpu.max"),
        "vector ISA": Field(cpu.isa, "/proc/cpuinfo flags") if cpu.isa else na("/proc/cpuinfo flags", "none found"),
        "max clock MHz": Field(cpu.max_mhz, cpu.mhz_source) if cpu.max_mhz else na("cpufreq", "not exposed"),
        "RAM total GiB": Field(round(total / gib, 1), "/proc/meminfo, cgroup memory.max")
        if total
        else na("/proc/meminfo", "not readable"),
        "RAM available GiB": Field(round(available / gib, 1), "/proc/meminfo, cgroup memory.max")
        if available
        else na("/proc/meminfo", "not readable"),
    }
    return Findings(sections=[Section("cpu", "CPU and memory", fields)])


def busy_fraction(seconds: float = 0.2) -> float | None:
    """How busy the machine's CPUs are with other work: /proc/stat sampled while this process sleeps,
    so every busy tick in the window is someone else's (None where /proc/stat is not readable)."""
    import time

    def ticks() -> tuple[int, int] | None:
        line = (_read("/proc/stat") or "").partition("\n")[0].split()
        if not line or line[0] != "cpu":
            return None
        values = [int(v) for v in line[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return sum(values), idle

    before = ticks()
    time.sleep(seconds)
    after = ticks()
    if before is None or after is None or after[0] == before[0]:
        return None
    return 1 - (after[1] - before[1]) / (after[0] - before[0])
