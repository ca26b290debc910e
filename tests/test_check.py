"""devcheck check: the node gate, on recordings of real machines and named variants of them."""

import json
import xml.etree.ElementTree as ET

import pynvml
import pytest

from devcheck.cli import app
from devcheck.commands.check.health import gate
from devcheck.commands.check.thresholds import Thresholds
from devcheck.commands.check.verdicts import gpu_busy, speed_check
from devcheck.commands.env import collect
from devcheck.machine.model.facts import gpu_sharers
from devcheck.machine.replay import seam
from devcheck.machine.replay.recording import Recording
from devcheck.report import Status
from tests.cli import runner
from tests.recordings import FOLDER, GPU0, _replace, h100, nvml_error

# Speed floors are judged in their own tests; here a loaded 2-core runner must not fail a healthy run.
LENIENT = "[default]\nmatmul_float32 = 0.01\nmatmul_float64 = 0.01\n"


def check(*args, recording=None):
    if recording is None:
        result = runner.invoke(app, ["check", "--json", *args])
    else:
        with seam.replay(recording):
            result = runner.invoke(app, ["check", "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def statuses(doc):
    return {c["id"]: c["status"] for c in doc["checks"]}


@pytest.mark.slow  # a whole run of the command: kept in CI (-m "slow or not slow")
def test_a_healthy_cpu_machine_is_fit_in_10_seconds(tmp_path):
    lenient = tmp_path / "lenient.toml"
    lenient.write_text(LENIENT)
    code, doc = check("--budget", "10s", "--device", "cpu", "--thresholds", str(lenient))
    assert code == 0, [c for c in doc["checks"] if c["status"] in ("fail", "error")]
    s = statuses(doc)
    assert s["check.gemm.cpu.float32"] == s["check.grad.cpu"] == s["check.stress.cpu"] == "ok"
    assert s["check.speed.cpu.matmul_float32"] == "ok" and doc["verdict"].startswith("check: fit to compute on cpu")
    assert [p["step"] for p in doc["data"]["plan"]] == ["health", "correctness", "speed", "stress"]
    assert doc["data"]["stress"][0]["runs"] >= 3 and doc["data"]["elapsed_s"] < 11


@pytest.mark.slow  # a whole run of the command: kept in CI (-m "slow or not slow")
def test_the_recorded_h100_is_fit_and_its_speeds_are_not_judged_under_replay(tmp_path):
    lenient = tmp_path / "lenient.toml"
    lenient.write_text(LENIENT)
    code, doc = check("--budget", "10s", "--thresholds", str(lenient), recording=h100())
    assert code == 0, [c for c in doc["checks"] if c["status"] in ("fail", "error")]
    s = statuses(doc)
    assert s["train.agreement.cuda:0"] == s["check.stress.cuda:0"] == s["check.gemm.cuda:0.float64"] == "ok"
    assert s["check.speed.cuda:0.matmul_float32"] == "skip" and s["machine.replay"] == "warn"


def health(recording, strict=False):
    with seam.replay(recording):
        env = collect(environ={}, gate=gate(Thresholds(), strict))
    return {c.id: str(c.status) for c in env.checks}


@pytest.mark.parametrize(
    ("why", "nvml", "check_id"),
    [
        ("hardware thermal slowdown", {("nvmlDeviceGetCurrentClocksEventReasons", GPU0): 0x40}, "gpu0.clocks"),
        ("4 uncorrected ECC errors", {("nvmlDeviceGetTotalEccErrors", GPU0, 1, 0): 4}, "gpu0.ecc"),
        ("a row remap pending", {("nvmlDeviceGetRemappedRows", GPU0): (0, 1, 1, 0)}, "gpu0.memory"),
        ("at its slowdown temperature", {("nvmlDeviceGetTemperature", GPU0, 0): 89}, "gpu0.temperature"),
    ],
)
def test_gpu_health_failures_are_named(why, nvml, check_id):
    assert health(h100(why=why, nvml=nvml))[check_id] == "fail"
    assert check_id not in health(h100()) or health(h100())[check_id] == "ok"  # the healthy card: no such failure


@pytest.mark.parametrize(
    ("why", "nvml"),
    [
        ("idle at gen 1", {("nvmlDeviceGetCurrPcieLinkGeneration", GPU0): 1}),
        # what the public L4 dump shows idle (P8): gen 1 of 4, x8 of x16; under load it must reach both
        (
            "idle at gen 1, x8",
            {("nvmlDeviceGetCurrPcieLinkGeneration", GPU0): 1, ("nvmlDeviceGetCurrPcieLinkWidth", GPU0): 8},
        ),
    ],
)
def test_an_idle_link_below_its_maximum_is_a_warning_not_a_failure(why, nvml):
    assert health(h100(why=why, nvml=nvml))["gpu0.pcie"] == "warn"


@pytest.mark.parametrize(("under_load", "idle_check", "load_check"), [(16, "ok", "ok"), (8, "warn", "fail")])
def test_an_idle_short_link_is_settled_by_its_reading_under_load(under_load, idle_check, load_check):
    from devcheck.commands.check.health import load_checks, settle_idle_link

    nvml = {("nvmlDeviceGetCurrPcieLinkGeneration", GPU0): 1, ("nvmlDeviceGetCurrPcieLinkWidth", GPU0): 8}
    with seam.replay(h100(why="idle at gen 1, x8, as the public L4 dump", nvml=nvml)):
        checks = collect(environ={}, gate=gate(Thresholds(), False)).checks
    readings = {"sm_mhz": 1980, "sm_max_mhz": 1980, "held_back": [], "nvml_index": 0, "pcie_gen": 5,
                "pcie_gen_max": 5, "pcie_width": under_load, "pcie_width_max": 16}  # fmt: skip
    settle_idle_link(checks, readings)
    assert next(c.status for c in checks if c.id == "gpu0.pcie") == idle_check
    assert max((c.status for c in load_checks("cuda:0", readings, False)), key=list(Status).index) == load_check


def test_nvml_failing_midway_fails_closed():
    error = {"error": nvml_error(pynvml.NVML_ERROR_UNKNOWN)}
    midway = h100(why="NVML fails after init", nvml={("nvmlDeviceGetPowerUsage", GPU0): error})
    assert health(midway)["gpu0.nvml"] == "warn" and health(midway, strict=True)["gpu0.nvml"] == "fail"


@pytest.mark.slow  # a whole run of the command: kept in CI (-m "slow or not slow")
def test_a_gemm_wrong_now_and_then_is_caught_by_the_stress_window():
    """The window runs its first GEMM and at least 3 more whatever the machine's load, so a fault on
    every 3rd matmul call is sure to fall in it and to differ from another of its results."""
    flaky = h100(why="one GEMM in 3 is 0.1% off", faults={"matmul": {"every": 3, "scale": 1.001}})
    code, doc = check("--budget", "10s", recording=flaky)
    assert code == 1 and statuses(doc)["check.stress.cuda:0"] == "fail"
    assert doc["data"]["stress"][1]["changed_results"] >= 1


@pytest.mark.slow  # a whole run of the command: kept in CI (-m "slow or not slow")
def test_an_unknown_gpu_model_is_never_a_pass():
    unknown = h100(why="compute capability 5.2: no rates known", cupy={("Device.compute_capability", 0): "52"})
    code, doc = check("--budget", "10s", "--strict", recording=unknown)
    assert code == 1 and statuses(doc)["check.speed.cuda:0.matmul_float32"] == "fail"  # a warning, failed by --strict
    assert (
        "no peak known" in next(c for c in doc["checks"] if c["id"] == "check.speed.cuda:0.matmul_float32")["summary"]
    )


# Real figures (tests/fixtures/h100-reference.md): CuPy's float32 matmul ran at 44.8 TFLOP/s on the
# H100, whose FP32 peak is 66.9; a GEMM 3x slower runs at 14.9.
H100_FP32 = {"device": "cuda:0", "case": "matmul", "dtype": "float32", "unit": "GFLOP/s",
             "peak": {"value": 66_908.0, "basis": "132 SMs x 1980 MHz x 128 FP32 lanes x 2 (FMA)"}}  # fmt: skip


@pytest.mark.parametrize(("rate", "status"), [(44_770.0, "ok"), (44_770.0 / 3, "fail")])
def test_a_gemm_3x_slower_than_its_peak_fraction_fails(rate, status):
    assert speed_check("x", {**H100_FP32, "rate": rate}, 0.5, replaying=False).status == status


def test_a_busy_cpu_is_not_judged_slow_but_a_fast_one_still_passes():
    slow, fast = {**H100_FP32, "rate": 1_000.0}, {**H100_FP32, "rate": 44_770.0}
    busy = "the CPUs are 90% busy with other work"
    assert speed_check("x", slow, 0.5, replaying=False, busy=busy).status == "warn"
    assert speed_check("x", fast, 0.5, replaying=False, busy=busy).status == "ok"


def listed_by(dump: str) -> Recording:
    """The recorded H100 answering the compute-process list of a public dump (real pids and memory)."""
    public = Recording.load(FOLDER / "public" / f"{dump}.json")
    listed = next(c["result"] for c in public.nvml if c["fn"] == "nvmlDeviceGetComputeRunningProcesses")
    recording = h100(why=f"the compute processes of the public {dump} dump")
    _replace(recording.nvml, "nvmlDeviceGetComputeRunningProcesses", [GPU0], {"result": listed})
    return recording


def test_other_jobs_on_a_gpu_are_named_and_excuse_a_slow_gemm_there():
    """NVML lists devcheck itself too (it holds a context on the GPU when asked); in a container it
    lists host pids, so devcheck's own entry cannot be told apart: the count is one less."""
    with seam.replay(listed_by("geforce-rtx2080-windows.xml")):  # 26 Windows apps with a compute context
        sharers = gpu_sharers(0)
    assert sharers[0] == 25 and len(sharers[1]) == 26 and not sharers[2]
    assert gpu_busy(sharers) == (
        "25 other process(es) compute on this GPU (pid 7724, pid 10808, pid 11556, pid 12452 and 22 more; "
        "devcheck is one of them (in a container NVML lists host pids))"
    )
    busy = gpu_busy(sharers)
    with seam.replay(listed_by("t4.xml")):  # one python job: devcheck's own entry, seen from the host
        assert gpu_sharers(0) == (0, [(5762, 1005 * 2**20)], False) and gpu_busy(gpu_sharers(0)) == ""
    with seam.replay(h100()):
        assert gpu_busy(gpu_sharers(0)) == ""  # the recorded H100: an empty list
    slow, fast = {**H100_FP32, "rate": 1_000.0}, {**H100_FP32, "rate": 44_770.0}
    assert speed_check("x", slow, 0.5, replaying=False, busy=busy).status == "warn"
    assert speed_check("x", slow, 0.5, replaying=False).status == "fail"
    assert speed_check("x", fast, 0.5, replaying=False, busy=busy).status == "ok"


def test_the_dcgm_122_a100_fails_and_a_healthy_one_passes():
    a100 = {**H100_FP32, "peak": {"value": 19_500.0, "basis": "A100"}}
    assert speed_check("x", {**a100, "rate": 6_700.0}, 0.5, replaying=False).status == "fail"  # DCGM#122
    assert speed_check("x", {**a100, "rate": 18_000.0}, 0.5, replaying=False).status == "ok"


def test_thresholds_file_sets_floors_per_model_over_the_default(tmp_path):
    from devcheck.commands.check.thresholds import load

    path = tmp_path / "floors.toml"
    path.write_text('[default]\nmatmul_float32 = 0.3\n["NVIDIA H100 80GB HBM3"]\nmatmul_float32 = 0.6\n')
    floors = load(path)
    assert floors.floor("matmul_float32", "cuda:0", "NVIDIA H100 80GB HBM3") == 0.6
    assert floors.floor("matmul_float32", "cuda:1", "NVIDIA A100-SXM4-80GB") == 0.3
    assert floors.floor("matmul_float64", "cpu", "AMD EPYC") == 0.25
    assert Thresholds().floor("bandwidth", "cuda:0", "") == 0.5


@pytest.mark.slow  # a whole run of the command: kept in CI (-m "slow or not slow")
def test_an_impossible_floor_fails_the_cpu(tmp_path):
    impossible = tmp_path / "impossible.toml"
    impossible.write_text("[cpu]\nmatmul_float32 = 5.0\n")
    code, doc = check("--budget", "10s", "--device", "cpu", "--thresholds", str(impossible))
    speed = next(c for c in doc["checks"] if c["id"] == "check.speed.cpu.matmul_float32")
    if "busy with other work" in speed["summary"]:  # a loaded machine: not judged, and said so
        assert speed["status"] == "warn"
    else:
        assert code == 1 and speed["status"] == "fail" and "floor 500%" in speed["summary"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[default]\nmatmul = 0.5\n", "[default] matmul: unknown"),
        ("[default]\nmatmul_float32 = -1\n", "expected a number >= 0"),
        ("not toml [", "not a TOML file"),
    ],
)
def test_a_bad_thresholds_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "t.toml"
    path.write_text(text)
    result = runner.invoke(app, ["check", "--thresholds", str(path)])
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_junit_has_one_case_per_check(tmp_path):
    path = tmp_path / "env.xml"
    with seam.replay(h100(why="4 uncorrected ECC errors", nvml={("nvmlDeviceGetTotalEccErrors", GPU0, 1, 0): 4})):
        result = runner.invoke(app, ["env", "--json", "--junit", str(path)])
    doc = json.loads(result.stdout)
    suite = ET.parse(path).getroot()
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c["id"] for c in doc["checks"]]
    assert int(suite.get("failures")) == sum(c["status"] == "fail" for c in doc["checks"]) >= 1
    assert next(c for c in cases if c.get("name") == "gpu0.ecc").find("failure") is not None


@pytest.mark.parametrize("text", ["30x", "0.5s", "-5", "s", "", "1e3"])
def test_a_budget_that_is_not_a_duration_is_refused(text):
    result = runner.invoke(app, ["check", "--budget", text])
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"devcheck: error: --budget {text!r}: expected a duration of at least 1 s, such as 10s, 90s, 5m or 1h\n"
    )


@pytest.mark.parametrize(
    ("readings", "status"),
    [  # the H100's own maximum (1980 MHz, gen 5), as NVML reported it
        ({"sm_mhz": 1980, "sm_max_mhz": 1980, "pcie_gen": 5, "pcie_gen_max": 5, "held_back": []}, "ok"),
        (
            {"sm_mhz": 1755, "sm_max_mhz": 1980, "pcie_gen": 5, "pcie_gen_max": 5, "held_back": ["software power cap"]},
            "ok",
        ),
        ({"sm_mhz": 900, "sm_max_mhz": 1980, "pcie_gen": 5, "pcie_gen_max": 5, "held_back": []}, "warn"),
        (
            {
                "sm_mhz": 1200,
                "sm_max_mhz": 1980,
                "pcie_gen": 5,
                "pcie_gen_max": 5,
                "held_back": ["hardware thermal slowdown"],
            },
            "fail",
        ),
        ({"sm_mhz": 1980, "sm_max_mhz": 1980, "pcie_gen": 3, "pcie_gen_max": 5, "held_back": []}, "fail"),
        (
            {
                "sm_mhz": 1980,
                "sm_max_mhz": 1980,
                "pcie_gen": 5,
                "pcie_gen_max": 5,
                "pcie_width": 8,
                "pcie_width_max": 16,
                "held_back": [],
            },  # fmt: skip
            "fail",
        ),
        (
            {
                "sm_mhz": 1980,
                "sm_max_mhz": 1980,
                "pcie_gen": 5,
                "pcie_gen_max": 5,
                "pcie_width": 16,
                "pcie_width_max": 16,
                "held_back": [],
            },  # fmt: skip
            "ok",
        ),
        ({"error": "NVMLError_Unknown: Unknown Error"}, "warn"),
    ],
)
def test_clocks_and_link_under_load_against_their_maximum(readings, status):
    from devcheck.commands.check.health import load_checks

    checks = load_checks("cuda:0", readings, replaying=False)
    worst = max((c.status for c in checks), key=["ok", "warn", "fail"].index)
    assert worst == status, [c.summary for c in checks]


def test_a_stress_window_cut_short_still_judges_the_gemms_it_ran():
    """Ctrl-C halfway through the window (here from the under-load reading, which runs inside it): a
    wrong result seen before it is still a failure in the report, and the interrupt is held for the runner."""
    from devcheck.commands.check.stress import stress
    from devcheck.engine import get_device
    from devcheck.interrupt import Interruption

    def ctrl_c():
        raise KeyboardInterrupt

    for faults, verdict in (({"matmul": {"every": 2, "scale": 1.001}}, Status.FAIL), ({}, Status.OK)):
        with seam.replay(h100(why="every other GEMM 0.1% off" if faults else "healthy", faults=faults)):
            stop = Interruption()
            record, checks = stress(get_device("cuda:0"), 0.2, 64, 0.25, during=ctrl_c, stop=stop)
        assert isinstance(stop.stop, KeyboardInterrupt)
        assert record["runs"] >= 1 and len(record["rates_gflops"]) == record["runs"]
        assert checks[0].status is verdict and (record["changed_results"] > 0) == bool(faults)


@pytest.mark.parametrize("left, ran", [(2.5, 3), (1.5, 1)])
def test_a_step_runs_the_devices_in_turn_while_the_budget_has_room_for_the_next(left, ran):
    """On an 8-GPU node a step that fit as estimated can still meet slower GPUs: the next device starts
    only with its time left in the budget, and the ones left out are named in one skip."""
    from types import SimpleNamespace

    from devcheck.commands.check import steps
    from devcheck.report import Report

    clock = SimpleNamespace(left=left)
    devices = [SimpleNamespace(name=n) for n in ("cpu", "cuda:0", "cuda:1")]
    work = steps.Work(SimpleNamespace(budget="10s"), SimpleNamespace(devices=devices), Report("check"), clock)
    assert [d.name for d in steps._in_time(work, "speed", lambda device: 2.0)] == [d.name for d in devices[:ran]]
    skips = [(c.id, c.status, c.summary) for c in work.report.checks]
    if ran == 3:
        assert skips == []
    else:
        assert skips == [
            ("check.speed.budget", Status.WARN, "speed not run on cuda:0, cuda:1: no time left in the 10s budget")
        ]


# --- a step the budget left out is not a pass (issue 23, item 6) --------------------------------------------


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("skipped", [[], ["speed"], ["speed", "stress"]])
def test_a_step_left_out_for_time_is_never_fit(skipped, strict):
    from devcheck.commands import check
    from devcheck.report import Report

    plan = [{"step": s, "ran": s not in skipped} for s in ("health", "correctness", "speed", "stress")]
    report = Report("check")
    report.checks += check._budget_checks(plan, check.Settings(budget="10s"))
    if strict:
        report.checks = [check._strict(c) for c in report.checks]
    got = check.verdict(report, ["cpu"], 9.1)
    if not skipped:
        assert report.ok and got == "check: fit to compute on cpu (9.1 s)"
    elif strict:
        assert not report.ok and got.startswith("check: NOT FIT — skipped for time in the 10s budget: speed"), got
    else:
        assert report.ok and "fit to compute" not in got and "not fully checked" in got, got
        assert f"skipped for time in the 10s budget: {', '.join(skipped)}" in got
        assert report.check("check.budget").fix == "--budget 60s"


def _work(budget: str, devices: list, facts: dict, rates: dict | None = None, clock=None):
    from types import SimpleNamespace

    from devcheck.commands.check import Clock, Settings, steps
    from devcheck.report import Report

    settings = Settings(budget=budget, thresholds=Thresholds({"matmul_float32": 0.3, "matmul_float64": 0.3}))
    selection = SimpleNamespace(devices=devices, names=[d.name for d in devices], gpus=[])
    clock = clock or Clock(settings.seconds)
    return steps.Work(settings, selection, Report("check"), clock, facts=facts, rates=dict(rates or {}))


def test_check_sizes_come_from_the_model_and_budget_not_the_speed_measured():
    """Issue 22: check sized its GEMMs from the rate it had just measured, so three runs of one machine used
    1024, 1024 and 512 and their reports could not be compared (nor `check --baseline` with its own earlier
    run). The size is now the device's model's (its computed peak in that dtype) and the budget's."""
    from types import SimpleNamespace

    from devcheck.commands.check import BUDGETS, sizes, steps
    from devcheck.machine.model.facts import cpu_facts, facts_for
    from tests.test_peaks import SPECS, stand_in

    with seam.replay(h100()):
        gpu = facts_for("cuda:0")
    with seam.replay(stand_in(next(m for m in SPECS if m["name"] == "GeForce RTX 4090"))):
        geforce = facts_for("cuda:0")
    chosen = {}
    for budget in BUDGETS:
        for name, facts in (("cuda:0", gpu), ("cuda:1", geforce), ("cpu", cpu_facts())):
            device = SimpleNamespace(name=name)
            for dtype in sizes.DTYPES:
                seen = {
                    steps.speed_size(_work(budget, [device], {name: facts}, {name: rate}), name, dtype)
                    for rate in (0.3, 40.0, 5000.0, 60000.0)  # a loaded CPU's 256 GEMM up to an H100's
                }
                assert len(seen) == 1, (budget, name, dtype, seen)
                chosen[budget, name, dtype] = seen.pop()
    # the H100's 67 TFLOP/s in both: 4096 takes 2 ms at its peak, 8192 16 ms (over AT_PEAK_S, 5 ms)
    assert [chosen[b, "cuda:0", "float64"] for b in BUDGETS] == [1024, 2048, 4096, 4096]
    assert [chosen[b, "cuda:0", "float32"] for b in BUDGETS] == [1024, 2048, 4096, 4096]
    # the RTX 4090: 82.6 TFLOP/s in float32, 1/64 of it in float64
    assert [chosen[b, "cuda:1", "float32"] for b in BUDGETS] == [1024, 2048, 4096, 4096]
    assert [chosen[b, "cuda:1", "float64"] for b in BUDGETS] == [1024, 1024, 1024, 1024]
    assert sizes.speed_size(facts_for("gpu7"), 900.0, "float32") == sizes.SIZES[0]  # no peak known: the smallest


@pytest.mark.slow  # the speed and stress steps of a 10 s budget, run for real on the simulated GPU
def test_a_device_10x_slower_than_its_peak_is_judged_slow_inside_the_budget():
    """A fixed size must not let a slow device overrun the budget: the simulated GPU (NumPy on this CPU),
    given a peak 10x this CPU's computed peak, so it runs at a tenth of it or less, is sized for that
    peak, planned, measured and judged slow (a failure, not a skip), and its speed and stress steps end
    inside the 10 s budget."""
    from dataclasses import replace

    from devcheck.commands.check import steps
    from devcheck.engine import get_device
    from devcheck.machine.model.facts import cpu_facts, unknown_facts
    from devcheck.machine.model.peaks import Peak

    cpu_peak = cpu_facts().flops_peak("float32").value
    if cpu_peak is None:
        pytest.skip("this CPU's peak is unknown (no clock or vector ISA exposed)")
    peak = Peak(10 * cpu_peak, "GFLOP/s", "10x this CPU's computed peak")
    sim = get_device("sim")
    work = _work("10s", [sim], {"sim": replace(unknown_facts("sim"), flops_peak=lambda dtype: peak)})
    planned = steps._estimate_speed(work) + 1.5  # and the stress step's
    assert planned < work.clock.left
    steps.speed(work)
    steps.stress(work)
    assert work.clock.elapsed < 10.0
    found = {c.id: c for c in work.report.checks}
    record = next(r for r in work.records if r["case"] == "matmul" and r["dtype"] == "float32")
    assert record["shape"][0] == steps.speed_size(work, "sim", "float32") == 1024  # the 10 s budget's cap
    assert found["check.speed.sim.matmul_float32"].status is Status.FAIL, found["check.speed.sim.matmul_float32"]
    assert found["check.speed.sim.matmul_float64"].status is Status.FAIL
    assert found["check.stress.sim"].status is Status.OK and "check.speed.budget" not in found


def test_junit_cases_carry_the_host_and_the_time_of_their_checks(monkeypatch):
    """Issue 22: every case was `devcheck.check` with time 0.000, so the files of many nodes gathered in
    one CI view had duplicate names and no times. The class now names the host (its dots made `_`, as a
    tool splits classes at dots), and a check's time is its share of the work it rests on."""
    import time

    from devcheck.commands.check import steps
    from devcheck.render.junit import to_junit

    monkeypatch.setenv("DEVCHECK_HOST", "gpu-07.example.org")
    work = _work("10s", [], {})
    began = time.perf_counter()
    with seam.replay(h100()):
        steps.health(work)
    took = time.perf_counter() - began
    suite = ET.fromstring(to_junit(work.report, took))
    cases = suite.findall("testcase")
    assert len(cases) == len(work.report.checks) > 10
    assert {c.get("classname") for c in cases} == {"devcheck.gpu-07_example_org.check"}
    assert suite.get("hostname") == "gpu-07.example.org"
    shares = [c.seconds for c in work.report.checks]  # the health step alone may take a few milliseconds
    assert 0.5 * took < sum(shares) <= took, (shares, took)
    assert [float(c.get("time")) for c in cases] == [round(t, 3) for t in shares]  # 3 decimals each
    work.report.host = "gpu-08"
    other = ET.fromstring(to_junit(work.report))
    assert {c.get("classname") for c in other.findall("testcase")} == {"devcheck.gpu-08.check"}


@pytest.mark.slow  # two whole runs of the command: kept in CI (-m "slow or not slow")
def test_check_baseline_matches_its_own_earlier_run(tmp_path):
    """Issue 22: `check --baseline` against the same machine's earlier run found no case alike ("another
    --size?", and check has none): its sizes came from the speed each run measured. Now every case of
    one run is in the other, and each is compared."""
    with seam.replay(h100()):
        first = runner.invoke(app, ["check", "--budget", "10s", "--device", "cuda", "--json"])
    path = tmp_path / "before.json"
    path.write_text(first.stdout)
    _, doc = check("--budget", "10s", "--device", "cuda", "--baseline", str(path), recording=h100())
    baseline = next(c for c in doc["checks"] if c["id"] == "bench.baseline")
    records = json.loads(first.stdout)["data"]["records"]
    assert len(records) >= 3 and [r["shape"] for r in records] == [r["shape"] for r in doc["data"]["records"]]
    assert baseline["status"] in ("ok", "fail") and "not compared" not in baseline.get("detail", ""), baseline


@pytest.mark.parametrize(
    ("line", "nth", "interrupted", "ran"),
    [
        ("health: ", 1, "health", []),  # as the first starts
        ("health: ", 2, None, ["health"]),  # as the first step's outcome is written, after its work: none marked
        ("correctness: ", 1, "correctness", ["health"]),  # as the second starts, before its work: it is marked
        ("p2p: not applicable", 1, None, ["health", "correctness"]),  # a step not for this machine: in no plan
    ],
)
def test_an_interrupt_between_steps_still_gives_the_plan(line, nth, interrupted, ran):
    """A signal lands anywhere: in a step, in the estimate of the next one, in a progress line. A signal
    that came between two steps lost the whole report (a test signalled on the first step's line)."""
    from devcheck.commands import check
    from devcheck.machine.model.devices import select

    said = []

    def ctrl_c(text="", **kwargs):
        said.append(text)
        if text.startswith(line) and sum(t.startswith(line) for t in said) == nth:  # its nth line, once
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as stop:
        check.run(check.Settings(budget="10s"), select("cpu"), progress=ctrl_c)
    plan = {row["step"]: row for row in stop.value.report.to_dict()["data"]["plan"]}
    assert [name for name, row in plan.items() if row.get("interrupted")] == ([interrupted] if interrupted else [])
    assert [name for name, row in plan.items() if row["ran"]] == ran
    assert list(plan) == ["health", "correctness", "speed", "stress"]  # p2p: not for a CPU
    assert all(set(row) <= {"step", "what", "estimate_s", "ran", "seconds", "interrupted"} for row in plan.values())
    starts = {"checking", *(f"{name}: {what}" for name, what, *_ in check.steps.ORDER)}
    ended = [t.partition(":")[0] for t in said if t not in starts]  # a step's outcome, whatever it is
    assert ended == ["health", "correctness", "p2p", "speed", "stress"]  # each step's line once, in order
