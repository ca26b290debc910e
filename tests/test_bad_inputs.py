"""Bad inputs and faults, one row each (issue 14): the arguments, the environment added, the exit code,
the words the message must hold (the option's name first), and for files what must be true afterwards.
A bad input is one line naming the option, exit 2, before any work; never a traceback, never a file
lost or half written. Every bug found later gets its row here.

Placeholders in arguments: {fx} a folder of prepared files (made once), {tmp} the row's own folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy
import pytest

from devcheck.cli import app
from devcheck.engine import load, save
from devcheck.machine.replay import seam
from tests.cli import runner
from tests.recordings import h100
from tests.recordings import load as recording
from tests.signals import from_a_terminal

ROOT = os.geteuid() == 0  # root writes into read-only folders: those rows cannot fail for it
CPU = ["--device", "cpu"]
TINY = [*CPU, "--hidden", "4", "--min-accuracy", "0"]  # a train run of about 0.1 s per epoch
BENCH = [*CPU, "--cases", "matmul", "--size", "100", "--repeat", "3", "--max-time", "2"]


class Row(NamedTuple):
    args: list[str]
    code: int
    words: tuple[str, ...]
    env: dict[str, str] | None = None
    machine: str = ""  # a recording to replay: "h100", "no-driver", "small-gpu"
    setup: Any = None  # setup(tmp, fx) before the run
    after: Any = None  # after(tmp, fx) asserts what must be true of the files
    usage: bool = False  # refused by Typer's parser (its own multi-line usage message)
    needs_non_root: bool = False
    needs: str = ""  # a path that must exist on this machine (a block device), or the row is skipped
    needs_root: bool = False  # only root can make a link owned by another user


def row(id: str, args: list[str], code: int = 2, *words: str, **kw: Any) -> Any:
    marks = [pytest.mark.skipif(ROOT, reason="root may write anywhere")] if kw.get("needs_non_root") else []
    if kw.get("needs_root"):
        marks.append(pytest.mark.skipif(not ROOT, reason="only root can plant another user's link"))
    if "needs" in kw:
        marks.append(pytest.mark.skipif(not kw["needs"], reason="no block device on this machine"))
    return pytest.param(Row(args, code, words, **kw), id=id, marks=marks)


# --- prepared files ---------------------------------------------------------------------------------------


def _invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code in (0, 1), result.output
    return result


def _variant(source: Path, target: Path, change: Any) -> None:
    state = load(source)
    change(state)
    save(state, target)


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    d = tmp_path_factory.mktemp("fx")
    _invoke("train", *TINY, "--epochs", "3", "--save", str(d / "ckpt3.npz"), "-q")
    _invoke("train", *TINY, "--epochs", "3", "--hidden", "8", "--save", str(d / "ckpt3_h8.npz"), "-q")
    good = (d / "ckpt3.npz").read_bytes()
    (d / "truncated.npz").write_bytes(good[: len(good) // 2])
    (d / "empty.npz").write_bytes(b"")
    (d / "json.npz").write_text('{"not": "a checkpoint"}')
    numpy.savez(d / "plain.npz", x=numpy.arange(3))
    tree = numpy.array(json.dumps({"array": "a0", "tensor": False}))  # a devcheck index, then a pickle
    numpy.savez(d / "pickle.npz", __devcheck_tree__=tree, a0=numpy.array([{"code": "runs"}], dtype=object))
    save({"weights": numpy.ones(3)}, d / "notrain.npz")
    _variant(d / "ckpt3_h8.npz", d / "arrays.npz", lambda s: s["config"].update(hidden=4))
    _variant(d / "ckpt3.npz", d / "rng.npz", lambda s: s.update(rng="{}"))
    _variant(d / "ckpt3.npz", d / "history.npz", lambda s: s.update(epochs=[]))
    _variant(
        d / "ckpt3.npz",
        d / "optimizer.npz",
        lambda s: s["optimizer"]["state"]["0"].update(m=numpy.zeros((3, 3), dtype=numpy.float32)),
    )
    doc = json.loads(_invoke("bench", *BENCH, "--json").stdout)
    (d / "base.json").write_text(json.dumps(doc))
    slower = json.loads(json.dumps(doc))
    for r in slower["data"]["records"]:  # the same machine, 10x faster back then: every figure scaled
        r["rate"] *= 10  # (10x, not 3x: a busy 2-core runner's spread must not hide it; 3x is a unit test)
        r["stats"] = {k: v / 10 if k.endswith("_s") else v for k, v in r["stats"].items()}
    (d / "fast.json").write_text(json.dumps(slower))
    for r in slower["data"]["records"]:  # and 10x slower back then: nothing measured now can be a regression
        r["rate"] /= 100
        r["stats"] = {k: v * 100 if k.endswith("_s") else v for k, v in r["stats"].items()}
    (d / "slow.json").write_text(json.dumps(slower))
    (d / "newer.json").write_text(json.dumps({**doc, "schema_version": 2}))
    (d / "noschema.json").write_text(json.dumps({k: v for k, v in doc.items() if k != "schema_version"}))
    (d / "records.json").write_text(json.dumps({**doc, "data": {"records": [{"foo": 1}]}}))
    nan = json.loads(json.dumps(doc))
    nan["data"]["records"][0]["rate"] = "fast"
    (d / "nanrate.json").write_text(json.dumps(nan))
    (d / "datastring.json").write_text(json.dumps({**doc, "data": "records"}))
    (d / "env.json").write_text(json.dumps({"schema_version": 1, "command": "env", "data": {}}))
    (d / "list.json").write_text("[1, 2, 3]")
    (d / "notjson.json").write_text("schema_version: 1\n")
    (d / "binary.json").write_bytes(bytes(range(256)))
    (d / "empty.json").write_text("")
    return d


# --- setups and afters -----------------------------------------------------------------------------------


def _readonly(tmp: Path, fx: Path) -> None:
    (tmp / "ro").mkdir()
    (tmp / "ro.txt").write_text("kept\n")
    os.chmod(tmp / "ro", 0o555)
    os.chmod(tmp / "ro.txt", 0o444)


def _empty_block_device() -> str:
    """A block device of size 0 (an unbound /dev/loopN, in most containers): a devcheck that wrongly
    wrote to it would damage nothing, where a real disk would be."""
    for path in sorted(Path("/dev").glob("loop[0-9]*")):
        try:
            empty = (Path("/sys/class/block") / path.name / "size").read_text().strip() == "0"
            if empty and stat.S_ISBLK(path.stat().st_mode):
                return str(path)
        except OSError:
            continue
    return ""


def _keep(name: str, text: str = "earlier run\n") -> Any:
    def setup(tmp: Path, fx: Path) -> None:
        (tmp / name).write_text(text)

    return setup


def _unchanged(name: str, text: str = "earlier run\n") -> Any:
    def after(tmp: Path, fx: Path) -> None:
        assert (tmp / name).read_text() == text

    return after


def _nothing_in(folder: str) -> Any:
    def after(tmp: Path, fx: Path) -> None:
        assert not (tmp / folder).exists() or os.listdir(tmp / folder) == []

    return after


def _resume_setup(tmp: Path, fx: Path) -> None:
    shutil.copy(fx / "ckpt3.npz", tmp / "r.npz")
    (tmp / "r.jsonl").write_text("".join(json.dumps({"epoch": e}) + "\n" for e in (1, 2, 3)))


def _appended(tmp: Path, fx: Path) -> None:
    lines = [json.loads(line) for line in (tmp / "r.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in lines] == [1, 2, 3, 4, 5]
    assert load(tmp / "r.npz")["epoch"] == 5


STALE = ".out.npz.999999.abcdefgh.tmp"
HELD: dict[Path, Any] = {}


def _stale_temp(tmp: Path, fx: Path) -> None:
    (tmp / STALE).write_bytes(b"half of a checkpoint a kill -9 interrupted")


def _stale_removed(tmp: Path, fx: Path) -> None:
    assert sorted(os.listdir(tmp)) == ["out.npz"]


def _live_temp(tmp: Path, fx: Path) -> None:
    import fcntl

    f = open(tmp / ".out.npz.1.livelive.tmp", "wb")  # noqa: SIM115 - held until after()
    fcntl.flock(f, fcntl.LOCK_EX)  # a save() still writing, in another process
    HELD[tmp] = f


def _live_kept(tmp: Path, fx: Path) -> None:
    HELD.pop(tmp).close()
    assert sorted(os.listdir(tmp)) == [".out.npz.1.livelive.tmp", "out.npz"]


def _other_run(tmp: Path, fx: Path) -> None:
    """A real second devcheck process training onto the same files, past its start (its log has a line)."""
    args = ["train", *TINY, "--epochs", "100000", "--save", "same.npz", "--log", "same.jsonl", "-q"]
    HELD[tmp] = subprocess.Popen(from_a_terminal([sys.executable, "-m", "devcheck", *args]), cwd=tmp)
    deadline = time.monotonic() + 30
    while not (tmp / "same.jsonl").exists() or not (tmp / "same.jsonl").read_text():
        assert time.monotonic() < deadline and HELD[tmp].poll() is None, "the first run did not start"
        time.sleep(0.05)


def _other_run_intact(tmp: Path, fx: Path) -> None:
    process = HELD.pop(tmp)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    lines = (tmp / "same.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["device"] == "cpu" for line in lines)  # not truncated, not interleaved


# --- the table -------------------------------------------------------------------------------------------

ENV_ROWS = [
    row("env-format-yaml", ["env", "--format", "yaml"], 2, "yaml", usage=True),
    row("env-format-empty", ["env", "--format", ""], 2, "--format", usage=True),
    row("env-unknown-option", ["env", "--bogus"], 2, "--bogus", usage=True),
    row("env-json-and-markdown", ["env", "--json", "--format", "markdown"], 2, "--json and --format markdown"),
    row("env-json-and-github", ["env", "--json", "--format", "github"], 2, "--json and --format github"),
    row(
        "env-summary-missing-folder",
        ["env", "--summary", "{tmp}/nope/s.md"],
        2,
        "--summary {tmp}/nope/s.md: the folder {tmp}/nope does not exist",
    ),
    row("env-summary-folder", ["env", "--summary", "{tmp}"], 2, "--summary", "is a folder"),
    row("env-summary-proc", ["env", "--summary", "/proc/x"], 2, "--summary /proc/x", "cannot create a file in /proc"),
    row("env-summary-sys", ["env", "--summary", "/sys/x"], 2, "--summary /sys/x", "cannot create"),
    row("env-summary-dev-full", ["env", "--summary", "/dev/full"], 2, "--summary /dev/full", "No space left"),
    row("env-summary-dev-null", ["env", "--summary", "/dev/null", "-q"], 0),
    row("env-record-proc", ["env", "--record", "/proc/x"], 2, "--record /proc/x", "cannot create"),
    row("env-record-folder", ["env", "--record", "{tmp}"], 2, "--record", "is a folder"),
    row("env-record-missing-folder", ["env", "--record", "{tmp}/no/r.json"], 2, "--record", "does not exist"),
    row("env-record-dev-full", ["env", "--record", "/dev/full"], 2, "--record /dev/full", "No space left"),
    row(
        "env-summary-read-only-folder",
        ["env", "--summary", "{tmp}/ro/s.md"],
        2,
        "--summary",
        "cannot create",
        setup=_readonly,
        needs_non_root=True,
    ),
    row(
        "env-summary-read-only-file",
        ["env", "--summary", "{tmp}/ro.txt"],
        2,
        "--summary",
        "cannot write",
        setup=_readonly,
        after=_unchanged("ro.txt", "kept\n"),
        needs_non_root=True,
    ),
    row(
        "env-summary-probe-leaves-nothing",
        ["env", "-q", "--summary", "{tmp}/d/s.md"],
        0,
        setup=lambda t, f: (t / "d").mkdir(),
        after=lambda t, f: os.listdir(t / "d") == ["s.md"] or pytest.fail(str(os.listdir(t / "d"))),
    ),
    row(
        "env-visible-empty",
        ["env", "--json"],
        0,
        "CUDA_VISIBLE_DEVICES=''",
        "hides every GPU",
        env={"CUDA_VISIBLE_DEVICES": ""},
    ),
    row("env-visible-minus-1", ["env", "--json"], 0, "'-1' hides every GPU", env={"CUDA_VISIBLE_DEVICES": "-1"}),
    row("env-visible-abc", ["env", "--json"], 0, "'abc' matches no GPU", env={"CUDA_VISIBLE_DEVICES": "abc"}),
    row("env-visible-7", ["env", "--json"], 0, "'7' limits CUDA to GPU 7", env={"CUDA_VISIBLE_DEVICES": "7"}),
    row(
        "env-visible-stops",
        ["env", "--json"],
        0,
        "stops reading at 'abc'",
        env={"CUDA_VISIBLE_DEVICES": "0,abc,1"},
    ),
    row("env-require-gpu-no-driver", ["env", "--require-gpu", "--json"], 1, "gpu.required", machine="no-driver"),
]

BENCH_ROWS = [  # moved from tests/test_bench.py, then more
    row("bench-size-negative", ["bench", "--size", "-5"], 2, "--size -5: expected an integer >= 10"),
    row("bench-shape-letter", ["bench", "--shape", "10,x,3"], 2, "--shape '10,x,3': expected three positive integers"),
    row("bench-shape-zero", ["bench", "--shape", "10,0,3"], 2, "--shape '10,0,3': expected three positive integers"),
    row("bench-size-and-shape", ["bench", "--size", "100", "--shape", "1,2,3"], 2, "give one of them, not both"),
    row(
        "bench-dtype-int8",
        ["bench", "--dtype", "int8"],
        2,
        "--dtype 'int8': int8 unknown; choose from float32, float64, float16",
    ),
    row(
        "bench-dtype-empty",
        ["bench", "--dtype", ""],
        2,
        "--dtype '': an empty entry; choose from float32, float64, float16",
    ),
    row(
        "bench-cases-fft",
        ["bench", "--cases", "fft"],
        2,
        "--cases 'fft': fft unknown; choose from matmul, e2e, bandwidth, copy, autograd, crossover",
    ),
    row(
        "bench-cases-empty-entry",
        ["bench", "--cases", "matmul,,copy"],
        2,
        "--cases 'matmul,,copy': an empty entry; choose from",
    ),
    row(
        "bench-json-and-markdown",
        ["bench", "--json", "--format", "markdown"],
        2,
        "--json and --format markdown: give one of them",
    ),
    row("bench-repeat-zero", ["bench", "--repeat", "0"], 2, "--repeat 0: expected a positive integer"),
    row(
        "bench-max-time-negative",
        ["bench", "--max-time", "-1"],
        2,
        "--max-time -1.0: expected a positive number of seconds",
    ),
    row("bench-device-cuda-3", ["bench", "--device", "cuda:3"], 2, "--device 'cuda:3'"),
    row("bench-device-tpu", ["bench", "--device", "tpu"], 2, "--device 'tpu': expected auto, all, cpu, cuda or cuda:N"),
    row(
        "bench-max-regression-negative",
        ["bench", "--max-regression", "-1"],
        2,
        "--max-regression -1.0: expected a percentage >= 0",
    ),
    row(
        "bench-baseline-missing",
        ["bench", "--baseline", "/nonexistent.json"],
        2,
        "--baseline /nonexistent.json: no such file",
    ),
    row("bench-size-zero", ["bench", "--size", "0"], 2, "--size 0: expected an integer >= 10"),
    row("bench-size-9", ["bench", "--size", "9"], 2, "--size 9"),
    row("bench-size-text", ["bench", "--size", "ten"], 2, "--size", usage=True),
    row("bench-size-float", ["bench", "--size", "1.5"], 2, "--size", usage=True),
    row(
        "bench-size-huge", ["bench", *CPU, "--size", "10000000"], 2, "--size/--shape 10000000x1000000", "GiB available"
    ),
    row("bench-size-enormous", ["bench", *CPU, "--size", "99999999999999999999"], 2, "--size/--shape", "needs"),
    row("bench-shape-empty", ["bench", "--shape", ""], 2, "--shape ''"),
    row("bench-shape-two", ["bench", "--shape", "1,2"], 2, "--shape '1,2'"),
    row("bench-shape-four", ["bench", "--shape", "1,2,3,4"], 2, "--shape '1,2,3,4'"),
    row("bench-shape-negative", ["bench", "--shape", "-1,2,3"], 2, "--shape '-1,2,3'"),
    row("bench-shape-float", ["bench", "--shape", "1.5,2,3"], 2, "--shape '1.5,2,3'"),
    row("bench-shape-huge", ["bench", *CPU, "--shape", "100000000,100000000,100000000"], 2, "--size/--shape", "needs"),
    row("bench-dtype-empty-entry", ["bench", "--dtype", "float32,,float64"], 2, "--dtype", "an empty entry"),
    row("bench-dtype-blank", ["bench", "--dtype", " "], 2, "--dtype ' '", "an empty entry"),
    row("bench-dtype-upper", ["bench", "--dtype", "FLOAT32"], 2, "--dtype 'FLOAT32': FLOAT32 unknown"),
    row("bench-cases-empty", ["bench", "--cases", ""], 2, "--cases ''", "an empty entry"),
    row("bench-cases-comma", ["bench", "--cases", ","], 2, "--cases ','", "an empty entry"),
    row("bench-repeat-negative", ["bench", "--repeat", "-1"], 2, "--repeat -1"),
    row("bench-repeat-text", ["bench", "--repeat", "many"], 2, "--repeat", usage=True),
    row("bench-max-time-zero", ["bench", "--max-time", "0"], 2, "--max-time 0.0"),
    row("bench-max-time-nan", ["bench", "--max-time", "nan"], 2, "--max-time nan"),
    row("bench-max-time-inf", ["bench", "--max-time", "inf"], 2, "--max-time inf"),
    row("bench-max-time-minus-inf", ["bench", "--max-time", "-inf"], 2, "--max-time -inf"),
    row("bench-max-regression-nan", ["bench", "--max-regression", "nan"], 2, "--max-regression nan"),
    row("bench-max-regression-inf", ["bench", "--max-regression", "inf"], 2, "--max-regression inf"),
    row("bench-device-empty", ["bench", "--device", ""], 2, "--device ''"),
    row("bench-device-list", ["bench", "--device", "cpu,cuda"], 2, "--device 'cpu,cuda'"),
    row("bench-device-negative", ["bench", "--device", "cuda:-1"], 2, "--device 'cuda:-1'"),
    row("bench-device-cuda-no-driver", ["bench", "--device", "cuda"], 2, "--device 'cuda'", machine="no-driver"),
    row("bench-summary-proc", ["bench", "--summary", "/proc/x"], 2, "--summary /proc/x"),
    row("bench-baseline-folder", ["bench", "--baseline", "{tmp}"], 2, "--baseline {tmp}: is a folder"),
    row("bench-baseline-not-json", ["bench", "--baseline", "{fx}/notjson.json"], 2, "--baseline", "not a JSON file"),
    row("bench-baseline-binary", ["bench", "--baseline", "{fx}/binary.json"], 2, "--baseline", "not a JSON file"),
    row("bench-baseline-empty", ["bench", "--baseline", "{fx}/empty.json"], 2, "--baseline", "not a JSON file"),
    row(
        "bench-baseline-env",
        ["bench", "--baseline", "{fx}/env.json"],
        2,
        "--baseline",
        "not the JSON of `devcheck bench",
    ),
    row("bench-baseline-list", ["bench", "--baseline", "{fx}/list.json"], 2, "--baseline", "not the JSON of"),
    row(
        "bench-baseline-data-string",
        ["bench", "--baseline", "{fx}/datastring.json"],
        2,
        "--baseline",
        "not the JSON of",
    ),
    row(
        "bench-baseline-newer", ["bench", "--baseline", "{fx}/newer.json"], 2, "--baseline", "schema_version 2 is newer"
    ),
    row(
        "bench-baseline-no-schema", ["bench", "--baseline", "{fx}/noschema.json"], 2, "--baseline", "no schema_version"
    ),
    row(
        "bench-baseline-foreign-records",
        ["bench", "--baseline", "{fx}/records.json"],
        2,
        "--baseline",
        "record 0 is not",
    ),
    row("bench-baseline-rate-text", ["bench", "--baseline", "{fx}/nanrate.json"], 2, "--baseline", "record 0 is not"),
    # issue 23: --budget is any duration of at least 1 s; anything else is one line, before any work
    row("check-budget-word", ["check", "--budget", "soon"], 2, "--budget 'soon'", "duration of at least 1 s"),
    row("check-budget-zero", ["check", "--budget", "0s"], 2, "--budget '0s'", "such as 10s, 90s, 5m or 1h"),
    row("check-budget-unit", ["check", "--budget", "5d"], 2, "--budget '5d'", "duration"),
    row("check-budget-negative", ["check", "--budget", "-1m"], 2, "--budget '-1m'", "duration"),
    row(
        "bench-baseline-other-size",
        [
            "bench",
            *BENCH[:-6],
            "--size",
            "200",
            "--repeat",
            "3",
            "--max-time",
            "2",
            "--json",
            "--baseline",
            "{fx}/base.json",
        ],
        0,
        "no case of the baseline matches",
        "matmul cpu float32 100x10x20 (not in this run)",
    ),
    row(
        "bench-baseline-slower-passes",
        ["bench", *BENCH, "--json", "--baseline", "{fx}/slow.json"],
        0,  # a baseline 10x slower: this run cannot be a regression, however loaded the runner (a run against
        # its own baseline minutes apart once read 83% slower here: microsecond matmuls beside another worker)
        "within 10.0% of the baseline, after the measured spread",
    ),
    row(
        "bench-baseline-10x-slower-fails",
        ["bench", *BENCH, "--json", "--baseline", "{fx}/fast.json"],
        1,
        "regression(s) beyond 10.0% and the measured spread",
    ),
]

GRAD_ROWS = [
    row(
        "grad-ops-unknown",
        ["grad", "--ops", "matmul,nope"],
        2,
        "--ops 'matmul,nope': nope unknown; choose from abs, add,",
    ),
    row("grad-ops-empty", ["grad", "--ops", ""], 2, "--ops ''", "an empty entry; choose from"),
    row("grad-ops-empty-entry", ["grad", "--ops", "add,,mul"], 2, "--ops 'add,,mul'", "an empty entry; choose from"),
    row("grad-ops-comma", ["grad", "--ops", ","], 2, "--ops ','", "an empty entry"),
    row("grad-ops-upper", ["grad", "--ops", "ADD"], 2, "--ops 'ADD': ADD unknown"),
    row("grad-ops-spaces-are-fine", ["grad", *CPU, "--fast", "--ops", " add , mul ", "-q"], 0),
    row("grad-device-tpu", ["grad", "--device", "tpu"], 2, "--device 'tpu': expected auto, all, cpu, cuda or cuda:N"),
    row("grad-device-cuda-7-no-driver", ["grad", "--device", "cuda:7"], 2, "--device 'cuda:7'", machine="no-driver"),
    row("grad-device-cuda-3-on-h100", ["grad", "--device", "cuda:3"], 2, "--device 'cuda:3'", machine="h100"),
    row("grad-summary-proc", ["grad", "--summary", "/proc/x"], 2, "--summary /proc/x"),
    row("grad-json-and-markdown", ["grad", "--json", "--format", "markdown"], 2, "--json and --format markdown"),
    row("grad-unknown-option", ["grad", "--bogus"], 2, "--bogus", usage=True),
    row("grad-fast-takes-no-value", ["grad", "--fast=yes"], 2, "--fast", usage=True),
]

TRAIN_ROWS = [  # the first 13 moved from tests/test_grad_train.py
    row("train-epochs-zero", ["train", "--epochs", "0"], 2, "--epochs 0: expected a positive integer"),
    row(
        "train-batch-size-negative", ["train", "--batch-size", "-3"], 2, "--batch-size -3: expected a positive integer"
    ),
    row("train-lr-negative", ["train", "--lr", "-0.1"], 2, "--lr -0.1: expected a positive number"),
    row("train-lr-nan", ["train", "--lr", "nan"], 2, "--lr nan: expected a positive number"),
    row("train-device-cuda-7", ["train", "--device", "cuda:7"], 2, "--device 'cuda:7'"),
    row("train-optimizer-lbfgs", ["train", "--optimizer", "lbfgs"], 2, "--optimizer 'lbfgs': expected adam or sgd"),
    row(
        "train-resume-missing",
        ["train", "--resume", "/nonexistent/ckpt.npz"],
        2,
        "--resume /nonexistent/ckpt.npz: no such file",
    ),
    row(
        "train-save-missing-folder",
        ["train", "--save", "/nonexistent/dir/ckpt.npz"],
        2,
        "--save /nonexistent/dir/ckpt.npz: the folder /nonexistent/dir does not exist",
    ),
    row("train-log-root-folder", ["train", "--log", "/"], 2, "--log /: is a folder; give a file name"),
    row("train-seed-negative", ["train", "--seed", "-1"], 2, "--seed -1: expected an integer >= 0"),
    row(
        "train-min-accuracy-2",
        ["train", "--min-accuracy", "2"],
        2,
        "--min-accuracy 2.0: expected a number between 0 and 1",
    ),
    row(
        "train-save-and-log-same",
        ["train", "--save", "{tmp}/x.npz", "--log", "{tmp}/x.npz"],
        2,
        "--log {tmp}/x.npz: the same file as --save; give each its own file",
    ),
    row("train-resume-root-folder", ["train", "--resume", "/"], 2, "--resume /: is a folder; give a file"),
    row("train-epochs-negative", ["train", "--epochs", "-1"], 2, "--epochs -1"),
    row("train-epochs-text", ["train", "--epochs", "abc"], 2, "--epochs", usage=True),
    row("train-epochs-float", ["train", "--epochs", "2.5"], 2, "--epochs", usage=True),
    row("train-batch-size-zero", ["train", "--batch-size", "0"], 2, "--batch-size 0"),
    row("train-batch-size-huge-is-one-batch", ["train", *TINY, "--epochs", "1", "--batch-size", "1000000000", "-q"], 0),
    row("train-lr-zero", ["train", "--lr", "0"], 2, "--lr 0.0"),
    row("train-lr-inf", ["train", "--lr", "inf"], 2, "--lr inf"),
    row("train-lr-minus-inf", ["train", "--lr", "-inf"], 2, "--lr -inf"),
    row("train-lr-underflows-to-zero", ["train", "--lr", "1e-400"], 2, "--lr 0.0"),
    row("train-lr-huge-diverges", ["train", *CPU, "--json", "--lr", "1e38"], 1, "is not finite at epoch 1"),
    row("train-hidden-zero", ["train", "--hidden", "0"], 2, "--hidden 0"),
    row("train-hidden-negative", ["train", "--hidden", "-5"], 2, "--hidden -5"),
    row(
        "train-hidden-huge",
        ["train", *CPU, "--hidden", "100000000"],
        2,
        "--hidden 100000000: training needs",
        "the host has",
    ),
    row("train-hidden-enormous", ["train", *CPU, "--hidden", "1" + "0" * 60], 2, "--hidden 1000", "GiB"),
    row(
        "train-hidden-beyond-a-small-gpu",
        ["train", "--device", "cuda", "--hidden", "256"],
        2,
        "--hidden 256: training needs",
        "cuda:0 has 0.0 GiB free",
        machine="small-gpu",
    ),
    row("train-optimizer-empty", ["train", "--optimizer", ""], 2, "--optimizer ''"),
    row("train-optimizer-upper", ["train", "--optimizer", "ADAM"], 2, "--optimizer 'ADAM'"),
    row("train-num-workers-negative", ["train", "--num-workers", "-1"], 2, "--num-workers -1"),
    row("train-min-accuracy-negative", ["train", "--min-accuracy", "-0.1"], 2, "--min-accuracy -0.1"),
    row("train-min-accuracy-nan", ["train", "--min-accuracy", "nan"], 2, "--min-accuracy nan"),
    row("train-min-accuracy-inf", ["train", "--min-accuracy", "inf"], 2, "--min-accuracy inf"),
    row("train-seed-text", ["train", "--seed", "x"], 2, "--seed", usage=True),
    row("train-device-cuda-no-driver", ["train", "--device", "cuda"], 2, "--device 'cuda'", machine="no-driver"),
    row("train-unknown-option", ["train", "--bogus"], 2, "--bogus", usage=True),
    row("train-save-proc", ["train", "--save", "/proc/x"], 2, "--save /proc/x", "cannot create a file in /proc"),
    row("train-save-sys", ["train", "--save", "/sys/x.npz"], 2, "--save /sys/x.npz", "cannot create"),
    row("train-save-dev-null", ["train", *TINY, "--save", "/dev/null"], 2, "--save /dev/null", "not a regular file"),
    row("train-save-dev-full", ["train", "--save", "/dev/full"], 2, "--save /dev/full", "No space left"),
    row("train-save-folder", ["train", "--save", "{tmp}"], 2, "--save {tmp}: is a folder"),
    row(
        "train-save-read-only-folder",
        ["train", "--save", "{tmp}/ro/x.npz"],
        2,
        "--save",
        "cannot create",
        setup=_readonly,
        after=_nothing_in("ro"),
        needs_non_root=True,
    ),
    row("train-log-proc", ["train", "--log", "/proc/x"], 2, "--log /proc/x", "cannot create"),
    row("train-log-dev-full", ["train", "--log", "/dev/full"], 2, "--log /dev/full", "No space left"),
    row("train-log-missing-folder", ["train", "--log", "{tmp}/no/x.jsonl"], 2, "--log", "does not exist"),
    row(
        "train-log-read-only-file",
        ["train", "--log", "{tmp}/ro.txt"],
        2,
        "--log",
        "cannot write",
        setup=_readonly,
        after=_unchanged("ro.txt", "kept\n"),
        needs_non_root=True,
    ),
    row("train-summary-proc", ["train", "--summary", "/proc/x"], 2, "--summary /proc/x"),
    row(
        "train-save-and-summary-same",
        ["train", "--save", "{tmp}/x.md", "--summary", "{tmp}/x.md"],
        2,
        "--summary {tmp}/x.md: the same file as --save",
    ),
    row(
        "train-log-is-the-resumed-checkpoint",
        ["train", *TINY, "--epochs", "5", "--resume", "{tmp}/r.npz", "--log", "{tmp}/r.npz"],
        2,
        "--log {tmp}/r.npz: the same file as --resume",
        setup=_resume_setup,
        after=lambda t, f: (t / "r.npz").read_bytes() == (f / "ckpt3.npz").read_bytes() or pytest.fail("changed"),
    ),
    row(
        "train-resume-truncated",
        ["train", *TINY, "--resume", "{fx}/truncated.npz"],
        2,
        "--resume: checkpoint",
        "truncated or corrupt",
    ),
    row(
        "train-resume-empty",
        ["train", *TINY, "--resume", "{fx}/empty.npz"],
        2,
        "--resume: checkpoint",
        "truncated or corrupt",
    ),
    row(
        "train-resume-json",
        ["train", *TINY, "--resume", "{fx}/json.npz"],
        2,
        "--resume: checkpoint",
        "not an .npz archive",
    ),
    row("train-resume-plain-npz", ["train", *TINY, "--resume", "{fx}/plain.npz"], 2, "--resume: checkpoint", "corrupt"),
    row(
        "train-resume-pickle",
        ["train", *TINY, "--resume", "{fx}/pickle.npz"],
        2,
        "--resume: checkpoint",
        "pickled objects",
    ),
    row(
        "train-resume-not-train",
        ["train", *TINY, "--resume", "{fx}/notrain.npz"],
        2,
        "--resume",
        "not a checkpoint of `devcheck train`",
    ),
    row(
        "train-resume-other-hidden",
        ["train", *TINY, "--epochs", "5", "--resume", "{fx}/ckpt3_h8.npz"],
        2,
        "--resume",
        "checkpoint does not match: layer 0.weight is 8x2, expected 4x2",
        "--hidden 8",
    ),
    row(
        "train-resume-arrays-unlike-config",
        ["train", *TINY, "--epochs", "5", "--resume", "{fx}/arrays.npz"],
        2,
        "--resume",
        "checkpoint does not match: layer 0.weight is 8x2, expected 4x2",
    ),
    row(
        "train-resume-other-optimizer",
        ["train", *TINY, "--epochs", "5", "--optimizer", "sgd", "--resume", "{fx}/ckpt3.npz"],
        2,
        "--resume",
        "trained with --optimizer 'adam', this run has 'sgd'",
    ),
    row(
        "train-resume-other-seed",
        ["train", *TINY, "--epochs", "5", "--seed", "1", "--resume", "{fx}/ckpt3.npz"],
        2,
        "--resume",
        "--seed 0",
    ),
    row(
        "train-resume-bad-rng",
        ["train", *TINY, "--epochs", "5", "--resume", "{fx}/rng.npz"],
        2,
        "--resume",
        "random generator",
    ),
    row(
        "train-resume-bad-history",
        ["train", *TINY, "--epochs", "5", "--resume", "{fx}/history.npz"],
        2,
        "--resume",
        "epoch history",
    ),
    row(
        "train-resume-bad-optimizer-state",
        ["train", *TINY, "--epochs", "5", "--resume", "{fx}/optimizer.npz"],
        2,
        "--resume",
        "checkpoint does not match: optimizer state",
    ),
    row(
        "train-resume-nothing-left",
        ["train", *TINY, "--epochs", "2", "--resume", "{fx}/ckpt3.npz"],
        2,
        "--epochs 2",
        "has trained 3 epochs already, so nothing is left to train",
    ),
    row(
        "train-resume-exactly-done",
        ["train", *TINY, "--epochs", "3", "--resume", "{fx}/ckpt3.npz"],
        2,
        "--epochs 3",
        "nothing is left",
    ),
    row(
        "train-resume-appends-to-its-log",
        [
            "train",
            *TINY,
            "--epochs",
            "5",
            "--resume",
            "{tmp}/r.npz",
            "--save",
            "{tmp}/r.npz",
            "--log",
            "{tmp}/r.jsonl",
            "-q",
        ],
        0,
        setup=_resume_setup,
        after=_appended,
    ),
    row(
        "train-refused-resume-keeps-the-log",
        ["train", *TINY, "--resume", "{fx}/truncated.npz", "--log", "{tmp}/keep.jsonl"],
        2,
        "--resume",
        setup=_keep("keep.jsonl"),
        after=_unchanged("keep.jsonl"),
    ),
    row(
        "train-refused-option-keeps-the-checkpoint",
        ["train", "--hidden", "0", "--save", "{tmp}/keep.npz", "--log", "{tmp}/keep.jsonl"],
        2,
        "--hidden 0",
        setup=lambda t, f: (_keep("keep.npz")(t, f), _keep("keep.jsonl")(t, f)),
        after=lambda t, f: (_unchanged("keep.npz")(t, f), _unchanged("keep.jsonl")(t, f)),
    ),
    row(
        "train-save-removes-a-stale-temporary",
        ["train", *TINY, "--epochs", "1", "--save", "{tmp}/out.npz", "-q"],
        0,
        setup=_stale_temp,
        after=_stale_removed,
    ),
    row(
        "train-save-keeps-a-live-temporary",
        ["train", *TINY, "--epochs", "1", "--save", "{tmp}/out.npz", "-q"],
        0,
        setup=_live_temp,
        after=_live_kept,
    ),
    row(
        "train-second-run-on-the-same-files",
        ["train", *TINY, "--epochs", "2", "--save", "{tmp}/same.npz", "--log", "{tmp}/same.jsonl"],
        2,
        "--save {tmp}/same.npz: another devcheck run (pid ",
        "is writing this file",
        setup=_other_run,
        after=_other_run_intact,
    ),
]

# One loader for every --baseline (bench's and check's), and devcheck's own variables refused alike by every
# command (issue 23, item 4): check once said "internal error: KeyError", env "internal error: ValueError".
VERDICT_ROWS = [
    *(
        row(f"check-baseline-{name}", ["check", "--baseline", f"{{fx}}/{name}.json"], 2, "--baseline", words)
        for name, words in (
            ("records", "record 0 is not a measured case"),
            ("nanrate", "record 0 is not"),
            ("datastring", "not the JSON of `devcheck bench or check --json`"),
            ("newer", "schema_version 2 is newer"),
            ("noschema", "no schema_version"),
            ("list", "not the JSON of"),
        )
    ),
    *(
        row(f"{cmd}-probe-timeout-{value or 'blank'}", [cmd, *rest], 2, f"DEVCHECK_PROBE_TIMEOUT={value!r}", env=env)
        for cmd, rest in (("env", []), ("bench", BENCH), ("grad", [*CPU, "--fast"]))
        for value in ("abc", "0", "-1", "inf", "nan")
        for env in ({"DEVCHECK_PROBE_TIMEOUT": value},)
    ),
    # one rule for names: exact and lower case, as --format, --ops and --optimizer (issue 23, item 16)
    row("grad-device-upper", ["grad", "--device", "CPU"], 2, "--device 'CPU'", "(names are lower case)"),
    row("grad-device-cuda-upper", ["grad", "--device", "CUDA:0"], 2, "--device 'CUDA:0'", "(names are lower case)"),
    row("grad-device-lower", ["grad", "--device", "cpu", "--fast", "--ops", "add", "-q"], 0),
    row("env-format-upper", ["env", "--format", "JSON"], 2, "'JSON' is not one of", usage=True),
    *(  # CuPy raises at every float32 matmul: refused before any work, not "internal error: ValueError"
        row(
            f"{cmd}-cupy-tf32-true",
            [cmd, *rest, "--device", "cuda"],
            2,
            "--device 'cuda': CUPY_TF32='true'",
            env={"CUPY_TF32": "true"},
            machine="h100",
        )
        for cmd, rest in (("bench", BENCH[2:]), ("grad", ["--fast"]), ("train", ["--epochs", "1"]), ("check", []))
    ),
    row("env-probe-timeout-5", ["env", "--json"], 0, '"command": "env"', env={"DEVCHECK_PROBE_TIMEOUT": "5"}),
    row("env-probe-timeout-blank", ["env", "--json"], 0, '"command": "env"', env={"DEVCHECK_PROBE_TIMEOUT": ""}),
]

DISK = _empty_block_device()  # for the rows that must never write onto a disk


def _planted(name: str) -> Any:
    """Another user's link in a world-writable folder ({tmp}/shared, like /tmp) to the victim's file."""

    def setup(tmp: Path, fx: Path) -> None:
        (tmp / "shared").mkdir()
        os.chmod(tmp / "shared", 0o1777)
        (tmp / "victim.txt").write_text("victim\n")
        os.symlink(tmp / "victim.txt", tmp / "shared" / name)
        os.chown(tmp / "shared" / name, 65534, 65534, follow_symlinks=False)

    return setup


def _victim_kept(name: str) -> Any:
    def after(tmp: Path, fx: Path) -> None:
        assert (tmp / "victim.txt").read_text() == "victim\n"
        assert os.readlink(tmp / "shared" / name) == str(tmp / "victim.txt")

    return after


def _link_to_disk(tmp: Path, fx: Path) -> None:
    os.symlink(DISK, tmp / "disk.json")


def _baseline_copy(tmp: Path, fx: Path) -> None:
    shutil.copy(fx / "base.json", tmp / "b.json")


def _same_bytes(name: str, source: str) -> Any:
    def after(tmp: Path, fx: Path) -> None:
        assert (tmp / name).read_bytes() == (fx / source).read_bytes()

    return after


PLANTED = {"--json-file": "r.json", "--junit": "r.xml", "--summary": "s.md", "--log": "l.jsonl", "--save": "c.npz"}
REFUSED = "a symbolic link in the world-writable folder {tmp}/shared, owned by another user (uid 65534)"

FILE_ROWS = [  # issue 23: files lost or overwritten, stdout as -, and what devcheck may write into as root
    row(
        "train-json-file-is-the-checkpoint",
        ["train", *TINY, "--epochs", "3", "--save", "{tmp}/ck.npz", "--json-file", "{tmp}/ck.npz"],
        2,
        "--json-file {tmp}/ck.npz: the same file as --save; give each its own file",
        setup=_keep("ck.npz"),
        after=_unchanged("ck.npz"),
    ),
    row(
        "train-junit-is-the-log",
        ["train", *TINY, "--log", "{tmp}/l.jsonl", "--junit", "{tmp}/l.jsonl"],
        2,
        "--junit {tmp}/l.jsonl: the same file as --log",
        setup=_keep("l.jsonl"),
        after=_unchanged("l.jsonl"),
    ),
    row(
        "train-json-file-is-the-resumed-checkpoint",
        ["train", *TINY, "--epochs", "5", "--resume", "{tmp}/r.npz", "--json-file", "{tmp}/r.npz"],
        2,
        "--json-file {tmp}/r.npz: the same file as --resume, which this run reads",
        setup=_resume_setup,
        after=lambda t, f: (t / "r.npz").read_bytes() == (f / "ckpt3.npz").read_bytes() or pytest.fail("changed"),
    ),
    row(
        "train-summary-is-the-checkpoint-by-another-name",
        ["train", *TINY, "--save", "{tmp}/ck.npz", "--summary", "{tmp}/sub/../ck.npz"],
        2,
        "--summary {tmp}/sub/../ck.npz: the same file as --save",
        setup=lambda t, f: (t / "sub").mkdir(),
    ),
    row(
        "bench-json-file-is-the-baseline",
        ["bench", *BENCH, "--baseline", "{tmp}/b.json", "--json-file", "{tmp}/b.json"],
        2,
        "--json-file {tmp}/b.json: the same file as --baseline, which this run reads",
        setup=_baseline_copy,
        after=_same_bytes("b.json", "base.json"),
    ),
    row(
        "env-junit-is-the-json-file",
        ["env", "--json-file", "{tmp}/r", "--junit", "{tmp}/r"],
        2,
        "--junit {tmp}/r: the same file as --json-file",
        setup=_keep("r"),
        after=_unchanged("r"),
    ),
    row(
        "env-json-file-is-the-recording",
        ["env", "--record", "{tmp}/r.json", "--json-file", "{tmp}/r.json"],
        2,
        "--json-file {tmp}/r.json: the same file as --record",
    ),
    row(
        "env-json-file-dash-and-json",
        ["env", "--json", "--json-file", "-"],
        2,
        "--json-file -: stdout already carries --json",
    ),
    row(
        "env-junit-dash-and-json-file-dash",
        ["env", "--json-file", "-", "--junit", "-"],
        2,
        "--junit -: stdout already carries --json-file -; give a file name",
    ),
    row(
        "env-summary-dash-and-markdown",
        ["env", "--format", "markdown", "--summary", "-"],
        2,
        "--summary -: stdout already carries --format markdown",
    ),
    row("env-json-file-dash-is-stdout", ["env", "-q", "--json-file", "-"], 0, '"command": "env"'),
    row(
        "train-save-dash", ["train", "--save", "-"], 2, "--save -: give a file name; this option cannot write to stdout"
    ),
    row("train-log-dash", ["train", "--log", "-"], 2, "--log -: give a file name"),
    row("env-record-dash", ["env", "--record", "-"], 2, "--record -: give a file name"),
    row("env-summary-proc-version", ["env", "--summary", "/proc/version"], 2, "--summary /proc/version: cannot write"),
    row("env-json-file-proc-version", ["env", "--json-file", "/proc/version"], 2, "--json-file /proc/version: cannot"),
    row("grad-junit-proc-version", ["grad", "--junit", "/proc/version"], 2, "--junit /proc/version: cannot"),
    row(
        "env-json-file-block-device",
        ["env", "--json-file", DISK],
        2,
        f"--json-file {DISK}: is a block device (a disk)",
        needs=DISK,
    ),
    row(
        "env-junit-link-to-a-block-device",
        ["env", "--junit", "{tmp}/disk.json"],
        2,
        "--junit {tmp}/disk.json: is a block device",
        setup=_link_to_disk,
        needs=DISK,
    ),
    row("train-save-block-device", ["train", "--save", DISK], 2, f"--save {DISK}: is a block device", needs=DISK),
    row("train-log-block-device", ["train", "--log", DISK], 2, f"--log {DISK}: is a block device", needs=DISK),
    row(
        "env-json-file-random-device",
        ["env", "--json-file", "/dev/random"],
        2,
        "--json-file /dev/random: is not a regular file, a FIFO or a terminal",
    ),
    row(
        "env-summary-urandom", ["env", "--summary", "/dev/urandom"], 2, "--summary /dev/urandom: is not a regular file"
    ),
    row("env-every-report-to-dev-null", ["env", "-q", "--json-file", "/dev/null", "--junit", "/dev/null"], 0),
    *[
        row(
            f"train-{option[2:]}-planted-link",
            ["train", *TINY, "--epochs", "1", option, f"{{tmp}}/shared/{name}"],
            2,
            f"{option} {{tmp}}/shared/{name}: {REFUSED}",
            setup=_planted(name),
            after=_victim_kept(name),
            needs_root=True,
        )
        for option, name in PLANTED.items()
    ],
    row(
        "train-log-lock-file-planted-link",
        ["train", *TINY, "--epochs", "1", "--log", "{tmp}/l.jsonl"],
        2,
        "--log {tmp}/l.jsonl: cannot create its lock file {tmp}/.l.jsonl.lock",
        setup=lambda t, f: (
            (t / "victim.txt").write_text("victim\n"),
            os.symlink(t / "victim.txt", t / ".l.jsonl.lock"),
        ),
        after=lambda t, f: (t / "victim.txt").read_text() == "victim\n" or pytest.fail("the lock truncated its target"),
    ),
    row(
        "env-record-planted-link",
        ["env", "--record", "{tmp}/shared/rec.json"],
        2,
        f"--record {{tmp}}/shared/rec.json: {REFUSED}",
        setup=_planted("rec.json"),
        after=_victim_kept("rec.json"),
        needs_root=True,
    ),
    row(
        "compare-prometheus-planted-link",
        ["compare", "{fx}/base.json", "--prometheus", "{tmp}/shared/p.prom"],
        2,
        f"--prometheus {{tmp}}/shared/p.prom: {REFUSED}",
        setup=_planted("p.prom"),
        after=_victim_kept("p.prom"),
        needs_root=True,
    ),
]

ROWS = ENV_ROWS + BENCH_ROWS + GRAD_ROWS + TRAIN_ROWS + VERDICT_ROWS + FILE_ROWS
MACHINES = {
    "h100": h100,
    "no-driver": lambda: recording("no-driver"),
    "small-gpu": lambda: h100(why="1 MiB free", cupy={("Device.mem_info", 0): (2**20, 85017493504)}),
}


def test_the_table_is_large_enough():
    assert len(ROWS) >= 120


@pytest.mark.parametrize("case", ROWS)
def test_bad_input(case: Row, tmp_path: Path, fx: Path):
    fill = lambda text: text.replace("{tmp}", str(tmp_path)).replace("{fx}", str(fx))  # noqa: E731
    if case.setup:
        case.setup(tmp_path, fx)
    before = set(os.listdir(tmp_path))
    try:
        if case.machine:
            with seam.replay(MACHINES[case.machine]()):
                result = runner.invoke(app, [fill(a) for a in case.args], env=case.env)
        else:
            result = runner.invoke(app, [fill(a) for a in case.args], env=case.env)
        output = result.stdout + result.stderr
        assert result.exit_code == case.code, output
        assert "Traceback" not in output and "internal error" not in output, output
        for word in case.words:
            assert fill(word) in (output if case.code != 2 else result.stderr), output
        if case.code == 2 and not case.usage:
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(("devcheck: error: --", "devcheck: error: DEVCHECK_"))
            assert result.stdout == ""
    finally:
        if case.after:
            case.after(tmp_path, fx)
    left = {n for n in set(os.listdir(tmp_path)) - before if n.startswith(".") and "livelive" not in n}
    assert not left or left == {".same.npz.lock", ".same.jsonl.lock"}, left  # probes, locks, temporaries
