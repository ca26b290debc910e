"""Every command's real --json output validates against the shipped JSON Schema (`devcheck schema`),
on this machine and on the recorded H100; and the schema refuses what it must refuse."""

import copy
import json

import jsonschema
import pytest

from devcheck.cli import app
from devcheck.machine.replay import seam
from devcheck.schema import document
from tests.cli import runner
from tests.recordings import FOLDER, h100, load
from tests.schemas import validate

RUNS = {
    "env": ["env"],
    "bench": ["bench", "--size", "400", "--repeat", "3", "--max-time", "3", "--cases", "matmul,e2e,copy,autograd"],
    "grad": ["grad", "--ops", "add,matmul,cross_entropy"],
    "train": ["train", "--epochs", "2", "--min-accuracy", "0"],
    "check": ["check", "--budget", "10s"],
}


@pytest.mark.parametrize("command", [None, "env", "bench", "grad", "train", "check", "compare"])
def test_the_schema_command_prints_the_schema_these_tests_validate_with(command):
    result = runner.invoke(app, ["schema", *([command] if command else [])])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == document(command)


def report(args, recording):
    with seam.replay(recording):
        result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("machine", ["h100-sxm", "no-driver"])
@pytest.mark.parametrize("command", ["env", "bench", "grad", "train", pytest.param("check", marks=pytest.mark.slow)])
def test_real_output_validates(command, machine, request):
    if (command, machine) == ("bench", "h100-sxm"):  # the suite's one run of it
        doc = request.getfixturevalue("bench_on_h100").doc
    else:
        doc = report(RUNS[command], load(machine))
    validate(doc)
    validate(doc, command)  # the command's own, narrowed schema too


@pytest.mark.parametrize("command", ["env", "bench", "grad", "train", "check", "compare"])
def test_a_report_interrupted_before_anything_validates_and_only_that_one_may_be_empty(command):
    # as devcheck writes it (tests/test_faults.py sends the real signals and checks partial reports)
    from devcheck.report import Report

    cut = Report(command, verdict=f"{command}: interrupted before it finished", interrupted="interrupted").to_dict()
    assert cut["interrupted"] is True and cut["ok"] is False and cut["data"] == {}
    for where in (None, command):
        validate(cut, where)
        with pytest.raises(jsonschema.ValidationError):  # a finished report with nothing in it is no report
            validate({k: v for k, v in cut.items() if k != "interrupted"}, where)


def _first_step_interrupted(command):
    """The report a command hands the runner when Ctrl-C comes as its work starts: at its second
    progress call (the first, its total, comes before any work, and an interrupt there has no report)."""
    from devcheck.commands import bench, grad, train
    from devcheck.commands.bench import Settings
    from devcheck.commands.train import Config
    from devcheck.machine.model.devices import select
    from devcheck.options import MatmulShape

    calls = []

    def ctrl_c(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt

    commands = {
        "bench": lambda: bench.run(Settings(MatmulShape(400, 400, 400), max_time=3), select("auto"), progress=ctrl_c),
        "grad": lambda: grad.run(select("auto"), ("add",), progress=ctrl_c),
        "train": lambda: train.run(Config(epochs=2), select("auto"), progress=ctrl_c),
    }
    with seam.replay(h100()), pytest.raises(KeyboardInterrupt) as stop:
        commands[command]()
    cut = stop.value.report
    cut.interrupted = "interrupted"  # as the runner marks it
    return cut.to_dict()


@pytest.mark.parametrize("command", ["bench", "grad", "train"])
def test_a_report_interrupted_before_its_first_result_validates(command):
    """Its tables are empty ([]), not missing or {}: a campaign of real signals found both."""
    cut = _first_step_interrupted(command)
    assert cut["interrupted"] is True and cut["data"]
    validate(cut, command)


def test_display_strings_and_spaced_keys_are_refused(bench_on_h100):
    doc = copy.deepcopy(bench_on_h100.doc)
    doc["data"]["matmul"][0]["median ms"] = "0.00799 ±4%"  # what bench's JSON held before
    with pytest.raises(jsonschema.ValidationError, match="median ms"):
        validate(doc)
    env = report(["env"], h100())
    env["checks"][0]["status"] = "passed"
    with pytest.raises(jsonschema.ValidationError):
        validate(env)


PUBLIC = sorted(p.stem for p in (FOLDER / "public").glob("*.json"))


@pytest.mark.parametrize("dump", PUBLIC)
def test_env_on_every_public_dump_validates(dump):
    from devcheck.commands.env import collect
    from devcheck.machine.replay.recording import Recording

    with seam.replay(Recording.load(FOLDER / "public" / f"{dump}.json")):
        validate(collect(environ={}).to_dict())


def test_compare_output_validates(tmp_path, bench_on_h100):
    """compare's real output over real reports (the recorded H100's env and bench as four nodes, one with
    a lower power limit and another driver, one with a failed check, plus a truncated report), with a
    --thresholds floor every replayed rate is under: every section of its data is filled."""
    env, bench = report(["env"], h100()), bench_on_h100.doc
    for i in range(4):
        node_env, node_bench = json.loads(json.dumps(env)), {**bench, "host": f"node-{i}"}
        node_env["host"] = f"node-{i}"
        if i == 1:
            node_env["data"]["gpus"][0]["power_limit_w"]["value"] = 500.0
            node_env["data"]["driver"]["driver"]["value"] = "550.127.05"  # a public dump's driver
        if i == 2:
            node_env["checks"][0]["status"] = "fail"
        (tmp_path / f"node-{i}-env.json").write_text(json.dumps(node_env))
        (tmp_path / f"node-{i}-bench.json").write_text(json.dumps(node_bench))
    (tmp_path / "cut.json").write_text(json.dumps(env)[:1000])
    floors = tmp_path / "floors.toml"
    floors.write_text("[default]\nmatmul_float32 = 1.0\n")
    result = runner.invoke(app, ["compare", "--json", "--thresholds", str(floors), str(tmp_path)])
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and all(
        doc["data"][k] for k in ("outliers", "drift", "below_floor", "nodes", "skipped")
    )
    validate(doc)
    validate(doc, "compare")


TOPOLOGY = sorted(p.stem for p in (FOLDER / "topology").glob("*.json"))


@pytest.mark.parametrize("dump", TOPOLOGY)
def test_env_on_every_public_topology_dump_validates(dump):
    from devcheck.commands.env import collect
    from devcheck.machine.replay.recording import Recording

    with seam.replay(Recording.load(FOLDER / "topology" / f"{dump}.json")):
        doc = collect(environ={}).to_dict()
    validate(doc)
    assert doc["data"]["topology"]  # the matrix is there, validated as rows
