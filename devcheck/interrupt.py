"""Ctrl-C, or a signal from a scheduler or a closed terminal, in the middle of a command's work.

While a command runs, SIGINT raises KeyboardInterrupt and SIGTERM and SIGHUP raise `Stopped`, the
first signal only. A command holds either one while it builds the report of the work it finished,
then hands both to the runner, which writes that report marked interrupted (runner.py) and exits
128+N. Later signals wait: the report comes out whole and once, and the exit code is its own.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devcheck.report import Report

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(BaseException):  # like KeyboardInterrupt: no `except Exception` may swallow it
    """SIGTERM or SIGHUP: devcheck says so and exits 128+N."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.code = 128 + signum


class Interruption:
    """An interrupt held until the report of the work done is built: `with held:` around the work,
    then `return held.hand_over(report)`."""

    def __init__(self) -> None:
        self.stop: KeyboardInterrupt | Stopped | None = None

    def __bool__(self) -> bool:
        return self.stop is not None

    def __enter__(self) -> None:
        pass

    def __exit__(self, kind: type | None, stop: BaseException | None, traceback: object) -> bool:
        if isinstance(stop, KeyboardInterrupt | Stopped):
            self.stop = stop
            return True  # held: the work stops here, the report is still built
        return False

    def hand_over(self, report: Report) -> Report:
        """The finished report, or the interrupt raised with the report of the work done so far."""
        if self.stop is not None:
            self.stop.report = report  # type: ignore[union-attr]
            raise self.stop
        return report


class _Ending:
    now = False  # the report is complete, or a first signal came: later signals wait
    with_the_process = False  # devcheck's own entry point: the process ends when the command does


def ends_with_the_process() -> None:
    """For the console entry point: after the command, only the process's exit remains, and a late
    signal (a scheduler's SIGTERM just after Ctrl-C) must not turn its exit code into a death by it."""
    _Ending.with_the_process = True


def _stop(signum: int, frame: object) -> None:
    if _Ending.now:
        return
    _Ending.now = True
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Stopped(signum)


@contextlib.contextmanager
def signals_end_the_work() -> Iterator[None]:
    """The handlers above, for the duration of one command. A signal ignored when devcheck started
    stays ignored (a background job's SIGINT, `nohup`'s SIGHUP); a caller gets its own handlers back,
    unless the process ends with the command (then every later signal waits for the exit)."""
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {sig: signal.signal(sig, _stop) for sig in SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield
    finally:
        if _Ending.with_the_process:  # ignored by the OS, not waited for: Python's finalization would
            for sig in handlers:  # put the default (death) back, though never over an ignore
                signal.signal(sig, signal.SIG_IGN)
        else:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            _Ending.now = False


def report_complete() -> None:
    """From here signals wait: the report is being written."""
    _Ending.now = True
