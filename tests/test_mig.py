"""A MIG slice is a device too (issue 21): on the stand-ins of two public A100 dumps with MIG on
(tests/fixtures/recordings/public/a100-sxm4-{40,80}gb-mig.xml.json, written by
scripts/recording_from_smi.py), devcheck maps the CUDA device to its slice and the slice to its GPU,
takes peaks from the slice's SMs and health from the GPU, and `check` says which slice it judged.

What each dump shows, read from the dumps themselves: the 40 GB card has 2 MIG devices of 42 SMs and
19968 MiB (GPU instances 1 and 2, of 40960 MiB); the 80 GB card 4 of 14 SMs and 19968 MiB (GPU instances
3 to 6, of 81920 MiB); every compute instance is 0. NVIDIA's profile table names them 3g.20gb and 1g.20gb.
"""

import json

import pytest

from devcheck.cli import app
from devcheck.commands.env import collect
from devcheck.machine.model import facts
from devcheck.machine.probes import mig, nvml, visible
from devcheck.machine.replay import seam
from devcheck.machine.replay.recording import MASKED_UUID, Handle, Recording
from devcheck.report import Status
from tests.cli import runner
from tests.recordings import FOLDER, GPU0, h100, mig_slice, mig_uuid, variant
from tests.schemas import validate

DUMPS = {  # dump: profile, SMs, GPU instance ids, parent's name, parent's memory MiB, max memory clock MHz
    "a100-sxm4-40gb-mig.xml": ("3g.20gb", 42, [1, 2], "NVIDIA A100-SXM4-40GB", 40960, 1215),
    "a100-sxm4-80gb-mig.xml": ("1g.20gb", 14, [3, 4, 5, 6], "NVIDIA A100-SXM4-80GB", 81920, 1593),
}
A100_FP32_PER_SM = 64 * 2 * 1.410  # GFLOP/s per SM at the A100's rated 1410 MHz: 108 SMs make its 19.5 TFLOP/s


def public(dump: str) -> Recording:
    return Recording.load(FOLDER / "public" / f"{dump}.json")


def read_slices(recording: Recording) -> tuple[nvml.Driver, list[mig.Slice]]:
    with seam.replay(recording):
        driver = nvml.read_driver()
        return driver, mig.slices(seam.nvml(), driver.gpus)


@pytest.mark.parametrize("dump", DUMPS)
def test_nvml_maps_each_slice_to_its_parent_gpu(dump):
    profile, sms, instances, parent, parent_mib, _ = DUMPS[dump]
    driver, found = read_slices(public(dump))
    assert [s.gpu_instance for s in found] == instances and [s.index for s in found] == list(range(len(instances)))
    assert [s.uuid for s in found] == [mig_uuid(k) for k in range(len(instances))]
    shared = {(s.profile, s.sms, s.memory_mib, s.compute_instance, s.parent_index, s.parent_uuid) for s in found}
    assert shared == {(profile, sms, 19968, 0, 0, driver.gpus[0].uuid)}
    assert found[0].parent_memory_mib == parent_mib and found[0].name == f"{parent} MIG {profile}"
    assert found[0].label == f"MIG slice {profile} of GPU 0 ({parent})"


@pytest.mark.parametrize("recording", [h100(), public("a100-sxm4-80gb.txt")], ids=["h100", "a100-80gb-no-mig"])
def test_a_gpu_without_mig_has_no_slice_and_is_selected_as_before(recording):
    driver, found = read_slices(recording)
    assert driver.gpus and found == []
    for raw in ("0", driver.gpus[0].uuid):
        sel = visible.resolve({"CUDA_VISIBLE_DEVICES": raw}, driver.gpus, found)
        assert sel.mig is None and sel.nvml_indices == [0] and sel.checks == []
    sel = visible.resolve({"CUDA_VISIBLE_DEVICES": mig_uuid(0)}, driver.gpus, found)
    assert sel.nvml_indices == [] and "visible.invalid" in [c.id for c in sel.checks]  # no such slice here


def spellings(driver: nvml.Driver, dump: str) -> dict[str, str]:
    """Slice 1 in both spellings CUDA reads: MIG-<uuid> (R470+), MIG-GPU-<uuid>/<gi>/<ci> (R450, R460)."""
    return {"MIG-<uuid>": mig_uuid(1), "MIG-GPU-<uuid>/gi/ci": f"MIG-{driver.gpus[0].uuid}/{DUMPS[dump][2][1]}/0"}


@pytest.mark.parametrize("dump", DUMPS)
@pytest.mark.parametrize("spelling", ["MIG-<uuid>", "MIG-GPU-<uuid>/gi/ci"])
def test_cuda_visible_devices_names_a_slice_in_either_spelling(dump, spelling):
    driver, found = read_slices(public(dump))
    sel = visible.resolve({"CUDA_VISIBLE_DEVICES": spellings(driver, dump)[spelling]}, driver.gpus, found)
    assert sel.mig == found[1] and sel.nvml_indices == [0]
    assert [(c.id, c.status) for c in sel.checks] == [("visible.mig", Status.OK)]
    assert sel.checks[0].summary.startswith(f"cuda:0 is {found[1].label}")


@pytest.mark.parametrize("dump", DUMPS)
def test_unset_or_naming_the_parent_gives_cuda_the_first_slice(dump):
    driver, found = read_slices(public(dump))
    for environ in ({}, {"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": driver.gpus[0].uuid}):
        assert visible.resolve(environ, driver.gpus, found).mig == found[0]


@pytest.mark.parametrize("dump", DUMPS)
def test_a_slice_that_is_not_there_hides_it_and_a_second_slice_is_not_seen(dump):
    driver, found = read_slices(public(dump))
    missing = visible.resolve({"CUDA_VISIBLE_DEVICES": f"MIG-{driver.gpus[0].uuid}/9/0"}, driver.gpus, found)
    assert missing.mig is None and missing.nvml_indices == []
    assert {c.id: c.status for c in missing.checks} == {"visible.invalid": Status.WARN, "visible.none": Status.WARN}
    two = visible.resolve({"CUDA_VISIBLE_DEVICES": f"{mig_uuid(1)},{mig_uuid(0)}"}, driver.gpus, found)
    assert two.mig == found[1] and {c.id: c.status for c in two.checks}["visible.mig_single"] is Status.WARN


@pytest.mark.parametrize("dump", DUMPS)
def test_env_shows_the_slice_beside_its_parent(dump, monkeypatch):
    profile, sms, instances, parent, _, _ = DUMPS[dump]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mig_uuid(1))
    with seam.replay(mig_slice(dump, 1)):
        result = runner.invoke(app, ["env", "--json"])
    doc = json.loads(result.stdout)
    validate(doc, "env")
    slices, gpu = doc["data"]["mig"], doc["data"]["gpus"][0]
    assert len(slices) == len(instances) and gpu["name"]["value"] == parent
    assert [s["cuda_index"]["value"] for s in slices] == [None, 0] + [None] * (len(instances) - 2)
    assert slices[1]["profile"]["value"] == profile and slices[1]["sms"]["value"] == sms
    assert gpu["cuda_index"] == {**gpu["cuda_index"], "value": 0, "note": f"through its MIG slice {profile}"}
    selected = doc["data"]["visible"]["selected"]["value"]
    assert selected == [
        f"cuda:0 = MIG slice {profile} of GPU 0 ({parent}) ({mig_uuid(1)}, {gpu['pci_bus_id']['value']})"
    ]


@pytest.mark.parametrize("dump", DUMPS)
def test_a_slice_peak_is_its_own_sms_not_the_whole_gpus(dump, monkeypatch):
    """3g.20gb is 3/7 of the 98 SMs MIG shares out on an A100 (42 of its 108); its bandwidth is its share
    of the memory's: 19968 of 40960 MiB."""
    profile, sms, _, _, parent_mib, mem_mhz = DUMPS[dump]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mig_uuid(0))
    monkeypatch.setenv("CUPY_TF32", "0")
    with seam.replay(mig_slice(dump, 0)):
        f = facts.facts_for("cuda:0")
    assert f.problem == "" and f.mig.profile == profile and f.label.endswith(f"MIG {profile}")
    fp32 = f.flops_peak("float32")
    assert fp32.value == pytest.approx(sms * A100_FP32_PER_SM) and fp32.value < 19_500 * sms / 100
    assert f"{sms} SMs" in fp32.basis and f"the SMs of MIG slice {profile}" in fp32.basis
    whole_bandwidth = 2 * mem_mhz * 5120 / 8 / 1000
    assert f.bandwidth_peak.value == pytest.approx(whole_bandwidth * 19968 / parent_mib)
    assert f"19968/{parent_mib} MiB" in f.bandwidth_peak.basis


def test_a_whole_gpu_peak_is_unchanged(monkeypatch):
    monkeypatch.setenv("CUPY_TF32", "0")
    with seam.replay(h100()):
        f = facts.facts_for("cuda:0")
    assert f.mig is None and "MIG" not in f.flops_peak("float32").basis + f.bandwidth_peak.basis
    assert f.flops_peak("float32").value == pytest.approx(132 * 128 * 2 * 1.98)


def test_the_slice_takes_its_health_from_the_parent_gpu(monkeypatch):
    """Both sides: the healthy parent passes; its ECC errors fail the slice's node (synthetic count,
    NVML's own call for it)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mig_uuid(0))
    base = mig_slice("a100-sxm4-80gb-mig.xml")
    ecc = variant(base, "4 uncorrected ECC errors on GPU 0", nvml={("nvmlDeviceGetTotalEccErrors", GPU0, 1, 0): 4})
    statuses = {}
    for name, recording in (("healthy", base), ("ecc", ecc)):
        with seam.replay(recording):
            statuses[name] = {c.id: c.status for c in collect().checks}
    assert statuses["healthy"]["visible.mig"] is statuses["healthy"]["gpu0.health"] is Status.OK
    assert statuses["ecc"]["visible.mig"] is Status.OK and statuses["ecc"]["gpu0.ecc"] is Status.FAIL


@pytest.mark.slow  # a whole run of the command: kept in CI (-m "slow or not slow")
def test_check_runs_on_a_slice_and_says_which(tmp_path):
    lenient = tmp_path / "lenient.toml"
    lenient.write_text("[default]\nmatmul_float32 = 0.01\nmatmul_float64 = 0.01\n")
    args = ["check", "--json", "--budget", "10s", "--thresholds", str(lenient)]
    base = mig_slice("a100-sxm4-80gb-mig.xml", 2)
    ecc = variant(base, "4 uncorrected ECC errors on GPU 0", nvml={("nvmlDeviceGetTotalEccErrors", GPU0, 1, 0): 4})
    runs = {}
    for name, recording in (("healthy", base), ("ecc", ecc)):
        with seam.replay(recording):
            result = runner.invoke(app, args, env={"CUDA_VISIBLE_DEVICES": mig_uuid(2)})
        runs[name] = (result.exit_code, json.loads(result.stdout))
    code, doc = runs["healthy"]
    validate(doc, "check")
    assert code == 0, [c for c in doc["checks"] if c["status"] in ("fail", "error")]
    label = "MIG slice 1g.20gb of GPU 0 (NVIDIA A100-SXM4-80GB)"
    assert doc["verdict"].startswith(f"check: fit to compute on cpu, cuda:0 ({label})")
    s = {c["id"]: c for c in doc["checks"]}
    assert s["visible.mig"]["summary"] == f"cuda:0 is {label}: 14 SMs, 19968 MiB"
    assert s["check.gemm.cuda:0.float32"]["status"] == s["check.stress.cuda:0"]["status"] == "ok"
    assert [m["profile"]["value"] for m in doc["data"]["mig"]] == ["1g.20gb"] * 4
    code, doc = runs["ecc"]
    assert code == 1 and doc["verdict"] == "check: NOT FIT — GPU 0: 4 uncorrected ECC errors since boot"


def test_who_shares_a_slice_is_asked_of_the_slice_not_of_the_gpu(monkeypatch):
    """Jobs on the GPU's other slices do not share this slice's SMs: the parent's list (here two of
    them) is not the slice's (none in the dump; then two of its own, synthetic pids)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mig_uuid(0))
    job = {"__struct__": "nvmlFriendlyObject", "pid": 4242, "usedGpuMemory": 512 * 2**20}
    others = [job, {**job, "pid": 4343}]
    base = mig_slice("a100-sxm4-80gb-mig.xml")
    elsewhere = variant(base, "two jobs on other slices", nvml={("nvmlDeviceGetComputeRunningProcesses", GPU0): others})
    slice0 = Handle("gpu0/mig0")
    here = variant(elsewhere, "two on this one", nvml={("nvmlDeviceGetComputeRunningProcesses", slice0): others})
    seen = {}
    for name, recording in (("elsewhere", elsewhere), ("here", here)):
        with seam.replay(recording):
            seen[name] = facts.gpu_sharers(0)
    assert seen["elsewhere"] == (0, [], False)
    assert seen["here"] == (1, [(4242, 512 * 2**20), (4343, 512 * 2**20)], False)


def test_the_variable_alone_says_cuda_takes_one_mig_device():
    """Read without NVML (env's envvars probe): a list with MIG devices is not a list of CUDA devices."""
    from devcheck.machine.probes.envvars import visible_devices

    two = visible_devices(f"{mig_uuid(0)},{mig_uuid(1)}")
    assert two.status is Status.OK and "of MIG devices CUDA computes on one only" in two.summary
    assert "MIG" not in visible_devices("0,1").summary


def test_a_recording_of_a_slice_keeps_its_mig_uuid_masked_and_replays_the_same(tmp_path):
    """`env --record` on a MIG machine masks a slice's UUID in its MIG- spelling, so the recording
    resolves CUDA_VISIBLE_DEVICES=MIG-<uuid> as the machine did."""
    environ = {"CUDA_VISIBLE_DEVICES": mig_uuid(1)}
    path = tmp_path / "again.json"
    with seam.replay(mig_slice("a100-sxm4-40gb-mig.xml", 1)):
        expected = collect(environ=environ).to_dict()
        with seam.record(path, {"nvidia-ml-py": "13.615.71"}):
            collect(environ=environ)
    recorded = [c for c in Recording.load(path).nvml if c["fn"] == "nvmlDeviceGetUUID"]
    assert [c["result"] for c in recorded] == [MASKED_UUID.format(0), mig_uuid(0), mig_uuid(1)]
    with seam.replay(Recording.load(path)):
        again = collect(environ=environ).to_dict()
    assert again["data"]["mig"] == expected["data"]["mig"] and again["data"]["visible"] == expected["data"]["visible"]


def test_the_table_shows_the_slices_only_with_their_gpus_details(monkeypatch):
    """As a healthy GPU's own table, its slices' tables wait for --details; the selection names the slice."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mig_uuid(1))
    shown = {}
    with seam.replay(mig_slice("a100-sxm4-80gb-mig.xml", 1)):
        for args in ([], ["--details"]):
            result = runner.invoke(app, ["env", *args], env={"COLUMNS": "200"})
            shown[bool(args)] = result.stderr
    assert "cuda:0 = MIG slice 1g.20gb of GPU 0 (NVIDIA A100-SXM4-80GB)" in shown[False]
    assert "(NVIDIA A100-SXM4-80GB), MIG device" not in shown[False]
    assert all(f"MIG slice 1g.20gb of GPU 0 (NVIDIA A100-SXM4-80GB), MIG device {k}" in shown[True] for k in range(4))
