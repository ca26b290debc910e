"""GPU-to-GPU records as tables and checks: one row per ordered pair (P2P write, both ways at once,
latency, against the pair's link peak), one per all-reduce size (algbw and busbw), and a check saying
which pairs have no peer access (their copies are staged through host memory: p2pBandwidthLatencyTest's
P2P=Disabled figures, a tenth of NVLink's)."""

from __future__ import annotations

from devcheck.report import Check, Section, Status


def is_interconnect(record: dict) -> bool:
    return record["case"].startswith(("p2p ", "nccl "))


def pair_rows(records: list[dict]) -> list[dict]:
    both = {frozenset((r["device"], r["peer"])): r for r in records if r["case"].startswith("p2p bidirectional")}
    rows = []
    for r in (r for r in records if r["case"].startswith("p2p write")):
        two = both.get(frozenset((r["device"], r["peer"])))
        rows.append(
            {
                "from": r["device"],
                "to": r["peer"],
                "path": r["path"],
                "write GB/s": r["rate"],
                "write % peak": r["percent_of_peak"],
                "both ways GB/s": two["rate"] if two else None,
                "both ways % peak": two["percent_of_peak"] if two else None,
                "latency us": r["latency_s"] * 1e6,
                "peak GB/s": r["peak"]["value"],
            }
        )
    return rows


def allreduce_rows(records: list[dict]) -> list[dict]:
    return [
        {
            "GPUs": r["ranks"],
            "bytes": r["shape"][0],
            "time us": r["stats"]["median_s"] * 1e6,
            "algbw GB/s": r["rate"],
            "busbw GB/s": r["busbw_gbps"],
            "% peak": r["percent_of_peak"],
        }
        for r in records
        if r["case"].startswith("nccl all-reduce")
    ]


def sections(records: list[dict]) -> list[Section]:
    pairs, reduce = pair_rows(records), allreduce_rows(records)
    out = []
    if pairs:
        peak = next((r["peak"]["basis"] for r in records if r["case"].startswith("p2p write")), "")
        caption = f"cudaMemcpyPeerAsync, P2P writes (copy engines), CUDA events; write peak: {peak}"
        out.append(Section("p2p", "GPU to GPU: copy bandwidth and latency per pair", rows=pairs, caption=caption))
    if reduce:
        caption = "busbw = algbw x 2(n-1)/n (nccl-tests); % peak: busbw against the slowest GPU's link"
        out.append(Section("allreduce", "NCCL all-reduce across the GPUs (float32 sum)", rows=reduce, caption=caption))
    return out


def checks(records: list[dict], prefix: str = "bench") -> list[Check]:
    """Whether every copy arrived intact, the slowest pair against its peak, and which pairs copy
    without peer access."""
    copies = [r for r in records if r["case"].startswith("p2p ")]
    writes = [r for r in copies if r["case"].startswith("p2p write")]
    if not writes:
        return []
    broken = [f"{r['device']}<->{r['peer']}" if "bidirectional" in r["case"] else f"{r['device']}->{r['peer']}"
              for r in copies if not r["intact"]]  # fmt: skip
    slowest = min(writes, key=lambda r: r["percent_of_peak"] if r["percent_of_peak"] is not None else r["rate"])
    pct, peak = slowest["percent_of_peak"], slowest["peak"]["value"]
    figure = f"{slowest['rate']:,.1f} GB/s" + (f", {pct:.0f}% of its {peak:,.0f} GB/s" if pct is not None else "")
    measured = f"{len(writes)} GPU pairs; slowest {slowest['device']}->{slowest['peer']}: {figure}"
    if broken:
        out = [
            Check(
                f"{prefix}.p2p",
                Status.FAIL,
                f"GPU-to-GPU copies arrived corrupted: {', '.join(broken)}",
                detail=measured,
                fix="run `nvidia-smi nvlink -e` (link errors) and `nvidia-smi -q -d ECC`; reseat or replace the GPU",
            )
        ]
    else:
        out = [Check(f"{prefix}.p2p", Status.OK, f"every GPU-to-GPU copy arrived intact; {measured}")]
    staged = [f"{r['device']}->{r['peer']}" for r in writes if r["path"] != "p2p"]
    if staged:
        out.append(
            Check(
                f"{prefix}.p2p.peer_access",
                Status.WARN,
                f"P2P unsupported for {len(staged)} of {len(writes)} GPU pairs: their copies are staged through "
                "host memory",
                detail=", ".join(staged),
                fix="`nvidia-smi topo -p2p r` says why per pair (CNS: chipset, GNS: GPU, NS: not supported); "
                "in a VM, PCIe ACS or the IOMMU can block it",
            )
        )
    return out
