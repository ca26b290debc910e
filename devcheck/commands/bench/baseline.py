"""`devcheck bench --baseline FILE`: this run against an earlier one, case by case."""

from __future__ import annotations

from devcheck.report import Check, Status


def _name(r: dict) -> str:
    return f"{r['case']} {r['device']} {r['dtype']} {'x'.join(str(n) for n in r['shape'])}"


# A figure of fewer than 3 samples has no measured spread: its time is taken as anywhere within 25% of
# it (single samples of the autograd step differed by up to 36% between two runs of the 2-core VM).
UNKNOWN_SPREAD = (0.75, 1.25)
MAX_EXCUSE = 2.0


def _spread(r: dict) -> tuple[float, float]:
    """(fastest, slowest) quartile of the record's time as fractions of its median: a rate can be read
    anywhere between them; UNKNOWN_SPREAD when the record has too few samples or no stats."""
    stats = r.get("stats") if isinstance(r.get("stats"), dict) else {}
    median, q1, q3, n = (stats.get(k) for k in ("median_s", "q1_s", "q3_s", "n"))
    numbers = all(isinstance(v, int | float) and v > 0 for v in (median, q1, q3, n))
    if numbers and n >= 3 and q1 <= median <= q3:
        # a spread wider than 2x either way (a busy machine preempting a tiny case) excuses no more than 2x:
        # a 100x slowdown must fail however noisy the run
        return max(q1 / median, 1 / MAX_EXCUSE), min(q3 / median, MAX_EXCUSE)
    return UNKNOWN_SPREAD


def slowdown(new: dict, old: dict) -> tuple[float, float]:
    """(slowdown of the medians, slowdown beyond the noise) in percent. The noise is each figure's
    measured spread (IQR): the new run at its fastest quartile against the old run at its slowest, so
    two runs of one machine, whose quartiles overlap, never count as a regression; a 3x slowdown with
    a spread of a few percent does."""
    plain = 100 * (old["rate"] - new["rate"]) / old["rate"]
    new_best = new["rate"] / _spread(new)[0]
    old_worst = old["rate"] / _spread(old)[1]
    return plain, 100 * (old_worst - new_best) / old_worst


def compare(records: list[dict], old: list[dict], max_regression: float) -> Check:
    """Each record against the baseline's record of the same case, device, dtype and shape; a record is
    a regression when it is slower by more than `max_regression` beyond both figures' measured spread."""
    key = lambda r: (r["case"], r["device"], r["dtype"], tuple(r["shape"]))  # noqa: E731
    before = {key(r): r for r in old}
    ours = {key(r) for r in records}
    regressions, noisy, compared = [], [], 0
    for r in records:
        b = before.get(key(r))
        if b is None or not b.get("rate") or not r.get("rate"):
            continue
        compared += 1
        plain, beyond = slowdown(r, b)
        text = f"{_name(r)}: {b['rate']:.4g} -> {r['rate']:.4g} {r['unit']} (-{plain:.1f}%"
        if beyond > max_regression:
            regressions.append(f"{text}, -{beyond:.1f}% beyond the measured spread)")
        elif plain > max_regression:
            noisy.append(f"{text}, within the measured spread)")
    skipped = [f"{_name(r)} (not in the baseline)" for r in records if key(r) not in before]
    skipped += [f"{_name(r)} (not in this run)" for r in old if key(r) not in ours]
    detail = "; ".join(regressions + noisy + (["not compared: " + ", ".join(skipped)] if skipped else []))
    not_compared = f"; {len(skipped)} row(s) not compared (see detail)" if skipped else ""
    if not compared:
        return Check(
            "bench.baseline",
            Status.WARN,
            "no case of the baseline matches this run (case, device, dtype, shape): another --size or --shape?",
            detail=detail,
        )
    if regressions:
        return Check(
            "bench.baseline",
            Status.FAIL,
            f"{len(regressions)} regression(s) beyond {max_regression}% and the measured spread{not_compared}",
            detail=detail,
        )
    return Check(
        "bench.baseline",
        Status.OK,
        f"{compared} case(s) within {max_regression}% of the baseline, after the measured spread{not_compared}",
        detail=detail,
    )
