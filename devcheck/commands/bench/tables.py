"""A bench run's records as a report: tables of raw numbers, charts, checks and the verdict."""

from __future__ import annotations

from typing import Any

from devcheck.commands.bench import interconnect_report
from devcheck.machine.model.facts import DeviceFacts
from devcheck.options import MatmulShape
from devcheck.report import Chart, Check, Report, Section, Status, snake


def speedups(records: list[dict]) -> list[dict]:
    """Each GPU against the CPU: the kernel alone, and end to end with both copies included."""
    by_key = {(r["case"], r["device"], r["dtype"]): r for r in records}
    rows = []
    for r in records:
        cpu = by_key.get(("matmul", "cpu", r["dtype"]))
        if r["case"] != "matmul" or r["device"] == "cpu" or cpu is None:
            continue
        e2e = by_key.get(("matmul end-to-end", r["device"], r["dtype"]))
        cpu_s, gpu_s = cpu["stats"]["median_s"], r["stats"]["median_s"]
        e2e_s = e2e["stats"]["median_s"] if e2e else None
        rows.append(
            {
                "device": r["device"],
                "dtype": r["dtype"],
                "cpu ms": cpu_s * 1e3,
                "kernel ms": gpu_s * 1e3,
                "kernel speedup": cpu_s / gpu_s,
                "end-to-end ms": e2e_s * 1e3 if e2e_s else None,
                "end-to-end speedup": cpu_s / e2e_s if e2e_s else None,
            }
        )
    return rows


def _timing(r: dict) -> dict:
    s = r["stats"]
    return {
        "first ms": r["first_call_s"] * 1e3,
        "median ms": s["median_s"] * 1e3,
        "± %": 100 * s["iqr_s"] / s["median_s"],
        "n": s["n"],
    }


def _row(r: dict) -> tuple[str, dict]:
    """The table a record belongs to, and its row: raw numbers only (the renderer writes them out)."""
    if r["case"] == "matmul":
        rel = r["correctness"]["rel_error"]
        return "matmul", {
            "device": r["device"],
            "dtype": r["dtype"],
            **_timing(r),
            "GFLOP/s": r["rate"],
            "% peak": r["percent_of_peak"],
            "rel err": rel,
        }
    if r["case"] == "autograd step":
        s, raw = r["stats"], r["raw_stats"]
        return "autograd", {
            "device": r["device"],
            "engine ms": s["median_s"] * 1e3,
            "raw arrays ms": raw["median_s"] * 1e3,
            "overhead": r["overhead"],
            "samples/s": r["rate"],
            "n": s["n"],
        }
    what = r["case"].removeprefix("copy ")
    return "transfer", {
        "device": r["device"],
        "what": what,
        **_timing(r),
        "GB/s": r["rate"],
        "% peak": r["percent_of_peak"],
    }


def _peak_rows(records: list[dict]) -> list[dict]:
    rows: dict[tuple, dict] = {}
    for r in records:
        if r["peak"]["value"] is not None and not interconnect_report.is_interconnect(r):  # a peak per pair
            key = (r["device"], r["dtype"], r["unit"])
            rows.setdefault(
                key,
                {
                    "device": r["device"],
                    "dtype": r["dtype"],
                    "unit": r["unit"],
                    "peak": r["peak"]["value"],
                    "basis": r["peak"]["basis"],
                },
            )
    return list(rows.values())


def _sections(records: list[dict], facts: list[DeviceFacts], shape: MatmulShape, ups: list[dict]) -> list[Section]:
    rows: dict[str, list[dict]] = {"matmul": [], "transfer": [], "autograd": []}
    notes: dict[str, list[str]] = {name: [] for name in rows}
    for r in records:
        if r["case"] == "matmul end-to-end" or interconnect_report.is_interconnect(r):
            continue  # in the speedup table, beside the kernel alone; in the GPU-to-GPU tables
        table, row = _row(r)
        rows[table].append(row)
        if _note(r):
            notes[table].append(f"{r['case']} on {r['device']} {r['dtype']}: {_note(r)}")
    m, k, n = shape.mkn
    sections = [
        Section("devices", "Devices", rows=[{"device": f.name, "what": f.label} for f in facts]),
        Section("matmul", f"Matmul: A {m}x{k} @ B {k}x{n} (N=10000 is the classic experiment)", rows=rows["matmul"]),
        Section("transfer", "Memory bandwidth and copies", rows=rows["transfer"]),
        Section("autograd", "Autograd: one training step, MLP 784-512-512-10, batch 256", rows=rows["autograd"]),
        Section("peaks", "Peaks and their basis", rows=_peak_rows(records)),
        Section("speedups", "GPU speedup over the CPU: the kernel alone, and end to end with copies", rows=ups),
    ]
    for section in sections:
        section.caption = "; ".join(notes.get(section.key, []))
    return sections + interconnect_report.sections(records)


def _charts(records: list[dict], ups: list[dict]) -> list[Chart]:
    rates = {f"{r['device']} {r['dtype']}": [r["rate"]] for r in records if r["case"] == "matmul"}
    charts = [Chart("matmul GFLOP/s", rates, kind="bar", unit="GFLOP/s")]
    if ups:
        speed = {f"{u['device']} {u['dtype']}": [u["end-to-end speedup"] or u["kernel speedup"]] for u in ups}
        charts.append(Chart("speedup over the CPU (end to end)", speed, kind="bar", unit="x"))
    return charts


def add_results(
    report: Report,
    records: list[dict],
    skipped: list[Any],
    facts: list[DeviceFacts],
    shape: MatmulShape,
    crossovers: list[dict] = (),
) -> None:
    ups = speedups(records)
    report.sections += _sections(records, facts, shape, ups)
    skipped_rows = [{"case": p.case, "device": p.device.name, "dtype": p.dtype, "reason": p.why} for p in skipped]
    report.data.update(
        records=records, speedups=[{snake(k): v for k, v in u.items()} for u in ups], skipped=skipped_rows
    )
    if crossovers:
        report.data["crossover"] = list(crossovers)
        rows = [
            {
                "device": c["device"],
                "workload": c["workload"],
                "GPU faster from (kernel)": c["kernel_from"],
                "GPU faster from (with copies)": c["with_copies_from"],
            }
            for c in crossovers
        ]
        caption = "—: not faster at any size measured; sizes and times per size are in --json (data.crossover)"
        cut = [
            f"{c['device']} {c['workload']} from {c['not_measured_from']} on"
            for c in crossovers
            if "not_measured_from" in c
        ]
        caption += f"; not measured (--max-time reached): {', '.join(cut)}" if cut else ""
        report.sections.append(Section("crossover", "where the GPU starts to pay", rows=rows, caption=caption))
    report.charts += _charts(records, ups)
    report.checks += _checks(records, skipped) + interconnect_report.checks(records)
    fastest = max((r for r in records if r["case"] == "matmul"), key=lambda r: r["rate"], default=None)
    if report.first_failure:
        report.verdict = f"bench: FAILED — {report.first_failure.summary}"
    elif fastest:
        report.verdict = (
            f"bench: fastest matmul {fastest['rate']:,.1f} GFLOP/s on {fastest['device']} "
            f"({fastest['dtype']}); results correct on every device"
        )
    elif report.check("bench.p2p"):
        report.verdict = f"bench: GPU to GPU: {report.check('bench.p2p').summary}"
    else:
        report.verdict = "bench: done"


def _note(record: dict) -> str:
    """A few words for the table; the checks say why in full."""
    c = record.get("correctness")
    notes = [
        "WRONG RESULT" if c and not c["ok"] else "",
        record["peak_note"] and "clock under-reported",
        record["unstable"] and "unstable",
        record.get("tf32") and "TF32 on",
    ]
    return ", ".join(n for n in notes if n)


def _checks(records: list[dict], skipped: list[Any]) -> list[Check]:
    """Correctness per matmul, unstable and above-peak measurements, and what was skipped and why."""
    checks = []
    for r in records:
        c = r.get("correctness")
        if c:
            where = f"{r['device']} {r['dtype']}"
            if c["ok"]:
                checks.append(
                    Check(
                        f"bench.matmul.{r['device']}.{r['dtype']}",
                        Status.OK,
                        f"{where}: matmul correct (rel err {c['rel_error']:.1e} <= {c['tolerance']:.1e})",
                    )
                )
            else:
                checks.append(
                    Check(
                        f"bench.matmul.{r['device']}.{r['dtype']}",
                        Status.FAIL,
                        f"{where}: matmul WRONG: relative error {c['rel_error']:.2e} > {c['tolerance']:.1e} "
                        f"against a float64 reference",
                        fix="run `devcheck env` and `devcheck grad`",
                    )
                )
    unstable = [f"{r['case']} on {r['device']} {r['dtype']} ({r['unstable']})" for r in records if r["unstable"]]
    if unstable:
        checks.append(
            Check(
                "bench.stability",
                Status.WARN,
                f"{len(unstable)} measurement(s) unstable",
                detail="; ".join(unstable),
                fix="close other work, or raise --repeat / --max-time",
            )
        )
    above = [f"{r['case']} on {r['device']} {r['dtype']}" for r in records if r["peak_note"]]
    if above:
        checks.append(
            Check(
                "bench.peak",
                Status.WARN,
                "measured above the computed peak: " + ", ".join(above),
                detail="the clock the peak is built on is under-reported (often the base clock in a VM)",
            )
        )
    for p in skipped:
        where = f"{p.device.name} {p.dtype}" if p.case in ("matmul", "e2e") else p.device.name
        checks.append(
            Check(f"bench.{p.case}.{where.replace(' ', '.')}", Status.SKIP, f"{p.case} on {where} skipped: {p.why}")
        )
    return checks
