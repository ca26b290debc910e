"""The interconnect of a multi-GPU machine as env shows it: the GPU x GPU matrix of `nvidia-smi topo -m`
(NV#, PIX, PXB, PHB, NODE, SYS, with each GPU's CPU and NUMA affinity), its NVLinks, the P2P status of
every pair, and what is wrong with them: a link down while its siblings are up, link errors, P2P
refused where NVLink connects the pair. A PCIe box whose GPUs may not talk directly (GeForce cards:
NVML says NS or GNS) is how those cards are built, not a fault: NCCL and CUDA stage through host memory.
"""

from __future__ import annotations

from devcheck.machine.probes.links import LEVELS, P2P_STATUS, SWITCH, Interconnect, Link, read_interconnect
from devcheck.machine.probes.nvml import Gpu, GpuLost
from devcheck.report import Check, Findings, Section, Status

ERROR_NAMES = {"replay": "replay", "recovery": "recovery", "crc_flit": "CRC flit", "crc_data": "CRC data"}
MUST_ALLOW = ("read", "write", "nvlink")  # what NVLink between two GPUs is for


def connection(found: Interconnect, a: int, b: int) -> str | None:
    """One cell of `nvidia-smi topo -m`: X, NV<links>, or the PCIe path's name; None when NVML did not say."""
    if a == b:
        return "X"
    pair = found.pair(a, b)
    if pair is None:
        return None
    if pair.nvlinks:
        return f"NV{pair.nvlinks}"
    return LEVELS.get(pair.level) if pair.level is not None else None


def cpu_list(indexes: list[int] | None) -> str | None:
    """The kernel's cpulist form (as /sys and topo -m write it): [0, 1, 2, 5] -> "0-2,5"."""
    if not indexes:
        return None
    runs: list[list[int]] = []
    for i in sorted(indexes):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)


def matrix_rows(found: Interconnect) -> list[dict]:
    rows = []
    for a in found.gpus:
        place = found.places[a]
        rows.append(
            {"GPU": a}
            | {f"GPU{b}": connection(found, a, b) for b in found.gpus}
            | {
                "CPU affinity": cpu_list(place.cpus),
                "NUMA affinity": cpu_list(place.numa_nodes),
                "GPU NUMA ID": place.gpu_numa_id,
            }
        )
    return rows


def _far_ends(links: list[Link], bus_ids: dict[str, int]) -> str | None:
    ends: dict[str, int] = {}
    for x in (x for x in links if x.active):
        end = (
            "NVSwitch"
            if x.remote_type == SWITCH
            else f"GPU{bus_ids[x.remote_bus_id]}"
            if x.remote_bus_id in bus_ids
            else "?"
        )
        ends[end] = ends.get(end, 0) + 1
    return ", ".join(f"{end} x{n}" for end, n in ends.items()) or None


def link_rows(found: Interconnect, gpus: list[Gpu]) -> list[dict]:
    bus_ids = {g.bus_id: g.nvml_index for g in gpus if g.bus_id}
    rows = []
    for gpu, links in found.links.items():
        if not links:
            continue
        versions = sorted({x.version for x in links if x.version is not None})
        row = {
            "GPU": gpu,
            "links": len(links),
            "active": sum(x.active for x in links),
            "inactive links": [x.link for x in links if not x.active],
            "version": versions[0] if len(versions) == 1 else versions or None,
            "far ends": _far_ends(links, bus_ids),
        }
        for key, name in ERROR_NAMES.items():
            counts = [x.errors[key] for x in links if x.errors.get(key) is not None]
            row[f"{name} errors"] = sum(counts) if counts else None
        rows.append(row)
    return rows


def p2p_rows(found: Interconnect) -> list[dict]:
    names = {"read": "read", "write": "write", "nvlink": "NVLink", "atomics": "atomics", "pcie": "PCIe"}
    rows = [
        {"GPU": p.a, "peer": p.b}
        | {names[cap]: P2P_STATUS.get(s, s) if s is not None else None for cap, s in p.p2p.items()}
        for p in found.pairs
    ]
    return rows if any(v is not None for row in rows for k, v in row.items() if k not in ("GPU", "peer")) else []


def link_checks(found: Interconnect) -> list[Check]:
    checks = []
    for gpu, links in found.links.items():
        down = [x.link for x in links if not x.active]
        if down and len(down) < len(links):
            checks.append(
                Check(
                    f"gpu{gpu}.nvlink",
                    Status.WARN,
                    f"GPU {gpu}: NVLink {', '.join(map(str, down))} inactive while its other "
                    f"{len(links) - len(down)} links are up",
                    detail="traffic to its peers runs on fewer links, or through PCIe (`nvidia-smi nvlink -s` "
                    "prints <inactive>)",
                    fix=f"`nvidia-smi nvlink -e -i {gpu}` and `dmesg | grep -i xid`; reset the GPU "
                    f"(sudo nvidia-smi -r -i {gpu}) or reboot; if it stays down, the board or NVSwitch needs service",
                )
            )
        errors = [(x.link, k, v) for x in links for k, v in x.errors.items() if v]
        if errors:
            listed = ", ".join(f"link {n} {ERROR_NAMES[k]} {v}" for n, k, v in errors[:8])
            checks.append(
                Check(
                    f"gpu{gpu}.nvlink_errors",
                    Status.WARN,
                    f"GPU {gpu}: NVLink errors since boot: {listed}" + (" ..." if len(errors) > 8 else ""),
                    detail="replays and CRC errors are retried in hardware, but a link that keeps making them "
                    "is failing; `devcheck check` reads them again after its stress window",
                    fix=f"watch `nvidia-smi nvlink -e -i {gpu}`; if they grow, drain the node, `dcgmi diag -r 3`",
                )
            )
    every = [x for links in found.links.values() for x in links]
    if every and not checks:
        up = sum(x.active for x in every)
        checks.append(Check("nvlink", Status.OK, f"NVLink: {up} of {len(every)} links up, no link errors"))
    return checks


def p2p_check(found: Interconnect) -> list[Check]:
    """P2P refused where NVLink connects the pair fails; refused over PCIe alone is said, not failed."""
    known = [p for p in found.pairs if any(s is not None for s in p.p2p.values())]
    if not known:
        return []
    refused = [(p, cap) for p in known if p.nvlinks for cap in MUST_ALLOW if p.p2p.get(cap) not in (None, 0)]
    if refused:
        listed = ", ".join(f"GPU {p.a}-{p.b} {cap} {P2P_STATUS.get(p.p2p[cap])}" for p, cap in refused[:8])
        return [
            Check(
                "p2p",
                Status.FAIL,
                f"P2P refused between GPUs that NVLink connects: {listed}",
                detail="NVML's P2P status (nvidia-smi topo -p2p): NCCL and CUDA fall back to copies through host "
                "memory, ten times slower",
                fix="check `nvidia-smi topo -p2p n`, the driver's RmNvlinkDisable/P2P regkeys and `dmesg`; "
                "on HGX, that nvidia-fabricmanager is running (`systemctl status nvidia-fabricmanager`)",
            )
        ]
    nvlinked = sum(1 for p in known if p.nvlinks)
    pcie = [p for p in known if not p.nvlinks and any(s not in (None, 0) for s in p.p2p.values())]
    asked = [cap for cap in MUST_ALLOW if any(p.p2p.get(cap) is not None for p in known if p.nvlinks)]
    said = (
        f"P2P allowed on all {nvlinked} NVLink-connected pairs ({', '.join(asked)})"
        if nvlinked
        else "no pair is NVLink-connected"
    )
    if pcie:
        codes = sorted({P2P_STATUS.get(s, str(s)) for p in pcie for s in p.p2p.values() if s not in (None, 0)})
        said += f"; over PCIe, {len(pcie)} pair(s) without P2P ({', '.join(codes)}): copies go through host memory"
    return [Check("p2p", Status.OK, said)]


def findings(nvml, gpus: list[Gpu]) -> Findings:
    """The interconnect's sections and checks; nothing for fewer than two GPUs."""
    if len(gpus) < 2:
        return Findings()
    try:
        found = read_interconnect(nvml, gpus)
    except GpuLost as e:  # fell off the bus after its own table was read: half a matrix would mislead
        lost = Check(
            "topology",
            Status.FAIL,
            f"a GPU was lost while the interconnect was read: {e}",
            detail="usually Xid 79 'fallen off the bus' in `dmesg`",
            fix="`dmesg | grep -i xid`; sudo nvidia-smi -r or reboot; if it recurs, reseat the card or check power",
        )
        return Findings([], [lost])
    if len(found.gpus) < 2:
        return Findings()
    sections = [
        Section("topology", "GPU topology (nvidia-smi topo -m)", rows=matrix_rows(found), caption=LEGEND),
        Section("nvlinks", "NVLinks per GPU", rows=link_rows(found, gpus)),
        Section("p2p", "P2P status per GPU pair (nvidia-smi topo -p2p)", rows=p2p_rows(found)),
    ]
    return Findings(sections, link_checks(found) + p2p_check(found))


def growth_checks(before: dict, after: dict) -> list[Check]:
    """NVLink error counters that grew between two reads (links.read_counters), one warning per GPU."""
    grew: dict[int, list[str]] = {}
    for (gpu, link, counter), count in sorted(after.items()):
        if count > before.get((gpu, link, counter), count):
            grew.setdefault(gpu, []).append(
                f"link {link} {ERROR_NAMES[counter]} +{count - before[(gpu, link, counter)]}"
            )
    return [
        Check(
            f"gpu{gpu}.nvlink_errors_grew",
            Status.WARN,
            f"GPU {gpu}: NVLink errors grew during the stress window: {', '.join(items)}",
            detail="a link making errors under load is failing",
            fix="drain the node; `nvidia-smi nvlink -e`, `dcgmi diag -r 3`",
        )
        for gpu, items in grew.items()
    ]


LEGEND = (
    "X self; NV# a bonded set of # NVLinks; PIX at most one PCIe bridge; PXB several PCIe bridges; "
    "PHB a PCIe host bridge (the CPU); NODE host bridges within a NUMA node; SYS across NUMA nodes; — NVML did not say"
)
