"""Issue 23's waits and limits: any --budget duration planned from its seconds, --require-gpu failing
before any work, --quiet still naming a failure, and a stress estimate that is what the step takes."""

import contextlib
import json
import re
import subprocess
import sys
import time

import pytest

from devcheck import options
from devcheck.cli import app
from devcheck.commands.bench.timing import HostClock, TimeUp, measure
from devcheck.commands.check import sizes, steps
from devcheck.errors import BadInput
from tests.cli import runner


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("1.5m", 90), ("2 min", 120), ("1h", 3600)])
def test_a_budget_is_any_duration(text, seconds):
    assert options.duration("--budget", text) == seconds


@pytest.mark.parametrize("text", ["0", "0.9s", "5d", "ten", "1e3", "-1m"])
def test_a_budget_that_is_not_a_duration_is_bad_input(text):
    with pytest.raises(BadInput, match="--budget"):
        options.duration("--budget", text)


def test_the_plan_follows_any_budget_through_the_usual_ones():
    """The usual budgets keep their caps; one between two gets caps between theirs, growing with it."""
    for budget, cap in steps.STRESS_CAP.items():
        assert steps.stress_cap(budget) == cap
    for budget, cap in sizes.SIZE_CAP.items():
        assert sizes.size_cap(budget) == cap
    assert steps.stress_cap(10) < steps.stress_cap(30) < steps.stress_cap(60)
    assert steps.stress_cap(5) == 1.0 and steps.stress_cap(3600) > steps.stress_cap(900)
    assert sizes.size_cap(90) == sizes.SIZE_CAP[60.0] and sizes.size_cap(5) == sizes.SIZES[0]


def test_require_gpu_without_a_gpu_fails_before_any_work():
    """This machine has no NVIDIA driver: the selection knows that at once, so no step runs."""
    result = runner.invoke(app, ["check", "--budget", "60s", "--require-gpu", "--json"])
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and doc["checks"][-1]["id"] == "gpu.required"
    assert doc["data"]["elapsed_s"] < 1.0
    assert [p["ran"] for p in doc["data"]["plan"]] == [False] * 4


def test_quiet_names_a_failure_in_one_line_and_a_pass_in_none():
    failed = runner.invoke(app, ["check", "--budget", "60s", "--require-gpu", "--quiet"])
    assert failed.exit_code == 1
    assert len(failed.stderr.splitlines()) == 1 and "--require-gpu" in failed.stderr
    passed = runner.invoke(app, ["grad", "--quiet", "--ops", "sum", "--device", "cpu"])
    assert passed.exit_code == 0 and passed.stderr == ""


@pytest.mark.slow  # a whole check run
def test_the_stress_estimate_is_the_window_the_step_takes():
    result = runner.invoke(app, ["check", "--budget", "10s", "--device", "cpu", "--json"])
    stress = next(p for p in json.loads(result.stdout)["data"]["plan"] if p["step"] == "stress")
    assert stress["ran"] and abs(stress["estimate_s"] - stress["seconds"]) < 1.0


def test_schema_takes_json_as_every_command_does():
    """`schema` prints JSON anyway: `--json` is accepted, not refused, and changes nothing."""
    plain, asked = runner.invoke(app, ["schema", "check"]), runner.invoke(app, ["schema", "check", "--json"])
    assert plain.exit_code == asked.exit_code == 0 and asked.stdout == plain.stdout
    assert json.loads(asked.stdout)["properties"]["command"] == {"const": "check"}


@pytest.mark.parametrize(("command", "work"), [("bench", "records"), ("grad", "classic"), ("train", "epochs")])
def test_require_gpu_without_a_gpu_computes_nothing_on_the_cpu_first(command, work):
    """Before, bench ran every case on the CPU (10 s here) and only then failed for --require-gpu."""
    result = runner.invoke(app, [command, "--require-gpu", "--json"])
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and doc["data"][work] == []
    assert any(c["id"] == "gpu.required" and c["status"] == "fail" for c in doc["checks"])


@pytest.mark.slow  # a 20 s check
def test_in_a_pipe_each_step_is_a_line_when_it_ends(tmp_path):
    """stderr is a pipe (a CI log): a line per finished step, read here as it arrives. Lines held back
    to the end would arrive together; instead the time between two lines is the later step's own time
    (within 2 s), and the speed step's line arrives a whole stress window (about 10 s) before the exit."""
    report = tmp_path / "check.json"
    command = [sys.executable, "-m", "devcheck", "check", "--budget", "20s", "--device", "cpu"]
    proc = subprocess.Popen([*command, "--json-file", str(report)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    arrivals = [(time.perf_counter(), line.decode()) for line in proc.stderr]
    proc.wait()
    ended = time.perf_counter()
    plan = json.loads(report.read_text())["data"]["plan"]
    steps = [(t, re.match(r"\[\d/\d\] (\w+): (.*)", text)) for t, text in arrivals]
    lines = [(t, m[1]) for t, m in steps if m and not m[2].startswith("not applicable")]  # p2p on one device
    assert [name for _, name in lines] == [p["step"] for p in plan] and len(plan) >= 4
    for (before, _), (after, _), step in zip(lines, lines[1:], plan[1:]):
        assert abs((after - before) - step["seconds"]) < 2.0, step
    assert plan[-1]["seconds"] > 5 and ended - lines[-2][0] > plan[-1]["seconds"] - 2.0


# --- bench --max-time: the whole run, at most one call in flight past it -----------------------------------


def test_no_measured_call_starts_after_the_deadline():
    """A call of 0.2 s and a deadline 0.5 s away: the first call, the warm-up and one sizing call start
    before it, none after; the stats are the first call's, marked cut. Past the deadline, none starts."""
    starts = []

    def slow():
        starts.append(time.perf_counter())
        time.sleep(0.2)

    began = time.perf_counter()
    first, stats = measure(slow, HostClock(), repeat=10, budget_s=60.0, deadline=began + 0.5)
    assert starts and all(t < began + 0.5 for t in starts)
    assert stats.n == 1 and stats.median == first
    assert stats.unstable == "cut at the time limit: the first call alone; only 1 sample(s) fit the time budget"
    with pytest.raises(TimeUp):
        measure(slow, HostClock(), repeat=3, budget_s=1.0, deadline=time.perf_counter())
    assert len(starts) == 3


@pytest.mark.slow  # five calls of 0.3 s: the margins a loaded runner needs either side of the deadline
def test_samples_cut_short_by_the_deadline_are_kept_and_said_to_be_cut():
    """Calls of 0.3 s, a deadline 1.35 s away: the first call, the warm-up and the sizing call end at
    0.9 s, the first sample at 1.2 s, the second starts before the deadline and ends past it (0.15 s of
    margin either side): two samples, fewer than three, so the stats say they were cut."""

    def slow():
        time.sleep(0.3)

    began = time.perf_counter()
    _, stats = measure(slow, HostClock(), repeat=10, budget_s=60.0, deadline=began + 1.35)
    assert stats.n == 2 and stats.unstable == "cut at the time limit; only 2 sample(s) fit the time budget"


def test_a_lone_short_first_call_is_said_to_be_dominated_by_the_timer():
    """A call of 0.4 ms with the deadline 0.3 ms away: only the first call runs, and, under 0.5 ms on the
    host's timer, the stats say so. (Retried when a loaded machine enters measure past the deadline, or
    stops the call long enough to make it 0.5 ms or more: then it is rightly not said to be short.)"""

    def spin():
        began = time.perf_counter()
        while time.perf_counter() - began < 4e-4:
            pass

    for _ in range(50):
        try:
            _, stats = measure(spin, HostClock(), repeat=10, budget_s=60.0, deadline=time.perf_counter() + 3e-4)
        except TimeUp:
            continue
        if stats.median < 5e-4:
            break
    assert stats.unstable == (
        "cut at the time limit: the first call alone; only 1 sample(s) fit the time budget; "
        "samples under 0.5 ms are dominated by timer and call overhead"
    )


def _longest_call(doc: dict) -> float:
    """The longest single call the run made: its first call, or a sample's share of its calls."""
    records = doc["data"]["records"]
    return max([r["first_call_s"] for r in records] + [r["stats"]["max_s"] for r in records], default=0.0)


@pytest.mark.parametrize(
    ("args", "recording"),
    [
        # six matmul calls of 40 GFLOP at least: over 1 s on any CPU, so something is always cut
        pytest.param(
            ["--device", "cpu", "--size", "10000", "--cases", "matmul,bandwidth,autograd", "--max-time", "1"],
            None,
            marks=pytest.mark.slow,  # a second and a call, by design
        ),
        pytest.param(["--cases", "crossover", "--max-time", "1"], "h100", marks=pytest.mark.slow),
        (["--device", "cpu", "--size", "30000", "--cases", "matmul", "--dtype", "float32", "--max-time", "1"], None),
    ],
    ids=["cases", "crossover", "huge-size"],
)
def test_max_time_bounds_the_whole_run_to_one_call_over(args, recording):
    """Before: `--max-time 5` took 16.6 s, a crossover with 1 s took 20.6 s, and --size 60000 ran for
    minutes. Now the run ends within --max-time plus its longest call, plus 3 s to start, make inputs and
    report on a loaded 2-core runner; a matmul whose one call cannot fit even at twice the device's
    peak is named and not started."""
    from devcheck.machine.replay import seam
    from tests.recordings import h100

    began = time.perf_counter()
    with seam.replay(h100()) if recording else contextlib.nullcontext():
        result = runner.invoke(app, ["bench", "--json", *args])
    took = time.perf_counter() - began
    doc = json.loads(result.stdout)
    assert result.exit_code == 0, result.stdout
    assert took < 1.0 + _longest_call(doc) + 3.0
    reasons = [s["reason"] for s in doc["data"]["skipped"]]
    cut = [r for r in doc["data"]["records"] if "cut at the time limit" in r["unstable"]]
    cut += [c for c in doc["data"].get("crossover", []) if "not_measured_from" in c]
    assert cut or any("--max-time" in r for r in reasons)


def test_check_plans_from_any_budget_it_is_given():
    """`--budget 1.5m` is 90 s: the report's budget and the plan's title say so."""
    result = runner.invoke(app, ["check", "--budget", "1.5m", "--require-gpu", "--json"])
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and doc["data"]["budget_s"] == 90.0
