"""bench's statistics at their boundaries: quartiles, the 10% spread rule, the minimum of 3 samples,
the 0.5 ms host-timer floor, and how measure() sizes a sample, on a clock that answers exact times."""

import time

import pytest

from devcheck.commands.bench.cases import clock_for
from devcheck.commands.bench.timing import HostClock, Stats, measure, summarize
from devcheck.engine import get_device
from devcheck.machine.replay import seam
from tests.recordings import h100


def test_quartiles_are_inclusive_and_the_spread_is_iqr_over_median():
    s = summarize([5.0, 1.0, 4.0, 2.0, 3.0], host_timer=False)
    assert (s.median, s.q1, s.q3, s.minimum, s.maximum, s.n, s.iqr) == (3.0, 2.0, 4.0, 1.0, 5.0, 5, 2.0)
    assert s.unstable == "spread (IQR) is 67% of the median, over 10%"


@pytest.mark.parametrize(("high", "unstable"), [(10.5, False), (10.5625, True)])
def test_a_spread_of_exactly_10_percent_is_stable_and_more_is_not(high, unstable):
    s = summarize([9.5, 9.5, 10.0, high, high], host_timer=False)
    assert bool(s.unstable) is unstable and (s.q1, s.q3) == (9.5, high)


def test_four_samples_have_quartiles():
    s = summarize([1.0, 2.0, 3.0, 4.0], host_timer=False)
    assert (s.q1, s.q3, s.median, s.calls) == (1.75, 3.25, 2.5, 1)


def test_fewer_than_4_samples_use_their_extremes_and_fewer_than_3_are_too_few():
    three = summarize([1.0, 1.05, 1.02], host_timer=False)
    assert (three.q1, three.q3, three.median, three.unstable) == (1.0, 1.05, 1.02, "")
    two = summarize([1.0, 1.0], host_timer=False)
    assert two.unstable == "only 2 sample(s) fit the time budget" and two.median == 1.0


@pytest.mark.parametrize(("median", "calls", "flagged"), [(1e-4, 5, False), (1e-4, 4, True), (5e-4, 1, False)])
def test_host_timed_samples_under_half_a_millisecond_are_flagged(median, calls, flagged):
    s = summarize([median] * 5, host_timer=True, calls=calls)
    assert (s.unstable == "samples under 0.5 ms are dominated by timer and call overhead") is flagged
    assert s.calls == calls and summarize([median] * 5, host_timer=False, calls=calls).unstable == ""


def test_a_median_of_zero_is_no_spread_and_reasons_add_up():
    assert summarize([0.0, 0.0, 0.0], host_timer=False).unstable == ""
    both = summarize([1e-5, 1e-4], host_timer=True)
    assert both.unstable.split("; ")[0] == "only 2 sample(s) fit the time budget"
    assert both.unstable.split("; ")[1].startswith("spread (IQR) is 164% of the median")
    assert both.unstable.endswith("; samples under 0.5 ms are dominated by timer and call overhead")


def test_stats_to_dict():
    s = Stats(2.0, 1.0, 4.0, 0.5, 5.0, 7, "", calls=3)
    assert s.to_dict() == {
        "median_s": 2.0, "iqr_s": 3.0, "q1_s": 1.0, "q3_s": 4.0, "min_s": 0.5, "max_s": 5.0, "n": 7,
        "calls_per_sample": 3,
    }  # fmt: skip
    assert Stats(1.0, 1.0, 1.0, 1.0, 1.0, 1, "").calls == 1


class ExactClock:
    """Each call takes `per_call` seconds: what a clock says of work that never varies."""

    def __init__(self, per_call):
        self.per_call, self.calls = per_call, []

    def time(self, fn, calls=1):
        for _ in range(calls):
            fn()
        self.calls.append(calls)
        return self.per_call


@pytest.mark.parametrize(("per_call", "calls"), [(1e-4, 16), (1e-3, 1), (2e-3, 1), (4e-4, 4), (1e-9, 1000)])
def test_a_sample_runs_calls_back_to_back_for_at_least_a_millisecond(per_call, calls):
    clock, done = ExactClock(per_call), []
    first, stats = measure(lambda: done.append(1), clock, repeat=5, budget_s=60.0)
    assert first == per_call and stats.calls == calls and stats.n == 5 and stats.median == per_call
    sizing = [c for c in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if c < calls]
    assert clock.calls == [1, *sizing, *([calls] if calls < 1000 else []), *[calls] * 5]
    assert len(done) == sum(clock.calls) + 1  # the first call, one warm-up call, the sizing, the samples


def test_at_least_three_samples_even_with_no_budget_and_no_more_than_repeat():
    instant = measure(lambda: None, ExactClock(0.0), repeat=10, budget_s=0.0)[1]
    assert (instant.n, instant.calls) == (3, 1000)
    longer = measure(lambda: None, ExactClock(0.01), repeat=10, budget_s=0.0)[1]  # one call over the budget
    assert longer.n == 1 and longer.unstable == "only 1 sample(s) fit the time budget"
    assert measure(lambda: None, ExactClock(0.01), repeat=4, budget_s=60.0)[1].n == 4
    warm = []
    measure(lambda: warm.append(1), ExactClock(0.01), repeat=3, budget_s=60.0, warmup=3)
    assert len(warm) == 1 + 3 + 1 + 3  # first, 3 warm-up calls, one sizing call, 3 samples


def test_one_call_longer_than_the_budget_ends_the_samples_once_the_budget_is_spent():
    slow = measure(lambda: None, ExactClock(100.0), repeat=5, budget_s=30.0)[1]
    assert slow.n == 5  # 100 s a call by this clock, but the 30 s budget is not spent yet in real time


def test_host_timed_samples_of_a_call_too_short_to_fill_the_window_are_flagged():
    """1000 calls of nothing fill no 0.5 ms window on perf_counter."""
    stats = measure(lambda: None, HostClock(), repeat=3, budget_s=0.0)[1]
    assert stats.calls == 1000 and "samples under 0.5 ms are dominated by timer and call overhead" in stats.unstable


def test_the_host_clock_synchronizes_around_the_calls_and_divides():
    events = []
    clock = HostClock(lambda: events.append("sync"))
    per_call = clock.time(lambda: events.append("call"), calls=3)
    assert events == ["sync", "call", "call", "call", "sync"] and 0 <= per_call < 0.1
    assert clock.name == "perf_counter" and HostClock().time(lambda: None) >= 0


def timed_pause(spans):
    """5 ms of sleep, its own span measured inside the call."""
    start = time.perf_counter()
    time.sleep(0.005)
    spans.append(time.perf_counter() - start)


@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_each_clock_gives_seconds_per_call(device):
    """A clock's time covers each call's own span (it never runs fast: not 1/1000 short), and is per call,
    well under 8x a 5 ms call. cuda:0 is the CuPy stand-in, whose events read perf_counter."""
    with seam.replay(h100()):
        clock, spans = clock_for(get_device(device)), []
        per_call = clock.time(lambda: timed_pause(spans), calls=4)
        one = clock.time(lambda: timed_pause(spans))
    assert clock.name == ("CUDA events" if device == "cuda:0" else "perf_counter")
    assert len(spans) == 5 and per_call * 4 >= sum(spans[:4]) and per_call < 0.04 and one >= spans[4]


def test_the_cuda_event_clock_converts_cupys_milliseconds_to_seconds_per_call():
    with seam.replay(h100()):
        device = get_device("cuda:0")
        clock = clock_for(device)
        per_call = clock.time(lambda: time.sleep(0.002), calls=4)
        milliseconds = device.native.cuda.get_elapsed_time(clock.start, clock.end)  # CuPy's unit
    assert per_call == milliseconds / 1e3 / 4
