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
from devcheck.errors import BadInput, check_writable
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
    """devcheck's version and the versions that matter beside it, read without importing them."""
    if value:
        from devcheck.machine.packages import cupy_dists, installed

        dists = installed()
        cupy = ", ".join(f"{name} {v}" for name, v in cupy_dists(dists).items()) or "no CuPy"
        typer.echo(
            f"devcheck {__version__} (Python {platform.python_version()}, {platform.system()}, "
            f"numpy {dists.get('numpy', 'missing')}, {cupy})"
        )
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Does this machine compute correctly, and how fast?"""


def _writable(option: str, path: Path) -> None:
    try:
        check_writable(option, path)
    except BadInput as e:
        error_line(str(e))
        raise typer.Exit(2) from None


def run_command(
    build: Callable[[Callable[..., None]], Report], fmt: Format, as_json: bool, quiet: bool, summary: Path | None
) -> None:
    """Build the report (with a progress bar on stderr for people), render it, exit with its verdict;
    bad input and crashes are one line and exit 2."""
    fmt = Format.json if as_json else fmt
    try:
        if summary is not None:
            check_writable("--summary", summary)
        from devcheck.render.console import progress

        with progress(fmt is Format.table and not quiet) as step:
            report = build(step)
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
    record: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Also write every NVML and CuPy call and its answer to FILE (UUIDs and serials masked): "
            "attach it to a bug report; DEVCHECK_REPLAY=FILE replays it on any machine.",
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    summary: SummaryOpt = None,
) -> None:
    """What is installed and what is wrong with it: Python, CPU, NumPy/BLAS, CuPy, CUDA, every GPU; with fixes."""
    if record is not None:
        _writable("--record", record)

    def build(step: Callable[..., None]) -> Report:
        from devcheck.commands.env import collect

        if record is None:
            return collect(require_gpu=require_gpu)
        from devcheck.machine import seam
        from devcheck.machine.packages import installed

        with seam.record(record, installed()):
            return collect(require_gpu=require_gpu)

    run_command(build, fmt, as_json, quiet, summary)


DeviceOpt = Annotated[str, typer.Option("--device", "-d", help="auto, all, cpu, cuda or cuda:N.")]


@app.command()
def bench(
    size: Annotated[
        int | None, typer.Option(help="N: A is N x N/10, B is N/10 x N/5 (default 10000, the classic).")
    ] = None,
    shape: Annotated[str | None, typer.Option(metavar="M,K,N", help="Any other matmul shape.")] = None,
    dtype: Annotated[str | None, typer.Option(help="float32,float64 (default); float16 on GPUs.")] = None,
    device: DeviceOpt = "auto",
    repeat: Annotated[int, typer.Option(help="Samples per case at most.")] = 10,
    max_time: Annotated[float, typer.Option(help="Seconds for the whole run, shared among the cases.")] = 60.0,
    cases: Annotated[str | None, typer.Option(help="matmul,e2e,bandwidth,copy,autograd (default: all).")] = None,
    baseline: Annotated[Path | None, typer.Option(metavar="PATH", help="An earlier `bench --json` to compare.")] = None,
    max_regression: Annotated[float, typer.Option(metavar="PCT", help="Fail beyond this slowdown.")] = 10.0,
    require_gpu: RequireGpuOpt = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    summary: SummaryOpt = None,
) -> None:
    """How fast is this machine, and is the GPU really faster? Matmul, bandwidth, copies, an autograd step."""

    def build(step: Callable[..., None]) -> Report:
        from devcheck.commands import bench as bench_command

        return bench_command.run(
            size, shape, dtype, device, repeat, max_time, cases, baseline, max_regression, require_gpu, step
        )

    run_command(build, fmt, as_json, quiet, summary)


@app.command()
def grad(
    device: DeviceOpt = "auto",
    ops: Annotated[str | None, typer.Option("--ops", help="Comma-separated ops to check (default: all).")] = None,
    fast: Annotated[bool, typer.Option("--fast", help="Random-direction checks only (PyTorch's fast mode).")] = False,
    require_gpu: RequireGpuOpt = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    summary: SummaryOpt = None,
) -> None:
    """Does autograd give the right gradients on every device? The classic a**2*x+b*x+c, then every op."""

    def build(step: Callable[..., None]) -> Report:
        from devcheck.commands import grad as grad_command

        return grad_command.run(device, ops, fast, require_gpu, step)

    run_command(build, fmt, as_json, quiet, summary)


@app.command()
def train(
    device: DeviceOpt = "auto",
    epochs: Annotated[int, typer.Option(help="Epochs to train.")] = 60,
    batch_size: Annotated[int, typer.Option(help="Samples per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 0.005,
    hidden: Annotated[int, typer.Option(help="Units in each of the two hidden layers.")] = 64,
    optimizer: Annotated[str, typer.Option(help="adam or sgd (with momentum 0.9).")] = "adam",
    seed: Annotated[int, typer.Option(help="Seeds the data, the weights and the shuffling.")] = 0,
    num_workers: Annotated[int, typer.Option(help="Threads loading batches ahead.")] = 0,
    min_accuracy: Annotated[float, typer.Option(help="Validation accuracy that counts as learned.")] = 0.95,
    save: Annotated[Path | None, typer.Option(metavar="PATH", help="Write weights and optimizer state.")] = None,
    resume: Annotated[Path | None, typer.Option(metavar="PATH", help="Continue from a checkpoint.")] = None,
    log: Annotated[Path | None, typer.Option(metavar="PATH", help="One JSON line per epoch.")] = None,
    require_gpu: RequireGpuOpt = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    summary: SummaryOpt = None,
) -> None:
    """Does a small network really learn on every device, and do the devices tell the same story?"""

    def build(step: Callable[..., None]) -> Report:
        from devcheck.commands import train as train_command

        config = train_command.Config(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            hidden=hidden,
            optimizer=optimizer,
            seed=seed,
            num_workers=num_workers,
            min_accuracy=min_accuracy,
        )
        return train_command.run(config, device, require_gpu, save, resume, log, step)

    run_command(build, fmt, as_json, quiet, summary)


def main() -> None:
    app(prog_name="devcheck")
