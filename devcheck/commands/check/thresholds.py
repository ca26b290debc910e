"""What `devcheck check` calls fast enough: floors as fractions of each device's own peak, so a GPU
model devcheck has never seen needs no table. The defaults come from measured cards: on a healthy
H100 (tests/fixtures/h100-reference.md) CuPy's float32 matmul ran at 67% of its FP32 peak and
float64 at 81% of its FP64 tensor peak, device-to-device copies at 89% and pinned host copies at 87%
of theirs; the A100 that DCGM passed (DCGM#122) ran at 35%. A floor of 50% fails that A100 and passes
the H100 with room. A CPU's peak is often built on its base clock (a VM's /proc/cpuinfo), so its floor
is lower. GPU-to-GPU copies (p2p, of the NVLink or PCIe peak): public p2pBandwidthLatencyTest runs show
8x H100 SXM at 83% of NVLink 4's 450 GB/s and 8x A100 at 91% of 300, and the same H100s with P2P off
at 8%: 50% passes the first two and fails the third. `--thresholds FILE` (TOML) overrides any of them,
for all devices or per model:

    [default]
    matmul_float32 = 0.5
    ["NVIDIA H100 80GB HBM3"]
    matmul_float32 = 0.6
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from devcheck.errors import BadInput

GPU_FLOORS = {"matmul_float32": 0.5, "matmul_float64": 0.5, "bandwidth": 0.5, "copy_pinned": 0.5, "p2p": 0.5}
CPU_FLOORS = {"matmul_float32": 0.25, "matmul_float64": 0.25, "bandwidth": 0.25, "copy_pinned": 0.0}
LIMITS = {"temperature_margin_c": 5.0, "stress_drift": 0.10}  # degrees under the slowdown threshold; rate drop
KEYS = set(GPU_FLOORS) | set(LIMITS)


@dataclass(frozen=True)
class Thresholds:
    default: dict[str, float] = field(default_factory=dict)
    per_model: dict[str, dict[str, float]] = field(
        default_factory=dict
    )  # keyed by device name ("cpu", "NVIDIA H100 ...")

    def floor(self, key: str, device: str, model: str) -> float:
        for table in (self.per_model.get(model, {}), self.per_model.get(device, {}), self.default):
            if key in table:
                return table[key]
        return (CPU_FLOORS if device == "cpu" else GPU_FLOORS).get(key, LIMITS.get(key, 0.0))


def load(path: Path | None) -> Thresholds:
    """--thresholds FILE: every key known, every value a number >= 0; else one line naming the option."""
    if path is None:
        return Thresholds()
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BadInput(f"--thresholds {path}: not a TOML file ({e})") from None
    tables = {}
    for name, table in doc.items():
        if not isinstance(table, dict):
            raise BadInput(f'--thresholds {path}: {name!r} must be a table ([default] or ["<GPU model>"])')
        for key, value in table.items():
            if key not in KEYS:
                raise BadInput(f"--thresholds {path}: [{name}] {key}: unknown; known: {', '.join(sorted(KEYS))}")
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise BadInput(f"--thresholds {path}: [{name}] {key} = {value!r}: expected a number >= 0")
        tables[name] = {k: float(v) for k, v in table.items()}
    default = tables.pop("default", {})
    return Thresholds(default, tables)
