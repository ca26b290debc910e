"""The numerics a run's results depend on, in one place: TF32 exactly as CuPy decides it, and the
unit roundoff of each precision that every tolerance is built from.

CuPy reads CUPY_TF32 once per dtype, at the first float32 (or complex64) matmul, as
`int(os.getenv('CUPY_TF32', '0')) > 0` (cupy/_core/_routines_linalg.pyx, get_compute_type): "00" is
off, " 1" is on, and "true" or "" raise ValueError at every such matmul, since nothing gets cached.
Reading it any other way gives a peak 8x off or a tolerance 1000x off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# Half the distance between 1 and the next number: a correct rounding is within one of these.
UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11, "tf32": 2.0**-11}
TF32_FROM = (8, 0)  # CuPy falls back to plain float32, with a warning, below compute capability 8.0


@dataclass(frozen=True)
class Tf32:
    raw: str | None  # CUPY_TF32 as set, None when unset
    on: bool  # float32 matmuls run as TF32 (on a GPU of compute capability 8.0 or newer)
    error: str = ""  # what CuPy raises at every float32 matmul, when it cannot read the value


def tf32(environ: Mapping[str, str] | None = None) -> Tf32:
    raw = (os.environ if environ is None else environ).get("CUPY_TF32")
    try:
        return Tf32(raw, int("0" if raw is None else raw) > 0)
    except ValueError as e:
        return Tf32(raw, False, f"ValueError: {e}")


def tf32_on(device: str) -> bool:
    """Does a float32 matmul on `device` ("cpu", "cuda:0") run as TF32? Only CuPy's reads CUPY_TF32."""
    return device.startswith("cuda") and tf32().on


def matmul_roundoff(dtype: str, device: str) -> float:
    """The unit roundoff a matmul in `dtype` on `device` works to."""
    return UNIT_ROUNDOFF["tf32" if dtype == "float32" and tf32_on(device) else dtype]
