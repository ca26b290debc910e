"""The interconnect (issue 21): `devcheck env`'s GPU x GPU matrix equals `nvidia-smi topo -m` on every
public dump that has one, and its NVLink and P2P checks warn or fail where they should and nowhere else.

Each stand-in (tests/fixtures/recordings/topology/<dump>.json) is written by scripts/recording_from_topo.py
from the public dumps in tests/fixtures/topology/ (sources in SOURCES.md there). The expected matrix is
read here from the dump itself, with a parser of this test's own, not from the script's output.
"""

import importlib.util
import re
from pathlib import Path

import pynvml
import pytest

from devcheck.commands.env import collect
from devcheck.machine.probes import links, topology
from devcheck.machine.probes.nvml import read_driver
from devcheck.machine.replay import seam
from devcheck.machine.replay.recording import Handle, Recording
from devcheck.report import Status
from tests.recordings import load, nvml_error, variant

FIXTURES = Path(__file__).parent / "fixtures"
DUMPS, FOLDER = FIXTURES / "topology", FIXTURES / "recordings" / "topology"
TOPO = sorted(p.name for p in DUMPS.glob("topo-m*.txt"))
CUT = {"topo-matrix_8x-h800-nv8-4nic-truncated-columns_1.txt"}  # its affinity columns lost characters
H100 = "topo-m_8x-h100-nv18_ml-engineering_1.txt"
TOPOLOGY_CHECKS = ("nvlink", "p2p", "topology")


def stand_in(name: str) -> Recording:
    return Recording.load(FOLDER / f"{name}.json")


def env(recording: Recording):
    with seam.replay(recording):
        return collect(environ={})


def dump_matrix(name: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The dump's own matrix: header columns and {GPUn: {column: cell}}, tabs or spaces, ANSI removed."""
    text = re.sub("\x1b\\[\\d*m", "", (DUMPS / name).read_text(encoding="utf-8"))
    lines = [[c.strip() for c in re.split(r"\t| {2,}", line.strip()) if c.strip()] for line in text.splitlines()]
    start = next(i for i, cells in enumerate(lines) if cells[:1] == ["GPU0"])
    header = lines[start]
    rows = {cells[0]: dict(zip(header, cells[1:])) for cells in lines[start + 1 :] if cells[:1] and "GPU" in cells[0]}
    return header, rows


def na(cell: str):
    return None if cell == "N/A" else cell


def topology_problems(report) -> list:
    return [
        (c.id, c.status, c.summary)
        for c in report.checks
        if c.id.split(".")[-1].startswith(TOPOLOGY_CHECKS) and c.status is not Status.OK
    ]


# --- the matrix equals nvidia-smi's ---------------------------------------------------------------------


@pytest.mark.parametrize("dump", TOPO)
def test_the_matrix_equals_the_dumps_cell_by_cell(dump):
    header, rows = dump_matrix(dump)
    gpus = [c for c in header if re.fullmatch(r"GPU\d+", c)]
    report = env(stand_in(dump))
    got = report.to_dict()["data"]["topology"]
    assert [row["gpu"] for row in got] == list(range(len(gpus)))
    for a, row in zip(gpus, got):
        assert [row[b.lower()] for b in gpus] == [rows[a][b] for b in gpus], f"{dump}: row {a}"
        if "CPU Affinity" in header and dump not in CUT:
            assert row["cpu_affinity"] == na(rows[a]["CPU Affinity"])
        if "NUMA Affinity" in header:
            assert row["numa_affinity"] == na(rows[a]["NUMA Affinity"])
        if "GPU NUMA ID" in header:
            assert row["gpu_numa_id"] == (None if rows[a]["GPU NUMA ID"] == "N/A" else int(rows[a]["GPU NUMA ID"]))
    assert topology_problems(report) == []  # every machine in these dumps was healthy


def test_a_cut_column_is_not_guessed():
    """The H800 file's CPU affinity lost its first characters to the terminal's width ("-31,64-95"):
    the stand-in leaves it out, devcheck says it does not know, and the matrix itself is whole."""
    got = env(stand_in(next(iter(CUT)))).to_dict()["data"]["topology"]
    assert {row["cpu_affinity"] for row in got} == {None}
    assert [row["numa_affinity"] for row in got] == ["0"] * 4 + ["1"] * 4
    assert {row[f"gpu{b}"] for row in got for b in range(8) if b != row["gpu"]} == {"NV8"}


def test_every_dump_has_a_stand_in_that_the_script_writes_as_committed():
    spec = importlib.util.spec_from_file_location(
        "recording_from_topo", FIXTURES.parents[1] / "scripts" / "recording_from_topo.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    names = TOPO + script.ALONE
    assert sorted(p.name.removesuffix(".json") for p in FOLDER.glob("*.json")) == sorted(names)
    known = script.sources(DUMPS)
    for name in names:
        built = script.build(name, known)
        assert built.nvml == stand_in(name).nvml, name
        assert built.synthetic.startswith("built from the public dump(s) ")
        assert "(https://github.com/" in built.synthetic and "source not listed" not in built.synthetic


# --- the machines, one by one -------------------------------------------------------------------------


def rows_of(report, key: str) -> list[dict]:
    return report.to_dict()["data"][key]


def test_8x_h100_nv18_is_healthy_with_p2p_read_ok_and_zero_link_errors():
    report = env(stand_in(H100))
    nvlinks = rows_of(report, "nvlinks")
    assert [(r["links"], r["active"], r["far_ends"]) for r in nvlinks] == [(18, 18, "NVSwitch x18")] * 8
    # nvlink -e of GPU 0 shows links 0, 1 and 17 at zero; nothing is known of the other GPUs' counters
    assert (nvlinks[0]["replay_errors"], nvlinks[0]["crc_flit_errors"], nvlinks[0]["crc_data_errors"]) == (0, 0, None)
    assert nvlinks[1]["replay_errors"] is None
    assert {(r["read"], r["write"]) for r in rows_of(report, "p2p")} == {("OK", None)}
    assert len(rows_of(report, "p2p")) == 28
    assert report.check("nvlink").status is Status.OK and "144 of 144" in report.check("nvlink").summary
    assert report.check("p2p").summary == "P2P allowed on all 28 NVLink-connected pairs (read)"
    assert [c.id for c in report.checks if c.status is not Status.OK] == ["machine.replay", "cupy.installed"]


def test_8x_a100_nv12_through_nvswitches():
    report = env(stand_in("topo-m_8x-a100-nv12-17nic_1.txt"))
    assert {r["far_ends"] for r in rows_of(report, "nvlinks")} == {"NVSwitch x12"}
    assert report.check("nvlink").status is Status.OK


def test_dgx1_v100_hybrid_cube_mesh_links_each_gpu_to_its_four_neighbours():
    report = env(stand_in("topo-m_8x-v100-sxm2-dgx1-hybrid-cube-mesh-mlx5_1.txt"))
    nvlinks = rows_of(report, "nvlinks")
    assert nvlinks[0]["far_ends"] == "GPU1 x1, GPU2 x1, GPU3 x2, GPU4 x2"  # the dump's row: NV1 NV1 NV2 NV2 SYS...
    assert {r["links"] for r in nvlinks} == {6}  # a V100 SXM2 has six
    assert rows_of(report, "topology")[0]["gpu5"] == "SYS"
    assert report.check("nvlink").summary == "NVLink: 48 of 48 links up, no link errors"


def test_a_pcie_box_has_no_nvlink_and_no_topology_check():
    report = env(stand_in("topo-m_5x-geforce-mixed-numa-sys-phb-node_1.txt"))
    assert rows_of(report, "nvlinks") == [] and rows_of(report, "p2p") == []
    assert report.check("nvlink") is None and report.check("p2p") is None  # nothing read, nothing judged
    assert [r["gpu1"] for r in rows_of(report, "topology")] == ["SYS", "X", "PHB", "NODE", "NODE"]


def test_one_gpu_has_no_matrix():
    report = env(load("h100-sxm"))
    assert "topology" not in report.to_dict()["data"]
    assert report.check("nvlink") is None and report.check("p2p") is None


# --- a link down ---------------------------------------------------------------------------------------


def test_the_public_v100_dump_with_inactive_links_warns_on_exactly_those_gpus():
    report = env(stand_in("nvlink-s_8x-v100-sxm2-32gb-inactive-links_1.txt"))
    warned = {c.id: c.summary for c in report.checks if c.id.endswith(".nvlink")}
    assert warned == {
        "gpu3.nvlink": "GPU 3: NVLink 3, 5 inactive while its other 4 links are up",
        "gpu4.nvlink": "GPU 4: NVLink 1 inactive while its other 5 links are up",
        "gpu5.nvlink": "GPU 5: NVLink 0, 4 inactive while its other 4 links are up",
        "gpu6.nvlink": "GPU 6: NVLink 1 inactive while its other 5 links are up",
    }
    assert all(report.check(i).status is Status.WARN for i in warned)
    assert report.check("nvlink") is None  # no "all up" once one is down


def test_one_h100_link_down_warns_and_the_matrix_shows_one_link_fewer():
    down = variant(
        stand_in(H100), "GPU 3's NVLink 5 inactive", nvml={("nvmlDeviceGetNvLinkState", Handle("gpu3"), 5): 0}
    )
    report = env(down)
    assert [(c.id, c.status) for c in report.checks if "nvlink" in c.id] == [("gpu3.nvlink", Status.WARN)]
    matrix = rows_of(report, "topology")
    assert [matrix[3][f"gpu{b}"] for b in range(8)] == ["NV17"] * 3 + ["X"] + ["NV17"] * 4
    assert matrix[0]["gpu1"] == "NV18"


def test_a_gpu_without_nvlink_beside_linked_ones_is_not_a_link_down():
    """An NVLink bridge joins two cards of four (A40 pairs): a card with no link active has no sibling up."""
    idle = variant(
        stand_in(H100),
        "GPU 7's 18 links all inactive",
        nvml={("nvmlDeviceGetNvLinkState", Handle("gpu7"), n): 0 for n in range(18)},
    )
    report = env(idle)
    assert report.check("gpu7.nvlink") is None
    assert rows_of(report, "topology")[7]["gpu0"] is None  # NV# gone and the PCIe path not in the dump


# --- link errors ---------------------------------------------------------------------------------------


REPLAY = pynvml.NVML_NVLINK_ERROR_DL_REPLAY


def with_errors(count: int) -> Recording:
    return variant(
        stand_in(H100),
        f"GPU 0's NVLink 1 with {count} replay errors",
        nvml={("nvmlDeviceGetNvLinkErrorCounter", Handle("gpu0"), 1, REPLAY): count},
    )


def test_nonzero_link_errors_warn_and_zero_ones_do_not():
    report = env(with_errors(3))
    check = report.check("gpu0.nvlink_errors")
    assert check.status is Status.WARN and check.summary == "GPU 0: NVLink errors since boot: link 1 replay 3"
    assert env(with_errors(0)).check("gpu0.nvlink_errors") is None


def counters(recording: Recording) -> dict:
    with seam.replay(recording):
        return links.read_counters(seam.nvml(), read_driver().gpus)


def test_errors_that_grow_between_two_reads_warn():
    before, after = counters(with_errors(3)), counters(with_errors(10))
    assert before[(0, 1, "replay")] == 3 and before[(0, 17, "crc_flit")] == 0
    grew = topology.growth_checks(before, after)
    assert [(c.id, c.status, c.summary) for c in grew] == [
        ("gpu0.nvlink_errors_grew", Status.WARN, "GPU 0: NVLink errors grew during the stress window: link 1 replay +7")
    ]
    assert topology.growth_checks(before, counters(with_errors(3))) == []


# --- P2P -----------------------------------------------------------------------------------------------


READ = 0  # NVML_P2P_CAPS_INDEX_READ, which nvidia-ml-py writes as the tuple (0,)


def test_p2p_refused_between_nvlinked_gpus_fails():
    refused = variant(
        stand_in(H100),
        "P2P read between GPUs 0 and 1 disabled by regkey",
        nvml={
            ("nvmlDeviceGetP2PStatus", Handle("gpu0"), Handle("gpu1"), READ): pynvml.NVML_P2P_STATUS_DISABLED_BY_REGKEY
        },
    )
    report = env(refused)
    check = report.check("p2p")
    assert check.status is Status.FAIL and "GPU 0-1 read DR" in check.summary
    assert not report.ok


def test_p2p_not_supported_over_pcie_on_geforce_is_not_a_failure():
    """The 2x RTX 2080 Ti's own topo -p2p p says NS, the 2x RTX 5090's -p2p rw says GNS, the 2x L4's CNS:
    those cards and boards do not do P2P over PCIe, which NCCL and CUDA handle by staging through the host."""
    for dump, code in (
        ("topo-m_2x-rtx2080ti-autodl-pix_1.txt", "NS"),
        ("topo-m_2x-rtx5090-threadripper-phb_1.txt", "GNS"),
        ("topo-p2p-r_2x-l4-cns_1.txt", "CNS"),
    ):
        report = env(stand_in(dump))
        check = report.check("p2p")
        assert check.status is Status.OK, dump
        assert (
            check.summary
            == f"no pair is NVLink-connected; over PCIe, 1 pair(s) without P2P ({code}): copies go through host memory"
        )
        assert report.ok


def test_the_p2p_index_devcheck_passes_is_an_integer_nvml_takes():
    assert pynvml.NVML_P2P_CAPS_INDEX_READ == (0,)  # nvidia-ml-py's own line is `NVML_P2P_CAPS_INDEX_READ = 0,`
    assert links.constant(pynvml, "NVML_P2P_CAPS_INDEX_READ") == 0
    assert links.constant(pynvml, "NVML_P2P_CAPS_INDEX_PCI") == 4
    assert links.SWITCH == pynvml.NVML_NVLINK_DEVICE_TYPE_SWITCH


def test_the_reads_are_bounded_on_8_gpus(tmp_path):
    """28 pairs x (1 topology + 5 P2P), 8 x 18 links x (state + 4 counters + version, far end's type and
    bus id) and 8 x 3 affinity reads, plus one state read per GPU that ends its list of links."""
    with seam.replay(stand_in(H100)), seam.record(tmp_path / "asked.json", {}):
        collect(environ={})
    asked = [c["fn"] for c in Recording.load(tmp_path / "asked.json").nvml]
    pair_calls = [f for f in asked if f in ("nvmlDeviceGetTopologyCommonAncestor", "nvmlDeviceGetP2PStatus")]
    link_calls = [f for f in asked if f.startswith("nvmlDeviceGetNvLink")]
    assert len(pair_calls) == 28 * 6
    assert asked.count("nvmlDeviceGetNvLinkState") == 8 * 19
    assert len(link_calls) == 8 * 18 * 8 + 8


def test_a_gpu_lost_while_its_links_are_read_skips_the_matrix_and_says_why():
    lost = variant(
        stand_in(H100),
        "GPU 2 lost (NVML_ERROR_GPU_IS_LOST) when its first NVLink is read",
        nvml={("nvmlDeviceGetNvLinkState", Handle("gpu2"), 0): {"error": nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)}},
    )
    report = env(lost)
    check = report.check("topology")
    assert check.status is Status.FAIL and check.summary.startswith("a GPU was lost while the interconnect was read")
    assert "topology" not in report.to_dict()["data"]
