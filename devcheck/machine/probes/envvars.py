"""The environment variables that change how numeric code runs, and nothing else, so a pasted
report never leaks a token or a password."""

from __future__ import annotations

from collections.abc import Mapping

from devcheck import numerics
from devcheck.report import Check, Field, Findings, Section, Status

EMPTY = "set, to the empty string"  # set all the same: CUDA_VISIBLE_DEVICES="" hides every GPU
RELEVANT = (
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "CUDA_HOME",
    "CUDA_PATH",
    "CUDA_MODULE_LOADING",
    "CUDA_CACHE_PATH",
    "CUDA_CACHE_DISABLE",
    "CUDA_CACHE_MAXSIZE",
    "CUDA_LAUNCH_BLOCKING",
    "CUDA_INJECTION32_PATH",
    "CUDA_INJECTION64_PATH",
    "CUDA_AUTO_BOOST",
    "CUDA_PROFILE",
    "CUDA_ENABLE_COREDUMP_ON_EXCEPTION",
    "CUDA_COREDUMP_FILE",
    "CUDA_DEVICE_WAITS_ON_EXCEPTION",
    "COMPUTE_PROFILE",
    "OPENCL_PROFILE",
    "NSIGHT_CUDA_DEBUGGER",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "NVIDIA_REQUIRE_CUDA",
    "CUPY_TF32",
    "CUPY_ACCELERATORS",
    "CUPY_CACHE_DIR",
    "CUPY_GPU_MEMORY_LIMIT",
    "CUPY_CUDA_PATH",
    "OMP_NUM_THREADS",
    "OMP_PROC_BIND",
    "OMP_PLACES",
    "MKL_NUM_THREADS",
    "MKL_THREADING_LAYER",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
)

# Set to anything but "0"/"": these slow GPU work down or change what it does (DCGM's level-1 list,
# plus CUDA_LAUNCH_BLOCKING and CUPY_TF32).
_HARMFUL = {
    "CUDA_LAUNCH_BLOCKING": "every kernel launch waits for the GPU: asynchronous overlap is gone",
    "CUDA_INJECTION32_PATH": "a profiler/tracer library is injected into every CUDA process",
    "CUDA_INJECTION64_PATH": "a profiler/tracer library is injected into every CUDA process",
    "CUDA_PROFILE": "the legacy CUDA profiler is on",
    "COMPUTE_PROFILE": "the legacy CUDA profiler is on",
    "OPENCL_PROFILE": "the legacy OpenCL profiler is on",
    "NSIGHT_CUDA_DEBUGGER": "the Nsight debugger hooks are on",
    "CUDA_ENABLE_COREDUMP_ON_EXCEPTION": "GPU exceptions write core dumps",
    "CUDA_DEVICE_WAITS_ON_EXCEPTION": "a GPU exception hangs the process for a debugger",
    "CUDA_AUTO_BOOST": "GPU boost clocks are forced on or off",
    "CUDA_CACHE_DISABLE": "the JIT cache is off: every kernel recompiles at every start",
}


def probe(environ: Mapping[str, str], gpus_known: bool = False) -> Findings:
    """`gpus_known`: NVML resolved CUDA_VISIBLE_DEVICES against the real GPUs (devcheck.machine.probes.visible),
    whose checks then judge it; read as text alone, a UUID that matches no GPU would look fine."""
    present = {name: environ[name] for name in RELEVANT if name in environ}
    fields = {name: Field(value, "os.environ", note="" if value else EMPTY) for name, value in present.items()}
    checks = [
        Check(f"envvar.{name}", Status.WARN, f"{name}={present[name]}: {why}", fix=f"unset {name}")
        for name, why in _HARMFUL.items()
        if present.get(name, "0").strip() not in ("", "0")
    ]
    checks += tf32_check(environ)
    if "CUDA_VISIBLE_DEVICES" in present and not gpus_known:
        checks.append(visible_devices(present["CUDA_VISIBLE_DEVICES"]))
    if not any(c.status in (Status.WARN, Status.FAIL) for c in checks):
        others = (
            ""
            if "CUDA_VISIBLE_DEVICES" not in present
            else "; CUDA_VISIBLE_DEVICES: " + ("see the CUDA device selection" if gpus_known else "above")
        )
        checks.append(
            Check(
                "envvars",
                Status.OK,
                f"no variable that slows GPU work or changes its results is set ({len(present)} relevant set{others})",
            )
        )
    return Findings(
        [Section("envvars", "Environment variables (relevant ones only)", fields, names_are_identifiers=True)], checks
    )


def tf32_check(environ: Mapping[str, str]) -> list[Check]:
    """CUPY_TF32 as CuPy reads it (devcheck.numerics): "00" is off, "true" breaks every matmul."""
    state = numerics.tf32(environ)
    fix = "set CUPY_TF32=0 (float32) or CUPY_TF32=1 (TF32): CuPy reads it as an integer"
    if state.error:
        what = f"CUPY_TF32={state.raw!r}: CuPy raises {state.error} at every float32 matmul"
        return [Check("envvar.CUPY_TF32", Status.FAIL, what, fix=fix)]
    if state.on:
        what = f"CUPY_TF32={state.raw!r}: float32 matmuls run as TF32 from compute capability 8.0 (1000x the rounding)"
        return [Check("envvar.CUPY_TF32", Status.WARN, what, fix="unset CUPY_TF32")]
    return []


def visible_devices(raw: str) -> Check:
    """What CUDA_VISIBLE_DEVICES does, read as CUDA reads it and without NVML (so also with no driver):
    entries are GPU indices or UUIDs (GPU-..., MIG-...), and CUDA stops at the first entry it cannot use."""
    tokens = [t.strip() for t in raw.split(",")]
    usable = []
    for token in tokens:
        if not (token.isdigit() or token.startswith(("GPU-", "MIG-"))):
            break
        usable.append(token)
    name = "envvar.CUDA_VISIBLE_DEVICES"
    fix = "unset CUDA_VISIBLE_DEVICES, or list the GPUs to use: indices (0,1) or UUIDs (`nvidia-smi -L`)"
    if not usable:
        what = "hides every GPU" if raw.strip() in ("", "-1") else f"matches no GPU ({tokens[0]!r} is no index or UUID)"
        return Check(name, Status.WARN, f"CUDA_VISIBLE_DEVICES={raw!r} {what}: CUDA sees no GPU", fix=fix)
    shown = ", ".join(f"{t} (as cuda:{i})" for i, t in enumerate(usable))
    summary = (
        f"CUDA_VISIBLE_DEVICES={raw!r} limits CUDA to GPU {shown}; "
        "a GPU this machine lacks is hidden, and so is every entry after it"
    )
    if any(t.startswith("MIG-") for t in usable):
        summary += "; of MIG devices CUDA computes on one only, the first it can use"
    if len(usable) < len(tokens):
        bad = tokens[len(usable)]
        summary += f"; CUDA stops reading at {bad!r}, which is no index or UUID"
        return Check(name, Status.WARN, summary, fix=fix)
    return Check(name, Status.OK, summary)
