"""Nothing lost, nothing silent (issue 14): streams that are closed, full or ASCII-only, a terminal
width of 0, signals, and foreign libraries that hang or try to end the process. Each runs devcheck
as a user's shell would, in a subprocess."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devcheck.commands.env import collect
from devcheck.machine.replay import seam
from tests.recordings import h100
from tests.schemas import validate
from tests.signals import after_first_step, from_a_terminal

DEVCHECK = [sys.executable, "-m", "devcheck"]
PROGRESS = re.compile(r"^\[\d+/\d+\] ")  # a finished step's line, when stderr is not a terminal


def said(err: str) -> list[str]:
    """stderr's lines but the progress lines: what devcheck said of the run's end."""
    return [line for line in err.strip().splitlines() if not PROGRESS.match(line)]


def shell(command: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env={**os.environ, **env}, timeout=120
    )


@pytest.mark.slow  # a whole run of the command: kept in CI (-m "slow or not slow")
@pytest.mark.parametrize(
    ("command", "code", "words"),
    [
        ('"$PY" -m devcheck env 2>&1 | head -1 >/dev/null; exit ${PIPESTATUS[0]}', 141, ""),  # reader left: quiet
        ('"$PY" -m devcheck env --json >/dev/full', 2, "cannot write the report: No space left on device"),
        ('"$PY" -m devcheck env --json >&-', 2, "stdout is closed"),
        ('"$PY" -m devcheck env 2>/dev/full', 2, "cannot write the report: No space left on device"),
    ],
)
def test_closed_and_full_streams_give_one_line_and_a_decided_code(command, code, words):
    result = shell(command, PY=sys.executable)
    assert result.returncode == code, result.stderr + result.stdout
    text = (result.stderr + result.stdout).strip()
    assert "Traceback" not in text and words in text
    if words:
        assert len(text.splitlines()) == 1


def test_a_terminal_width_of_0_is_read_as_80():
    result = shell('"$PY" -m devcheck env --require-gpu', PY=sys.executable, COLUMNS="0")
    assert "GPU compute:" in result.stderr and "gpu.required" in result.stderr and result.returncode == 1


@pytest.mark.parametrize("fmt", ["markdown", "github", "json", "table"])
def test_every_format_falls_back_on_an_ascii_terminal(fmt):
    result = shell(f'"$PY" -m devcheck env --format {fmt}', PY=sys.executable, LC_ALL="C", PYTHONIOENCODING="ascii")
    assert result.returncode == 0 and "Traceback" not in result.stderr and "error" not in result.stderr
    assert (result.stdout if fmt != "table" else result.stderr).strip()


def test_an_nvml_call_that_never_returns_is_a_failed_check_and_the_report_still_comes_out(monkeypatch):
    """A wedged driver: nvmlInit does not return. devcheck waits DEVCHECK_PROBE_TIMEOUT seconds."""
    hung = h100(why="nvmlInit never returns (a wedged driver)")
    hung.nvml = [{**c, "hang": True} if c["fn"] == "nvmlInit" else c for c in hung.nvml]
    monkeypatch.setenv("DEVCHECK_PROBE_TIMEOUT", "0.2")
    started = time.perf_counter()
    with seam.replay(hung):
        report = collect(environ={})
    assert time.perf_counter() - started < 10
    check = report.check("nvml.driver")
    assert check.status == "error" and "NVML nvmlInit did not answer within 0.2 s" in check.summary
    assert report.to_dict()["data"]["python"] and report.check("blas.library")
    # CuPy's import, asked next, is not queued behind the call that hangs: it answers as it would
    assert report.check("cupy.import").status == "ok", report.check("cupy.import")


def test_after_a_call_that_hangs_the_next_one_answers_at_once(monkeypatch):
    """The worker thread a call hung in is given up: the caller's next call gets a new one, and a worker
    that answered is used again."""
    import threading

    from devcheck.machine.replay.seam import Hung, within

    monkeypatch.setenv("DEVCHECK_PROBE_TIMEOUT", "0.2")
    wedged = threading.Event()
    with pytest.raises(Hung, match="a wedged call did not answer within 0.2 s"):
        within("a wedged call", wedged.wait)
    names = []
    assert within("a quick call", lambda: names.append(threading.current_thread()) or 7) == 7
    assert within("another", lambda: names.append(threading.current_thread()) or 8) == 8
    assert names[0] is names[1] and names[0] is not threading.current_thread()
    wedged.set()


def test_a_cupy_that_exits_the_process_on_import_does_not_take_devcheck_with_it(tmp_path):
    fake = tmp_path / "site"
    (fake / "cupy").mkdir(parents=True)
    (fake / "cupy" / "__init__.py").write_text("import sys\nsys.exit(3)\n")
    (fake / "cupy_cuda12x-14.2.0.dist-info").mkdir()
    grad = shell('"$PY" -m devcheck grad --ops add --json', PY=sys.executable, PYTHONPATH=f"{fake}:{Path.cwd()}")
    assert grad.returncode == 0, grad.stderr
    doc = json.loads(grad.stdout)
    gpu = next(c for c in doc["checks"] if c["id"] == "devices.gpu")
    assert "import cupy failed" in gpu["summary"] and "SystemExit" in gpu["summary"]
    env = shell('"$PY" -m devcheck env --json', PY=sys.executable, PYTHONPATH=f"{fake}:{Path.cwd()}")
    assert "tried to end the process" in json.dumps(json.loads(env.stdout)["checks"])


@pytest.mark.parametrize(
    ("signum", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "SIGTERM"), (signal.SIGHUP, 129, "SIGHUP")],
)
def test_signals_end_devcheck_with_one_line_and_a_json_envelope(signum, code, word):
    process = subprocess.Popen(
        from_a_terminal([*DEVCHECK, "bench", "--device", "cpu", "--size", "1000", "--max-time", "60", "--json"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    before = after_first_step(process)  # the first case's line: the second case is running
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    err = before + err
    assert process.returncode == code and said(err) == [
        f"devcheck: error: {'terminated by ' if code != 130 else ''}{word}"
    ]
    doc = json.loads(out)
    assert doc["interrupted"] is True and doc["ok"] is False and doc["command"] == "bench"
    # what was measured before the signal is there; what was not is named as not run
    assert {c["id"]: c["status"] for c in doc["checks"]}["bench.interrupted"] == "error"
    assert any(s["reason"] == "not run: the run was interrupted" for s in doc["data"]["skipped"])


def test_an_interrupted_check_reports_the_steps_it_finished(tmp_path):
    process = subprocess.Popen(
        from_a_terminal(
            [*DEVCHECK, "check", "--device", "cpu", "--json", "--json-file", str(tmp_path / "partial.json")]
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    after_first_step(process)  # past health, into the GEMMs
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    doc = json.loads(out)
    assert process.returncode == 143 and doc["interrupted"] is True and doc["ok"] is False
    ran = [p["step"] for p in doc["data"]["plan"] if p["ran"]]
    assert ran[:1] == ["health"] and len(ran) < len(doc["data"]["plan"])
    marked = [p["step"] for p in doc["data"]["plan"] if p.get("interrupted")]  # none when it came between two
    assert marked in ([], [doc["data"]["plan"][len(ran)]["step"]])
    assert json.loads((tmp_path / "partial.json").read_text()) == doc  # every output gets the partial report
    validate(doc, "check")


def test_an_interrupted_train_reports_the_epochs_it_finished_and_judges_none(tmp_path):
    log = tmp_path / "epochs.jsonl"
    process = subprocess.Popen(
        from_a_terminal([*DEVCHECK, "train", "--device", "cpu", "--epochs", "100000", "--json", "--log", str(log)]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not log.exists() or log.read_text().count("\n") < 3):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 143 and said(err) == ["devcheck: error: terminated by SIGTERM"]
    doc = json.loads(out)
    epochs = doc["data"]["epochs"]
    assert (
        doc["interrupted"] is True
        and len(epochs) >= 3
        and [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1))
    )
    assert len(log.read_text().splitlines()) == len(epochs)  # the log holds what the report holds
    # a run cut short is not judged: no "did not learn" failure, no agreement; the interruption says it all
    assert [c["id"] for c in doc["checks"] if c["status"] != "ok"] == ["train.interrupted"]
    assert not any(c["id"].startswith(("train.cpu.", "train.agreement")) for c in doc["checks"])
    validate(doc, "train")


def test_an_interrupted_grad_keeps_the_checks_it_made():
    """Ctrl-C inside the op checks (here: as the progress line for `mul` appears): the classic example
    and the ops checked before it go out with the interrupt, for the runner to write."""
    from devcheck.commands import grad
    from devcheck.machine.model.devices import select

    def progress(label, **kwargs):
        if label == "cpu: mul" and kwargs.get("advance"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as stop:
        grad.run(select("cpu"), ("add", "mul", "tanh"), progress=progress)
    report = stop.value.report
    assert report.check("grad.classic.cpu").status.value == "ok"
    assert {r["op"] for r in report.to_dict()["data"]["ops"]} == {"add", "mul"}
    assert report.check("grad.ops.cpu").summary == "cpu: all 2 gradient checks pass"  # the ones it made


def test_a_wrong_gradient_found_before_an_interrupt_is_still_a_failure():
    from devcheck.commands import grad
    from devcheck.machine.model.devices import select

    def progress(label, **kwargs):
        if label == "cuda:0: add" and kwargs.get("advance"):
            raise KeyboardInterrupt

    with seam.replay(h100(why="tanh's backward 1% off", faults={"devcheck_tanh_backward": 1.01})):
        with pytest.raises(KeyboardInterrupt) as stop:
            grad.run(select("auto"), ("tanh", "add", "mul"), progress=progress)
    report = stop.value.report
    assert report.check("grad.ops.cuda:0").status.value == "fail" and "tanh" in report.check("grad.ops.cuda:0").summary
    assert report.check("grad.network.cuda:0") is None  # not reached


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(from_a_terminal([sys.executable, "-c", code]), capture_output=True, text=True, timeout=60)


def test_a_signal_after_the_outcome_waits_and_a_third_ends_devcheck_at_once():
    """A scheduler's SIGTERM just after Ctrl-C's report must not change the exit code it decided (a
    campaign of real signals saw -15); but a third signal ends a devcheck stuck writing it (a reader
    of stdout that stopped reading), or only SIGKILL could."""
    code = (
        "import os, signal, sys, time\n"
        "from devcheck.interrupt import outcome_decided, run_as_the_process, signals_end_the_work\n"
        "def command():\n"
        "    with signals_end_the_work():\n"
        "        outcome_decided()\n"
        "    for _ in range(int(sys.argv[1])):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        time.sleep(0.05)\n"
        "    sys.exit(130)\n"
        "run_as_the_process(command)\n"
    )
    waited = subprocess.run([*from_a_terminal([sys.executable, "-c", code]), "1"], capture_output=True, timeout=60)
    assert waited.returncode == 130 and waited.stderr == b""
    ended = subprocess.run([*from_a_terminal([sys.executable, "-c", code]), "2"], capture_output=True, timeout=60)
    assert ended.returncode == 143 and ended.stderr == b""


def test_signals_ignored_at_start_stay_ignored():
    """`nohup devcheck check &`: SIGHUP (and a background job's SIGINT) were ignored when devcheck
    started; the terminal closing must not end the run."""
    survived = _python(
        "import os, signal, time\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "from devcheck.interrupt import signals_end_the_work\n"
        "with signals_end_the_work():\n"
        "    os.kill(os.getpid(), signal.SIGHUP)\n"
        "    time.sleep(0.05)\n"
        "    print('finished')\n"
    )
    assert survived.returncode == 0 and survived.stdout == "finished\n"
    stopped = _python(
        "import os, time\n"
        "from devcheck.interrupt import Stopped, signals_end_the_work\n"
        "try:\n"
        "    with signals_end_the_work():\n"
        "        os.kill(os.getpid(), 1)\n"
        "        time.sleep(5)\n"
        "except Stopped as e:\n"
        "    print(e.code)\n"
    )
    assert stopped.stdout == "129\n"  # the same signal, not ignored at start: it ends the work
