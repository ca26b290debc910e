"""Nothing lost or overwritten (issue 23, items 1-3, 16, 17): the report reaches every file asked for
when the terminal's reader left or a signal came, an interrupted `train --save` keeps the epochs it
finished, and devcheck writes only where it owns what it writes (files, pipes, terminals, /dev/null),
never through a link someone else planted. The one-line refusals are rows of tests/test_bad_inputs.py."""

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy
import pytest

from devcheck.cli import app
from devcheck.engine import load
from devcheck.errors import BadInput
from devcheck.files import Target, open_text, write_atomic
from tests.cli import runner
from tests.signals import from_a_terminal

DEVCHECK = [sys.executable, "-m", "devcheck"]
TINY = ["--device", "cpu", "--hidden", "4", "--min-accuracy", "0"]


def _pipeline(command: list[str], tail: str, cwd: Path) -> subprocess.Popen:
    """`devcheck ... 2>&1 | tail` in a shell of its own process group, as a terminal runs it."""
    line = f"{shlex.join(from_a_terminal([*DEVCHECK, *command]))} 2>&1 | {tail}; exit ${{PIPESTATUS[0]}}"
    return subprocess.Popen(["bash", "-c", line], cwd=cwd, start_new_session=True, stdout=subprocess.PIPE)


def test_the_files_are_written_when_the_reader_of_the_terminal_output_left(tmp_path):
    """`devcheck env --json-file h.json --junit h.xml 2>&1 | head -1`: the pipe's 141, and both files."""
    process = _pipeline(["env", "--json-file", "h.json", "--junit", "h.xml"], "head -1 >/dev/null", tmp_path)
    process.communicate(timeout=120)
    assert process.returncode == 141
    assert json.loads((tmp_path / "h.json").read_text())["command"] == "env"
    assert (tmp_path / "h.xml").read_text().startswith("<?xml")


@pytest.mark.slow  # 3 s into a real check run before the signal (its stderr goes to cat: no line to wait for)
def test_ctrl_c_on_a_pipeline_still_writes_the_json_file(tmp_path):
    """Ctrl-C on `devcheck check --json-file pc.json 2>&1 | cat` signals cat too: the pipe is gone
    when devcheck writes its report, and the file must still come out whole."""
    process = _pipeline(["check", "--device", "cpu", "--json-file", "pc.json"], "cat >/dev/null", tmp_path)
    time.sleep(3)  # into the run
    os.killpg(process.pid, signal.SIGINT)
    process.communicate(timeout=120)
    doc = json.loads((tmp_path / "pc.json").read_text())
    assert process.returncode == 130 and doc["interrupted"] is True and doc["command"] == "check"


def test_an_interrupted_train_saves_the_epochs_it_finished_and_resume_goes_on(tmp_path):
    log, saved = tmp_path / "l.jsonl", tmp_path / "ck.npz"
    args = ["train", *TINY, "--epochs", "100000", "--save", str(saved), "--log", str(log), "--json"]
    process = subprocess.Popen(from_a_terminal([*DEVCHECK, *args]), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not log.exists() or log.read_text().count("\n") < 3):
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 130
    state = load(saved)
    finished = state["epoch"]
    assert finished >= 3 and [e["epoch"] for e in state["epochs"]] == list(range(1, finished + 1))
    assert len(log.read_text().splitlines()) == finished  # the log and the checkpoint hold the same epochs
    check = {c["id"]: c for c in json.loads(out)["checks"]}["train.checkpoint"]
    assert check["status"] == "ok" and f"after epoch {finished} of 100000" in check["summary"]
    # the weights are those of a run of exactly that many epochs: nothing of the cut epoch is in them
    clean = runner.invoke(app, ["train", *TINY, "--epochs", str(finished), "--save", str(tmp_path / "c.npz"), "-q"])
    assert clean.exit_code == 0, clean.output
    reference = load(tmp_path / "c.npz")
    for name, weights in reference["model"].items():
        assert numpy.array_equal(state["model"][name].numpy(), weights.numpy()), name
    resumed = runner.invoke(
        app, ["train", *TINY, "--epochs", str(finished + 2), "--resume", str(saved), "--save", str(saved), "-q"]
    )
    assert resumed.exit_code == 0 and load(saved)["epoch"] == finished + 2


def test_an_interrupt_before_the_first_epoch_ends_keeps_an_earlier_checkpoint(tmp_path):
    saved = tmp_path / "ck.npz"
    saved.write_bytes(b"an earlier run's checkpoint")
    log = tmp_path / "l.jsonl"
    args = ["train", "--device", "cpu", "--epochs", "3", "--batch-size", "1", "--save", str(saved), "--log", str(log)]
    process = subprocess.Popen(from_a_terminal([*DEVCHECK, *args, "-q"]), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not log.exists():  # opened as epoch 1 starts (about 1 s in batches of 1)
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode == 130 and log.read_text() == ""
    assert saved.read_bytes() == b"an earlier run's checkpoint"


def test_json_file_dash_is_stdout_and_no_file_named_dash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["env", "--json-file", "-", "--junit", "r.xml"])
    assert result.exit_code == 0 and json.loads(result.stdout)["command"] == "env"
    assert "GPU compute" in result.stderr  # the table is still there for people
    assert sorted(os.listdir(tmp_path)) == ["r.xml"]


def test_a_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    result = runner.invoke(app, ["env", "-q", "--json-file", str(fifo)])
    reader.join(timeout=60)
    if reader.is_alive():  # devcheck never opened it: end the reader's wait, then fail below
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=10)
    assert result.exit_code == 0 and json.loads(got[0])["command"] == "env"
    assert fifo.is_fifo()


def test_dev_null_takes_every_report_at_once():
    result = runner.invoke(app, ["env", "-q", "--json-file", "/dev/null", "--junit", "/dev/null"])
    assert result.exit_code == 0 and Path("/dev/null").is_char_device()


def test_a_link_planted_after_the_check_is_not_followed(tmp_path):
    """Checked when it was no link, then a link appears (another user's, racing devcheck): O_NOFOLLOW."""
    victim, path = tmp_path / "victim.txt", tmp_path / "log.jsonl"
    victim.write_text("kept\n")
    target = Target("--log", path)
    os.symlink(victim, path)
    with pytest.raises(BadInput, match="--log .*log.jsonl: became a symbolic link"):
        target.open(os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    assert victim.read_text() == "kept\n"


def test_a_link_of_ones_own_is_followed_and_stays_a_link(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "today.json").write_text("yesterday's")
    os.symlink(runs / "today.json", tmp_path / "latest.json")
    write_atomic(tmp_path / "latest.json", '{"new": 1}', "--json-file")
    assert (tmp_path / "latest.json").is_symlink() and json.loads((runs / "today.json").read_text()) == {"new": 1}
    with open_text(tmp_path / "latest.json", "a", "--summary") as f:
        f.write("\nmore")
    assert (runs / "today.json").read_text() == '{"new": 1}\nmore'


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a link owned by another user")
def test_a_link_planted_by_another_user_in_a_world_writable_folder_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    (tmp_path / "victim.txt").write_text("kept\n")
    os.symlink(tmp_path / "victim.txt", shared / "r.json")
    os.chown(shared / "r.json", 65534, 65534, follow_symlinks=False)
    for write in (
        lambda: write_atomic(shared / "r.json", "x", "--json-file"),
        lambda: open_text(shared / "r.json", "w", "--log"),
    ):
        with pytest.raises(BadInput, match="world-writable folder .* owned by another user .uid 65534."):
            write()
    assert (tmp_path / "victim.txt").read_text() == "kept\n"
    os.chown(shared / "r.json", os.geteuid(), os.getegid(), follow_symlinks=False)  # one's own: followed
    write_atomic(shared / "r.json", "x", "--json-file")
    assert (tmp_path / "victim.txt").read_text() == "x"
