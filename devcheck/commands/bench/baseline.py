"""`devcheck bench --baseline FILE`: this run against an earlier one, case by case."""

from __future__ import annotations

from devcheck.report import Check, Status


def compare(records: list[dict], old: list[dict], max_regression: float) -> Check:
    """Each record against the baseline's record of the same case, device, dtype and shape."""
    key = lambda r: (r["case"], r["device"], r["dtype"], tuple(r["shape"]))  # noqa: E731
    before = {key(r): r for r in old}
    regressions, compared = [], 0
    for r in records:
        b = before.get(key(r))
        if b is None or not b.get("rate"):
            continue
        compared += 1
        drop = 100 * (b["rate"] - r["rate"]) / b["rate"]
        if drop > max_regression:
            regressions.append(
                f"{r['case']} {r['device']} {r['dtype']}: {b['rate']:.4g} -> {r['rate']:.4g} {r['unit']} (-{drop:.1f}%)"
            )
    if not compared:
        return Check(
            "bench.baseline", Status.WARN, "no case of the baseline matches this run (case, device, dtype, shape)"
        )
    if regressions:
        return Check(
            "bench.baseline",
            Status.FAIL,
            f"{len(regressions)} regression(s) beyond {max_regression}%",
            detail="; ".join(regressions),
        )
    return Check("bench.baseline", Status.OK, f"{compared} case(s) within {max_regression}% of the baseline")
