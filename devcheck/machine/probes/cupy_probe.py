"""CuPy, step by step, each step its own check, so the first broken one is the one reported:
installed packages (read without importing) -> import -> is_available -> runtime vs driver ->
a kernel compiled by NVRTC -> a cuBLAS matmul, on every visible GPU.

CuPy comes from the hardware seam (`devcheck.machine.replay.seam`), so a recording can answer instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from devcheck import numerics
from devcheck.machine.probes.nvml import Driver, cuda_version_text, normalize_bus_id
from devcheck.machine.probes.packages import cupy_dists
from devcheck.machine.replay import seam
from devcheck.report import Check, Field, Findings, Section, Status, na

# An elementwise kernel is compiled by NVRTC at its first call, like any custom CuPy kernel.
KERNEL = ("float32 x", "float32 y", "y = 2 * x + 1", "devcheck_axpb")
CHAIN = ("nvml.driver", "cupy.installed", "cupy.import", "cupy.available", "cupy.runtime", "cupy.kernel", "cupy.matmul")


@dataclass
class CupyState:
    runtime_version: int | None = None
    bus_ids: dict[int, str] | None = None  # CUDA index -> normalized PCI bus id; None: CuPy could not be asked
    ready: list[str] = field(default_factory=list)  # "cuda:0 (NVIDIA H100 80GB HBM3)" for each GPU that computed

    @property
    def runtime_major(self) -> int | None:
        return self.runtime_version // 1000 if self.runtime_version else None


# CUDA 13 compiles for compute capability 7.5 and newer only: its NVRTC refuses -arch=sm_50 to sm_72
# (Maxwell, Pascal, Volta; NVIDIA's "Navigating GPU Architecture Support" blog, CUDA 13.0 release notes).
CUDA_13_FROM = (7, 5)


def install_line(driver_cuda_major: int | None, oldest_cc: tuple[int, int] | None = None) -> str:
    """The CuPy wheel that matches the driver and can compile for every GPU (`oldest_cc`), with NVIDIA's
    CUDA library wheels ([ctk]); a CUDA 12 runtime runs on a driver for CUDA 13."""
    if driver_cuda_major is None:
        return 'pip install "cupy-cuda12x[ctk]"  (or cupy-cuda13x[ctk] with a driver for CUDA 13)'
    if driver_cuda_major < 12:
        return (
            'upgrade the NVIDIA driver to one for CUDA 12 or newer (CuPy 14 needs it), or pip install "cupy-cuda11x<14"'
        )
    if driver_cuda_major >= 13 and oldest_cc is not None and oldest_cc < CUDA_13_FROM:
        cc = f"{oldest_cc[0]}.{oldest_cc[1]}"
        return f'pip install "cupy-cuda12x[ctk]"  (CUDA 13 cannot compile for compute capability {cc})'
    return f'pip install "cupy-cuda{min(driver_cuda_major, 13)}x[ctk]"'


def probe(dists: dict[str, str], driver: Driver) -> tuple[Findings, CupyState]:

    state, checks, fields = CupyState(), [], {}
    out = Findings([Section("cupy", "CuPy", fields)], checks)
    installed = cupy_dists(dists)
    fields["packages"] = Field([f"{n} {v}" for n, v in installed.items()], "*.dist-info on sys.path")
    checks.append(_packages_check(installed, driver))
    if checks[-1].status is Status.FAIL:
        return out, state

    try:  # also with no package metadata: a CuPy that imports, or fails to, is there all the same
        cupy = seam.cupy()
    except Exception as e:  # ImportError, but a broken install can raise anything at import
        if not installed and isinstance(e, ImportError) and e.name == "cupy":
            return out, state  # no metadata and no module: not installed, as _packages_check said
        if not installed:  # not "not installed": a `cupy` is there, and broken
            checks[-1] = Check(
                "cupy.installed", Status.WARN, "a `cupy` module is on sys.path, with no package metadata"
            )
        checks.append(_import_failed(e, installed, driver))
        return out, state
    if not installed:
        what = "CuPy imports, with no package metadata on sys.path (a source, conda or copied install)"
        checks[-1] = Check("cupy.installed", Status.OK, what)
    fields["version"] = Field(cupy.__version__, "cupy.__version__")
    checks.append(Check("cupy.import", Status.OK, f"CuPy {cupy.__version__} imports"))

    runtime = cupy.cuda.runtime
    driver_api = _versions(runtime, fields, state)
    if not cupy.is_available():
        checks.append(_unavailable_check(runtime, driver))
        state.bus_ids = {} if driver.loaded else None  # CUDA's answer: no device, whatever NVML lists
        return out, state
    state.bus_ids = {}
    checks.append(Check("cupy.available", Status.OK, f"{runtime.getDeviceCount()} CUDA device(s) visible to CuPy"))
    if state.runtime_version and driver_api and state.runtime_major > driver_api // 1000:
        checks.append(
            Check(
                "cupy.runtime",
                Status.FAIL,
                f"CuPy's CUDA runtime {cuda_version_text(state.runtime_version)} is newer than the driver "
                f"supports ({cuda_version_text(driver_api)})",
                fix=install_line(driver_api // 1000, driver.oldest_cc),
            )
        )
        return out, state

    out.add(_compute_on_every_device(cupy, driver, state))
    return out, state


def _versions(runtime: ModuleType, fields: dict[str, Field], state: CupyState) -> int | None:
    """CuPy's CUDA runtime and the driver API it sees; returns the driver API version."""
    state.runtime_version = _quiet(runtime.runtimeGetVersion)
    driver_api = _quiet(runtime.driverGetVersion)
    fields["CUDA runtime"] = Field(cuda_version_text(state.runtime_version), "cupy.cuda.runtime.runtimeGetVersion")
    fields["CUDA driver API"] = (
        Field(cuda_version_text(driver_api), "cupy.cuda.runtime.driverGetVersion")
        if driver_api
        else na("cupy.cuda.runtime.driverGetVersion", "no driver")
    )
    tf32 = numerics.tf32()
    fields["TF32 for float32 matmul"] = (
        Field(None, "CUPY_TF32", Status.ERROR, f"CuPy raises {tf32.error} at every float32 matmul")
        if tf32.error
        else Field(tf32.on, "CUPY_TF32")
    )
    return driver_api


def _compute_on_every_device(cupy: ModuleType, driver: Driver, state: CupyState) -> Findings:
    """An NVRTC kernel and a cuBLAS matmul on each visible GPU; the ones where both work are ready."""
    rows, kernel_errors, matmul_errors = [], [], []
    for index in range(cupy.cuda.runtime.getDeviceCount()):
        try:
            row, kernel_error, matmul_error = seam.within(f"CuPy on cuda:{index}", _device_row, cupy, index)
        except seam.Hung as e:
            row, kernel_error, matmul_error = {"cuda index": index, "name": None, "PCI bus id": None}, str(e), str(e)
        rows.append(row)
        state.bus_ids[index] = normalize_bus_id(row["PCI bus id"]) if row["PCI bus id"] else f"cuda:{index}"
        kernel_errors += [f"cuda:{index}: {kernel_error}"] if kernel_error else []
        matmul_errors += [f"cuda:{index}: {matmul_error}"] if matmul_error else []
        if not kernel_error and not matmul_error:
            state.ready.append(f"cuda:{index} ({row['name']})")
    checks = []
    checks.append(
        _compute_check(
            "cupy.kernel",
            "an NVRTC-compiled kernel",
            kernel_errors,
            len(rows),
            "NVRTC could not compile or run a kernel",
            f"{install_line(_nvrtc_major(kernel_errors) or driver.cuda_major, driver.oldest_cc)}  (brings NVRTC), "
            "or install the CUDA toolkit",
        )
    )
    checks.append(
        _compute_check(
            "cupy.matmul",
            "a cuBLAS matmul",
            matmul_errors,
            len(rows),
            "cuBLAS matmul failed or was wrong",
            f"{install_line(driver.cuda_major, driver.oldest_cc)}  (brings cuBLAS), or install the CUDA toolkit",
        )
    )
    return Findings([Section("cuda_devices", "CUDA devices (as CuPy sees them)", rows=rows)], checks)


def _import_failed(error: Exception, installed: dict[str, str], driver: Driver) -> Check:
    fix = (
        f"pip install --force-reinstall --no-cache-dir {next(iter(installed))}"
        if installed
        else (
            "remove the `cupy` that fails to import (no pip package owns it: "
            f"`python -c 'import cupy'` names its folder), then {install_line(driver.cuda_major, driver.oldest_cc)}"
        )
    )
    return Check("cupy.import", Status.FAIL, "import cupy failed", detail=_first_lines(error), fix=fix)


def _nvrtc_major(errors: list[str]) -> int | None:
    """The CUDA major of the NVRTC library CuPy failed to load: libnvrtc.so.12, nvrtc64_120_0.dll -> 12."""
    found = re.search(r"nvrtc(?:\.so\.|64_)(\d\d)", " ".join(errors))
    return int(found.group(1)) if found else None


def _packages_check(installed: dict[str, str], driver: Driver) -> Check:
    names, line = list(installed), install_line(driver.cuda_major, driver.oldest_cc)
    if not names:
        if not driver.loaded:
            return Check("cupy.installed", Status.SKIP, "CuPy is not installed (and there is no working NVIDIA driver)")
        return Check(
            "cupy.installed",
            Status.WARN,
            "CuPy is not installed: the GPU cannot be used from devcheck",
            fix=line,
        )
    if len(names) > 1:
        return Check(
            "cupy.installed",
            Status.FAIL,
            f"{len(names)} CuPy packages are installed: {', '.join(names)}",
            detail="they overwrite one another's files; exactly one must be installed",
            fix=f"pip uninstall -y {' '.join(names)} && {line}",
        )
    name = names[0]
    wheel_major = wheel_cuda_major(name)
    if wheel_major and driver.cuda_major and wheel_major > driver.cuda_major:
        return Check(
            "cupy.installed",
            Status.FAIL,
            f"{name} needs a driver for CUDA {wheel_major}, this driver supports CUDA "
            f"{cuda_version_text(driver.cuda_version)}",
            fix=f"pip uninstall -y {name} && {line}  (or upgrade the driver)",
        )
    oldest = driver.oldest_cc
    if wheel_major and wheel_major >= 13 and oldest is not None and oldest < CUDA_13_FROM:
        return Check(
            "cupy.installed",
            Status.FAIL,
            f"{name} cannot compile a kernel for compute capability {oldest[0]}.{oldest[1]} "
            f"(CUDA 13 starts at {CUDA_13_FROM[0]}.{CUDA_13_FROM[1]})",
            fix=f"pip uninstall -y {name} && {line}",
        )
    return Check("cupy.installed", Status.OK, f"{name} {installed[name]}")


def wheel_cuda_major(dist: str) -> int | None:
    """cupy-cuda12x -> 12; the old per-minor wheels: cupy-cuda117 -> 11."""
    if not dist.startswith("cupy-cuda"):
        return None
    digits = dist.removeprefix("cupy-cuda")
    return int(digits[:-1]) if digits.endswith("x") else int(digits[:-1] or 0) or None


def _unavailable_check(runtime: ModuleType, driver: Driver) -> Check:
    try:
        runtime.getDeviceCount()
        reason = "no CUDA device"
    except Exception as e:
        reason = _first_lines(e)
    if not driver.loaded:
        return Check("cupy.available", Status.SKIP, "CuPy has no GPU to use", detail=reason, fix=driver.check.fix)
    fix = "check CUDA_VISIBLE_DEVICES and the container's GPU access (`--gpus all`)"
    if "InsufficientDriver" in reason:
        fix = install_line(driver.cuda_major, driver.oldest_cc) + "  (or upgrade the NVIDIA driver)"
    return Check("cupy.available", Status.FAIL, "CuPy cannot use any GPU", detail=reason, fix=fix)


def _device_row(cupy: ModuleType, index: int) -> tuple[dict, str, str]:
    import numpy

    row = {
        "cuda index": index,
        "name": None,
        "compute capability": None,
        "SMs": None,
        "PCI bus id": None,
        "memory free GiB": None,
        "memory total GiB": None,
        "kernel": "not run",
        "matmul rel err": None,
    }
    try:
        with cupy.cuda.Device(index) as device:
            props = cupy.cuda.runtime.getDeviceProperties(index)
            name = props["name"]
            row["name"] = name.decode() if isinstance(name, bytes) else str(name)
            row["SMs"] = props.get("multiProcessorCount")
            cc = device.compute_capability
            row["compute capability"] = f"{cc[:-1]}.{cc[-1]}"
            row["PCI bus id"] = device.pci_bus_id
            free, total = device.mem_info
            row["memory free GiB"], row["memory total GiB"] = free / 2**30, total / 2**30
    except Exception as e:
        return row, _first_lines(e), "not run"
    kernel_error = matmul_error = ""
    try:
        with cupy.cuda.Device(index):
            n = 1000
            x = cupy.arange(n, dtype=cupy.float32)
            y = cupy.empty_like(x)
            cupy.ElementwiseKernel(*KERNEL)(x, y)
            expected = 2 * numpy.arange(n, dtype=numpy.float32) + 1
            row["kernel"] = "ok" if numpy.array_equal(cupy.asnumpy(y), expected) else "wrong result"
            kernel_error = "" if row["kernel"] == "ok" else "the kernel ran but returned wrong values"
    except Exception as e:
        row["kernel"], kernel_error = "failed", _first_lines(e)
    try:
        rng = numpy.random.default_rng(0)
        a, b = (rng.standard_normal((64, 64)).astype(numpy.float32) for _ in range(2))
        with cupy.cuda.Device(index):
            got = cupy.asnumpy(cupy.asarray(a) @ cupy.asarray(b))
        ref = a.astype(numpy.float64) @ b.astype(numpy.float64)
        rel = float(numpy.abs(got - ref).max() / numpy.abs(ref).max())
        row["matmul rel err"] = rel
        tolerance = 5e-3 if numerics.tf32().on else 1e-5
        matmul_error = "" if rel <= tolerance else f"relative error {rel:.2e} > {tolerance:.0e}"
    except Exception as e:
        matmul_error = _first_lines(e)
    return row, kernel_error, matmul_error


def _compute_check(check_id: str, what: str, errors: list[str], devices: int, failed: str, fix: str) -> Check:
    if errors:
        return Check(check_id, Status.FAIL, failed, detail="; ".join(errors), fix=fix)
    return Check(check_id, Status.OK, f"{what} ran correctly on {devices} GPU(s)")


def _quiet(fn: Callable[[], int]) -> int | None:
    try:
        return fn()
    except Exception:
        return None


def _first_lines(error: BaseException, lines: int = 2) -> str:
    text = f"{type(error).__name__}: {error}".strip()
    return " ".join(text.splitlines()[:lines])
