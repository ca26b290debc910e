"""`--device` for the commands that compute: the engine devices a run uses, resolved once.

cpu, cuda, cuda:N   exactly that device (an unknown one is bad input)
auto                the CPU and every GPU that can compute; a GPU that cannot is skipped, with why
all                 the same, but a GPU that cannot compute is a failure
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devcheck.errors import BadInput
from devcheck.report import Check, Status


@dataclass
class Selection:
    devices: list[Any]  # engine Devices, the CPU first when it is chosen
    unusable: list[str] = field(default_factory=list)  # "cuda: <reason>" for GPUs that cannot compute
    strict: bool = False  # `all`: an unusable GPU is a failure

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.devices]

    @property
    def gpus(self) -> list[Any]:
        return [d for d in self.devices if d.name != "cpu"]

    def to_run(self, require_gpu: bool) -> Selection:
        """The devices to work on: none with --require-gpu and no GPU, as the run has failed already
        (`selection_checks` says why) and should say so at once, not after the CPU's work."""
        return Selection([], self.unusable, self.strict) if require_gpu and not self.gpus else self


def gpu_names() -> tuple[list[str], list[str]]:
    """Every CUDA device CuPy can use, and why none can when none can."""
    from devcheck.machine.replay import seam

    try:
        cupy = seam.cupy()
    except ImportError as e:
        if "No module named 'cupy'" in str(e):
            return [], ["cuda: CuPy is not installed (see `devcheck env`)"]
        return [], [f"cuda: import cupy failed: {e}"]
    except Exception as e:  # a broken install can fail in other ways at import
        return [], [f"cuda: import cupy failed: {type(e).__name__}: {e}"]
    from devcheck.engine.backend import cuda_device_count

    count, reason = cuda_device_count(cupy)
    return [f"cuda:{i}" for i in range(count)], [f"cuda: {reason}"] if reason else []


def select(spec: str) -> Selection:
    """`spec` is already checked by devcheck.options.device; a GPU it names may still not exist."""
    from devcheck.engine import get_device
    from devcheck.machine.replay import seam

    seam.configure()
    broken = _float32_matmuls_raise()
    if broken and spec.startswith("cuda"):
        raise BadInput(f"--device {spec!r}: {broken}")
    try:
        if spec in ("auto", "all"):
            gpus, unusable = gpu_names()
            if gpus and broken:  # every GPU would fail its first float32 matmul
                gpus, unusable = [], [f"cuda: {broken}"]
            return Selection([get_device(n) for n in ("cpu", *gpus)], unusable, strict=spec == "all")
        return Selection([get_device(spec)])
    except ValueError as e:
        raise BadInput(f"--device {spec!r}: {e}") from None


def _float32_matmuls_raise() -> str:
    """Why CuPy raises at every float32 matmul (a CUPY_TF32 it cannot read as an integer), or ""."""
    from devcheck import numerics

    tf32 = numerics.tf32()
    if not tf32.error:
        return ""
    return f"CUPY_TF32={tf32.raw!r}: CuPy raises {tf32.error} at every float32 matmul (set it to 0 or 1)"


def gpu_required_check(detail: str) -> Check:
    """`--require-gpu` with no GPU that can compute: the same words from every command."""
    return Check(
        "gpu.required",
        Status.FAIL,
        "--require-gpu: no GPU can compute here",
        detail=detail,
        fix="run `devcheck env` to see why",
    )


def selection_checks(sel: Selection, require_gpu: bool) -> list[Check]:
    """What the device selection itself says: GPUs skipped (or failed, with `all`), --require-gpu."""
    from devcheck.machine.replay import seam

    checks = seam.replay_checks()
    if sel.unusable:
        checks.append(
            Check(
                "devices.gpu",
                Status.FAIL if sel.strict else Status.SKIP,
                "no GPU can compute here: " + "; ".join(sel.unusable),
                fix="run `devcheck env` to see why",
            )
        )
    if require_gpu and not sel.gpus:
        checks.append(gpu_required_check("; ".join(sel.unusable) or "no GPU was chosen with --device"))
    return checks
