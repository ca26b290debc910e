"""Turn public `nvidia-smi topo -m` dumps (with the `topo -p2p` and `nvlink -e/-s` dumps of the same
machine, where there are some) into devcheck recordings: stand-ins for multi-GPU machines' interconnects.

Regenerate every stand-in in tests/fixtures/recordings/topology/ from tests/fixtures/topology/:

    python scripts/recording_from_topo.py

A stand-in answers the NVML calls devcheck/machine/probes/links.py makes with what the dump shows, and no
others (a replay answers those "not in the recording"):
- nvmlDeviceGetCount: the GPU rows; handles gpu0..gpuN.
- A PCIe cell (PIX, PXB, PHB, NODE, SYS) of GPUs i < j: nvmlDeviceGetTopologyCommonAncestor(gpu_i, gpu_j)
  -> nvidia-ml-py's NVML_TOPOLOGY_SINGLE, MULTIPLE, HOSTBRIDGE, NODE, SYSTEM. An NV# cell hides the
  PCIe path, so that pair has no topology answer.
- NV#: a row whose NV counts add up to at most 18 (the most NVLinks any GPU has) is a direct mesh: the
  GPU gets one active link per NV to each peer, in peer order, whose remote end is that peer (remote
  device type GPU, remote PCI bus id the peer's). A row that adds up to more can only be NVSwitches
  (HGX A100/H100/H800: NV12/NV18/NV8 to every peer): its NV# links are active and end at a switch.
  Which link number goes where is not in the dump: it is the one invention, named in `synthetic`.
- The dumps show no PCI bus ids; NV# needs them to name a link's far end, so GPU i is given the
  placeholder bus id 00000000:<i+1>:00.0 (nvidia-smi numbers GPUs in bus order, as these do), named in
  `synthetic` too.
- CPU Affinity -> nvmlDeviceGetCpuAffinity(h, 16) as 64-bit masks; NUMA Affinity ->
  nvmlDeviceGetMemoryAffinity(h, 4, NVML_AFFINITY_SCOPE_NODE); GPU NUMA ID -> nvmlDeviceGetNumaNodeId.
  N/A -> NVMLError NotSupported. A column cut by the terminal (the H800 file) is not used.
- topo -p2p <c>: nvmlDeviceGetP2PStatus(gpu_i, gpu_j, NVML_P2P_CAPS_INDEX_<c>) for i < j, OK/CNS/GNS/
  TNS/DR/NS/U -> NVML_P2P_STATUS_*. `-p2p rw` is read as its first capability, r.
- nvlink -e: "Replay Errors", "Recovery Errors", "CRC Errors" -> nvmlDeviceGetNvLinkErrorCounter with
  NVML_NVLINK_ERROR_DL_REPLAY, _RECOVERY, _CRC_FLIT. nvlink -s: a rate -> state 1, <inactive> -> 0,
  with the GPU's name; a file of only nvlink -s (or only topo -p2p) makes a stand-in of its own.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import version
from pathlib import Path

import pynvml

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from recording_from_smi import _error, sources  # noqa: E402

from devcheck.machine.probes.links import CPU_SET_WORDS, NODE_SET_WORDS  # noqa: E402
from devcheck.machine.replay.recording import MASKED_UUID, Recording  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
DUMPS, OUT = ROOT / "topology", ROOT / "recordings" / "topology"
MOST_LINKS = 18
LEVELS = {
    "PIX": pynvml.NVML_TOPOLOGY_SINGLE,
    "PXB": pynvml.NVML_TOPOLOGY_MULTIPLE,
    "PHB": pynvml.NVML_TOPOLOGY_HOSTBRIDGE,
    "NODE": pynvml.NVML_TOPOLOGY_NODE,
    "SYS": pynvml.NVML_TOPOLOGY_SYSTEM,
}
P2P = {"OK": 0, "CNS": 1, "GNS": 2, "TNS": 3, "DR": 4, "NS": 5, "U": 6}  # the legend's order is NVML's
CAPS = {"r": 0, "w": 1, "n": 2, "a": 3, "p": 4}  # NVML_P2P_CAPS_INDEX_READ (written `0,`), WRITE, NVLINK, ATOMICS, PCI
ERRORS = {"Replay": "REPLAY", "Recovery": "RECOVERY", "CRC": "CRC_FLIT"}
SAME_MACHINE = {  # topo -m dump: the other dumps of that machine (the same post or repository)
    "topo-m_8x-h100-nv18_ml-engineering_1.txt": [
        "topo-p2p-r_8x-h100-ok_1.txt",
        "nvlink-e_h100-sxm-8gpu_fragment_1.txt",
    ],
    "topo-m_2x-rtx2080ti-autodl-pix_1.txt": ["topo-p2p-p_2x-rtx2080ti-ns_1.txt"],
    "topo-m_2x-rtx5090-threadripper-phb_1.txt": ["topo-p2p-rw_2x-rtx5090-gns_1.txt"],
}
ALONE = ["nvlink-s_8x-v100-sxm2-32gb-inactive-links_1.txt", "topo-p2p-r_2x-l4-cns_1.txt"]
CUT_COLUMNS = {"topo-matrix_8x-h800-nv8-4nic-truncated-columns_1.txt": ("CPU Affinity",)}


def cells(line: str) -> list[str]:
    """One line of a matrix: tab-separated (raw) or tab-expanded (pasted), ANSI underlines removed."""
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)
    return [c.strip() for c in re.split(r"\t|\s{2,}", line.strip()) if c.strip()]


def read_matrix(text: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """(the header's columns, {row label: {column: cell}}) of the first matrix in a topo dump."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "GPU0" in cells(line))
    header = cells(lines[start])
    rows = {}
    for line in lines[start + 1 :]:
        row = cells(line)
        if not row:
            break
        rows[row[0]] = dict(zip(header, row[1:]))
    return header, rows


def cpu_words(cpulist: str, words: int) -> dict | None:
    if not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", cpulist):
        return None
    mask = [0] * words
    for part in cpulist.split(","):
        a, _, b = part.partition("-")
        for cpu in range(int(a), int(b or a) + 1):
            mask[cpu // 64] |= 1 << cpu % 64
    return {"__list__": mask}


class Stand:
    def __init__(self, gpus: int, kind: str):
        self.kind = kind
        self.nvml: list[dict] = [{"fn": "nvmlInit", "args": [], "result": None}]
        self.add("nvmlDeviceGetCount", [], gpus)
        self.count = gpus
        for i in range(gpus):
            self.add("nvmlDeviceGetHandleByIndex", [i], self.h(i))

    @staticmethod
    def h(i: int) -> dict:
        return {"__handle__": f"gpu{i}"}

    def add(self, fn: str, args: list, result) -> None:
        self.nvml.append({"fn": fn, "args": args, "result": result})

    def shown(self, fn: str, args: list, text: str, convert) -> None:
        """A cell as NVML answers it: N/A is NotSupported; a cell that does not parse is left out."""
        error = _error(text)
        if error is not None:
            self.nvml.append({"fn": fn, "args": args, "error": error})
        elif (value := convert(text)) is not None:
            self.add(fn, args, value)


def bus_id(i: int) -> str:
    return f"00000000:{i + 1:02X}:00.0"


def topology(stand: Stand, name: str, header: list[str], rows: dict[str, dict[str, str]]) -> None:
    gpus = [c for c in header if re.fullmatch(r"GPU\d+", c)]
    for i in range(len(gpus)):
        stand.add("nvmlDeviceGetPciInfo", [stand.h(i)], {"__struct__": "nvmlPciInfo_t", "busId": bus_id(i)})
    for i, a in enumerate(gpus):
        row = rows[a]
        nv = {j: int(row[b][2:]) for j, b in enumerate(gpus) if row[b].startswith("NV")}
        for j, b in enumerate(gpus[i + 1 :], i + 1):
            if row[b] in LEVELS:
                stand.add("nvmlDeviceGetTopologyCommonAncestor", [stand.h(i), stand.h(j)], LEVELS[row[b]])
        switched = sum(nv.values()) > MOST_LINKS
        ends = [None] * max(nv.values()) if switched else [j for j, n in sorted(nv.items()) for _ in range(n)]
        for link, peer in enumerate(ends):
            args = [stand.h(i), link]
            stand.add("nvmlDeviceGetNvLinkState", args, 1)
            stand.add("nvmlDeviceGetNvLinkRemoteDeviceType", args, 2 if switched else 0)
            if peer is not None:
                stand.add(
                    "nvmlDeviceGetNvLinkRemotePciInfo", args, {"__struct__": "nvmlPciInfo_t", "busId": bus_id(peer)}
                )
        cut = CUT_COLUMNS.get(name, ())
        if "CPU Affinity" in row and "CPU Affinity" not in cut:
            convert = lambda t: cpu_words(t, CPU_SET_WORDS)  # noqa: E731
            stand.shown("nvmlDeviceGetCpuAffinity", [stand.h(i), CPU_SET_WORDS], row["CPU Affinity"], convert)
        if "NUMA Affinity" in row:
            args = [stand.h(i), NODE_SET_WORDS, pynvml.NVML_AFFINITY_SCOPE_NODE]
            stand.shown(
                "nvmlDeviceGetMemoryAffinity", args, row["NUMA Affinity"], lambda t: cpu_words(t, NODE_SET_WORDS)
            )
        if "GPU NUMA ID" in row:
            stand.shown(
                "nvmlDeviceGetNumaNodeId", [stand.h(i)], row["GPU NUMA ID"], lambda t: int(t) if t.isdigit() else None
            )


def p2p(stand: Stand, name: str, text: str) -> None:
    cap = CAPS[name.split("_")[0].removeprefix("topo-p2p-")[0]]
    _, rows = read_matrix(text)
    for i in range(stand.count):
        for j in range(i + 1, stand.count):
            stand.add("nvmlDeviceGetP2PStatus", [stand.h(i), stand.h(j), cap], P2P[rows[f"GPU{i}"][f"GPU{j}"]])


def nvlink(stand: Stand, text: str) -> None:
    gpu = None
    for line in text.splitlines():
        if m := re.match(r"GPU (\d+): (.+?) \(UUID", line):
            gpu = int(m.group(1))
            if "nvlink -s" in stand.kind:
                stand.add("nvmlDeviceGetName", [stand.h(gpu)], m.group(2))
                stand.add("nvmlDeviceGetUUID", [stand.h(gpu)], MASKED_UUID.format(gpu))
        elif m := re.match(r"\s+Link (\d+): (\w+) Errors: (\d+)", line):
            counter = getattr(pynvml, f"NVML_NVLINK_ERROR_DL_{ERRORS[m.group(2)]}")
            stand.add("nvmlDeviceGetNvLinkErrorCounter", [stand.h(gpu), int(m.group(1)), counter], int(m.group(3)))
        elif m := re.match(r"\s+Link (\d+): (.+)", line):
            stand.add("nvmlDeviceGetNvLinkState", [stand.h(gpu), int(m.group(1))], 0 if "inactive" in m.group(2) else 1)


def gpu_count(text: str) -> int:
    if "GPU0" in text:
        return sum(1 for label in read_matrix(text)[1] if re.fullmatch(r"GPU\d+", label))
    return len(re.findall(r"^GPU \d+:", text, re.M))


def build(name: str, known: dict[str, str]) -> Recording:
    text = (DUMPS / name).read_text(encoding="utf-8")
    stand, invented = Stand(gpu_count(text), "nvlink -s" if name.startswith("nvlink-s") else "topo"), ""
    if name.startswith("topo-m") or name.startswith("topo-matrix"):
        topology(stand, name, *read_matrix(text))
        invented = (
            "; PCI bus ids are placeholders (GPU i is 00000000:<i+1>:00.0: the dump shows none) and which NVLink "
            "number leads where is made up (the dump gives only how many join each pair)"
        )
    elif name.startswith("topo-p2p"):
        p2p(stand, name, text)
    else:
        nvlink(stand, text)
    used = [name]
    for other in SAME_MACHINE.get(name, []):
        other_text = (DUMPS / other).read_text(encoding="utf-8")
        p2p(stand, other, other_text) if other.startswith("topo-p2p") else nvlink(stand, other_text)
        used.append(other)
    about = ", ".join(f"{n} ({known.get(n, 'source not listed')})" for n in used)
    return Recording(
        about=f"Stand-in for the interconnect of a {stand.count}-GPU machine, written by "
        f"scripts/recording_from_topo.py from the public dump(s) {', '.join(used)}",
        synthetic=f"built from the public dump(s) {about}, values as the dumps show them, calls they do not show "
        f"absent{invented}",
        packages={"nvidia-ml-py": version("nvidia-ml-py")},
        nvml=stand.nvml,
    )


def main() -> None:
    known = sources(DUMPS)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in sorted(p.name for p in DUMPS.glob("topo-m*.txt")) + ALONE:
        build(name, known).save(OUT / f"{name}.json")
        print(f"{name} -> {OUT / (name + '.json')}")


if __name__ == "__main__":
    main()
