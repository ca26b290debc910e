"""Speed verdicts: a measured rate against the device's own peak and a floor (a fraction of it)."""

from __future__ import annotations

from devcheck.report import Check, Status


def speed_check(check_id: str, record: dict, floor: float, replaying: bool, busy: str = "") -> Check:
    """Fail under the floor; a device with no peak is not judged, and says why (a warning: --strict
    fails it), nor one busy with other work; under replay the rates are NumPy's, so nothing is judged."""
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
    if busy and rate / peak["value"] < floor:
        return Check(check_id, Status.WARN, f"{where}: {measured}; {busy}, so speed is not judged", fix="run it idle")
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


CPU_BUSY = 0.25  # of the CPUs' time taken by other work: above it, a slow CPU matmul is not judged slow


def cpu_busy(busy: float | None) -> str:
    """Other work on the CPUs makes a slow matmul no sign of a slow machine. `busy`: the fraction of the
    CPUs' time other work took (cpu.busy_fraction, read while this process sleeps, just before the
    speed step), None where it could not be read."""
    return f"the CPUs are {busy:.0%} busy with other work" if busy is not None and busy > CPU_BUSY else ""


def gpu_busy(sharers: tuple[int, list[tuple[int, int | None]], bool] | None) -> str:
    """Other processes computing on a GPU make a slow matmul there no sign of a slow GPU."""
    others, entries, ours = sharers or (0, [], True)
    if not others:
        return ""
    shown = ", ".join(f"pid {pid}" + (f" with {used / 2**20:,.0f} MiB" if used else "") for pid, used in entries[:4])
    more = f" and {len(entries) - 4} more" if len(entries) > 4 else ""
    among = "" if ours else "; devcheck is one of them (in a container NVML lists host pids)"
    return f"{others} other process(es) compute on this GPU ({shown}{more}{among})"


def p2p_check(records: list[dict], floors: dict[str, float], replaying: bool) -> Check:
    """Each GPU pair with peer access at least its sender's floor of the pair's link peak (pairs staged
    through host memory are a warning of their own, not judged here); under replay, not judged."""
    writes = [r for r in records if r["case"].startswith("p2p write") and r["path"] == "p2p"]
    if not writes:
        return Check("check.p2p.speed", Status.SKIP, "no GPU pair has peer access: no P2P copy to judge")
    if replaying:
        return Check("check.p2p.speed", Status.SKIP, f"{len(writes)} P2P pairs (replay: NumPy's speed, not judged)")
    unknown = [r for r in writes if r["peak"]["value"] is None]
    if unknown:
        return Check(
            "check.p2p.speed",
            Status.WARN,
            f"{len(unknown)} GPU pairs have no link peak, so P2P speed is not judged",
            detail=unknown[0]["peak"]["basis"],
        )
    by_pair = {f"{r['device']}->{r['peer']}": r for r in writes}
    fraction = {pair: r["rate"] / r["peak"]["value"] for pair, r in by_pair.items()}
    slow = [pair for pair, r in by_pair.items() if fraction[pair] < floors[r["device"]]]
    worst = min(fraction, key=fraction.get)
    peak = by_pair[worst]["peak"]
    text = f"slowest {worst}: {fraction[worst]:.0%} of its {peak['value']:,.0f} GB/s ({peak['basis']})"
    if not slow:
        return Check("check.p2p.speed", Status.OK, f"{len(writes)} P2P pairs at or above their floor; {text}")
    floor = floors[by_pair[worst]["device"]]
    return Check(
        "check.p2p.speed",
        Status.FAIL,
        f"{len(slow)} of {len(writes)} P2P pairs under {floor:.0%} of their link's peak; {text}",
        detail=", ".join(f"{pair} {fraction[pair]:.0%}" for pair in slow),
        fix="`nvidia-smi nvlink -s` (a link down or slow), `nvidia-smi topo -m`; a floor that does not fit this "
        "machine can be set with --thresholds (p2p)",
    )
