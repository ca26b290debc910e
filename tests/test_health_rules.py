"""Every health rule of `devcheck env` (nvml.py) and `devcheck check` (health.py, thresholds.py,
verdicts.py), each on both sides: every clock-event bit NVML defines for a slowdown, ECC errors at 0
and 1, each remap state, each compute mode, the temperature margin at its edge, the under-load clock
at 70% of its maximum, a rate exactly at its floor. The cards are the recorded H100 with one NVML
answer changed (synthetic variants, named in their `why`)."""

import pytest

from devcheck.commands.check.health import health_checks, load_checks, settle_idle_link
from devcheck.commands.check.thresholds import CPU_FLOORS, GPU_FLOORS, LIMITS, Thresholds, load
from devcheck.commands.check.verdicts import gpu_busy, speed_check
from devcheck.commands.env import collect
from devcheck.errors import BadInput
from devcheck.machine import seam
from devcheck.report import Check, Status
from tests.recordings import GPU0, h100

REASONS = ("nvmlDeviceGetCurrentClocksEventReasons", GPU0)


def env_and_check(why, nvml, thresholds=None):
    with seam.replay(h100(why=why, nvml=nvml)):
        env = collect(environ={})
    checks = [*env.checks, *health_checks(env, thresholds or Thresholds(), False)]
    slowdowns = next(s for s in env.sections if s.group == "gpus").fields["clock slowdowns"].value
    return {c.id: str(c.status) for c in checks}, slowdowns


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
    status, slowdowns = env_and_check(f"clock event reason {bit:#x}", {REASONS: bit | 0x1})
    assert slowdowns == [name]
    assert status.get("gpu0.clocks") == ("warn" if held_back else None)  # a power cap alone is no warning
    assert status.get("check.gpu0.slowdown") == ("fail" if held_back else None)


@pytest.mark.parametrize("bit", [0x1, 0x2, 0x10, 0x100])
def test_idle_set_clocks_sync_boost_and_display_clock_are_not_slowdowns(bit):
    status, slowdowns = env_and_check(f"clock event reason {bit:#x}", {REASONS: bit})
    assert slowdowns == [] and status["gpu0.health"] == "ok" and "check.gpu0.slowdown" not in status


def test_several_slowdowns_at_once_are_all_named():
    _, slowdowns = env_and_check("hardware slowdown and power brake", {REASONS: 0x8 | 0x80 | 0x4})
    assert slowdowns == ["software power cap", "hardware slowdown", "power brake"]


@pytest.mark.parametrize(("errors", "ecc"), [(0, None), (1, "fail")])
def test_one_uncorrected_ecc_error_fails(errors, ecc):
    status, _ = env_and_check(f"{errors} uncorrected ECC errors", {("nvmlDeviceGetTotalEccErrors", GPU0, 1, 0): errors})
    assert status.get("gpu0.ecc") == ecc and (ecc or status["gpu0.health"] == "ok")


@pytest.mark.parametrize(
    ("rows", "env_memory", "repairs"),
    [
        ((0, 0, 0, 0), None, None),
        ((0, 1, 1, 0), "warn", "fail"),
        ((0, 1, 0, 1), "fail", None),
        ((3, 0, 0, 0), None, None),
    ],
)
def test_each_remapped_rows_state(rows, env_memory, repairs):
    status, _ = env_and_check(f"remapped rows {rows}", {("nvmlDeviceGetRemappedRows", GPU0): rows})
    assert status.get("gpu0.memory") == env_memory and status.get("check.gpu0.repairs") == repairs


@pytest.mark.parametrize(("mode", "prohibited"), [(0, False), (1, False), (2, True), (3, False)])
def test_only_the_prohibited_compute_mode_fails(mode, prohibited):
    status, _ = env_and_check(f"compute mode {mode}", {("nvmlDeviceGetComputeMode", GPU0): mode})
    assert status.get("gpu0.compute_mode") == ("fail" if prohibited else None)


# The recorded H100 slows down at 89 C; check's margin is 5 C: warn from 84 C, fail from 89 C.
@pytest.mark.parametrize(("temp", "expected"), [(83, None), (84, "warn"), (88, "warn"), (89, "fail")])
def test_the_temperature_margin_on_both_sides(temp, expected):
    status, _ = env_and_check(f"at {temp} C", {("nvmlDeviceGetTemperature", GPU0, 0): temp})
    assert status.get("check.gpu0.temperature") == expected


def test_the_temperature_margin_is_a_threshold_key():
    t = Thresholds(default={"temperature_margin_c": 0.0})
    assert (
        env_and_check("at 88 C", {("nvmlDeviceGetTemperature", GPU0, 0): 88}, t)[0].get("check.gpu0.temperature")
        is None
    )


def test_persistence_mode_off_warns():
    status, _ = env_and_check("persistence off", {("nvmlDeviceGetPersistenceMode", GPU0): 0})
    assert status["check.gpu0.persistence"] == "warn"
    assert "check.gpu0.persistence" not in env_and_check("persistence on", {})[0]


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
    checks = [Check("check.gpu0.pcie", Status.WARN, "idle at gen 1")]
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
    """Documented in thresholds.py: half the peak on a GPU, a quarter on a CPU (no pinned-copy floor)."""
    assert GPU_FLOORS == {"matmul_float32": 0.5, "matmul_float64": 0.5, "bandwidth": 0.5, "copy_pinned": 0.5}
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
