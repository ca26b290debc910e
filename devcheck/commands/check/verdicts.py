"""Speed verdicts: a measured rate against the device's own peak and a floor (a fraction of it)."""

from __future__ import annotations

from devcheck.report import Check, Status


def speed_check(check_id: str, record: dict, floor: float, replaying: bool) -> Check:
    """Fail under the floor; a device with no peak is not judged, and says why (a warning: --strict
    fails it); under replay the rates are NumPy's, so nothing is judged."""
    where = f"{record['device']} {record['case']} {record['dtype']}"
    rate, unit, peak = record["rate"], record["unit"], record["peak"]
    measured = f"{rate:,.1f} {unit}"
    if peak["value"] is None:
        return Check(
            check_id,
            Status.WARN if floor > 0 else Status.OK,
            f"{where}: {measured}; no peak known, so speed is not judged",
            detail=peak["basis"],
        )
    if replaying:
        return Check(check_id, Status.SKIP, f"{where}: {measured} (replay: NumPy's speed, not judged)")
    fraction = rate / peak["value"]
    text = f"{where}: {measured}, {fraction:.0%} of its {peak['value']:,.0f} {unit} peak (floor {floor:.0%})"
    if fraction >= floor:
        return Check(check_id, Status.OK, text)
    return Check(
        check_id,
        Status.FAIL,
        text,
        detail=f"peak: {peak['basis']}",
        fix="check clocks, power and throttling (`devcheck env`, `nvidia-smi -q -d PERFORMANCE`); "
        "a floor that does not fit this model can be set with --thresholds",
    )
