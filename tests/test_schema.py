"""Every command's real --json output validates against the shipped JSON Schema (`devcheck schema`),
on this machine and on the recorded H100; and the schema refuses what it must refuse."""

import json

import jsonschema
import pytest
from typer.testing import CliRunner

from devcheck.cli import app
from devcheck.machine import seam
from tests.recordings import FOLDER, h100, load

runner = CliRunner()
RUNS = {
    "env": ["env"],
    "bench": ["bench", "--size", "400", "--repeat", "3", "--max-time", "3", "--cases", "matmul,e2e,copy,autograd"],
    "grad": ["grad", "--ops", "add,matmul,cross_entropy"],
    "train": ["train", "--epochs", "2", "--min-accuracy", "0"],
    "check": ["check", "--budget", "10s"],
}


def schema(command=None):
    result = runner.invoke(app, ["schema", *([command] if command else [])])
    assert result.exit_code == 0
    return json.loads(result.stdout)


def report(args, recording):
    with seam.replay(recording):
        result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("machine", ["h100-sxm", "no-driver"])
@pytest.mark.parametrize("command", ["env", "bench", "grad", "train", pytest.param("check", marks=pytest.mark.slow)])
def test_real_output_validates(command, machine):
    doc = report(RUNS[command], load(machine))
    jsonschema.validate(doc, schema())
    jsonschema.validate(doc, schema(command))  # the command's own, narrowed schema too


def test_an_interrupted_envelope_validates():
    # an interrupted envelope as devcheck writes it (tests/test_faults.py sends the real signals)
    from devcheck.report import Report

    doc = {**Report("bench", verdict="bench: interrupted").to_dict(), "ok": False, "interrupted": True}
    jsonschema.validate(doc, schema())


def test_display_strings_and_spaced_keys_are_refused():
    doc = report(RUNS["bench"], h100())
    doc["data"]["matmul"][0]["median ms"] = "0.00799 ±4%"  # what bench's JSON held before
    with pytest.raises(jsonschema.ValidationError, match="median ms"):
        jsonschema.validate(doc, schema())
    env = report(["env"], h100())
    env["checks"][0]["status"] = "passed"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(env, schema())


PUBLIC = sorted(p.stem for p in (FOLDER / "public").glob("*.json"))


@pytest.mark.parametrize("dump", PUBLIC)
def test_env_on_every_public_dump_validates(dump):
    from devcheck.commands.env import collect
    from devcheck.machine.recording import Recording

    with seam.replay(Recording.load(FOLDER / "public" / f"{dump}.json")):
        jsonschema.validate(collect(environ={}).to_dict(), schema())
