"""A child process that a test signals starts as from a terminal: SIGINT, SIGTERM and SIGHUP at their
defaults, whatever this test run inherited. A CI job under `nohup`, or in the background, ignores some
of them, and devcheck rightly leaves a signal it finds ignored alone. A small launcher resets them and
execs the command (preexec_fn is unsafe in a process with threads, as the test process is)."""

import re
import subprocess
import sys
import threading

_LAUNCHER = (
    "import os, signal, sys\n"
    "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):\n"
    "    signal.signal(s, signal.SIG_DFL)\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def from_a_terminal(command: list[str]) -> list[str]:
    return [sys.executable, "-c", _LAUNCHER, *command]


FINISHED_STEP = re.compile(r"^\[\d+/\d+\] ")  # a finished step's line, when stderr is not a terminal


def after_first_step(process: subprocess.Popen, timeout: float = 60) -> str:
    """Block until the child (stderr a text pipe) says its first step finished, and return what it said
    up to there: from then on a signal lands inside the run, not in Python's start-up, on a fast machine
    or a loaded one (a fixed sleep was both slow and a guess). The child is killed if it says nothing
    in `timeout` seconds, and the caller's assertions then fail on what it did say."""
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        lines = []
        for line in process.stderr:
            lines.append(line)
            if FINISHED_STEP.match(line):
                break
        return "".join(lines)
    finally:
        timer.cancel()
