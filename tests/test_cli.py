"""The command line as users and CI jobs drive it: formats, streams, exit codes, bad input."""

import json
import subprocess
import sys

import pytest
import typer

from devcheck.cli import app, run_command
from devcheck.machine.replay import seam
from devcheck.outputs import Outputs
from devcheck.render import Format
from tests.cli import invoke, runner
from tests.recordings import GPU0, h100, load


def test_json_envelope_on_stdout_only():
    result = invoke("env", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["schema_version"], doc["tool"], doc["command"], doc["ok"]) == (1, "devcheck", "env", True)
    assert {"id", "status", "summary"} <= set(doc["checks"][0])
    assert doc["verdict"].startswith("GPU compute:")
    assert result.stderr == ""


@pytest.mark.parametrize(("value", "expected"), [("gpu-node-07", "gpu-node-07"), ("  ", None), ("", None)])
def test_devcheck_host_names_the_node_in_reports(monkeypatch, value, expected):
    """In a Kubernetes pod, the downward API's node name instead of the pod's host name."""
    import os

    monkeypatch.setenv("DEVCHECK_HOST", value)
    doc = json.loads(invoke("env", "--json").stdout)
    assert doc["host"] == (expected or os.uname().nodename)


def test_table_goes_to_stderr_and_stdout_stays_empty():
    result = invoke("env")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "GPU compute:" in result.stderr and "NumPy and BLAS" in result.stderr


def test_quiet_prints_nothing():
    result = invoke("env", "--quiet")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_markdown_for_bug_reports():
    result = invoke("env", "--format", "markdown")
    assert result.stdout.startswith("## devcheck env\n")
    assert "| field | value | source |" in result.stdout and "### NumPy and BLAS" in result.stdout


def test_require_gpu_fails_on_a_machine_without_a_driver():
    with seam.replay(load("no-driver")):
        result = invoke("env", "--require-gpu", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert [c["status"] for c in doc["checks"] if c["id"] == "gpu.required"] == ["fail"]


def test_require_gpu_passes_with_a_working_gpu(gpu):
    result = invoke("env", "--require-gpu", "--json")
    assert result.exit_code == 0, result.stdout
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "GPU compute: ready on 1 GPU(s): cuda:0 (NVIDIA H100 80GB HBM3)"
    assert doc["data"]["gpus"][0]["cuda_index"]["value"] == 0


def test_github_annotations_and_summary(tmp_path):
    ecc = h100(why="2 uncorrected ECC errors", nvml={("nvmlDeviceGetTotalEccErrors", GPU0, 1, 0): 2})
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    with seam.replay(ecc):
        result = invoke("env", "--format", "github", "--summary", str(summary))
    assert result.exit_code == 1
    assert "::error title=devcheck env%3A gpu0.ecc::GPU 0: 2 uncorrected ECC errors since boot." in result.stdout
    assert "::notice title=devcheck env::GPU compute: ready on 1 GPU(s)" in result.stdout
    assert summary.read_text().startswith("earlier step\n## devcheck env\n")


def test_json_stays_valid_when_a_probe_crashes():
    odd = h100(why="NVML memory info without its fields", nvml={("nvmlDeviceGetMemoryInfo", GPU0): 42})
    with seam.replay(odd):
        result = invoke("env", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert any(c["id"] == "gpu0.probe" and c["status"] == "error" for c in doc["checks"])


def test_internal_error_is_one_line_and_exit_2(capsys):
    """The command harness itself, handed a command that crashes: one line, exit 2, no traceback."""

    def crashes(step):
        raise RuntimeError("kaput")

    with pytest.raises(typer.Exit) as exit_:
        run_command(crashes, Outputs("env", Format.json))
    assert exit_.value.exit_code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "devcheck: error: internal error: RuntimeError: kaput (set DEVCHECK_DEBUG=1 for the traceback)"
    ]


def test_summary_in_a_missing_folder_is_bad_input(tmp_path):
    result = invoke("env", "--summary", str(tmp_path / "nope" / "s.md"))
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"devcheck: error: --summary {tmp_path}/nope/s.md: the folder {tmp_path}/nope does not exist"
    )


def test_bad_format_is_a_usage_error():
    result = invoke("env", "--format", "yaml")
    assert result.exit_code == 2 and "yaml" in result.stderr


def test_no_arguments_shows_help():
    result = invoke()
    assert result.exit_code == 2 and "env" in result.stdout + result.stderr


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["env", "--help"]])
def test_help_and_version_import_no_heavy_module(args):
    code = (
        "import sys\nfrom devcheck.cli import app\n"
        f"try:\n    app({args!r}, prog_name='devcheck')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('numpy', 'cupy', 'pynvml', 'threadpoolctl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_installed_entry_point_emits_valid_json():
    result = subprocess.run([sys.executable, "-m", "devcheck", "env", "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["command"] == "env"


def test_version_names_numpy_and_cupy_without_importing_them():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("devcheck 0.1.0 (Python ") and "numpy 2." in result.stdout
    assert "no CuPy" in result.stdout or "cupy" in result.stdout


def test_long_values_are_shortened_in_tables_and_whole_in_json():
    """The H100 machine's NVIDIA_REQUIRE_CUDA (about 1,000 characters) flooded the env table."""
    long = "cuda>=13.0 " + " ".join(f"brand=tesla,driver>={d},driver<{d + 1}" for d in range(470, 500))
    table = runner.invoke(app, ["env"], env={"NVIDIA_REQUIRE_CUDA": long})
    assert f"({len(long):,} characters; --json shows all)" in table.stderr
    assert "driver<499" not in table.stderr
    doc = json.loads(runner.invoke(app, ["env", "--json"], env={"NVIDIA_REQUIRE_CUDA": long}).stdout)
    assert doc["data"]["envvars"]["NVIDIA_REQUIRE_CUDA"]["value"] == long
