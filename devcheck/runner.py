"""How one command runs at the command line: its options checked, its report built (with a
progress bar for people), rendered, and an exit code for every outcome: 0 or 1 from the report,
2 for bad input, an output that cannot be written or an internal error, 128+N for a signal, and a
quiet 141 when the reader of the output went away."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from devcheck import options
from devcheck.errors import BadInput
from devcheck.interrupt import Stopped, outcome_decided, signals_end_the_work
from devcheck.render import Format, emit, error_line

if TYPE_CHECKING:
    from devcheck.report import Report


def run(
    build: Callable,
    fmt: Format,
    as_json: bool,
    quiet: bool,
    summary: Path | None,
    junit: Path | None = None,
    json_file: Path | None = None,
    details: bool = False,
) -> int:
    """Build the report (options parsed first, then a progress bar on stderr for people), render it;
    the exit code of the outcome. `details`: the table shows every GPU's fields."""
    with signals_end_the_work():
        files = (summary, junit, json_file)
        return _run(build, Format.json if as_json else fmt, as_json, fmt, quiet, files, details)


def _run(
    build: Callable, fmt: Format, as_json: bool, asked: Format, quiet: bool, files: tuple, details: bool = False
) -> int:
    try:
        if as_json and asked not in (Format.table, Format.json):
            raise BadInput(f"--json and --format {asked}: give one of them")
        for option, path in zip(("--summary", "--junit", "--json-file"), files):
            options.output_file(option, path)
        options.distinct_files(dict(zip(("--summary", "--junit", "--json-file"), files)))
        options.environment()
        if fmt is not Format.table and sys.stdout is None:
            raise BadInput("stdout is closed: nowhere to write the report (drop `>&-`, or use --json-file)")
        if not quiet:  # progress on stderr whatever the format: a CI log shows each step as it ends
            from devcheck.render.console import progress  # Rich costs ~30 ms: only when people watch

            with progress(True) as step:
                report = build(step)
        else:
            report = build(lambda *a, **k: None)
        _write(report, fmt, quiet, files, details)
        return 0 if report.ok else 1
    except BadInput as e:
        outcome_decided()
        return error_line(str(e)) or 2
    except KeyboardInterrupt as stop:
        return _interrupted(build, fmt, "interrupted", 130, stop, quiet, files)
    except Stopped as stop:
        return _interrupted(build, fmt, f"terminated by {stop}", stop.code, stop, quiet, files)
    except BrokenPipeError:  # `devcheck env | head -1`: the reader left; exit quietly, as `yes | head` does
        outcome_decided()
        _silence_stdout()
        return 141
    except OSError as e:  # a full disk or a closed stream: say so on whichever stream still works
        outcome_decided()
        return error_line(f"cannot write the report: {e.strerror or e}") or 2
    except Exception as e:
        outcome_decided()
        if os.environ.get("DEVCHECK_DEBUG"):
            raise
        return error_line(f"internal error: {type(e).__name__}: {e} (set DEVCHECK_DEBUG=1 for the traceback)") or 2


def _interrupted(
    build: Callable, fmt: Format, why: str, code: int, stop: BaseException, quiet: bool, files: tuple
) -> int:
    """One line on stderr, then the report as far as the command got (a command that stops on an
    interrupt hands it over as `stop.report`; else an empty one), marked interrupted, to every output."""
    from devcheck.report import Check, Report, Status

    error_line(why)
    command = build.__qualname__.split(".")[0]  # the command function the build closure lives in
    report = getattr(stop, "report", None) or Report(command)
    report.interrupted = why
    report.checks.append(Check(f"{command}.interrupted", Status.ERROR, f"{command} {why} before it finished"))
    report.verdict = f"{command}: {why} before it finished"
    try:
        _write(report, fmt, quiet, files)
    except (OSError, ValueError):  # a closed or broken stream: the exit code still says it all
        pass
    return code


def _write(report: Report, fmt: Format, quiet: bool, files: tuple, details: bool = False) -> None:
    """Every output asked for; signals from now on wait, so the report comes out whole and once."""
    summary, junit, json_file = files
    outcome_decided()
    emit(report, fmt, quiet=quiet, summary=summary, junit=junit, json_file=json_file, details=details)


def _silence_stdout() -> None:
    """After a broken pipe, Python's own flush at exit would complain: point both streams at /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, AttributeError, ValueError):
            pass
