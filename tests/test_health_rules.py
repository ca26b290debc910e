"""Every health rule of `devcheck env` and `devcheck check` (gpu_health.py, check/health.py, thresholds.py,
verdicts.py), each on both sides: every clock-event bit NVML defines for a slowdown, ECC errors at 0
and 1, each remap state, each compute mode, the temperature margin at its edge, the under-load clock
at 70% of its maximum, a rate exactly at its floor. The cards are the recorded H100 with one NVML
answer changed (synthetic variants, named in their `why`)."""

import json

import pynvml
import pytest

from devcheck.commands.check.health import gate, load_checks, settle_idle_link
from devcheck.commands.check.thresholds import CPU_FLOORS, GPU_FLOORS, LIMITS, Thresholds, load
from devcheck.commands.check.verdicts import cpu_busy, gpu_busy, speed_check
from devcheck.commands.env import collect
from devcheck.errors import BadInput
from devcheck.machine.probes.nvml import is_geforce
from devcheck.machine.replay import seam
from devcheck.machine.replay.recording import Handle
from devcheck.report import Check, Status
from tests.cli import runner
from tests.recordings import GPU0, _replace, h100, nvml_error, two_gpus, variant

REASONS = ("nvmlDeviceGetCurrentClocksEventReasons", GPU0)


def env_and_check(why, nvml, thresholds=None):
    """The GPU's checks as env reports them and as check gates on them, and the slowdowns NVML named."""
    with seam.replay(h100(why=why, nvml=nvml)):
        env = collect(environ={})
        gated = collect(environ={}, gate=gate(thresholds or Thresholds(), False))
    slowdowns = next(s for s in env.sections if s.group == "gpus").fields["clock slowdowns"].value
    return {c.id: str(c.status) for c in env.checks}, {c.id: str(c.status) for c in gated.checks}, slowdowns


# NVML's clocks-event reasons (nvml.h): 0x1 GPU idle, 0x2 application clocks, 0x4 SW power cap,
# 0x8 HW slowdown, 0x10 sync boost, 0x20 SW thermal, 0x40 HW thermal, 0x80 HW power brake, 0x100 display clock.
SLOWDOWN_BITS = [
    (0x4, "software power cap", False),
    (0x8, "hardware slowdown", True),
    (0x20, "software thermal slowdown", True),
    (0x40, "hardware thermal slowdown", True),
    (0x80, "power brake", True),
]


@pytest.mark.parametrize(("bit", "name", "held_back"), SLOWDOWN_BITS)
def test_every_slowdown_bit_is_named_and_judged(bit, name, held_back):
    status, gated, slowdowns = env_and_check(f"clock event reason {bit:#x}", {REASONS: bit | 0x1})
    assert slowdowns == [name]
    assert status.get("gpu0.clocks") == ("warn" if held_back else None)  # a power cap alone is no warning
    assert gated.get("gpu0.clocks") == ("fail" if held_back else None)


@pytest.mark.parametrize("bit", [0x1, 0x2, 0x10, 0x100])
def test_idle_set_clocks_sync_boost_and_display_clock_are_not_slowdowns(bit):
    status, gated, slowdowns = env_and_check(f"clock event reason {bit:#x}", {REASONS: bit})
    assert slowdowns == [] and status["gpu0.health"] == "ok" and "gpu0.clocks" not in gated


def test_several_slowdowns_at_once_are_all_named():
    _, _, slowdowns = env_and_check("hardware slowdown and power brake", {REASONS: 0x8 | 0x80 | 0x4})
    assert slowdowns == ["software power cap", "hardware slowdown", "power brake"]


@pytest.mark.parametrize(("errors", "ecc"), [(0, None), (1, "fail")])
def test_one_uncorrected_ecc_error_fails(errors, ecc):
    status, gated, _ = env_and_check(
        f"{errors} uncorrected ECC errors", {("nvmlDeviceGetTotalEccErrors", GPU0, 1, 0): errors}
    )
    assert status.get("gpu0.ecc") == gated.get("gpu0.ecc") == ecc and (ecc or status["gpu0.health"] == "ok")


@pytest.mark.parametrize(
    ("rows", "env_memory", "repairs"),
    [
        ((0, 0, 0, 0), None, None),
        ((0, 1, 1, 0), "warn", "fail"),
        ((0, 1, 0, 1), "fail", "fail"),
        ((3, 0, 0, 0), None, None),
    ],
)
def test_each_remapped_rows_state(rows, env_memory, repairs):
    status, gated, _ = env_and_check(f"remapped rows {rows}", {("nvmlDeviceGetRemappedRows", GPU0): rows})
    assert status.get("gpu0.memory") == env_memory and gated.get("gpu0.memory") == repairs


@pytest.mark.parametrize(("mode", "prohibited"), [(0, False), (1, False), (2, True), (3, False)])
def test_only_the_prohibited_compute_mode_fails(mode, prohibited):
    status, gated, _ = env_and_check(f"compute mode {mode}", {("nvmlDeviceGetComputeMode", GPU0): mode})
    assert status.get("gpu0.compute_mode") == gated.get("gpu0.compute_mode") == ("fail" if prohibited else None)


# The recorded H100 slows down at 89 C; check's margin is 5 C: warn from 84 C, fail from 89 C.
@pytest.mark.parametrize(("temp", "expected"), [(83, None), (84, "warn"), (88, "warn"), (89, "fail")])
def test_the_temperature_margin_on_both_sides(temp, expected):
    status, gated, _ = env_and_check(f"at {temp} C", {("nvmlDeviceGetTemperature", GPU0, 0): temp})
    assert gated.get("gpu0.temperature") == expected and "gpu0.temperature" not in status


def test_the_temperature_margin_is_a_threshold_key():
    t = Thresholds(default={"temperature_margin_c": 0.0})
    assert env_and_check("at 88 C", {("nvmlDeviceGetTemperature", GPU0, 0): 88}, t)[1].get("gpu0.temperature") is None


def test_persistence_mode_off_warns():
    status, gated, _ = env_and_check("persistence off", {("nvmlDeviceGetPersistenceMode", GPU0): 0})
    assert gated["gpu0.persistence"] == "warn" and "gpu0.persistence" not in status
    assert "gpu0.persistence" not in env_and_check("persistence on", {})[1]


# --- under load ----------------------------------------------------------------------------------------------
FULL = {"nvml_index": 0, "sm_mhz": 1980, "sm_max_mhz": 1980, "pcie_gen": 5, "pcie_gen_max": 5}
FULL |= {"pcie_width": 16, "pcie_width_max": 16, "held_back": []}


def under_load(**changes):
    return [(c.id, str(c.status)) for c in load_checks("cuda:0", FULL | changes, replaying=False)]


@pytest.mark.parametrize(("mhz", "expected"), [(1386, "ok"), (1385, "warn"), (700, "warn")])
def test_an_under_load_clock_under_70_percent_of_its_maximum_warns(mhz, expected):
    """70% of 1980 MHz is 1386."""
    assert under_load(sm_mhz=mhz) == [("check.cuda:0.under_load", expected)]


@pytest.mark.parametrize(("reason", "expected"), [("hardware slowdown", "fail"), ("software power cap", "ok")])
def test_held_back_under_load(reason, expected):
    assert under_load(held_back=[reason]) == [("check.cuda:0.under_load", expected)]


@pytest.mark.parametrize(("link", "short"), [({"pcie_gen": 4}, True), ({"pcie_width": 8}, True), ({}, False)])
def test_a_short_link_under_load_fails(link, short):
    expected = [("check.cuda:0.under_load.pcie", "fail")] if short else []
    assert [c for c in under_load(**link) if c[0].endswith(".pcie")] == expected


def test_under_load_readings_missing_or_replayed():
    assert [str(c.status) for c in load_checks("cuda:0", {}, replaying=False)] == ["warn"]
    assert [str(c.status) for c in load_checks("cuda:0", {"error": "lost"}, replaying=False)] == ["warn"]
    assert [str(c.status) for c in load_checks("cuda:0", FULL, replaying=True)] == ["skip"]


@pytest.mark.parametrize(("reading", "settled"), [({}, "ok"), ({"pcie_width": 8}, "warn"), ({"pcie_gen": 4}, "warn")])
def test_an_idle_link_warning_is_settled_only_by_a_full_link_under_load(reading, settled):
    checks = [Check("gpu0.pcie", Status.WARN, "idle at gen 1")]
    settle_idle_link(checks, FULL | reading)
    assert str(checks[0].status) == settled


# --- floors and speed verdicts -----------------------------------------------------------------------------
RECORD = {"device": "cuda:0", "case": "matmul", "dtype": "float32", "unit": "GFLOP/s", "rate": 500.0}
RECORD |= {"peak": {"value": 1000.0, "basis": "132 SMs"}}


@pytest.mark.parametrize(("rate", "expected"), [(500.0, "ok"), (499.9, "fail"), (900.0, "ok")])
def test_a_rate_exactly_at_its_floor_passes_and_one_under_fails(rate, expected):
    assert str(speed_check("x", RECORD | {"rate": rate}, 0.5, replaying=False).status) == expected


def test_no_peak_warns_unless_the_floor_is_zero_and_a_replay_is_not_judged():
    no_peak = RECORD | {"peak": {"value": None, "basis": "unknown compute capability 5.2"}}
    assert str(speed_check("x", no_peak, 0.5, replaying=False).status) == "warn"
    assert str(speed_check("x", no_peak, 0.0, replaying=False).status) == "ok"
    assert str(speed_check("x", RECORD | {"rate": 1.0}, 0.5, replaying=True).status) == "skip"
    busy = speed_check("x", RECORD | {"rate": 499.0}, 0.5, replaying=False, busy="2 other process(es)")
    assert str(busy.status) == "warn"
    assert str(speed_check("x", RECORD | {"rate": 500.0}, 0.5, replaying=False, busy="busy").status) == "ok"


@pytest.mark.parametrize(
    ("busy", "said"),
    [
        (None, ""),
        (0.0, ""),
        (0.25, ""),
        (0.26, "the CPUs are 26% busy with other work"),
        (1.0, "the CPUs are 100% busy with other work"),
    ],
)
def test_cpus_busy_with_other_work_on_both_sides_of_a_quarter(busy, said):
    assert cpu_busy(busy) == said


def test_gpu_busy_names_at_most_four_processes():
    assert gpu_busy(None) == "" and gpu_busy((0, [], True)) == ""
    entries = [(100 + k, 2**30) for k in range(6)]
    text = gpu_busy((6, entries, True))
    assert text.startswith("6 other process(es) compute on this GPU (pid 100 with 1,024 MiB, pid 101")
    assert "pid 103 with 1,024 MiB and 2 more)" in text and "pid 104" not in text
    assert "devcheck is one of them" in gpu_busy((1, [(7, None)], False)) and "pid 7)" not in gpu_busy(
        (1, [(7, None)], False)
    )


def test_the_default_floors_and_limits():
    """Documented in thresholds.py: half the peak on a GPU (and its links), a quarter on a CPU (no pinned floor)."""
    assert GPU_FLOORS == {
        "matmul_float32": 0.5,
        "matmul_float64": 0.5,
        "bandwidth": 0.5,
        "copy_pinned": 0.5,
        "p2p": 0.5,
    }
    assert CPU_FLOORS == {"matmul_float32": 0.25, "matmul_float64": 0.25, "bandwidth": 0.25, "copy_pinned": 0.0}
    assert LIMITS == {"temperature_margin_c": 5.0, "stress_drift": 0.10}
    t = Thresholds()
    assert (t.floor("bandwidth", "cuda:0", "H100"), t.floor("bandwidth", "cpu", "cpu")) == (0.5, 0.25)
    assert (t.floor("stress_drift", "cuda:0", "H100"), t.floor("stress_drift", "cpu", "cpu")) == (0.1, 0.1)
    assert t.floor("no such key", "cuda:0", "H100") == 0.0


def test_a_thresholds_file_overrides_per_model_then_device_then_default(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[default]\nbandwidth = 0.4\n[cpu]\nbandwidth = 0.1\n["H100"]\nbandwidth = 0.7\nstress_drift = 0\n')
    t = load(path)
    assert t.floor("bandwidth", "cuda:0", "H100") == 0.7 and t.floor("bandwidth", "cuda:0", "A100") == 0.4
    assert t.floor("bandwidth", "cpu", "cpu") == 0.1 and t.floor("stress_drift", "cuda:0", "H100") == 0.0
    assert t.floor("matmul_float32", "cuda:0", "A100") == 0.5 and load(None) == Thresholds()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[default]\nbandwidth = -0.1\n", "bandwidth = -0.1: expected a number >= 0"),
        ("[default]\nbandwidth = true\n", "bandwidth = True: expected a number >= 0"),
        ('[default]\nbandwidth = "x"\n', "expected a number >= 0"),
        ("[default]\nspeed = 0.5\n", "[default] speed: unknown; known: bandwidth, copy_pinned"),
        ("bandwidth = 0.5\n", "'bandwidth' must be a table"),
        ("[default\n", "not a TOML file"),
    ],
)
def test_a_bad_thresholds_file_is_named(tmp_path, text, words):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(BadInput) as e:
        load(path)
    assert str(e.value).startswith(f"--thresholds {path}: ") and words in str(e.value)


def test_a_zero_floor_is_allowed(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("[default]\nbandwidth = 0\n")
    assert load(path).floor("bandwidth", "cuda:0", "H100") == 0.0


def test_older_drivers_answer_the_throttle_reasons_call_and_are_judged_the_same():
    """Drivers before 535 lack nvmlDeviceGetCurrentClocksEventReasons; the older call says the same bits."""
    missing = {"error": nvml_error(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)}
    recording = h100(why="a driver before 535: hardware slowdown, by the older call")
    _replace(recording.nvml, REASONS[0], [GPU0], missing)
    _replace(recording.nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", [GPU0], {"result": 0x8})
    with seam.replay(recording):
        env = collect(environ={})
    field = next(s for s in env.sections if s.group == "gpus").fields["clock slowdowns"]
    assert (field.value, field.source) == (["hardware slowdown"], "NVML nvmlDeviceGetCurrentClocksThrottleReasons")
    _replace(recording.nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", [GPU0], missing)
    with seam.replay(recording):
        env = collect(environ={})
    assert next(s for s in env.sections if s.group == "gpus").fields["clock slowdowns"].value is None


@pytest.mark.parametrize(
    ("brand", "geforce"),
    [("NVML_BRAND_GEFORCE", True), ("NVML_BRAND_GEFORCE_RTX", True), ("NVML_BRAND_NVIDIA", False),
     ("NVML_BRAND_TESLA", False), ("NVML_BRAND_NVIDIA_RTX", False)],
)  # fmt: skip
def test_geforce_brands(brand, geforce):
    assert is_geforce(pynvml, getattr(pynvml, brand)) is geforce
    assert is_geforce(pynvml, None) is False


# --- what each rule says: the words a user acts on ---------------------------------------------------------
PERFORMANCE = "(`nvidia-smi -q -d PERFORMANCE`)"
MESSAGES = [
    ({REASONS: 0x48}, "gpu0.clocks", "warn", "GPU 0 is slowed down: hardware slowdown, hardware thermal slowdown",
     "temperature 42 C (slowdown at 89 C), power 75.8 W", f"check cooling, airflow and power delivery {PERFORMANCE}"),
    ({REASONS: 0x48}, "check:gpu0.clocks", "fail", "GPU 0 is held back: hardware slowdown, hardware thermal slowdown",
     "temperature 42 C (slowdown at 89 C), power 75.8 W", f"check cooling, airflow and power delivery {PERFORMANCE}"),
    ({("nvmlDeviceGetTotalEccErrors", GPU0, 1, 0): 4}, "gpu0.ecc", "fail", "GPU 0: 4 uncorrected ECC errors since boot",
     "results computed on this GPU may be wrong",
     "drain the GPU, reset it (sudo nvidia-smi -r -i 0), run `dcgmi diag -r 3`; RMA if it recurs"),
    ({("nvmlDeviceGetRemappedRows", GPU0): (0, 1, 0, 1)}, "gpu0.memory", "fail", "GPU 0: a memory row remap failed",
     "", "the GPU needs service (RMA); stop scheduling work on it"),
    ({("nvmlDeviceGetRemappedRows", GPU0): (0, 1, 1, 0)}, "gpu0.memory", "warn",
     "GPU 0: memory repairs are pending (remapped rows or retired pages)",
     "they take effect at the next GPU reset; until then the bad memory is still in use",
     "when the GPU is idle: `sudo nvidia-smi -r -i 0` or reboot"),
    ({("nvmlDeviceGetRemappedRows", GPU0): (0, 1, 1, 0)}, "check:gpu0.memory", "fail",
     "GPU 0: memory repairs are pending (remapped rows or retired pages)",
     "they take effect at the next GPU reset; until then the bad memory is still in use",
     "drain the node, then `sudo nvidia-smi -r -i 0` or reboot"),
    ({("nvmlDeviceGetComputeMode", GPU0): 2}, "gpu0.compute_mode", "fail",
     "GPU 0 is in Prohibited compute mode: no CUDA context can be created on it", "",
     "sudo nvidia-smi -i 0 -c DEFAULT"),
    ({("nvmlDeviceGetTemperature", GPU0, 0): 86}, "check:gpu0.temperature", "warn",
     "GPU 0 at 86 C, 3 C under its slowdown threshold (89 C)", "", "check cooling and airflow"),
    ({("nvmlDeviceGetCurrPcieLinkGeneration", GPU0): 1, ("nvmlDeviceGetCurrPcieLinkWidth", GPU0): 8}, "check:gpu0.pcie",
     "warn", "GPU 0: PCIe link at gen 1 of 5, x8 of x16 at idle",
     "an idle GPU may slow and narrow its link to save power (an idle L4 read gen 1 of 4, x8 of x16); check's stress "
     "window reads it again under load, and this turns ok or fails there",
     "if the stress window did not run on it: `nvidia-smi -q -d PCIE` while a job runs"),
    ({("nvmlDeviceGetPersistenceMode", GPU0): 0}, "check:gpu0.persistence", "warn",
     "GPU 0: persistence mode is off: each new process waits while the driver sets the GPU up", "",
     "sudo nvidia-smi -i 0 -pm 1 (or run nvidia-persistenced)"),
    ({}, "gpu0.health", "ok", "GPU 0: no ECC, memory, clock or mode problem reported", "", ""),
]  # fmt: skip


@pytest.mark.parametrize(("nvml", "check_id", "status", "summary", "detail", "fix"), MESSAGES)
def test_what_each_health_rule_says(nvml, check_id, status, summary, detail, fix):
    """`check:ID`: the check as `devcheck check` gates on it; `ID`: as `devcheck env` reports it."""
    context, _, check_id = check_id.rpartition(":")
    with seam.replay(h100(why=f"{check_id}: {summary}", nvml=nvml)):
        env = collect(environ={}, gate=gate(Thresholds(), False) if context else None)
    found = {c.id: c for c in env.checks}[check_id]
    assert (str(found.status), found.summary, found.detail, found.fix) == (status, summary, detail, fix)


CLOCKS = "check application clocks and power limits (`nvidia-smi -q -d CLOCK,POWER`)"
LINK = ("host<->device copies run at a fraction of their speed",
        "reseat the card or check the riser, the slot and its BIOS settings; `nvidia-smi -q -d PCIE`")  # fmt: skip
LOAD_MESSAGES = [
    ({}, "", "ok", "cuda:0 under load: 1980 of 1980 MHz, PCIe gen 5 of 5, x16", "", ""),
    ({"sm_mhz": 1000}, "", "warn", "cuda:0 ran at 1000 of 1980 MHz under load", "slowdown reasons: none reported",
     CLOCKS),
    ({"sm_mhz": 1000, "held_back": ["software power cap"]}, "", "warn", "cuda:0 ran at 1000 of 1980 MHz under load",
     "slowdown reasons: software power cap", CLOCKS),
    ({"held_back": ["hardware slowdown", "power brake"], "sm_mhz": 1200}, "", "fail",
     "cuda:0 was held back under load: hardware slowdown, power brake (1200 of 1980 MHz)", "",
     f"check cooling and power delivery {PERFORMANCE}"),
    ({"pcie_gen": 4, "pcie_width": 8}, ".pcie", "fail", "cuda:0: PCIe link at gen 4 of 5, x8 of x16 under load", *LINK),
    ({"pcie_gen": 4, "pcie_width": None}, ".pcie", "fail", "cuda:0: PCIe link at gen 4 of 5 under load", *LINK),
    ({"pcie_width": 8, "pcie_gen": None}, ".pcie", "fail", "cuda:0: PCIe link at gen None of 5, x8 of x16 under load",
     *LINK),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "suffix", "status", "summary", "detail", "fix"), LOAD_MESSAGES)
def test_what_each_under_load_rule_says(changes, suffix, status, summary, detail, fix):
    found = {c.id: c for c in load_checks("cuda:0", FULL | changes, replaying=False)}
    c = found[f"check.cuda:0.under_load{suffix}"]
    assert (str(c.status), c.summary, c.detail, c.fix) == (status, summary, detail, fix)


def test_what_missing_or_replayed_readings_say():
    (none,) = load_checks("cuda:0", {}, replaying=False)
    assert (none.summary, none.fix) == (
        "cuda:0: NVML could not be read under load: NVML gave no readings",
        "run `devcheck env`",
    )
    (lost,) = load_checks("cuda:0", {"error": "NVML lost"}, replaying=False)
    assert lost.summary == "cuda:0: NVML could not be read under load: NVML lost"
    (replay,) = load_checks("cuda:0", FULL, replaying=True)
    assert (replay.id, replay.summary) == (
        "check.cuda:0.under_load",
        "cuda:0: under-load clocks not judged (replay: the recorded clocks are idle ones)",
    )


def test_what_a_settled_idle_link_says():
    checks = [
        Check("gpu0.pcie", Status.WARN, "GPU 0: PCIe link at gen 1 of 5 at idle", detail="may save power", fix="look"),
        Check("other", Status.WARN, "x"),
    ]
    settle_idle_link(checks, FULL)
    assert checks[0].summary == "GPU 0: PCIe link at gen 1 of 5 at idle; gen 5, x16 under load: it saves power at idle"
    assert (checks[0].detail, checks[0].fix) == ("", "")  # an ok check has nothing to explain or do
    assert str(checks[1].status) == "warn"
    for readings in (FULL | {"error": "lost"}, FULL | {"pcie_gen_max": None}, FULL | {"nvml_index": 1}):
        unsettled = [Check("gpu0.pcie", Status.WARN, "idle")]
        settle_idle_link(unsettled, readings)
        assert str(unsettled[0].status) == "warn"


SPEED = "check clocks, power and throttling (`devcheck env`, `nvidia-smi -q -d PERFORMANCE`); a floor that does not fit this model can be set with --thresholds"  # noqa: E501
M = "cuda:0 matmul float32: "
SPEED_MESSAGES = [
    (500.0, 1000.0, False, "", "ok", f"{M}500.0 GFLOP/s, 50% of its 1,000 GFLOP/s peak (floor 50%)", "", ""),
    (400.0, 1000.0, False, "", "fail", f"{M}400.0 GFLOP/s, 40% of its 1,000 GFLOP/s peak (floor 50%)",
     "peak: 132 SMs", SPEED),
    (400.0, None, False, "", "warn", f"{M}400.0 GFLOP/s; no peak known, so speed is not judged",
     "132 SMs", ""),
    (400.0, 1000.0, True, "", "skip", f"{M}400.0 GFLOP/s (replay: NumPy's speed, not judged)", "", ""),
    (400.0, 1000.0, False, "busy now", "warn", f"{M}400.0 GFLOP/s; busy now, so speed is not judged",
     "", "run it idle"),
]  # fmt: skip


@pytest.mark.parametrize(("rate", "peak", "replaying", "busy", "status", "summary", "detail", "fix"), SPEED_MESSAGES)
def test_what_each_speed_verdict_says(rate, peak, replaying, busy, status, summary, detail, fix):
    record = RECORD | {"rate": rate, "peak": {"value": peak, "basis": "132 SMs"}}
    c = speed_check("check.speed", record, 0.5, replaying, busy)
    assert (c.id, str(c.status), c.summary, c.detail, c.fix) == ("check.speed", status, summary, detail, fix)


def health_of(recording, strict=False, thresholds=None):
    """The GPU checks `devcheck check` gates on (ok ones left out)."""
    with seam.replay(recording):
        env = collect(environ={}, gate=gate(thresholds or Thresholds(), strict))
    return {c.id: c for c in env.checks if c.id.startswith("gpu") and c.status is not Status.OK}


@pytest.mark.parametrize(("strict", "status"), [(False, "warn"), (True, "fail")])
def test_a_field_nvml_could_not_read_is_never_a_pass(strict, status):
    recording = h100(why="NVML's power reading fails (Unknown Error)")
    _replace(recording.nvml, "nvmlDeviceGetPowerUsage", [GPU0], {"error": nvml_error(pynvml.NVML_ERROR_UNKNOWN)})
    c = health_of(recording, strict)["gpu0.nvml"]
    assert (str(c.status), c.summary, c.detail) == (
        status,
        "GPU 0: NVML could not read 1 field(s)",
        "power draw W: Unknown Error",
    )
    assert c.fix == "run `nvidia-smi -q`; an NVML error mid-run often precedes a lost GPU (check `dmesg` for Xid)"
    assert "gpu0.nvml" not in health_of(h100())  # n/a fields (retired pages on an H100) are no error


@pytest.mark.parametrize(
    ("nvml", "pcie"),
    [
        ({("nvmlDeviceGetCurrPcieLinkWidth", GPU0): 1, ("nvmlDeviceGetMaxPcieLinkWidth", GPU0): 1}, None),  # GH200 C2C
        ({("nvmlDeviceGetCurrPcieLinkWidth", GPU0): 1, ("nvmlDeviceGetMaxPcieLinkWidth", GPU0): 16}, "warn"),
        ({("nvmlDeviceGetCurrPcieLinkWidth", GPU0): 16, ("nvmlDeviceGetMaxPcieLinkWidth", GPU0): 1}, None),
        ({("nvmlDeviceGetCurrPcieLinkGeneration", GPU0): 4}, "warn"),
        ({("nvmlDeviceGetCurrPcieLinkWidth", GPU0): 8}, "warn"),
        ({}, None),
    ],
)
def test_the_idle_link_rule(nvml, pcie):
    found = health_of(h100(why=f"PCIe link {nvml}", nvml=nvml)).get("gpu0.pcie")
    assert (found and str(found.status)) == pcie


def test_an_unread_link_or_temperature_threshold_is_not_judged():
    recording = h100(why="no PCIe width and no slowdown threshold from NVML")
    missing = {"error": nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)}
    _replace(recording.nvml, "nvmlDeviceGetCurrPcieLinkWidth", [GPU0], missing)
    _replace(
        recording.nvml, "nvmlDeviceGetTemperatureThreshold", [GPU0, pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN], missing
    )
    _replace(recording.nvml, "nvmlDeviceGetTemperature", [GPU0, pynvml.NVML_TEMPERATURE_GPU], {"result": 95})
    assert health_of(recording) == {}  # nothing judged, and nothing crashed (a crash would be gpu0.probe)


def test_retired_pages_pending_is_a_repair_pending():
    found = health_of(
        h100(why="a V100 with retired pages pending", nvml={("nvmlDeviceGetRetiredPagesPendingStatus", GPU0): 1})
    )
    assert str(found["gpu0.memory"].status) == "fail"


def test_a_link_of_one_lane_at_most_is_no_pcie_link_to_judge_and_two_lanes_are():
    """A GH200's C2C reads x1 of x1; x1 of x2 is a narrowed link; a wider link than its maximum is judged."""
    c2c = {("nvmlDeviceGetCurrPcieLinkWidth", GPU0): 1, ("nvmlDeviceGetMaxPcieLinkWidth", GPU0): 1}
    assert "gpu0.pcie" not in health_of(h100(why="x1 of x1, gen 4 of 5", nvml=c2c | {GEN: 4}))
    narrowed = {("nvmlDeviceGetCurrPcieLinkWidth", GPU0): 1, ("nvmlDeviceGetMaxPcieLinkWidth", GPU0): 2}
    assert str(health_of(h100(why="x1 of x2", nvml=narrowed))["gpu0.pcie"].status) == "warn"
    odd = {("nvmlDeviceGetCurrPcieLinkWidth", GPU0): 2, ("nvmlDeviceGetMaxPcieLinkWidth", GPU0): 1, GEN: 4}
    assert str(health_of(h100(why="x2 of x1, gen 4 of 5", nvml=odd))["gpu0.pcie"].status) == "warn"


GEN = ("nvmlDeviceGetCurrPcieLinkGeneration", GPU0)


def test_every_field_nvml_could_not_read_is_named():
    recording = h100(why="NVML's power and clock readings fail (Unknown Error)")
    error = {"error": nvml_error(pynvml.NVML_ERROR_UNKNOWN)}
    _replace(recording.nvml, "nvmlDeviceGetPowerUsage", [GPU0], error)
    _replace(recording.nvml, "nvmlDeviceGetEnforcedPowerLimit", [GPU0], error)
    c = health_of(recording)["gpu0.nvml"]
    assert (c.summary, c.detail) == (
        "GPU 0: NVML could not read 2 field(s)",
        "power draw W: Unknown Error; power limit W: Unknown Error",
    )


@pytest.mark.parametrize("table", ["NVIDIA H100 80GB HBM3", "cuda:0", "default"])
def test_the_temperature_margin_is_read_per_model_then_device(table):
    t = (
        Thresholds(default={"temperature_margin_c": 0.0})
        if table == "default"
        else Thresholds(per_model={table: {"temperature_margin_c": 0.0}})
    )
    assert "gpu0.temperature" not in health_of(
        h100(why="at 88 C", nvml={("nvmlDeviceGetTemperature", GPU0, 0): 88}), thresholds=t
    )


def test_a_gpu_whose_name_nvml_cannot_read_is_an_unknown_gpu_model():
    recording = h100(why="no name from NVML")
    _replace(recording.nvml, "nvmlDeviceGetName", [GPU0], {"error": nvml_error(pynvml.NVML_ERROR_UNKNOWN)})
    _replace(recording.nvml, "nvmlDeviceGetTemperature", [GPU0, 0], {"result": 88})
    t = Thresholds(per_model={"unknown GPU": {"temperature_margin_c": 0.0}})
    assert "gpu0.temperature" not in health_of(recording, thresholds=t)
    assert "gpu0.temperature" in health_of(recording)


def test_every_gpu_is_judged_past_a_lost_one_and_none_hides_another():
    lost = variant(
        two_gpus(h100()),
        "GPU 0 answers GpuIsLost (Xid 79); GPU 1 runs with persistence mode off",
        nvml={
            ("nvmlDeviceGetHandleByIndex", 0): {"error": nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)},
            ("nvmlDeviceGetPersistenceMode", Handle("gpu1")): 0,
        },
    )
    assert set(health_of(lost)) == {"gpu0.lost", "gpu1.persistence"}
    both = variant(
        two_gpus(h100()),
        "GPU 0 with persistence off, GPU 1 at gen 4 of 5",
        nvml={
            ("nvmlDeviceGetPersistenceMode", GPU0): 0,
            ("nvmlDeviceGetCurrPcieLinkGeneration", Handle("gpu1")): 4,
        },
    )
    assert set(health_of(both)) == {"gpu0.persistence", "gpu1.pcie"}


def test_the_ids_and_words_of_settled_and_unread_load_checks():
    checks = [Check("gpu0.pcie", Status.WARN, "idle")]
    settle_idle_link(checks, FULL)
    assert checks[0].id == "gpu0.pcie"
    assert [c.id for c in load_checks("cuda:0", {}, replaying=False)] == ["check.cuda:0.under_load"]
    (unknown_width,) = load_checks("cuda:0", FULL | {"pcie_width": None}, replaying=False)
    assert unknown_width.summary == "cuda:0 under load: 1980 of 1980 MHz, PCIe gen 5 of 5, x?"
    (two,) = load_checks("cuda:0", FULL | {"sm_mhz": 900, "held_back": ["software power cap", "sync boost"]}, False)
    assert two.detail == "slowdown reasons: software power cap, sync boost"


def test_a_thresholds_file_with_no_default_table_keeps_the_built_in_floors(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('["H100"]\nbandwidth = 0.7\n')
    t = load(path)
    assert t.floor("bandwidth", "cuda:0", "A100") == 0.5 and t.floor("bandwidth", "cpu", "AMD EPYC 7763") == 0.25
    cpu = Thresholds(per_model={"cpu": {"bandwidth": 0.1}})
    assert cpu.floor("bandwidth", "cpu", "AMD EPYC 7763") == 0.1  # the device's table, whatever the CPU model


def test_what_gpu_busy_says():
    one = (
        "1 other process(es) compute on this GPU (pid 7; devcheck is one of them (in a container NVML lists host pids))"
    )
    assert gpu_busy((1, [(7, None)], False)) == one
    four = gpu_busy((4, [(k, None) for k in range(4)], True))
    assert four == "4 other process(es) compute on this GPU (pid 0, pid 1, pid 2, pid 3)"
    five = gpu_busy((5, [(k, 2**20) for k in range(5)], True))
    assert five.endswith("pid 3 with 1 MiB and 1 more)")


@pytest.mark.slow  # three whole check runs
@pytest.mark.parametrize(
    ("why", "nvml", "fault"),
    [
        ("a row remap pending", {("nvmlDeviceGetRemappedRows", GPU0): (0, 1, 1, 0)}, "gpu0.memory"),
        ("a hardware thermal slowdown", {REASONS: 0x40}, "gpu0.clocks"),
        ("4 uncorrected ECC errors", {("nvmlDeviceGetTotalEccErrors", GPU0, 1, 0): 4}, "gpu0.ecc"),
    ],
)
def test_one_replayed_fault_gives_one_check_in_a_whole_check_run(why, nvml, fault):
    """Before, one pending repair read `gpu0.memory: warn` (env's) and `check.gpu0.repairs: fail` (check's),
    one slowdown `gpu0.clocks: warn` and `check.gpu0.slowdown: fail`. Now the GPU's checks in a whole
    `check` run are that fault's one check, failed, beside the healthy card's own (a busy CPU is no GPU fault)."""
    from devcheck.cli import app

    def gpu_checks(recording):
        with seam.replay(recording):
            result = runner.invoke(app, ["check", "--budget", "10s", "--json"])
        doc = json.loads(result.stdout)
        return {c["id"]: c["status"] for c in doc["checks"] if c["id"].startswith(("gpu0", "check.gpu0"))}

    healthy = gpu_checks(h100())
    faulty = gpu_checks(h100(why=why, nvml=nvml))
    assert healthy == {"gpu0.health": "ok"} and faulty == {fault: "fail"}


def test_the_temperature_margin_of_cuda_n_is_cuda_s_n_not_nvmls():
    """`["cuda:1"]` in --thresholds names what CUDA calls cuda:1, which NVML's index need not be: the H100
    at 88 C (slowdown at 89 C), seen by CUDA as cuda:1 (as CUDA_VISIBLE_DEVICES=1,0 would make it)."""
    from devcheck.commands.gpu_health import judge
    from devcheck.machine.probes import gpu_reading, nvml
    from devcheck.report import Field

    with seam.replay(h100(why="at 88 C", nvml={("nvmlDeviceGetTemperature", GPU0, 0): 88})):
        gpu = nvml.read_driver().gpus[0]
        reading = gpu_reading.read(seam.nvml(), gpu, Field(1, "CUDA_VISIBLE_DEVICES"))
    assert (reading.nvml_index.value, reading.temperature_c.value, reading.slowdown_temperature_c.value) == (0, 88, 89)

    def temperature(table: str) -> list[str]:
        checks = judge(reading, gate(Thresholds(per_model={table: {"temperature_margin_c": 0.0}}), False))
        return [str(c.status) for c in checks if c.id == "gpu0.temperature"]

    assert temperature("cuda:1") == [] and temperature("cuda:0") == ["warn"]
