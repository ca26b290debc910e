"""The `devcheck` command line: parses options, calls one function per command, renders its Report,
and turns the outcome into an exit code. No numpy, cupy or pynvml is imported at module level, so
`devcheck --help` and `--version` stay as fast as Typer itself.

Exit codes: 0 no check failed; 1 a check failed; 2 bad usage or an internal error; 130 Ctrl-C.
"""

import functools
import inspect
import platform
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from devcheck import __version__
from devcheck.render import Format, error_line

if TYPE_CHECKING:
    from devcheck.outputs import Outputs
    from devcheck.report import Report

app = typer.Typer(
    name="devcheck",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: Rich's help formatter alone costs ~60 ms at startup
    help="Does this machine compute correctly, and how fast? Exit codes: 0 ok, 1 a check failed, "
    "2 bad usage or internal error, 130 interrupted.",
)


def _option(name: str, kind: object, default: object, *decls: str, **info: str) -> inspect.Parameter:
    option = Annotated[kind, typer.Option(*decls, **info)]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option, default=default)


REPORT_OPTIONS = (  # every command's: defined once, added to each command's signature by `reported`
    _option("json_file", Path | None, None, "--json-file", metavar="PATH", help="Also write the JSON report to PATH."),
    _option("junit", Path | None, None, "--junit", metavar="PATH", help="Also write JUnit XML, one case per check."),
    _option(
        "summary", Path | None, None, "--summary", metavar="PATH", help="Also append Markdown to PATH (CI summary)."
    ),
    _option("fmt", Format, Format.table, "--format", "-f", help="table (on stderr), json, markdown or github."),
    _option("as_json", bool, False, "--json", help="Short for --format json."),
    _option("quiet", bool, False, "--quiet", "-q", help="Nothing on stderr but errors; the exit code speaks."),
)
DETAILS = _option("details", bool, False, "--details", help="Every GPU's fields, not only those with a problem.")
RequireGpuOpt = Annotated[bool, typer.Option("--require-gpu", help="Fail (exit 1) unless a GPU can compute.")]


def reported(*, details: bool = False) -> Callable:
    """Gives a command the report options (pip's shared option groups): Typer reads them from the
    signature, and the command receives them as `outputs(writes, reads)`, which builds the one Outputs
    value of the run (devcheck/outputs.py) with the files the command itself writes and reads."""
    shared = [*REPORT_OPTIONS, *([DETAILS] if details else [])]

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def command(**given: object) -> None:
            from devcheck.outputs import Outputs

            o = {p.name: given.pop(p.name) for p in shared}
            reports = {"--json-file": o["json_file"], "--junit": o["junit"], "--summary": o["summary"]}
            shown = (o["fmt"], o["as_json"], o["quiet"], o.get("details", False), reports)
            fn(**given, outputs=functools.partial(Outputs, fn.__name__, *shown))

        signature = inspect.signature(fn)
        own = [p for p in signature.parameters.values() if p.name != "outputs"]
        command.__signature__ = signature.replace(parameters=own + shared)  # type: ignore[attr-defined]
        command.__annotations__ = {}  # Typer reads the signature; `outputs` is not an option
        return command

    return wrap


def run_command(build: Callable[[Callable[..., None]], "Report"], outputs: "Outputs") -> NoReturn:
    """Run one command (devcheck/runner.py) and exit with its code."""
    from devcheck.runner import run

    raise typer.Exit(run(build, outputs))


def _version(value: bool) -> None:
    """devcheck's version and the versions that matter beside it, read without importing them."""
    if value:
        from devcheck.machine.probes.packages import cupy_dists, installed

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


@app.command()
@reported(details=True)
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
    *,
    outputs: Callable[..., "Outputs"],
) -> None:
    """What is installed and what is wrong with it: Python, CPU, NumPy/BLAS, CuPy, CUDA, every GPU; with fixes."""

    def build(step: Callable[..., None]) -> "Report":
        from devcheck.commands.env import collect

        if record is None:
            return collect(require_gpu=require_gpu)
        from devcheck.machine.probes import packages
        from devcheck.machine.replay import seam

        with seam.record(record, packages.installed()):
            return collect(require_gpu=require_gpu)

    run_command(build, outputs({"--record": record}))


DeviceOpt = Annotated[str, typer.Option("--device", "-d", help="auto, all, cpu, cuda or cuda:N.")]


@app.command()
@reported()
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
    *,
    outputs: Callable[..., "Outputs"],
) -> None:
    """How fast is this machine, and is the GPU really faster? Matmul, bandwidth, copies, an autograd step."""

    def build(step: Callable[..., None]) -> "Report":
        from devcheck import options
        from devcheck.commands import bench as command
        from devcheck.machine.model.devices import select

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

    run_command(build, outputs(reads={"--baseline": baseline}))


@app.command()
@reported()
def grad(
    device: DeviceOpt = "auto",
    ops: Annotated[str | None, typer.Option("--ops", help="Comma-separated ops to check (default: all).")] = None,
    fast: Annotated[bool, typer.Option("--fast", help="Random-direction checks only (PyTorch's fast mode).")] = False,
    require_gpu: RequireGpuOpt = False,
    *,
    outputs: Callable[..., "Outputs"],
) -> None:
    """Does autograd give the right gradients on every device? The classic a**2*x+b*x+c, then every op."""

    def build(step: Callable[..., None]) -> "Report":
        from devcheck import options
        from devcheck.commands import grad as command
        from devcheck.machine.model.devices import select

        chosen = options.choices("--ops", ops, command.op_names(), command.op_names())
        selection = select(options.device(device))
        return command.run(selection, chosen, fast=fast, require_gpu=require_gpu, progress=step)

    run_command(build, outputs())


@app.command()
@reported()
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
    *,
    outputs: Callable[..., "Outputs"],
) -> None:
    """Does a small network really learn on every device, and do the devices tell the same story?"""

    def build(step: Callable[..., None]) -> "Report":
        from devcheck import options
        from devcheck.commands import train as command
        from devcheck.machine.model.devices import select

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

    run_command(build, outputs({"--save": save, "--log": log}, {"--resume": resume}))


@app.command()
@reported(details=True)
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
    *,
    outputs: Callable[..., "Outputs"],
) -> None:
    """Is this machine fit to compute? Health, correctness, speed and a stress window, in a time budget."""

    def build(step: Callable[..., None]) -> "Report":
        from devcheck import options
        from devcheck.commands import check as command
        from devcheck.commands.check import thresholds as floors
        from devcheck.machine.model.devices import select

        settings = command.Settings(
            budget=f"{options.duration('--budget', budget):g}s" if budget not in command.BUDGETS else budget,
            strict=strict,
            thresholds=floors.load(options.input_file("--thresholds", thresholds)),
            baseline=options.report_records("--baseline", baseline, ("bench", "check")),
            max_regression=options.percentage("max-regression", max_regression),
        )
        return command.run(settings, select(options.device(device)), require_gpu=require_gpu, progress=step)

    run_command(build, outputs(reads={"--baseline": baseline, "--thresholds": thresholds}))


@app.command()
@reported()
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
    *,
    outputs: Callable[..., "Outputs"],
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
        load.refuse_overwriting(settings.inputs, {**run.writes, **run.files})
        return command.run(settings, progress=step)

    run = outputs({"--prometheus": prometheus}, {"--thresholds": thresholds})
    run_command(build, run)


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
