"""The `devcheck` command line: parses options, calls one function per command, renders its Report,
and turns the outcome into an exit code. No numpy, cupy or pynvml is imported at module level, so
`devcheck --help` and `--version` stay as fast as Typer itself.

Exit codes: 0 no check failed; 1 a check failed; 2 bad usage or an internal error; 130 Ctrl-C.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from devcheck import __version__
from devcheck.errors import BadInput
from devcheck.render import Format, emit, error_line

if TYPE_CHECKING:
    from devcheck.report import Report

app = typer.Typer(
    name="devcheck",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: Rich's help formatter alone costs ~60 ms at startup
    help="Does this machine compute correctly, and how fast? Exit codes: 0 ok, 1 a check failed, "
    "2 bad usage or internal error, 130 interrupted.",
)

FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table (on stderr), json, markdown or github.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Short for --format json.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Nothing on stderr but errors; the exit code speaks.")]
SummaryOpt = Annotated[
    Path | None,
    typer.Option("--summary", metavar="PATH", help="Also append a Markdown summary to PATH ($GITHUB_STEP_SUMMARY)."),
]
RequireGpuOpt = Annotated[bool, typer.Option("--require-gpu", help="Fail (exit 1) unless a GPU can compute.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"devcheck {__version__} (Python {platform.python_version()}, {platform.system()})")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Does this machine compute correctly, and how fast?"""


def run_command(build: Callable[[], Report], fmt: Format, as_json: bool, quiet: bool, summary: Path | None) -> None:
    """Build the report, render it, exit with its verdict; bad input and crashes are one line, exit 2."""
    fmt = Format.json if as_json else fmt
    try:
        if summary is not None and not summary.parent.is_dir():
            raise BadInput(f"--summary {summary}: the folder {summary.parent} does not exist")
        report = build()
        emit(report, fmt, quiet=quiet, summary=summary)
    except BadInput as e:
        error_line(str(e))
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        error_line("interrupted")
        raise typer.Exit(130) from None
    except Exception as e:
        if os.environ.get("DEVCHECK_DEBUG"):
            raise
        error_line(f"internal error: {type(e).__name__}: {e} (set DEVCHECK_DEBUG=1 for the traceback)")
        raise typer.Exit(2) from None
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def env(
    require_gpu: RequireGpuOpt = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    summary: SummaryOpt = None,
) -> None:
    """What is installed and what is wrong with it: Python, CPU, NumPy/BLAS, CuPy, CUDA, every GPU; with fixes."""

    def build() -> Report:  # noqa: F821 (the annotation is a string; the import is lazy)
        from devcheck.env import collect

        return collect(require_gpu=require_gpu)

    run_command(build, fmt, as_json, quiet, summary)


def main() -> None:
    app(prog_name="devcheck")
