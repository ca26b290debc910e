"""`devcheck compare`'s rules at their boundaries, on small fleets built in memory: the modified
z-score's limit on both sides (a GPU 4% off an identical fleet's median is not an outlier, one 6% off
is: the MAD floor makes the limit 3.5 x 1.4826 x 1% = 5.19%), a group of exactly MIN_GROUP devices
judged and a smaller one not, and every drift fact the module documents."""

import warnings

import numpy
import pytest

from devcheck.commands.check.thresholds import Thresholds
from devcheck.commands.compare import outliers, summary
from devcheck.commands.compare.drift import describe
from devcheck.commands.compare.drift import drift as find_drift

MEASURE = ("cuda:0", "matmul", "float32", "4096x4096x4096", "GFLOP/s")


def fleet(values, measure=MEASURE, peak=None, model="NVIDIA H100 80GB HBM3"):
    nodes = {}
    for k, value in enumerate(values):
        node = summary.Node(f"node-{k}", f"2026{k:04d}", "check", f"r/{k}.json")
        node.models[measure[0]] = model
        node.measures[measure] = (value, peak)
        nodes[node.host] = node
    return nodes


def flagged(values, **kw):
    (group,) = outliers.groups(fleet(values, **kw))
    return [group.hosts[i] for i in group.outliers()]


@pytest.mark.parametrize(
    ("off", "is_outlier"),
    [(0.04, False), (0.05, False), (0.051, False), (0.053, True), (0.06, True), (-0.04, False), (-0.06, True)],
)
def test_a_gpu_off_the_median_of_identical_peers_by_more_than_5_19_percent_is_an_outlier(off, is_outlier):
    got = flagged([100.0] * 4 + [100.0 * (1 + off)])
    assert got == (["node-4"] if is_outlier else [])


def test_the_z_score_and_its_scale():
    """z = (x - median) / (1.4826 x MAD), the MAD floored at 1% of the median."""
    (g,) = outliers.groups(fleet([80.0, 90.0, 100.0, 110.0, 200.0]))
    assert (g.median, g.mad) == (100.0, 10.0) and g.scale == pytest.approx(14.826)
    assert list(g.z) == pytest.approx([-20 / 14.826, -10 / 14.826, 0.0, 10 / 14.826, 100 / 14.826])
    assert g.outliers() == [4]
    (tight,) = outliers.groups(fleet([1000.0, 1000.0, 1001.0, 1000.0, 1070.0]))
    assert (tight.mad, tight.scale) == (0.0, pytest.approx(1.4826 * 10.0))  # the floor: 1% of 1000


def test_a_group_of_exactly_min_group_devices_is_judged_and_one_smaller_is_not():
    assert outliers.MIN_GROUP == 3
    (three,) = outliers.groups(fleet([100.0, 100.0, 110.0]))
    assert three.judged and three.outliers() == [2]
    (two,) = outliers.groups(fleet([100.0, 110.0]))
    assert not two.judged and two.outliers() == []
    assert "fewer than 3 devices" in outliers.RULE and "|z| > 3.5" in outliers.RULE


def test_a_fleet_of_zeros_flags_only_its_non_zero_value():
    (g,) = outliers.groups(fleet([0.0, 0.0, 0.0, 5.0]))
    assert g.scale == 0 and g.outliers() == [3] and g.z[3] == float("inf") and list(g.z[:3]) == [0, 0, 0]
    (low,) = outliers.groups(fleet([0.0, 0.0, 0.0, -5.0]))
    assert low.z[3] == float("-inf") and low.outliers() == [3]
    (same,) = outliers.groups(fleet([0.0, 0.0, 0.0]))
    assert same.outliers() == []


def test_groups_split_by_kind_model_and_measure():
    hosts = fleet([100.0, 100.0, 100.0])
    hosts["node-0"].measures[("cpu", "matmul", "float32", "4096x4096x4096", "GFLOP/s")] = (5.0, None)
    hosts["node-1"].models["cuda:0"] = "NVIDIA A100-SXM4-80GB"
    got = [(g.kind, g.model, len(g.values), g.label()) for g in outliers.groups(hosts)]
    assert got == [
        ("cpu", "cpu", 1, "matmul float32 4096x4096x4096"),
        ("gpu", "NVIDIA A100-SXM4-80GB", 1, "matmul float32 4096x4096x4096"),
        ("gpu", "NVIDIA H100 80GB HBM3", 2, "matmul float32 4096x4096x4096"),
    ]


@pytest.mark.parametrize(
    ("unit", "z", "word"),
    [("GFLOP/s", -4.0, "slower"), ("GB/s", 4.0, "faster"), ("samples/s", -1, "slower"), ("W", -4.0, "lower")],
)
def test_direction(unit, z, word):
    assert outliers.direction(unit, z) == word
    assert outliers.direction("MHz", 4.0) == "higher"


def test_absolute_floors_apply_below_not_at_the_floor_and_the_model_table_wins():
    peak = 1000.0
    hosts = fleet([499.0, 500.0, 700.0], peak=peak)
    (g,) = outliers.groups(hosts)
    below = outliers.below_floors([g], Thresholds(default={"matmul_float32": 0.5}))
    assert [(b["host"], b["key"], b["floor"]) for b in below] == [("node-0", "matmul_float32", 0.5)]
    assert below[0]["fraction_of_peak"] == pytest.approx(0.499)
    per_model = Thresholds(
        default={"matmul_float32": 0.1}, per_model={"NVIDIA H100 80GB HBM3": {"matmul_float32": 0.6}}
    )
    assert [b["host"] for b in outliers.below_floors([g], per_model)] == ["node-0", "node-1"]
    assert outliers.below_floors([g], Thresholds()) == []  # check's built-in floors are not applied
    (no_peak,) = outliers.groups(fleet([1.0, 1.0, 1.0]))
    assert outliers.below_floors([no_peak], Thresholds(default={"matmul_float32": 0.5})) == []


def test_floor_of_reads_the_model_then_the_device_then_default():
    t = Thresholds(default={"bandwidth": 0.1}, per_model={"cpu": {"bandwidth": 0.2}, "H100": {"bandwidth": 0.3}})
    assert outliers.floor_of(t, "bandwidth", "cuda:0", "H100") == 0.3
    assert outliers.floor_of(t, "bandwidth", "cpu", "cpu") == 0.2
    assert outliers.floor_of(t, "bandwidth", "cuda:0", "A100") == 0.1
    assert outliers.floor_of(t, "copy_pinned", "cuda:0", "A100") is None


# --- drift -------------------------------------------------------------------------------------------------


def ok(value):
    return {"value": value, "source": "test", "status": "ok"}


HOST_FACTS = {  # drift's fact name: (report section, field, the fleet's value, one node's other value)
    "driver": ("driver", "driver", "580.159.04", "550.127.05"),
    "cuda_driver": ("driver", "max_cuda_supported", "13.0", "12.4"),
    "cuda_runtime": ("cupy", "cuda_runtime", "13.2", "12.8"),
    "cupy": ("cupy", "version", "14.2.0", "13.6.0"),
    "numpy": ("numpy", "numpy", "2.4.6", "1.26.4"),
    "blas": ("numpy", "blas_loaded", "openblas 0.3.31.188.0", "mkl 2024.1"),
    "cuda_visible_devices": ("visible", "cuda_visible_devices", "unset (all GPUs)", "0,1"),
    "gpu_count": ("driver", "gpus", 8, 7),
}
GPU_FACTS = {
    "ecc_mode": ("on", "off"),
    "persistence_mode": ("on", "off"),
    "mig_mode": ("off", "on"),
    "compute_mode": ("Default", "Exclusive_Process"),
    "pcie_generation_max": (5, 4),
    "pcie_width_max": (16, 8),
    "vbios_version": ("96.00.DA.00.0C", "96.00.99.00.01"),
    "applications_clock_sm_mhz": (1980, 1755),
}


def report(host, section=None, key=None, value=None, gpu=None):
    data = {"driver": {"driver": ok("580.159.04"), "gpus": ok(1)}, "gpus": [{"cuda_index": ok(0), "name": ok("H100")}]}
    if section is not None:
        data.setdefault(section, {})[key] = ok(value)
    data["gpus"][0] |= {k: ok(v) for k, v in (gpu or {}).items()}
    return {"host": host, "run_id": f"20261128T{host}", "command": "env", "data": data, "checks": []}


def drift_of(docs):
    hosts, _ = summary.merge([summary.read(d["host"], d) for d in docs])
    return find_drift(hosts)


@pytest.mark.parametrize("fact", sorted(HOST_FACTS))
def test_every_host_fact_drifts(fact):
    section, key, usual, other = HOST_FACTS[fact]
    docs = [report(h, section, key, usual) for h in ("a", "b")] + [report("c", section, key, other)]
    (row,) = drift_of(docs)
    assert (row["fact"], row["model"], row["majority"], row["agree"], row["tie"]) == (fact, "", usual, 2, False)
    assert row["differing"] == [{"host": "c", "device": "", "value": other}]


@pytest.mark.parametrize("fact", sorted(GPU_FACTS))
def test_every_gpu_fact_drifts(fact):
    usual, other = GPU_FACTS[fact]
    docs = [report(h, gpu={fact: usual}) for h in ("a", "b")] + [report("c", gpu={fact: other})]
    (row,) = drift_of(docs)
    assert (row["fact"], row["model"], row["majority"], row["agree"]) == (fact, "H100", usual, 2)
    assert row["differing"] == [{"host": "c", "device": "cuda:0", "value": other}]


@pytest.mark.parametrize("field", ["pcie_generation", "pcie_width", "temperature_c", "uuid"])
def test_facts_that_may_differ_are_not_drift(field):
    docs = [report("a", gpu={field: 5}), report("b", gpu={field: 5}), report("c", gpu={field: 1})]
    assert drift_of(docs) == []


def test_an_unread_fact_is_not_counted():
    docs = [report(h, "cupy", "version", "14.2.0") for h in ("a", "b")] + [report("c")]
    docs[2]["data"]["cupy"] = {"version": {"value": "13.0.0", "source": "x", "status": "n/a"}}
    assert drift_of(docs) == []


def test_a_tie_is_said_and_describe_names_who_differs():
    docs = [report("a", "cupy", "version", "14.2.0"), report("b", "cupy", "version", "13.6.0")]
    (row,) = drift_of(docs)
    assert row["tie"] and row["majority"] == "13.6.0" and row["agree"] == 1  # a tie: the first by name
    assert describe(row) == "cupy: 1 have 13.6.0 (a tie: no majority); a has 14.2.0"
    many = [report(h, gpu={"pcie_width_max": 16}) for h in "abcdefghij"] + [
        report(h, gpu={"pcie_width_max": 8}) for h in "uvwxyz"
    ]
    (wide,) = drift_of(many)
    text = describe(wide, limit=5)
    assert text.startswith("pcie_width_max (H100): 10 have 16; u cuda:0 has 8, v cuda:0 has 8")
    assert text.endswith("y cuda:0 has 8 and 1 more")
    listed = drift_of(
        [report(h, "cupy", "version", ["a", "b"]) for h in "ab"] + [report("c", "cupy", "version", ["a"])]
    )
    assert listed[0]["majority"] == ["a", "b"] and describe(listed[0]).startswith("cupy: 2 have a, b; c has a")


def test_a_z_of_exactly_the_limit_is_not_an_outlier():
    group = outliers.Group("gpu", "H100", "matmul", "float32", "", "GFLOP/s", values=[1.0, 1.0, 1.0])
    group.z = numpy.array([3.5, -3.5, -3.5000001])
    assert group.outliers() == [2]


def test_a_small_scale_is_still_a_scale_and_an_overflow_is_infinitely_odd_without_a_warning():
    (small,) = outliers.groups(fleet([0.1, 0.1, 0.1, 0.2]))
    assert small.scale == pytest.approx(1.4826e-3) and small.z[3] == pytest.approx(0.1 / 1.4826e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (huge,) = outliers.groups(fleet([1.0, 1.0, 1.0, 1e308]))
    assert huge.z[3] == float("inf") and huge.outliers() == [3]


def test_below_floors_reads_every_group_and_device_and_says_all():
    cpu = ("cpu", "matmul", "float64", "1000x1000x1000", "GFLOP/s")
    hosts = fleet([10.0, 100.0, 30.0], measure=cpu, peak=100.0, model="cpu")
    hosts["node-0"].measures[cpu] = (10.0, None)  # no peak: not judged, the others still are
    hosts["node-0"].measures[("cuda:0", "power_limit_w", "", "", "W")] = (700.0, None)  # no floor key
    hosts["node-0"].measures[("cpu", "matmul", "float16", "1000x1000x1000", "GFLOP/s")] = (1.0, 100.0)  # none, first
    t = Thresholds(per_model={"cpu": {"matmul_float64": 0.5}})
    assert outliers.floor_of(t, "matmul_float64", "cpu", "AMD EPYC 7763") == 0.5  # the device's table
    found = outliers.below_floors(outliers.groups(hosts), t)
    assert found == [
        {"host": "node-2", "device": "cpu", "model": "cpu", "key": "matmul_float64", "shape": "1000x1000x1000",
         "unit": "GFLOP/s", "value": 30.0, "peak": 100.0, "fraction_of_peak": 0.3, "floor": 0.5}
    ]  # fmt: skip
    hosts = fleet([30.0, 30.0, 30.0], measure=cpu, peak=100.0, model="AMD EPYC 7763")
    assert len(outliers.below_floors(outliers.groups(hosts), t)) == 3  # the device "cpu" table, any CPU model


def test_direction_of_small_z():
    assert [outliers.direction("GFLOP/s", z) for z in (-0.5, 0.0, 0.5)] == ["slower", "faster", "faster"]
    assert [outliers.direction("W", z) for z in (-0.5, 0.0, 0.5)] == ["lower", "higher", "higher"]


def test_groups_keep_each_device():
    hosts = fleet([1.0, 2.0, 3.0])
    (g,) = outliers.groups(hosts)
    assert g.devices == ["cuda:0"] * 3 and g.hosts == ["node-0", "node-1", "node-2"] and g.values == [1.0, 2.0, 3.0]


def test_describe_lists_five_by_default_then_counts_the_rest():
    five = [report(h, gpu={"ecc_mode": "on"}) for h in "abcdefg"] + [
        report(h, gpu={"ecc_mode": "off"}) for h in "vwxyz"
    ]
    (row,) = drift_of(five)
    assert describe(row).endswith("z cuda:0 has off") and " more" not in describe(row)
    six = five + [report("u", gpu={"ecc_mode": "off"})]
    assert describe(drift_of(six)[0]).endswith("y cuda:0 has off and 1 more")
