"""devcheck bench: statistics, peaks, fit checks, baselines, the CuPy-facing code on the recorded H100, and
whole runs on the CPU and the simulated GPU."""

import json
import time

import numpy
import pytest

from devcheck.commands.bench import cases
from devcheck.commands.bench.baseline import compare
from devcheck.commands.bench.timing import MAX_CALLS, CudaEventClock, HostClock, measure, summarize
from devcheck.engine import get_device
from devcheck.machine.model import facts as hardware
from devcheck.machine.model import peaks as peak
from devcheck.machine.replay import seam
from devcheck.report import Status
from tests.cli import invoke
from tests.recordings import h100, n_gpus

SMALL = ["--size", "400", "--repeat", "3", "--max-time", "120"]  # small cases; the time is a bound, not a target


H100_PROPERTIES = next(c["result"] for c in h100().cupy if c["fn"] == "cuda.runtime.getDeviceProperties")


def small_gpu(free_bytes):
    return h100(why=f"only {free_bytes} bytes free", cupy={("Device.mem_info", 0): (free_bytes, 85017493504)})


# --- statistics and timing ----------------------------------------------------------------------------------


def test_summary_statistics_and_instability():
    stable = summarize([1.0, 1.01, 0.99, 1.0, 1.02], host_timer=False)
    assert stable.median == 1.0 and stable.n == 5 and stable.unstable == ""
    noisy = summarize([1.0, 1.5, 0.7, 1.2, 2.0], host_timer=False)
    assert "spread (IQR)" in noisy.unstable
    assert "only 2 sample(s)" in summarize([1.0, 1.0], host_timer=False).unstable
    assert "under 0.5 ms" in summarize([1e-5] * 5, host_timer=True).unstable


def test_measure_keeps_the_first_call_apart_and_respects_repeat():
    calls = []
    first, stats = measure(lambda: calls.append(1), HostClock(), repeat=5, budget_s=10, warmup=2)
    sizing = len(calls) - 1 - 2 - 5 * stats.calls  # the first call, warm-up, samples; the rest sized them
    assert stats.n == 5 and first >= 0 and 0 < sizing < 2 * stats.calls
    assert stats.calls == MAX_CALLS  # a call far under MIN_WINDOW_S: samples of many calls back to back


def test_a_sample_of_short_calls_is_many_calls_and_reports_time_per_call():
    """Calls of 0.2 ms are timed in samples of several. (Retried while a loaded machine stops a sizing
    call for a whole 1 ms window: that call is then rightly timed alone.)"""

    def call():  # at least 0.2 ms each
        end = time.perf_counter() + 2e-4
        while time.perf_counter() < end:
            pass

    for _ in range(20):
        _, stats = measure(call, HostClock(), repeat=3, budget_s=10)
        if stats.calls > 1:
            break
    assert stats.calls > 1 and stats.median >= 2e-4 and stats.to_dict()["calls_per_sample"] == stats.calls
    _, slow = measure(lambda: time.sleep(2e-3), HostClock(), repeat=3, budget_s=10)
    assert slow.calls == 1 and slow.median >= 2e-3  # a call longer than the window is timed alone


def test_cuda_event_clock_times_with_events_on_the_device(gpu):
    cupy = seam.cupy()
    clock = CudaEventClock(cupy, cupy.cuda.Device(0))
    assert 0.0 <= clock.time(lambda: sum(range(1000))) < 1.0


# --- peaks ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mhz", "bits", "expected"), [(1215, 5120, 1555), (2619, 5120, 3352), (10501, 384, 1008)])
def test_memory_bandwidth_peaks(mhz, bits, expected):  # A100 40GB, H100 SXM, RTX 4090
    assert peak.gpu_bandwidth_peak(mhz, bits).value == pytest.approx(expected, rel=2e-3)


def test_pcie_and_cpu_peaks():
    assert peak.pcie_peak(4, 16).value == pytest.approx(31.5, rel=1e-3)
    assert peak.pcie_peak(None, 16).value is None
    zen4 = peak.cpu_peak("float64", 2, 2596, "cpufreq", ["avx512f", "avx2", "fma"], "AuthenticAMD", 25)
    assert zen4.value == pytest.approx(2 * 2.596 * 16) and "Zen 4" in zen4.basis
    skylake = peak.cpu_peak("float32", 8, 3000, "cpufreq", ["avx512f"], "GenuineIntel", 6)
    assert skylake.value == pytest.approx(8 * 3.0 * 64)
    assert peak.cpu_peak("float32", 4, 3000, "x", ["avx2", "fma"], "", None).value == pytest.approx(4 * 3.0 * 32)
    assert peak.cpu_peak("float32", 4, None, "not exposed", ["avx2"], "", None).basis == "the CPU clock is not exposed"
    pct, note = peak.percent(120, peak.Peak(100, "GFLOP/s", "x"))
    assert pct == 120 and "under-reported" in note


def test_cuda_facts_of_the_recorded_h100(gpu):
    facts = hardware.facts_for("cuda:0")
    assert facts.label == "NVIDIA H100 80GB HBM3" and facts.free_bytes == 84465090560 and not facts.problem
    assert facts.flops_peak("float32").value == pytest.approx(66_908, rel=2e-3)
    assert facts.flops_peak("float64").value == pytest.approx(66_908, rel=2e-3)  # FP64 tensor cores
    assert facts.bandwidth_peak.value == pytest.approx(3352, rel=2e-3)
    assert facts.pcie_peak.value == pytest.approx(63.0, rel=1e-3)  # gen 5 x16
    assert facts.cache_bytes == 52428800


def test_a_gpu_whose_facts_fail_is_reported_on_that_gpu():
    broken = h100(
        why="properties unreadable",
        cupy={("cuda.runtime.getDeviceProperties", 0): {"error": {"str": "cudaErrorUnknown: unknown error"}}},
    )
    with seam.replay(broken):
        facts = hardware.facts_for("cuda:0")
    assert "cudaErrorUnknown" in facts.problem and facts.flops_peak("float32").value is None


def test_cuda_copies_use_pinned_memory_and_explicit_copies(gpu):
    device = get_device("cuda:0")
    facts = hardware.facts_for("cuda:0")
    host = numpy.arange(1024, dtype=numpy.float32)
    fns = {label: (fn, moved) for label, fn, moved, _ in cases._copy_fns(device, host, facts)}
    assert set(fns) == {
        "host->device pageable",
        "host->device pinned",
        "device->host pageable",
        "device->host pinned",
        "device->device",
    }
    for fn, _ in fns.values():
        fn()
    assert fns["device->device"][1] == 2 * host.nbytes


# --- fit checks and bad options -------------------------------------------------------------------------------


def test_a_chosen_size_that_cannot_fit_is_bad_input():
    result = invoke("bench", "--device", "cpu", "--size", "10000000")
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "--size/--shape 10000000x1000000 @ 1000000x2000000 float32: needs" in line
    assert "GiB available" in line


def test_an_automatic_case_that_does_not_fit_is_skipped():
    with seam.replay(small_gpu(2**20)):
        result = invoke("bench", "--device", "cuda", "--json", "--cases", "matmul")
    assert result.exit_code == 0, result.stdout
    doc = json.loads(result.stdout)
    assert doc["data"]["records"] == []
    assert doc["data"]["skipped"][0]["reason"] == "needs 0.1 GiB, cuda:0 has 0.0 GiB free"


def _record(rate, spread=0.02, n=10, size=100):
    median = 1.0 / rate
    stats = {"median_s": median, "q1_s": median * (1 - spread), "q3_s": median * (1 + spread), "n": n}
    return {
        "case": "matmul",
        "device": "cpu",
        "dtype": "float32",
        "shape": [size, 10, 20],
        "rate": rate,
        "unit": "GFLOP/s",
        "stats": stats,
    }


def test_baseline_verdicts_allow_for_each_figures_measured_spread():
    """Comparing a run with itself flagged -26% to -92% at small sizes: the spread (IQR) of both figures
    is now allowed for, while a 3x slowdown still fails, with or without a measured spread."""
    assert compare([_record(10)], [_record(10)], 10).status is Status.OK
    noisy = compare([_record(7, spread=0.3)], [_record(10, spread=0.3)], 10)  # -30%, quartiles overlap
    assert noisy.status is Status.OK and "within the measured spread" in noisy.detail
    slow = compare([_record(10 / 3)], [_record(10)], 10)
    assert slow.status is Status.FAIL and "regression(s) beyond 10" in slow.summary
    assert compare([_record(6.4, n=1)], [_record(10, n=1)], 10).status is Status.OK  # -36%, one sample each
    assert compare([_record(10 / 3, n=1)], [_record(10, n=1)], 10).status is Status.FAIL
    # a run so noisy its quartiles span 100x (a busy machine) still fails a 100x slowdown: a spread excuses 2x
    wild = {"q1_s": 0.001, "median_s": 1.0, "q3_s": 100.0, "n": 10}
    assert compare([{**_record(0.1), "stats": wild}], [{**_record(10), "stats": wild}], 10).status is Status.FAIL
    assert compare([{**_record(8), "stats": wild}], [{**_record(10), "stats": wild}], 10).status is Status.OK


def test_baseline_rows_not_compared_are_named():
    both = compare([_record(10), _record(10, size=200)], [_record(10), _record(10, size=300)], 10)
    assert both.status is Status.OK and "2 row(s) not compared" in both.summary
    assert "matmul cpu float32 200x10x20 (not in the baseline)" in both.detail
    assert "matmul cpu float32 300x10x20 (not in this run)" in both.detail
    none = compare([_record(10, size=200)], [_record(10)], 10)
    assert none.status is Status.WARN and "another --size or --shape" in none.summary


# --- whole runs -------------------------------------------------------------------------------------------


def test_bench_on_cpu_and_gpu(bench_on_h100):
    doc = bench_on_h100.doc
    records = doc["data"]["records"]
    cases_run = {(r["case"], r["device"], r["dtype"]) for r in records}
    assert ("matmul", "cpu", "float32") in cases_run and ("matmul", "cuda:0", "float64") in cases_run
    assert ("matmul end-to-end", "cuda:0", "float32") in cases_run
    assert {r["case"] for r in records if r["device"] == "cuda:0"} >= {
        "copy host->device pinned",
        "copy device->host pageable",
        "copy device->device",
    }
    assert ("matmul end-to-end", "cpu", "float32") not in cases_run  # no copies on the CPU
    matmul = next(r for r in records if r["case"] == "matmul" and r["device"] == "cpu")
    assert matmul["shape"] == [400, 40, 80] and matmul["flops"] == 2 * 400 * 40 * 80
    assert matmul["correctness"]["ok"] and matmul["correctness"]["rel_error"] < matmul["correctness"]["tolerance"]
    assert matmul["stats"]["n"] >= 3 and matmul["timer"] == "perf_counter" and matmul["first_call_s"] > 0
    assert matmul["peak"]["unit"] == "GFLOP/s" and matmul["peak"]["basis"]
    autograd = next(r for r in records if r["case"] == "autograd step" and r["device"] == "cuda:0")
    assert autograd["overhead"] > 0 and autograd["unit"] == "samples/s" and autograd["timer"] == "CUDA events"
    assert {u["device"] for u in doc["data"]["speedups"]} == {"cuda:0"}
    gpu_matmul = next(r for r in records if r["case"] == "matmul" and r["device"] == "cuda:0")
    assert gpu_matmul["correctness"]["ok"] and gpu_matmul["peak"]["value"] == pytest.approx(66_908, rel=2e-3)


def test_a_wrong_matmul_fails_the_run():
    with seam.replay(h100(why="matmul results 0.1% too large", faults={"matmul": 1.001})):
        result = invoke("bench", "--device", "cuda", "--json", "--cases", "matmul", *SMALL)
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert any(c["status"] == "fail" and "matmul WRONG" in c["summary"] for c in doc["checks"])
    assert doc["verdict"].startswith("bench: FAILED")


def test_baseline_regression_fails_and_a_matching_run_passes(tmp_path):
    first = invoke("bench", "--device", "cpu", "--json", "--cases", "matmul", *SMALL)
    doc = json.loads(first.stdout)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    same = json.loads(
        invoke(
            "bench",
            "--device",
            "cpu",
            "--json",
            "--cases",
            "matmul",
            "--baseline",
            str(path),
            "--max-regression",
            "1000",
            *SMALL,
        ).stdout
    )
    assert next(c for c in same["checks"] if c["id"] == "bench.baseline")["status"] == "ok"
    for r in doc["data"]["records"]:  # the old machine was 100x faster: its rate and its times
        r["rate"] *= 100
        r["stats"] = {k: v / 100 if k.endswith("_s") else v for k, v in r["stats"].items()}
    path.write_text(json.dumps(doc))
    result = invoke("bench", "--device", "cpu", "--json", "--cases", "matmul", "--baseline", str(path), *SMALL)
    assert result.exit_code == 1
    check = next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "bench.baseline")
    assert check["status"] == "fail" and "regression(s) beyond 10.0%" in check["summary"]


def test_a_baseline_that_is_not_bench_json_is_bad_input(tmp_path):
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"command": "env", "data": {}}))
    result = invoke("bench", "--baseline", str(path))
    assert result.exit_code == 2 and "not the JSON of `devcheck bench --json`" in result.stderr


def test_bandwidth_streams_arrays_well_beyond_the_cache():
    small_l2 = h100(
        why="an 8 MiB L2", cupy={("cuda.runtime.getDeviceProperties", 0): {**H100_PROPERTIES, "l2CacheSize": 8 * 2**20}}
    )
    with seam.replay(small_l2):
        doc = json.loads(invoke("bench", "--device", "cuda", "--json", "--cases", "bandwidth", "--repeat", "3").stdout)
    (record,) = doc["data"]["records"]
    assert record["case"] == "bandwidth a=b+c" and record["bytes"] == 3 * 4 * record["shape"][0]
    assert record["shape"][0] * 4 == 64 * 2**20 and record["rate"] > 0  # 4 x 8 MiB is under the 64 MiB floor
    assert record["peak"]["value"] == pytest.approx(3352, rel=2e-3) and record["timer"] == "CUDA events"


def test_table_output_has_the_sections_and_charts(bench_on_h100):
    for title in (
        "Matmul: A 400x40 @ B 40x80",
        "Memory bandwidth and copies",
        "Autograd: one training step",
        "GPU speedup over the CPU",
        "matmul GFLOP/s",
    ):
        assert title in bench_on_h100.text


def test_float16_is_skipped_on_the_cpu_with_the_reason():
    doc = json.loads(
        invoke("bench", "--device", "cpu", "--json", "--cases", "matmul", "--dtype", "float16", *SMALL).stdout
    )
    assert doc["data"]["skipped"][0]["reason"].startswith("NumPy has no fast float16 matmul")


def test_tolerance_grows_with_reduction_length():
    assert cases.matmul_tolerance("float32", 4000, False) == pytest.approx(
        2 * cases.matmul_tolerance("float32", 1000, False)
    )
    assert cases.matmul_tolerance("float32", 1000, True) > 1000 * cases.matmul_tolerance("float32", 1000, False)
    assert get_device("cpu").native is numpy


def test_a_baseline_regression_is_in_the_verdict(tmp_path):
    doc = json.loads(invoke("bench", "--device", "cpu", "--json", "--cases", "autograd", *SMALL).stdout)
    for r in doc["data"]["records"]:  # 100x faster back then: rate and times
        r["rate"] *= 100
        r["stats"] = {k: v / 100 if k.endswith("_s") else v for k, v in r["stats"].items()}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    result = json.loads(
        invoke("bench", "--device", "cpu", "--json", "--cases", "autograd", "--baseline", str(path), *SMALL).stdout
    )
    assert result["verdict"].startswith("bench: FAILED — 1 regression(s) beyond 10.0%")


def test_an_explicit_float16_size_that_cannot_fit_on_a_gpu_is_bad_input():
    with seam.replay(small_gpu(64 * 2**10)):
        result = invoke("bench", "--device", "cuda", "--dtype", "float16", "--size", "400", "--cases", "matmul")
    assert result.exit_code == 2
    assert "--size/--shape 400x40 @ 40x80 float16: needs 0.0 GiB, cuda:0 has 0.0 GiB free" in result.stderr


# --- crossover: from which size the GPU pays --------------------------------------------------------------


def test_crossover_names_the_first_size_the_gpu_wins_and_none_when_it_never_does():
    from devcheck.commands.bench.crossover import _summary

    rows = [
        {"size": 64, "cpu_s": 1e-5, "gpu_kernel_s": 3e-5, "gpu_with_copies_s": 9e-5},
        {"size": 512, "cpu_s": 4e-4, "gpu_kernel_s": 3e-5, "gpu_with_copies_s": 5e-4},
        {"size": 4096, "cpu_s": 9e-2, "gpu_kernel_s": 2e-4, "gpu_with_copies_s": 3e-3},
    ]
    s = _summary("cuda:0", "matmul", rows)
    assert (s["kernel_from"], s["with_copies_from"]) == (512, 4096)
    never = _summary("cuda:0", "matmul", [dict(r, gpu_kernel_s=1.0, gpu_with_copies_s=1.0) for r in rows])
    assert (never["kernel_from"], never["with_copies_from"]) == (None, None)


@pytest.mark.slow  # every size of both workloads on two replayed GPUs: NumPy's work, seconds of it
def test_crossover_runs_on_each_gpu_against_the_cpu_measured_once_and_is_skipped_without_the_cpu():
    with seam.replay(n_gpus(h100(), 2)):
        result = invoke("bench", "--json", "--cases", "crossover", "--max-time", "120")
        alone = json.loads(invoke("bench", "--json", "--device", "cuda", "--cases", "crossover", *SMALL).stdout)
    assert result.exit_code == 0, result.stdout
    doc = json.loads(result.stdout)
    rows = doc["data"]["crossover"]
    assert [(r["device"], r["workload"].split()[0]) for r in rows] == [
        ("cuda:0", "matmul"),
        ("cuda:0", "training"),
        ("cuda:1", "matmul"),
        ("cuda:1", "training"),
    ]
    for r in rows:
        assert [s["size"] for s in r["sizes"]] == sorted(s["size"] for s in r["sizes"])
        first = next((s["size"] for s in r["sizes"] if s["gpu_kernel_s"] < s["cpu_s"]), None)
        assert r["kernel_from"] == first and all(s["cpu_s"] > 0 and s["gpu_with_copies_s"] > 0 for s in r["sizes"])
    for on_0, on_1 in zip(rows[:2], rows[2:]):  # the CPU's side, measured once for every GPU (8 on a node)
        assert [s["cpu_s"] for s in on_0["sizes"]] == [s["cpu_s"] for s in on_1["sizes"]]
        assert [s["gpu_kernel_s"] for s in on_0["sizes"]] != [s["gpu_kernel_s"] for s in on_1["sizes"]]
    assert alone["data"]["skipped"] == [
        {
            "case": "crossover",
            "device": "cuda:0",
            "dtype": "float32",
            "reason": "needs the CPU in --device to compare with",
        }
    ]


def test_max_time_bounds_the_whole_run_and_names_the_cases_it_left_out():
    doc = json.loads(invoke("bench", "--json", "--device", "cpu", "--size", "400", "--max-time", "0.001").stdout)
    ran = [(r["case"], r["dtype"]) for r in doc["data"]["records"]]
    assert ran in ([], [("matmul", "float32")])  # at most the first starts (inside its millisecond), cut short
    late = {
        (s["case"], s["dtype"]) for s in doc["data"]["skipped"] if s["reason"] == "not run: --max-time 0.001 s reached"
    }
    planned = {("matmul", "float32"), ("matmul", "float64"), ("bandwidth", "float32"), ("autograd", "float32")}
    assert late == planned - set(ran)  # every other case is named, with the reason
    crossover = [s["reason"] for s in doc["data"]["skipped"] if s["case"] == "crossover"]
    assert crossover == ["compares each GPU with the CPU: no GPU selected"]  # a reason of its own comes first


def test_crossover_without_a_gpu_says_why():
    doc = json.loads(invoke("bench", "--json", "--device", "cpu", "--cases", "crossover", *SMALL).stdout)
    assert doc["data"]["skipped"] == [
        {
            "case": "crossover",
            "device": "cpu",
            "dtype": "float32",
            "reason": "compares each GPU with the CPU: no GPU selected",
        }
    ]
