"""devcheck's commands run in-process, as most tests run them (Typer's CliRunner: stdout and stderr apart)."""

from typer.testing import CliRunner

from devcheck.cli import app

runner = CliRunner()

# bench's everyday cases, small: the suite runs them once on the recorded H100 (conftest's bench_on_h100)
BENCH_ON_H100 = ["bench", "--cases", "matmul,e2e,copy,autograd", "--size", "400", "--repeat", "3", "--max-time", "120"]


def invoke(*args, input: str | None = None):
    """`devcheck ARGS...` (paths may be Path objects); its Result: exit_code, stdout, stderr."""
    return runner.invoke(app, [str(a) for a in args], input=input)
