"""Comparable measures grouped (same device kind, GPU model, measure, dtype, shape and unit) and judged
against the fleet's own median, without hand-written thresholds.

The rule is Iglewicz and Hoaglin's modified z-score: z = (x - median) / (1.4826 x MAD), flagged when
|z| > 3.5. The median and the MAD (median absolute deviation) are robust: up to half the fleet can be
odd before they move, where a mean and a standard deviation are dragged by the very outliers they
should find. 1.4826 makes the MAD estimate the standard deviation of normally spread values, so 3.5
is about 3.5 sigma. The MAD is floored at 1% of the median: a fleet of identical values (every power
limit 700 W) has a MAD of 0, which would make any difference at all infinitely odd; with the floor a
value must be more than about 5% (3.5 x 1.4826 x 1%) from the median to be flagged. Both directions
are flagged: a GPU much faster than its peers is as suspicious as a slow one (a wrong clock, a
result not computed). A group of fewer than 3 devices has no majority to speak of: it is shown, not
judged.

`--thresholds FILE` adds absolute floors in `devcheck check`'s format (fractions of each device's own
peak, per GPU model or [default]); only the keys the file sets are applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devcheck.commands.compare.summary import Node, model_of

MAD_SCALE = 1.4826
MAD_FLOOR = 0.01  # of the median
Z_LIMIT = 3.5
MIN_GROUP = 3
RATES = ("GFLOP/s", "GB/s", "samples/s")
RULE = (
    f"outlier: |z| > {Z_LIMIT}, z = (x - median) / ({MAD_SCALE} x max(MAD, {MAD_FLOOR:.0%} of median)), "
    f"both directions; groups of fewer than {MIN_GROUP} devices are shown, not judged"
)
# check's floor keys, by (case, dtype) as check and bench name their records
FLOOR_KEYS = {
    ("matmul", "float32"): "matmul_float32",
    ("matmul", "float64"): "matmul_float64",
    ("copy host->device pinned", "float32"): "copy_pinned",
    ("copy device->device", "float32"): "bandwidth",
}


@dataclass
class Group:
    kind: str  # cpu or gpu
    model: str
    measure: str
    dtype: str
    shape: str
    unit: str
    hosts: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    peaks: list[float | None] = field(default_factory=list)
    median: float = 0.0
    mad: float = 0.0
    scale: float = 0.0
    z: Any = None  # numpy array, one per value

    @property
    def judged(self) -> bool:
        return len(self.values) >= MIN_GROUP

    def outliers(self) -> list[int]:
        if not self.judged:
            return []
        import numpy

        return [int(i) for i in numpy.flatnonzero(numpy.abs(self.z) > Z_LIMIT)]

    def label(self) -> str:
        parts = (self.measure, self.dtype, self.shape)
        return " ".join(p for p in parts if p)


def groups(hosts: dict[str, Node]) -> list[Group]:
    """Every measure of every node in its group, each group judged."""
    table: dict[tuple, Group] = {}
    for host, node in hosts.items():
        for (device, measure, dtype, shape, unit), (value, peak) in node.measures.items():
            key = ("cpu" if device == "cpu" else "gpu", model_of(node, device), measure, dtype, shape, unit)
            group = table.get(key)
            if group is None:
                group = table[key] = Group(*key)
            group.hosts.append(host)
            group.devices.append(device)
            group.values.append(value)
            group.peaks.append(peak)
    for group in table.values():
        _judge(group)
    return sorted(table.values(), key=lambda g: (g.kind, g.model, g.measure, g.dtype, g.shape))


def other_shapes(all_groups: list[Group]) -> list[dict]:
    """Devices measured at another shape than their peers, where the peers' shape was judged: an older
    devcheck sized its GEMMs by the speed it measured, and a slow node, the likeliest to pick a smaller
    size, left its group and escaped judgement. One row per device, with the shapes that were judged."""
    judged: dict[tuple, list[str]] = {}
    for g in all_groups:
        if g.judged:
            judged.setdefault((g.kind, g.model, g.measure, g.dtype, g.unit), []).append(g.shape)
    rows = []
    for g in all_groups:
        shapes = judged.get((g.kind, g.model, g.measure, g.dtype, g.unit))
        if g.judged or not shapes:
            continue
        for host, device in zip(g.hosts, g.devices):
            rows.append({"host": host, "device": device, "model": g.model, "measure": g.measure, "dtype": g.dtype,
                         "shape": g.shape, "judged_shapes": shapes})  # fmt: skip
    return sorted(rows, key=lambda r: (r["host"], r["device"], r["measure"], r["dtype"]))


def _judge(group: Group) -> None:
    import numpy

    x = numpy.asarray(group.values, dtype=numpy.float64)
    group.median = float(numpy.median(x))
    group.mad = float(numpy.median(numpy.abs(x - group.median)))
    group.scale = MAD_SCALE * max(group.mad, MAD_FLOOR * abs(group.median))
    if group.scale > 0:
        with numpy.errstate(over="ignore"):  # a value of 1e308 is infinitely odd, and says so
            group.z = (x - group.median) / group.scale
    else:  # every value 0, or a median of 0 with half the values at it: only a non-zero one is odd
        group.z = numpy.where(x == group.median, 0.0, numpy.copysign(numpy.inf, x - group.median))


def direction(unit: str, z: float) -> str:
    if unit in RATES:
        return "slower" if z < 0 else "faster"
    return "lower" if z < 0 else "higher"


def floor_of(thresholds: Any, key: str, device: str, model: str) -> float | None:
    """The floor the --thresholds file sets for this key (the model's table, then cpu, then [default]);
    None when the file does not set it (check's built-in floors are not applied here)."""
    for table in (thresholds.per_model.get(model, {}), thresholds.per_model.get(device, {}), thresholds.default):
        if key in table:
            return table[key]
    return None


def below_floors(all_groups: list[Group], thresholds: Any) -> list[dict]:
    """Devices under an absolute floor: rate / own peak < the floor the file sets."""
    found = []
    for g in all_groups:
        key = FLOOR_KEYS.get((g.measure, g.dtype))
        if key is None:
            continue
        for host, device, value, peak in zip(g.hosts, g.devices, g.values, g.peaks):
            floor = floor_of(thresholds, key, device, g.model)
            if floor is None or not peak:
                continue
            if value / peak < floor:
                found.append(
                    {"host": host, "device": device, "model": g.model, "key": key, "shape": g.shape, "unit": g.unit,
                     "value": value, "peak": peak, "fraction_of_peak": value / peak, "floor": floor}
                )  # fmt: skip
    return found
