"""How the GPUs are wired to each other, read through NVML: what `nvidia-smi topo -m`, `topo -p2p` and
`nvlink -s / -e` show, as raw values per GPU pair and per NVLink.

NVML gives the PCIe path of a pair (nvmlDeviceGetTopologyCommonAncestor) but no "NV#": like
nvidia-smi and NCCL, devcheck counts the active NVLinks whose far end is the other GPU (a direct
mesh: a DGX-1's NV1/NV2) or an NVSwitch on both sides (HGX A100/H100: a pair bonds as many links as
the GPU with fewer switch links has). The reads are bounded: per pair, one topology and five P2P
questions (28 pairs on 8 GPUs); per GPU, its links until NVML says there is no next one (the first
answer that is not a state: NotSupported on a GPU without NVLink, InvalidArgument past the last link).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from types import ModuleType
from typing import Any

from devcheck.machine.probes.nvml import Gpu, Reader, normalize_bus_id
from devcheck.report import Status

CPU_SET_WORDS = 16  # 64-bit words of CPU mask asked for: 1,024 CPUs (a constant, so recordings replay anywhere)
NODE_SET_WORDS = 4  # of NUMA node mask: 256 nodes
SWITCH = 2  # NVML_NVLINK_DEVICE_TYPE_SWITCH: the far end of an HGX board's links
LEVELS = {0: "INTERNAL", 10: "PIX", 20: "PXB", 30: "PHB", 40: "NODE", 50: "SYS"}  # NVML_TOPOLOGY_*, as topo -m
P2P_CAPS = {  # what topo -p2p r, w, n, a, p show
    "read": "NVML_P2P_CAPS_INDEX_READ",
    "write": "NVML_P2P_CAPS_INDEX_WRITE",
    "nvlink": "NVML_P2P_CAPS_INDEX_NVLINK",
    "atomics": "NVML_P2P_CAPS_INDEX_ATOMICS",
    "pcie": "NVML_P2P_CAPS_INDEX_PCI",
}
P2P_STATUS = {0: "OK", 1: "CNS", 2: "GNS", 3: "TNS", 4: "DR", 5: "NS", 6: "U"}  # NVML_P2P_STATUS_*, as topo -p2p
ERROR_COUNTERS = {  # what nvidia-smi nvlink -e shows
    "replay": "NVML_NVLINK_ERROR_DL_REPLAY",
    "recovery": "NVML_NVLINK_ERROR_DL_RECOVERY",
    "crc_flit": "NVML_NVLINK_ERROR_DL_CRC_FLIT",
    "crc_data": "NVML_NVLINK_ERROR_DL_CRC_DATA",
}


@dataclass
class Link:
    gpu: int
    link: int
    active: bool
    version: int | None = None
    remote_type: int | None = None  # NVML_NVLINK_DEVICE_TYPE_*: GPU 0, IBM NPU 1, switch 2
    remote_bus_id: str | None = None
    errors: dict[str, int | None] = field(default_factory=dict)  # ERROR_COUNTERS' names -> count since boot


@dataclass
class Pair:
    a: int
    b: int
    level: int | None  # NVML_TOPOLOGY_*: the PCIe path; None when NVML did not say
    nvlinks: int  # active NVLinks bonding the pair (direct, or through NVSwitches)
    p2p: dict[str, int | None] = field(default_factory=dict)  # P2P_CAPS -> NVML_P2P_STATUS_*, None: unread


@dataclass
class Place:
    """Where a GPU sits for the CPUs: the CPUs and NUMA nodes nearest it, and its own memory's node."""

    gpu: int
    cpus: list[int] | None = None
    numa_nodes: list[int] | None = None
    gpu_numa_id: int | None = None


@dataclass
class Interconnect:
    gpus: list[int]
    pairs: list[Pair]
    links: dict[int, list[Link]]
    places: dict[int, Place]

    def pair(self, a: int, b: int) -> Pair | None:
        a, b = min(a, b), max(a, b)
        return next((p for p in self.pairs if (p.a, p.b) == (a, b)), None)


def constant(nvml: ModuleType, name: str) -> int:
    """nvidia-ml-py's constant; NVML_P2P_CAPS_INDEX_READ is written `= 0,` there, a tuple NVML cannot take."""
    value = getattr(nvml, name)
    return value[0] if isinstance(value, tuple) else value


def _bits(words: Any) -> list[int]:
    """A ctypes array of 64-bit masks (NVML's CPU and node sets) as the indexes of its set bits."""
    return [64 * w + bit for w, word in enumerate(words) for bit in range(64) if int(word) >> bit & 1]


def read_links(read: Reader, gpu: Gpu, far_ends: bool = True) -> list[Link]:
    """A GPU's links, each with its error counters and, if asked, where it leads."""
    nvml, h, links = read.nvml, gpu.handle, []
    for n in range(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18)):
        state = read("nvmlDeviceGetNvLinkState", h, n)
        if state.status is not Status.OK:
            break
        link = Link(gpu.nvml_index, n, bool(state.value), errors=error_counts(read, h, n))
        if link.active and far_ends:
            link.version = read("nvmlDeviceGetNvLinkVersion", h, n).value
            link.remote_type = read("nvmlDeviceGetNvLinkRemoteDeviceType", h, n).value
            remote = read("nvmlDeviceGetNvLinkRemotePciInfo", h, n, convert=lambda p: normalize_bus_id(p.busId))
            link.remote_bus_id = remote.value
        links.append(link)
    return links


def error_counts(read: Reader, h: Any, n: int) -> dict[str, int | None]:
    return {
        name: read("nvmlDeviceGetNvLinkErrorCounter", h, n, constant(read.nvml, counter)).value
        for name, counter in ERROR_COUNTERS.items()
    }


def read_counters(nvml: ModuleType, gpus: list[Gpu]) -> dict[tuple[int, int, str], int]:
    """Every readable NVLink error counter, {(gpu, link, counter): count}: read before and after a stress
    window, the difference says which links made errors under load."""
    read, found = Reader(nvml), {}
    for gpu in (g for g in gpus if g.handle is not None and not g.lost):
        for link in read_links(read, gpu, far_ends=False):
            found |= {(gpu.nvml_index, link.link, k): v for k, v in link.errors.items() if v is not None}
    return found


def _place(read: Reader, gpu: Gpu) -> Place:
    nvml, h = read.nvml, gpu.handle
    cpus = read("nvmlDeviceGetCpuAffinity", h, CPU_SET_WORDS, convert=_bits).value
    scope = constant(nvml, "NVML_AFFINITY_SCOPE_NODE")
    nodes = read("nvmlDeviceGetMemoryAffinity", h, NODE_SET_WORDS, scope, convert=_bits).value
    return Place(gpu.nvml_index, cpus or None, nodes or None, read("nvmlDeviceGetNumaNodeId", h).value)


def nvlinks_between(a: int, b: int, links: dict[int, list[Link]], bus_ids: dict[int, str | None]) -> int:
    """Active links from `a` whose far end is `b`, plus, when both reach NVSwitches, the switch links of
    the one with fewer (what a pair can bond through the switches)."""
    up = {g: [x for x in links.get(g, []) if x.active] for g in (a, b)}
    direct = sum(1 for x in up[a] if x.remote_type != SWITCH and x.remote_bus_id and x.remote_bus_id == bus_ids[b])
    switched = [sum(1 for x in up[g] if x.remote_type == SWITCH) for g in (a, b)]
    return direct + min(switched)


def read_interconnect(nvml: ModuleType, gpus: list[Gpu]) -> Interconnect:
    """Every pair and every link of the GPUs NVML could reach (a lost GPU's are not asked: GpuLost is the
    caller's, as for gpu_reading.read)."""
    read = Reader(nvml)
    reachable = [g for g in gpus if g.handle is not None and not g.lost and not g.error]
    links = {g.nvml_index: read_links(read, g) for g in reachable}
    bus_ids = {g.nvml_index: g.bus_id for g in reachable}
    pairs = []
    for x, y in combinations(reachable, 2):
        level = read("nvmlDeviceGetTopologyCommonAncestor", x.handle, y.handle)
        p2p = {
            cap: read("nvmlDeviceGetP2PStatus", x.handle, y.handle, constant(nvml, index))
            for cap, index in P2P_CAPS.items()
        }
        pairs.append(
            Pair(
                x.nvml_index,
                y.nvml_index,
                level.value if level.status is Status.OK else None,
                nvlinks_between(x.nvml_index, y.nvml_index, links, bus_ids),
                {cap: f.value if f.status is Status.OK else None for cap, f in p2p.items()},
            )
        )
    places = {g.nvml_index: _place(read, g) for g in reachable}
    return Interconnect([g.nvml_index for g in reachable], pairs, links, places)


def counters_now() -> dict[tuple[int, int, str], int]:
    """read_counters on every GPU NVML lists ({} without a driver): `devcheck check` reads it before and
    after its stress window."""
    from devcheck.machine.probes.nvml import read_driver
    from devcheck.machine.replay import seam

    driver = read_driver()
    return read_counters(seam.nvml(), driver.gpus) if driver.loaded else {}
