"""A child process that a test signals starts as from a terminal: SIGINT, SIGTERM and SIGHUP at their
defaults, whatever this test run inherited. A CI job under `nohup`, or in the background, ignores some
of them, and devcheck rightly leaves a signal it finds ignored alone. A small launcher resets them and
execs the command (preexec_fn is unsafe in a process with threads, as the test process is)."""

import sys

_LAUNCHER = (
    "import os, signal, sys\n"
    "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):\n"
    "    signal.signal(s, signal.SIG_DFL)\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def from_a_terminal(command: list[str]) -> list[str]:
    return [sys.executable, "-c", _LAUNCHER, *command]
