"""The `devcheck` command line: parses options, calls one function per command, renders its Report,
and turns the outcome into an exit code. No numpy, cupy or pynvml is imported at module level, so
`devcheck --help` and `--version` stay as fast as Typer itself.

Exit codes: 0 no check failed; 1 a check failed; 2 bad usage or an internal error; 130 Ctrl-C.
"""

import platform
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from devcheck import __version__
from devcheck.render import Format, error_line

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
JunitOpt = Annotated[
    Path | None, typer.Option("--junit", metavar="PATH", help="Also write JUnit XML, one test case per check.")
]
DetailsOpt = Annotated[
    bool,
    typer.Option("--details", help="The table shows every GPU's fields, not only those of GPUs with a problem."),
]
JsonFileOpt = Annotated[
    Path | None, typer.Option("--json-file", metavar="PATH", help="Also write the JSON report to PATH.")
]


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


def run_command(
    build: Callable[[Callable[..., None]], "Report"],
    command: str,
    fmt: Format,
    as_json: bool,
    quiet: bool,
    reports: tuple[Path | None, Path | None, Path | None] = (None, None, None),
    details: bool = False,
    writes: dict[str, Path | None] | None = None,
    reads: dict[str, Path | None] | None = None,
) -> None:
    """Run one command (devcheck/runner.py) and exit with its code. `reports`: --summary, --junit and
    --json-file; `writes` and `reads`: the files the command writes and reads itself, checked with them."""
    from devcheck.outputs import Outputs
    from devcheck.runner import run

    summary, junit, json_file = reports
    files = {"--json-file": json_file, "--junit": junit, "--summary": summary}
    raise typer.Exit(run(build, Outputs(command, fmt, as_json, quiet, details, files, writes or {}, reads or {})))


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
    junit: JunitOpt = None,
    json_file: JsonFileOpt = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    details: DetailsOpt = False,
    summary: SummaryOpt = None,
) -> None:
    """What is installed and what is wrong with it: Python, CPU, NumPy/BLAS, CuPy, CUDA, every GPU; with fixes."""

    def build(step: Callable[..., None]) -> "Report":
        from devcheck.commands.env import collect

        if record is None:
            return collect(require_gpu=require_gpu)
        from devcheck.machine import packages, seam

        with seam.record(record, packages.installed()):
            return collect(require_gpu=require_gpu)

    run_command(build, "env", fmt, as_json, quiet, (summary, junit, json_file), details, {"--record": record})


DeviceOpt = Annotated[str, typer.Option("--device", "-d", help="auto, all, cpu, cuda or cuda:N.")]


@app.command()
def bench(
    size: Annotated[
        int | None, typer.Option(help="N >= 10: A is N x N/10, B is N/10 x N/5 (default 10000, the classic).")
    ] = None,
    shape: Annotated[str | None, typer.Option(metavar="M,K,N", help="Any other matmul shape.")] = None,
    dtype: Annotated[
        str | None,
        typer.Option(help="Comma-separated: float32, float64, float16 (GPUs only). Default: float32,float64."),
    ] = None,
    device: DeviceOpt = "auto",
    repeat: Annotated[int, typer.Option(help="Samples per case at most.")] = 10,
    max_time: Annotated[float, typer.Option(help="Seconds for the whole run, shared among the cases.")] = 60.0,
    cases: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: matmul, e2e, bandwidth, copy, autograd, crossover (GPU against CPU by size), "
            "p2p (GPU-to-GPU copies), allreduce (NCCL, all GPUs). Default: all."
        ),
    ] = None,
    baseline: Annotated[Path | None, typer.Option(metavar="PATH", help="An earlier `bench --json` to compare.")] = None,
    max_regression: Annotated[
        float,
        typer.Option(
            metavar="PCT", help="Fail when a case is more than PCT% slower, beyond both runs' measured spread (IQR)."
        ),
    ] = 10.0,
    require_gpu: RequireGpuOpt = False,
    junit: JunitOpt = None,
    json_file: JsonFileOpt = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    summary: SummaryOpt = None,
) -> None:
    """How fast is this machine, and is the GPU really faster? Matmul, bandwidth, copies, an autograd step."""

    def build(step: Callable[..., None]) -> "Report":
        from devcheck import options
        from devcheck.commands import bench as command
        from devcheck.machine.devices import select

        settings = command.Settings(
            shape=options.matmul_shape(size, shape),
            dtypes=options.choices("--dtype", dtype, command.DTYPES, ("float32", "float64")),
            cases=options.choices("--cases", cases, command.CASES, command.CASES),
            repeat=options.positive_int("repeat", repeat),
            max_time=options.positive_number("max-time", max_time, "number of seconds"),
            baseline=options.bench_baseline(baseline),
            max_regression=options.percentage("max-regression", max_regression),
        )
        return command.run(settings, select(options.device(device)), require_gpu=require_gpu, progress=step)

    run_command(build, "bench", fmt, as_json, quiet, (summary, junit, json_file), reads={"--baseline": baseline})


@app.command()
def grad(
    device: DeviceOpt = "auto",
    ops: Annotated[str | None, typer.Option("--ops", help="Comma-separated ops to check (default: all).")] = None,
    fast: Annotated[bool, typer.Option("--fast", help="Random-direction checks only (PyTorch's fast mode).")] = False,
    require_gpu: RequireGpuOpt = False,
    junit: JunitOpt = None,
    json_file: JsonFileOpt = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    summary: SummaryOpt = None,
) -> None:
    """Does autograd give the right gradients on every device? The classic a**2*x+b*x+c, then every op."""

    def build(step: Callable[..., None]) -> "Report":
        from devcheck import options
        from devcheck.commands import grad as command
        from devcheck.machine.devices import select

        chosen = options.choices("--ops", ops, command.op_names(), command.op_names())
        selection = select(options.device(device))
        return command.run(selection, chosen, fast=fast, require_gpu=require_gpu, progress=step)

    run_command(build, "grad", fmt, as_json, quiet, (summary, junit, json_file))


@app.command()
def train(
    device: DeviceOpt = "auto",
    epochs: Annotated[int, typer.Option(help="Epochs to train.")] = 60,
    batch_size: Annotated[int, typer.Option(help="Samples per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 0.005,
    hidden: Annotated[int, typer.Option(help="Units in each of the two hidden layers.")] = 64,
    optimizer: Annotated[str, typer.Option(help="adam or sgd (with momentum 0.9).")] = "adam",
    seed: Annotated[int, typer.Option(help="Seeds the data, the weights and the shuffling (>= 0).")] = 0,
    num_workers: Annotated[int, typer.Option(help="Threads loading batches ahead.")] = 0,
    min_accuracy: Annotated[float, typer.Option(help="Validation accuracy that counts as learned.")] = 0.95,
    save: Annotated[Path | None, typer.Option(metavar="PATH", help="Write weights and optimizer state.")] = None,
    resume: Annotated[Path | None, typer.Option(metavar="PATH", help="Continue from a checkpoint.")] = None,
    log: Annotated[Path | None, typer.Option(metavar="PATH", help="One JSON line per epoch.")] = None,
    require_gpu: RequireGpuOpt = False,
    junit: JunitOpt = None,
    json_file: JsonFileOpt = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    summary: SummaryOpt = None,
) -> None:
    """Does a small network really learn on every device, and do the devices tell the same story?"""

    def build(step: Callable[..., None]) -> "Report":
        from devcheck import options
        from devcheck.commands import train as command
        from devcheck.machine.devices import select

        config = command.Config(
            epochs=options.positive_int("epochs", epochs),
            batch_size=options.positive_int("batch-size", batch_size),
            lr=options.positive_number("lr", lr),
            hidden=options.positive_int("hidden", hidden),
            optimizer=options.one_of("--optimizer", optimizer, ("adam", "sgd")),
            seed=options.at_least("seed", seed, 0),
            num_workers=options.at_least("num-workers", num_workers, 0),
            min_accuracy=options.fraction("min-accuracy", min_accuracy),
        )
        return command.run(
            config,
            select(options.device(device)),
            require_gpu=require_gpu,
            save=save,
            resume=options.input_file("--resume", resume),
            log=log,
            progress=step,
        )

    files, reads = {"--save": save, "--log": log}, {"--resume": resume}
    run_command(build, "train", fmt, as_json, quiet, (summary, junit, json_file), writes=files, reads=reads)


@app.command()
def check(
    budget: Annotated[
        str,
        typer.Option(
            help="Any duration (90, 90s, 5m, 1h; 10s, 60s, 5m, 15m are usual): what fits runs, in order of value."
        ),
    ] = "60s",
    device: DeviceOpt = "auto",
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too (unknown model, NVML error...).")] = False,
    thresholds: Annotated[
        Path | None, typer.Option(metavar="FILE", help="TOML floors, as fractions of each device's peak.")
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option(metavar="PATH", help="An earlier `check` or `bench --json` to compare.")
    ] = None,
    max_regression: Annotated[float, typer.Option(metavar="PCT", help="Fail beyond this slowdown.")] = 10.0,
    require_gpu: RequireGpuOpt = False,
    junit: JunitOpt = None,
    json_file: JsonFileOpt = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    details: DetailsOpt = False,
    summary: SummaryOpt = None,
) -> None:
    """Is this machine fit to compute? Health, correctness, speed and a stress window, in a time budget."""

    def build(step: Callable[..., None]) -> "Report":
        from devcheck import options
        from devcheck.commands import check as command
        from devcheck.commands.check import thresholds as floors
        from devcheck.machine.devices import select

        settings = command.Settings(
            budget=f"{options.duration('--budget', budget):g}s" if budget not in command.BUDGETS else budget,
            strict=strict,
            thresholds=floors.load(options.input_file("--thresholds", thresholds)),
            baseline=options.report_records("--baseline", baseline, ("bench", "check")),
            max_regression=options.percentage("max-regression", max_regression),
        )
        return command.run(settings, select(options.device(device)), require_gpu=require_gpu, progress=step)

    reads = {"--baseline": baseline, "--thresholds": thresholds}
    run_command(build, "check", fmt, as_json, quiet, (summary, junit, json_file), details, reads=reads)


@app.command()
def compare(
    reports: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="REPORT...",
            help="`devcheck env|bench|check --json` files, folders of them, globs, or - for JSON Lines on stdin.",
        ),
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            "--fail-on",
            metavar="WHAT",
            help="Comma list of what fails the run (exit 1): outlier, drift, failed-check, floor; or none.",
        ),
    ] = "failed-check,floor",
    thresholds: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Absolute floors too: `devcheck check`'s TOML (fractions of each peak)."),
    ] = None,
    prometheus: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="Also write the Prometheus text format (node-exporter's textfile collector)."
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="An input that is not a devcheck report is an error (exit 2).")
    ] = False,
    junit: JunitOpt = None,
    json_file: JsonFileOpt = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    summary: SummaryOpt = None,
) -> None:
    """Many nodes' reports side by side: outliers against the fleet's median, drift, failed checks."""

    def build(step: Callable[..., None]) -> "Report":
        from devcheck import options
        from devcheck.commands import compare as command
        from devcheck.commands.check import thresholds as floors
        from devcheck.commands.compare import load

        settings = command.Settings(
            inputs=options.report_inputs(reports),
            fail_on=options.fail_on(fail_on, command.CATEGORIES),
            thresholds=floors.load(options.input_file("--thresholds", thresholds)) if thresholds else None,
            prometheus=prometheus,
            strict=strict,
        )
        outputs = {"--prometheus": prometheus, "--summary": summary, "--junit": junit, "--json-file": json_file}
        load.refuse_overwriting(settings.inputs, outputs)
        return command.run(settings, progress=step)

    files, reads = (summary, junit, json_file), {"--thresholds": thresholds}
    run_command(build, "compare", fmt, as_json, quiet, files, writes={"--prometheus": prometheus}, reads=reads)


@app.command()
def schema(
    command: Annotated[
        str | None, typer.Argument(help="env, bench, grad, train, check or compare (default: all).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Accepted, as every command takes it: always JSON.")] = False,
) -> None:
    """The JSON Schema of every command's --json output (draft 2020-12), to validate reports with."""
    import json

    from devcheck.schema import document

    try:
        typer.echo(json.dumps(document(command), indent=2))
    except ValueError as e:
        error_line(str(e))
        raise typer.Exit(2) from None


def main() -> NoReturn:
    from devcheck.interrupt import run_as_the_process

    run_as_the_process(lambda: app(prog_name="devcheck"))
