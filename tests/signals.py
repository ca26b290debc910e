"""A child process that a test signals starts as from a terminal: SIGINT, SIGTERM and SIGHUP at their
defaults, whatever this test run inherited. A CI job under `nohup`, or in the background, ignores some
of them, and devcheck rightly leaves a signal it finds ignored alone."""

import signal


def as_from_a_terminal() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
