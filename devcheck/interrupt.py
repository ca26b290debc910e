"""Ctrl-C, or a signal from a scheduler or a closed terminal, in the middle of a command's work.

The runner turns SIGTERM and SIGHUP into `Stopped`, as Python turns SIGINT into KeyboardInterrupt.
A command holds either one while it builds the report of the work it finished, then hands both to
the runner, which writes that report marked interrupted (runner.py) and exits 128+N.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devcheck.report import Report


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
