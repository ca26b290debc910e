"""Ctrl-C, or a signal from a scheduler or a closed terminal, in the middle of a command's work.

While a command runs, SIGINT raises KeyboardInterrupt and SIGTERM and SIGHUP raise `Stopped`, the
first signal only. A command holds either one while it builds the report of the work it finished,
then hands both to the runner, which writes that report marked interrupted (runner.py) and exits
128+N. A second signal waits: the report comes out whole and once, and the exit code is its own; a
third ends devcheck at once. Signals that arrive together run lowest number first (Python's order):
SIGHUP, then SIGINT, then SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NoReturn

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
    now = False  # the outcome is decided (a report or an error line), or a first signal came
    later = 0  # signals since: the first of them waits, the next ends devcheck at once
    with_the_process = False  # devcheck's own entry point: the process ends when the command does


def run_as_the_process(entry: Callable[[], object]) -> NoReturn:
    """The console entry point: the process ends as soon as the command's outcome is written. Python's
    own shutdown after it (atexit hooks, CuPy's and NVML's teardown on a wedged driver) could only
    delay that exit or, with a late signal, turn its code into a death by that signal; devcheck's
    handlers stay until then, so a late signal waits (and a third ends it at once)."""
    _Ending.with_the_process = True
    try:
        entry()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if isinstance(e.code, str):  # what Python would print for sys.exit("...")
            print(e.code, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed, broken or absent: the code says it all
            pass
    os._exit(code)


def _stop(signum: int, frame: object) -> None:
    if not _Ending.now:
        _Ending.now = True
        raise KeyboardInterrupt if signum == signal.SIGINT else Stopped(signum)
    _Ending.later += 1
    if _Ending.later > 1:  # a third signal: writing the outcome hangs (a stuck reader of stdout, say)
        os._exit(128 + signum)


@contextlib.contextmanager
def signals_end_the_work() -> Iterator[None]:
    """The handlers above, for the duration of one command, in the main thread only (Python's rule).
    A signal ignored when devcheck started stays ignored (a background job's SIGINT, `nohup`'s
    SIGHUP); a caller gets its own handlers back, unless the process ends with the command."""
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {sig: signal.signal(sig, _stop) for sig in SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield
    finally:
        if handlers and not _Ending.with_the_process:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            _Ending.now, _Ending.later = False, 0


def outcome_decided() -> None:
    """From here signals wait: the report, or the error line, is being written."""
    if threading.current_thread() is threading.main_thread():
        _Ending.now = True
