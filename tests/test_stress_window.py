"""The stress window on its own, with no time to run (seconds=0): it still runs its first GEMM and 3
more, so a fault on every 3rd matmul is sure to be in it whatever the machine's load, and a healthy
card passes. The GPU is the CuPy stand-in over the recorded H100 (faults synthetic, named in `why`)."""

import pytest

from devcheck.commands.check.stress import stress
from devcheck.engine import get_device
from devcheck.interrupt import Interruption
from devcheck.machine.replay import seam
from tests.recordings import h100


def window(faults):
    """No drift limit: the replayed GPU's rate is NumPy's on this (shared) CPU, which check does not judge;
    the drift rule has its own tests below, on given rates."""
    with seam.replay(h100(why=f"matmul faults {faults}", faults=faults)):
        return stress(get_device("cuda:0"), 0.0, 64, float("inf"), None, Interruption())


@pytest.mark.parametrize("every", [2, 3])
def test_a_gemm_wrong_now_and_then_is_caught_even_in_the_shortest_window(every):
    record, checks = window({"matmul": {"every": every, "scale": 1.001}})
    assert record["runs"] == 3 and record["changed_results"] >= 1
    assert [(c.id, str(c.status)) for c in checks] == [("check.stress.cuda:0", "fail")]
    assert checks[0].summary.startswith(f"cuda:0: {record['changed_results']} of 3 identical GEMMs")


def test_a_healthy_card_passes_the_shortest_window():
    record, checks = window({})
    assert (record["runs"], record["changed_results"], record["wrong_results"]) == (3, 0, 0)
    assert [(c.id, str(c.status)) for c in checks] == [("check.stress.cuda:0", "ok")]


def test_a_gemm_always_wrong_is_wrong_against_float64():
    record, checks = window({"matmul": 1.01})
    assert record["wrong_results"] >= 1 and str(checks[0].status) == "fail"


@pytest.mark.parametrize(("late", "warned"), [(90.0, False), (89.0, True), (120.0, False)])
def test_a_rate_that_falls_more_than_the_drift_limit_warns(late, warned):
    """The median of the last quarter against the first: 10% slower is within the limit, 11% is not."""
    from devcheck.commands.check.stress import _verdict

    record, checks = _verdict("cuda:0", 64, [100.0] * 4 + [late] * 4, 0, 0, 8, 0.10)
    assert record["drift"] == pytest.approx(late / 100 - 1)
    drift = [c for c in checks if c.id == "check.stress.cuda:0.drift"]
    assert [str(c.status) for c in drift] == (["warn"] if warned else [])
    assert (
        not warned
        or drift[0].summary == f"cuda:0: the GEMM rate fell 11% in the stress window (100 -> {late:,.0f} GFLOP/s)"
    )
