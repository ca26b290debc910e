"""GPU to GPU: the link peaks against public measurements, the P2P matrix and the NCCL all-reduce on
N-GPU replays of the recorded H100 (with and without peer access), CUDA's peer-access errors in the
stand-in, and check's P2P step. Warnings are errors here: a copy or an operand that crosses devices
without CuPy's consent fails the test."""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import pytest

from devcheck.commands import bench, check
from devcheck.commands.bench import interconnect
from devcheck.commands.check import steps
from devcheck.commands.check.thresholds import GPU_FLOORS
from devcheck.commands.check.verdicts import p2p_check
from devcheck.machine.model import peaks
from devcheck.machine.model.devices import select
from devcheck.machine.replay import seam
from devcheck.machine.replay.recording import Handle
from devcheck.options import matmul_shape
from devcheck.report import Report, Status
from tests.recordings import h100, n_gpus, nvml_error, variant
from tests.schemas import validate

pytestmark = pytest.mark.filterwarnings("error")

TOPOLOGY = Path(__file__).parent / "fixtures" / "topology"
LINKS = 18  # an H100 SXM's NVLinks: 18 in public `nvidia-smi nvlink -s` and `topo -m` (NV18) of 8x H100 nodes
NVLINK_4 = 6  # nvmlDeviceGetNvLinkVersion's answer for NVLink 4.0 (NVML_NVLINK_VERSION_4_0 in nvidia-ml-py)


# --- public measurements against the peaks ------------------------------------------------------------


def matrix(text: str, title: str) -> list[list[float]]:
    """A p2pBandwidthLatencyTest matrix (rows of GB/s) from its printed output, found by its title line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows = []
    for line in lines[start + 2 :]:
        cells = line.split()
        if not cells or not cells[0].isdigit() or int(cells[0]) != len(rows):
            break
        rows.append([float(c) for c in cells[1:]])
    return rows


def pairs_of(rows: list[list[float]]) -> list[float]:
    """Off the diagonal: GPU to another GPU (the diagonal is a copy within one GPU)."""
    return [v for i, row in enumerate(rows) for j, v in enumerate(row) if i != j]


def public(name: str, title: str) -> list[float]:
    return pairs_of(matrix((TOPOLOGY / name).read_text(), title))


WRITES = "Unidirectional P2P=Enabled Bandwidth (P2P Writes) Matrix"


def test_the_parser_reads_a_whole_matrix():
    rows = matrix((TOPOLOGY / "p2pBandwidthLatencyTest_h100-sxm-8gpu_fragment_1.txt").read_text(), WRITES)
    assert len(rows) == 8 and all(len(r) == 8 for r in rows)
    assert rows[0][:2] == [2494.51, 364.13] and rows[7][7] == 2519.78


@pytest.mark.parametrize(
    "name, version, links, peak",
    [
        ("p2pBandwidthLatencyTest_h100-sxm-8gpu_fragment_1.txt", 6, 18, 450.0),  # NVLink 4: 18 x 25
        ("p2pBandwidthLatencyTest_a100-sxm-8gpu_fragment_1.txt", 5, 12, 300.0),  # NVLink 3 (an A100 answers 5)
    ],
)
def test_public_p2p_writes_are_a_plausible_share_of_the_nvlink_peak(name, version, links, peak):
    link = peaks.link_peak(version, links, 5, 16)  # NVLink wins over the PCIe link
    assert link.value == peak and f"{links} active links x 25 GB/s" in link.basis
    measured = public(name, WRITES)
    assert len(measured) == 56
    shares = [v / link.value for v in measured]
    assert 0.6 <= min(shares) and max(shares) <= 1.0  # H100 81-87%, A100 90-92%
    assert statistics.median(shares) >= GPU_FLOORS["p2p"]  # healthy nodes pass check's floor


def test_public_p2p_disabled_fails_the_floor():
    """The same HGX H100 with P2P off copies through the host at 8% of NVLink: check's floor fails it."""
    measured = public(
        "p2pBandwidthLatencyTest_hgx-h100-sxm-8gpu_fragment_issue-nccl-1264.txt", "Unidirectional P2P=Disabled"
    )
    assert len(measured) == 56
    assert max(measured) / peaks.nvlink_peak(NVLINK_4, LINKS).value < GPU_FLOORS["p2p"] / 5


def test_public_pcie_pair_without_peer_access_against_its_pcie_peak():
    """Two RTX 2080 Ti (PCIe gen 3 x16, 15.8 GB/s) that cannot reach each other: 5.7 GB/s staged."""
    text = (TOPOLOGY / "p2pBandwidthLatencyTest_2x-rtx2080ti-pcie-no-p2p_full_1.txt").read_text()
    assert "Device=0 CANNOT Access Peer Device=1" in text
    pcie = peaks.link_peak(None, 0, 3, 16)
    assert pcie.value == pytest.approx(15.76) and "PCIe gen 3 x16" in pcie.basis
    staged = pairs_of(matrix(text, "Unidirectional P2P=Disabled"))
    assert staged == [5.71, 5.70] and 0.3 < max(staged) / pcie.value < 0.4
    both = pairs_of(matrix(text, "Bidirectional P2P=Disabled"))
    assert max(both) / peaks.pair_peak(pcie, pcie, directions=2).value < 0.2


def test_busbw_formula_against_nccl_tests():
    """nccl-tests' own busbw column is algbw x 2(n-1)/n for its 8 ranks, to its printed precision."""
    rows = []
    for line in (TOPOLOGY / "nccl-all_reduce_perf_p5-8xh100-awsbatch-mpirun-prefixed_1.txt").read_text().splitlines():
        cells = re.sub(r"^\[\d+,\d+\]<stdout>:", "", line).split()
        if cells and cells[0].isdigit():
            rows.append((int(cells[0]), float(cells[6]), float(cells[7])))
    assert rows[0][0] == 8 and rows[-1][0] == 16 * 2**30 and len(rows) == 32
    for _, algbw, busbw in rows:  # both columns rounded to 0.01
        assert peaks.bus_bandwidth(algbw, 8) == pytest.approx(busbw, abs=0.005 * 1.75 + 0.005)
    assert rows[-1][2] / peaks.nvlink_peak(NVLINK_4, LINKS).value > 1  # NVLS reduces in the switch: above the wire


def test_peak_edge_cases():
    assert peaks.nvlink_peak(None, 18).value is None and "unknown version" in peaks.nvlink_peak(None, 18).basis
    assert peaks.nvlink_peak(7, 18).value == 900.0  # NVLink 5, B200
    assert peaks.link_peak(None, 0, None, None).value is None
    slow, fast = peaks.pcie_peak(4, 16), peaks.nvlink_peak(6, 18)
    assert peaks.pair_peak(fast, slow) == slow and peaks.pair_peak(fast, fast, directions=2).value == 900.0
    assert peaks.pair_peak(fast, peaks.Peak(None, "GB/s", "why")).basis == "why"


# --- replays --------------------------------------------------------------------------------------------


def nodes(n: int, peer: bool) -> object:
    """n recorded H100s; with peer access, each with 18 active NVLinks of NVLink 4 (an HGX H100), without,
    a PCIe GPU whose NVLink NVML does not support (links past the last are not in the recording)."""
    base = n_gpus(h100(), n, peer=peer)
    gpu = [Handle(f"gpu{k}") for k in range(n)]
    if peer:
        answers = {("nvmlDeviceGetNvLinkState", h, link): 1 for h in gpu for link in range(LINKS)}
        answers |= {("nvmlDeviceGetNvLinkVersion", h, 0): NVLINK_4 for h in gpu}
        why = f"{LINKS} active NVLink 4 links per GPU, as `nvidia-smi nvlink -s` shows on public 8x H100 SXM nodes"
    else:
        answers = {("nvmlDeviceGetNvLinkState", h, 0): {"error": nvml_error(3)} for h in gpu}  # NOT_SUPPORTED
        why = "no NVLink (NVML_ERROR_NOT_SUPPORTED), as on a PCIe card"
    return variant(base, why, nvml=answers)


def run_bench(recording, cases=("p2p", "allreduce"), seconds=4.0, size=None) -> dict:
    with seam.replay(recording):
        settings = bench.Settings(shape=matmul_shape(size, None), cases=cases, max_time=seconds)
        return bench.run(settings, select("auto")).to_dict()


def checks_of(doc: dict) -> dict:
    return {c["id"]: c for c in doc["checks"]}


@pytest.mark.parametrize("n", [2, pytest.param(8, marks=pytest.mark.slow)])  # 8: 56 pairs, seconds
def test_bench_p2p_matrix_with_peer_access(n):
    doc = run_bench(nodes(n, peer=True), seconds=1.0 if n == 2 else 3.0)
    records = doc["data"]["records"]
    writes = [r for r in records if r["case"].startswith("p2p write")]
    both = [r for r in records if r["case"].startswith("p2p bidirectional")]
    assert len(writes) == n * (n - 1) and len(both) == n * (n - 1) // 2
    assert {(r["device"], r["peer"]) for r in writes} == {
        (f"cuda:{i}", f"cuda:{j}") for i in range(n) for j in range(n) if i != j
    }
    for r in writes:
        assert r["path"] == "p2p" and r["intact"] and r["timer"] == "CUDA events"
        assert r["peak"]["value"] == 450.0 and r["peak"]["basis"] == "NVLink 4: 18 active links x 25 GB/s per direction"
        assert r["percent_of_peak"] == pytest.approx(100 * r["rate"] / 450.0)
        assert r["rate"] == pytest.approx(r["bytes"] / r["stats"]["median_s"] / 1e9)
        assert 0 < r["latency_s"] < r["stats"]["median_s"]
    for r in both:
        assert r["peak"]["value"] == 900.0 and r["bytes"] == 2 * r["shape"][0] and r["intact"]
    validate(doc)
    assert doc["verdict"].startswith("bench: GPU to GPU: every GPU-to-GPU copy arrived intact")
    rows = doc["data"]["p2p"]
    assert len(rows) == n * (n - 1) and {"write_gb_per_s", "both_ways_gb_per_s", "latency_us"} <= set(rows[0])
    found = checks_of(doc)
    assert found["bench.p2p"]["status"] == "ok" and "bench.p2p.peer_access" not in found
    skip = found[f"bench.allreduce.cuda:0-{n - 1}"]
    assert skip["status"] == "skip"
    assert 'pip install "nvidia-nccl-cu13>=2.27.7,<3"' in skip["summary"]  # the recorded CuPy is cupy-cuda13x
    assert "allreduce" not in doc["data"]


def test_bench_p2p_without_peer_access_measures_the_staged_copy():
    doc = run_bench(nodes(2, peer=False), cases=("p2p",))
    writes = [r for r in doc["data"]["records"] if r["case"].startswith("p2p write")]
    assert len(writes) == 2
    for r in writes:
        assert r["path"] == "staged through host" and r["intact"]
        assert r["peak"]["value"] == pytest.approx(63.008)  # PCIe gen 5 x16, the recorded H100's link
        assert r["peak"]["basis"].startswith("no peer access: the driver stages each copy through host memory")
    found = checks_of(doc)
    assert found["bench.p2p.peer_access"]["status"] == "warn"
    assert found["bench.p2p.peer_access"]["detail"] == "cuda:0->cuda:1, cuda:1->cuda:0"


def test_a_link_that_flips_bits_fails_bench():
    broken = variant(nodes(2, peer=True), "a link that flips a bit in every copy", faults={"memcpyPeerAsync": 1.0})
    found = checks_of(run_bench(broken, cases=("p2p",)))
    assert found["bench.p2p"]["status"] == "fail"
    assert "cuda:0->cuda:1" in found["bench.p2p"]["summary"] and "cuda:0<->cuda:1" in found["bench.p2p"]["summary"]


def test_one_gpu_skips_p2p_only_when_asked_for():
    one = nodes(1, peer=False)
    assert not [c for c in run_bench(one, cases=bench.CASES[:1], seconds=10, size=400)["checks"] if "p2p" in c["id"]]
    found = checks_of(run_bench(one, cases=("p2p",)))
    assert found["bench.p2p.cuda:0"]["status"] == "skip" and "two or more GPUs" in found["bench.p2p.cuda:0"]["summary"]
    assert "p2p on cuda:0 skipped" in found["bench.p2p.cuda:0"]["summary"]


# --- the stand-in: CUDA's own refusals --------------------------------------------------------------------


def test_standin_peer_access_and_copies_refuse_as_cuda_does():
    with seam.replay(nodes(2, peer=False)):
        cupy = seam.cupy()
        runtime = cupy.cuda.runtime
        with pytest.raises(runtime.CUDARuntimeError, match="cudaErrorPeerAccessUnsupported") as e:
            runtime.deviceEnablePeerAccess(1)
        assert e.value.status == 217
        with cupy.cuda.Device(0):
            a = cupy.cuda.alloc(64)
        with cupy.cuda.Device(1):
            b = cupy.cuda.alloc(64)
        runtime.memcpyPeerAsync(b.ptr, 1, a.ptr, 0, 64, 0)  # no peer access: still copies (staged)
        with pytest.raises(runtime.CUDARuntimeError, match="cudaErrorInvalidValue"):
            runtime.memcpyPeerAsync(b.ptr, 0, a.ptr, 0, 64, 0)  # b is not on device 0
        with pytest.raises(runtime.CUDARuntimeError, match="cudaErrorInvalidDevice"):
            runtime.memcpyPeerAsync(b.ptr, 2, a.ptr, 0, 64, 0)
        with cupy.cuda.Device(1):
            stream = cupy.cuda.Stream(non_blocking=True)
        with pytest.raises(runtime.CUDARuntimeError, match="cudaErrorInvalidResourceHandle"):
            cupy.cuda.Event().record(stream)  # an event of device 0 on device 1's stream
        nccl, warned = seam.nccl()
        assert nccl.available is False and not hasattr(nccl, "NcclCommunicator") and warned == ""
    with seam.replay(nodes(2, peer=True)):
        runtime = seam.cupy().cuda.runtime
        with pytest.raises(runtime.CUDARuntimeError, match="cudaErrorInvalidDevice"):
            runtime.deviceEnablePeerAccess(0)  # the current device itself
        with pytest.raises(runtime.CUDARuntimeError, match="cudaErrorPeerAccessNotEnabled"):
            runtime.deviceDisablePeerAccess(1)
        runtime.deviceEnablePeerAccess(1)
        with pytest.raises(runtime.CUDARuntimeError, match="cudaErrorPeerAccessAlreadyEnabled") as e:
            runtime.deviceEnablePeerAccess(1)
        assert e.value.status == interconnect.ALREADY_ENABLED
        interconnect.enable_peer_access(seam.cupy(), 0, 1)  # already on: fine


# --- check ------------------------------------------------------------------------------------------------


def p2p_step(n: int, budget: str, peer: bool = True) -> tuple[Report, float, float]:
    with seam.replay(nodes(n, peer=peer)):
        selection = select("auto")
        work = steps.Work(check.Settings(budget=budget), selection, Report("check"), check.Clock(10.0))
        estimate = dict((name, fn) for name, _, _, fn in steps.ORDER)["p2p"](work)
        began = time.perf_counter()
        steps.p2p(work)
        return work.report, estimate, time.perf_counter() - began


def test_check_p2p_step_on_8_gpus_each_to_the_next_in_10s():
    report, estimate, seconds = p2p_step(8, "10s")
    found = {c.id: c for c in report.checks}
    assert found["check.p2p"].status is Status.OK and "8 GPU pairs" in found["check.p2p"].summary
    assert found["check.p2p.speed"].status is Status.SKIP  # replay: NumPy's speed
    assert 0 < estimate < 1.5 and seconds < 3 * estimate  # a loaded 2-core VM: room, not a benchmark


def test_check_p2p_step_needs_two_gpus():
    report, estimate, _ = p2p_step(1, "10s")
    assert estimate is None and not report.checks  # None: left out of check's plan


@pytest.mark.slow  # the default tier's 2-GPU check run (test_multi_gpu.py) asserts the same
def test_check_p2p_without_peer_access_warns():
    report, _, _ = p2p_step(2, "60s", peer=False)
    found = {c.id: c for c in report.checks}
    assert found["check.p2p.peer_access"].status is Status.WARN
    assert (
        found["check.p2p.speed"].status is Status.SKIP
        and "no GPU pair has peer access" in found["check.p2p.speed"].summary
    )


def test_p2p_floor_on_public_figures_both_sides():
    """check's verdict on real H100 figures: NVLink P2P writes pass, the P2P=Disabled ones fail."""
    peak = peaks.nvlink_peak(NVLINK_4, LINKS).to_dict()

    def records(name: str, title: str) -> list[dict]:
        rates = public(name, title)[:7]
        return [
            {
                "case": f"p2p write to cuda:{j + 1}",
                "device": "cuda:0",
                "peer": f"cuda:{j + 1}",
                "path": "p2p",
                "rate": v,
                "peak": peak,
            }
            for j, v in enumerate(rates)
        ]

    floors = {"cuda:0": GPU_FLOORS["p2p"]}
    healthy = p2p_check(records("p2pBandwidthLatencyTest_h100-sxm-8gpu_fragment_1.txt", WRITES), floors, False)
    assert healthy.status is Status.OK and "81%" in healthy.summary  # 364.13 of 450
    off = records(
        "p2pBandwidthLatencyTest_hgx-h100-sxm-8gpu_fragment_issue-nccl-1264.txt", "Unidirectional P2P=Disabled"
    )
    broken = p2p_check(off, floors, False)
    assert broken.status is Status.FAIL and "7 of 7 P2P pairs under 50%" in broken.summary
    assert p2p_check(off, floors, True).status is Status.SKIP


@pytest.mark.slow  # a whole run of the command
def test_check_10s_on_8_gpus_includes_p2p_within_the_budget():
    """The step starts only where its estimate fits and ends within it (twice it on a loaded 2-core VM),
    before the budget's deadline. The stress window after it is sized to what is left; on this VM its
    minimum on nine devices can overrun a 10 s budget, which is stress's, not this step's."""
    with seam.replay(nodes(8, peer=True)):
        doc = check.run(check.Settings(budget="10s"), select("auto")).to_dict()
    plan = doc["data"]["plan"]
    steps_run = [p["step"] for p in plan if p["ran"]]
    assert steps_run[:3] == ["health", "correctness", "p2p"], plan
    p2p = plan[2]
    assert p2p["seconds"] <= 2 * p2p["estimate_s"], plan
    assert sum(p["seconds"] for p in plan[:3]) <= 0.93 * 10, plan  # check's deadline, a little inside the budget
    assert len([r for r in doc["data"]["records"] if r["case"].startswith("p2p write")]) == 8  # each to the next


def _write(device: str, peer: str, rate: float, peak: dict, path: str = "p2p") -> dict:
    return {"case": f"p2p write to {peer}", "device": device, "peer": peer, "path": path, "rate": rate, "peak": peak}


NV18 = peaks.nvlink_peak(NVLINK_4, LINKS).to_dict()  # 450 GB/s per direction
P2P_FIX = (
    "`nvidia-smi nvlink -s` (a link down or slow), `nvidia-smi topo -m`; a floor that does not fit this "
    "machine can be set with --thresholds (p2p)"
)
P2P_VERDICTS = [
    # each pair's rate as a fraction of its link's 450 GB/s, against the sender's floor of 50%
    ("no pair with peer access", [_write("cuda:0", "cuda:1", 9.0, NV18, path="staged")], False,
     ("skip", "no GPU pair has peer access: no P2P copy to judge", "", "")),
    ("replay", [_write("cuda:0", "cuda:1", 9.0, NV18)], True,
     ("skip", "1 P2P pairs (replay: NumPy's speed, not judged)", "", "")),
    ("no link peak", [_write("cuda:0", "cuda:1", 9.0, {"value": None, "unit": "GB/s", "basis": "no NVLink or PCIe"})],
     False, ("warn", "1 GPU pairs have no link peak, so P2P speed is not judged", "no NVLink or PCIe", "")),
    ("exactly at the floor", [_write("cuda:0", "cuda:1", 225.0, NV18), _write("cuda:1", "cuda:0", 400.0, NV18)],
     False, ("ok", "2 P2P pairs at or above their floor; slowest cuda:0->cuda:1: 50% of its 450 GB/s "
                   f"({NV18['basis']})", "", "")),
    ("one pair just under", [_write("cuda:0", "cuda:1", 224.0, NV18), _write("cuda:1", "cuda:0", 400.0, NV18),
                             _write("cuda:1", "cuda:2", 9.0, NV18, path="staged")], False,
     ("fail", f"1 of 2 P2P pairs under 50% of their link's peak; slowest cuda:0->cuda:1: 50% of its 450 GB/s "
      f"({NV18['basis']})", "cuda:0->cuda:1 50%", P2P_FIX)),
    ("two pairs under", [_write("cuda:0", "cuda:1", 100.0, NV18), _write("cuda:1", "cuda:0", 45.0, NV18)], False,
     ("fail", f"2 of 2 P2P pairs under 50% of their link's peak; slowest cuda:1->cuda:0: 10% of its 450 GB/s "
      f"({NV18['basis']})", "cuda:0->cuda:1 22%, cuda:1->cuda:0 10%", P2P_FIX)),
]  # fmt: skip


@pytest.mark.parametrize(("case", "records", "replaying", "said"), P2P_VERDICTS, ids=[v[0] for v in P2P_VERDICTS])
def test_what_each_p2p_verdict_says(case, records, replaying, said):
    """Both sides of the floor (225 of 450 GB/s passes, 224 fails), staged pairs left out, every word."""
    c = p2p_check(records, {"cuda:0": 0.5, "cuda:1": 0.5}, replaying)
    assert (c.id, str(c.status), c.summary, c.detail, c.fix) == ("check.p2p.speed", *said)
