"""CUPY_TF32 read exactly as CuPy 14.2 reads it (`int(os.getenv('CUPY_TF32', '0')) > 0` in
cupy/_core/_routines_linalg.pyx, get_compute_type), by every part of devcheck that depends on it."""

import numpy
import pytest

from devcheck import numerics
from devcheck.commands.env import collect
from devcheck.machine.model import facts
from devcheck.machine.probes.envvars import probe as envvars_probe
from devcheck.machine.replay import seam
from devcheck.report import Status
from tests.recordings import h100


def cupy_reads(raw):
    """CuPy's own expression, verbatim: True/False, or the exception it raises."""
    import os

    try:
        return int(os.getenv("CUPY_TF32", "0")) > 0
    except ValueError as e:
        return e


@pytest.mark.parametrize("raw", [None, "0", "00", "-1", "1", "01", " 1", "2", "1_0", "true", "", "on", "1.0"])
def test_tf32_state_is_cupys(raw, monkeypatch):
    if raw is None:
        monkeypatch.delenv("CUPY_TF32", raising=False)
    else:
        monkeypatch.setenv("CUPY_TF32", raw)
    expected, state = cupy_reads(raw), numerics.tf32()
    if isinstance(expected, ValueError):
        assert not state.on and state.error == f"ValueError: {expected}"
    else:
        assert state.on is expected and not state.error


@pytest.mark.parametrize(("raw", "tf32"), [("00", False), ("0", False), ("1", True), ("2", True)])
def test_the_float32_peak_follows_cupys_reading(raw, tf32, monkeypatch):
    """ "00" is plain FP32 to CuPy: the peak must be the FP32 one, not the TF32 one 7.4x above it."""
    monkeypatch.setenv("CUPY_TF32", raw)
    with seam.replay(h100()):
        peak = facts.facts_for("cuda:0").flops_peak("float32")
    assert ("TF32" in peak.basis) is tf32, peak.basis
    assert (peak.value > 400_000) is tf32  # H100 SXM: 66.9 TF FP32, 494.7 TF dense TF32 (over 8x at 1980 MHz)


@pytest.mark.parametrize(
    ("raw", "status"), [("true", Status.FAIL), ("", Status.FAIL), ("1", Status.WARN), ("00", None), ("0", None)]
)
def test_env_says_what_cupy_will_do_with_cupy_tf32(raw, status):
    checks = {c.id: c for c in envvars_probe({"CUPY_TF32": raw}).checks}
    got = checks.get("envvar.CUPY_TF32")
    assert (got and got.status) == status, checks
    if status is Status.FAIL:
        assert "ValueError" in got.summary and "every float32 matmul" in got.summary and "CUPY_TF32=1" in got.fix
    if status is None:  # not set to anything that changes results: the all-clear stands
        assert checks["envvars"].status is Status.OK


def test_an_unreadable_cupy_tf32_breaks_float32_matmuls_as_on_cupy(monkeypatch):
    """CuPy caches nothing when int() raises, so every float32 matmul raises; float64 and float16 never read it."""
    monkeypatch.setenv("CUPY_TF32", "true")
    with seam.replay(h100()):
        cupy = seam.cupy()
        a = cupy.ones((4, 4), dtype=cupy.float32)
        for _ in range(2):
            with pytest.raises(ValueError, match=r"invalid literal for int\(\) with base 10: 'true'"):
                a @ a
        assert float((a.astype(cupy.float64) @ a.astype(cupy.float64))[0, 0]) == 4.0
        assert float((a.astype(cupy.float16) @ a.astype(cupy.float16))[0, 0]) == 4.0
        report = collect(environ={"CUPY_TF32": "true"})
    assert report.check("cupy.matmul").status is Status.FAIL
    assert report.check("envvar.CUPY_TF32").status is Status.FAIL
    field = report.to_dict()["data"]["cupy"]["tf32_for_float32_matmul"]
    assert field["status"] == "error" and "ValueError" in field["note"]


@pytest.mark.parametrize(("raw", "rounded"), [("1", True), ("00", False)])
def test_the_stand_in_rounds_float32_matmuls_as_tf32_only_when_cupy_would(raw, rounded, monkeypatch):
    monkeypatch.setenv("CUPY_TF32", raw)
    x = numpy.float32(1 + 2.0**-20)  # exact in float32, rounds to 1 in TF32's 10-bit mantissa
    with seam.replay(h100()):
        cupy = seam.cupy()
        got = float((cupy.full((1, 1), x, dtype=cupy.float32) @ cupy.ones((1, 1), dtype=cupy.float32))[0, 0])
    assert (got == 1.0) is rounded


@pytest.mark.parametrize(
    ("device", "code", "words"),
    [
        ("cuda", 2, "--device 'cuda': CUPY_TF32='true': CuPy raises ValueError"),  # asked for: refused at once
        ("auto", 0, "no GPU can compute here: cuda: CUPY_TF32='true'"),  # the CPU runs, the GPU is skipped, saying why
        ("all", 1, "no GPU can compute here: cuda: CUPY_TF32='true'"),  # every GPU asked for: a failure
    ],
)
def test_commands_that_compute_say_what_an_unreadable_cupy_tf32_does(device, code, words, monkeypatch):
    """Not "internal error: ValueError" from the first float32 matmul (grad, train, bench and check did)."""
    from devcheck.cli import app
    from tests.cli import runner

    monkeypatch.setenv("CUPY_TF32", "true")
    with seam.replay(h100()):
        result = runner.invoke(app, ["grad", "--device", device, "--fast", "--ops", "matmul", "--json"])
    output = result.stdout + result.stderr
    assert result.exit_code == code and words in output and "internal error" not in output, output


def test_a_readable_cupy_tf32_runs_on_the_gpu(monkeypatch):
    from devcheck.cli import app
    from tests.cli import runner

    monkeypatch.setenv("CUPY_TF32", "1")
    with seam.replay(h100()):
        result = runner.invoke(app, ["grad", "--device", "cuda", "--fast", "--ops", "matmul", "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr
