"""`--device` for the commands that compute: which engine devices a run uses.

cpu, cuda, cuda:N   exactly that device (an unknown one is bad input)
auto                the CPU and every GPU that can compute; a GPU that cannot is skipped, with why
all                 the same, but a GPU that cannot compute is a failure
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devcheck.errors import BadInput


@dataclass
class Selection:
    names: list[str]
    unusable: list[str] = field(default_factory=list)  # "cuda: <reason>" for GPUs that cannot compute
    strict: bool = False  # `all`: an unusable GPU is a failure

    @property
    def gpus(self) -> list[str]:
        return [n for n in self.names if n != "cpu"]


def gpu_names() -> tuple[list[str], list[str]]:
    """Every CUDA device CuPy can use, and why none can when none can."""
    from devcheck.machine import seam

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
    from devcheck.engine import get_device
    from devcheck.machine import seam

    seam.configure()

    spec = spec.strip().lower()
    if spec in ("auto", "all"):
        gpus, unusable = gpu_names()
        return Selection(["cpu", *gpus], unusable, strict=spec == "all")
    try:
        return Selection([get_device(spec).name])
    except ValueError as e:
        raise BadInput(f"--device {spec!r}: {e}") from None


def selection_checks(sel: Selection, require_gpu: bool) -> list:
    """What the device selection itself says: GPUs skipped (or failed, with `all`), --require-gpu."""
    from devcheck.machine import seam
    from devcheck.report import Check, Status

    checks = seam.replay_checks()
    if sel.unusable:
        status = Status.FAIL if sel.strict else Status.SKIP
        checks.append(
            Check(
                "devices.gpu",
                status,
                "no GPU can compute here: " + "; ".join(sel.unusable),
                fix="run `devcheck env` to see why",
            )
        )
    if require_gpu and not sel.gpus:
        checks.append(
            Check(
                "gpu.required",
                Status.FAIL,
                "--require-gpu: no GPU was used",
                detail="; ".join(sel.unusable),
                fix="run `devcheck env` to see why",
            )
        )
    return checks
