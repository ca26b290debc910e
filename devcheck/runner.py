"""How one command runs at the command line: its outputs checked, its report built (with a progress
bar for people), rendered, and an exit code for every outcome: 0 or 1 from the report, 2 for bad
input, an output that cannot be written or an internal error, 128+N for a signal, and a quiet 141
when the reader of the terminal's output went away. The report's files are written first, so that a
reader gone (`| head -1`) or a signal loses nothing but what that reader would have seen."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from devcheck import options
from devcheck.errors import BadInput
from devcheck.files import open_text, write_atomic
from devcheck.interrupt import Stopped, outcome_decided, signals_end_the_work
from devcheck.outputs import Outputs
from devcheck.render import emit, error_line, report_text, write

if TYPE_CHECKING:
    from devcheck.report import Report


class _ReaderLeft:
    """The reader of stderr went away while the work went on: the work finishes, its files are
    written, and the exit code is still the pipe's 141."""

    now = False


def run(build: Callable, outputs: Outputs) -> int:
    """Build the report (outputs checked first, then a progress bar on stderr for people), write it
    everywhere; the exit code of the outcome."""
    _ReaderLeft.now = False
    with signals_end_the_work():
        return _run(build, outputs)


def _run(build: Callable, outputs: Outputs) -> int:
    try:
        outputs.check()
        options.environment()
        if not outputs.quiet:  # progress on stderr whatever the format: a CI log shows each step as it ends
            from devcheck.render.console import progress  # Rich costs ~30 ms: only when people watch

            with progress(True) as step:
                report = build(_lasting(step))
        else:
            report = build(lambda *a, **k: None)
        failed = _write(report, outputs)
        return 141 if _ReaderLeft.now else 2 if failed else 0 if report.ok else 1
    except BadInput as e:
        outcome_decided()
        return error_line(str(e)) or 2
    except KeyboardInterrupt as stop:
        return _interrupted(outputs, "interrupted", 130, stop)
    except Stopped as stop:
        return _interrupted(outputs, f"terminated by {stop}", stop.code, stop)
    except BrokenPipeError:  # `devcheck env | head -1`: the reader left; exit quietly, as `yes | head` does
        outcome_decided()
        _silence()
        return 141
    except OSError as e:  # a full disk or a closed stream: say so on whichever stream still works
        outcome_decided()
        return error_line(f"cannot write the report: {e.strerror or e}") or 2
    except Exception as e:
        outcome_decided()
        if os.environ.get("DEVCHECK_DEBUG"):
            raise
        return error_line(f"internal error: {type(e).__name__}: {e} (set DEVCHECK_DEBUG=1 for the traceback)") or 2


def _lasting(step: Callable) -> Callable:
    """A progress line that cannot be written (the reader of stderr left) does not end the work."""

    def call(*args: object, **kwargs: object) -> None:
        if _ReaderLeft.now:
            return
        try:
            step(*args, **kwargs)
        except BrokenPipeError:
            _ReaderLeft.now = True
            _silence(sys.stderr)

    return call


def _interrupted(outputs: Outputs, why: str, code: int, stop: BaseException) -> int:
    """One line on stderr, then the report as far as the command got (a command that stops on an
    interrupt hands it over as `stop.report`; else an empty one), marked interrupted, to every output."""
    from devcheck.report import Check, Report, Status

    command = outputs.command
    report = getattr(stop, "report", None) or Report(command)
    report.interrupted = why
    report.checks.append(Check(f"{command}.interrupted", Status.ERROR, f"{command} {why} before it finished"))
    report.verdict = f"{command}: {why} before it finished"
    try:
        _write(report, outputs, before=lambda: error_line(why))
    except (OSError, ValueError):  # a closed or broken stream: the exit code still says it all
        pass
    return code


def _write(report: Report, outputs: Outputs, before: Callable[[], None] = lambda: None) -> bool:
    """Every output asked for, the files first; signals from now on wait, so the report comes out
    whole and once. A file that cannot be written is one line naming its option, and the others are
    still written; True when one failed."""
    outcome_decided()
    failed = False
    for option, path in outputs.files.items():
        try:
            _to_file(report_text(report, option), option, path)
        except (OSError, BadInput) as e:
            failed = True
            why = str(e) if isinstance(e, BadInput) else f"{option} {path}: cannot write it ({e.strerror or e})"
            error_line(why)
    before()
    emit(report, outputs.fmt, quiet=outputs.quiet, details=outputs.details)
    for option in outputs.to_stdout:
        write(sys.stdout, report_text(report, option))
    return failed


def _to_file(text: str, option: str, path: Path) -> None:
    if option == "--summary":  # GitHub's $GITHUB_STEP_SUMMARY is appended to, one step after another
        with open_text(path, "a", option) as f:
            f.write(text)
    else:
        write_atomic(path, text, option)


def _silence(*streams: object) -> None:
    """After a broken pipe, Python's own flush at exit would complain: point the streams at /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in streams or (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, AttributeError, ValueError):
            pass
