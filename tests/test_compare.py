"""devcheck compare: fleets built from real reports (the replayed H100's `check --json`, this machine's
`env` and `bench`), with named odd nodes (tests/fleet.py); compare must name exactly those."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devcheck.cli import app
from devcheck.machine.replay import seam
from tests import fleet as fleets
from tests.cli import runner
from tests.recordings import h100


@pytest.fixture(scope="session")
def h100_env() -> dict:
    with seam.replay(h100()):
        result = runner.invoke(app, ["env", "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def cpu_reports() -> dict:
    """This machine's real `env --json` and a small `bench --json` on its CPU."""
    env = runner.invoke(app, ["env", "--json"])
    bench = runner.invoke(
        app,
        [
            "bench",
            "--device",
            "cpu",
            "--cases",
            "matmul",
            "--size",
            "100",
            "--repeat",
            "3",
            "--max-time",
            "2",
            "--json",
        ],
    )
    assert env.exit_code == 0 and bench.exit_code in (0, 1), (env.stderr, bench.stderr)
    return {"env": json.loads(env.stdout), "bench": json.loads(bench.stdout)}


def write(folder: Path, texts: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for host, text in texts.items():
        (folder / f"{host}.json").write_text(text)
    return folder


def compare(*args: str, stdin: str | None = None) -> tuple[int, dict, str]:
    result = runner.invoke(app, ["compare", "--json", *args], input=stdin)
    doc = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.exit_code, doc, result.stderr


def named(doc: dict) -> dict[str, set]:
    """What a comparison names: outlier hosts (and devices), drift (fact, host, device), skipped inputs,
    failed checks, and every check that is not ok or skip."""
    data = doc["data"]
    return {
        "outliers": {(r["host"], r["device"]) for r in data["outliers"]},
        "drift": {(row["fact"], d["host"], d["device"]) for row in data["drift"] for d in row["differing"]},
        "skipped": {Path(r["input"]).name for r in data["skipped"]},
        "nodes": {r["host"] for r in data["nodes"]},
        "failed": {c["id"] for c in doc["checks"] if c["id"].startswith("compare.failed.")},
        "skipped_hosts": {Path(r["input"]).stem for r in data["skipped"]},
    }


def expected(odd: dict[str, str]) -> dict[str, set]:
    who = {kind: host for host, kind in odd.items()}
    out = {"outliers": set(), "drift": set(), "skipped": set(), "nodes": set(), "failed": set(), "skipped_hosts": set()}
    if "slow_gemm" in who:
        out["outliers"].add((who["slow_gemm"], "cuda:3"))
    if "pcie_x8" in who:
        out["drift"].add(("pcie_width_max", who["pcie_x8"], "cuda:5"))
    if "driver" in who:
        out["drift"].add(("driver", who["driver"], ""))
    if "gpu_missing" in who:
        out["drift"].add(("gpu_count", who["gpu_missing"], ""))
    if "truncated" in who:
        out["skipped"].add(f"{who['truncated']}.json")
        out["skipped_hosts"].add(who["truncated"])
    out["nodes"] = {host for host, kind in odd.items() if kind != "truncated"}
    return out


@pytest.mark.parametrize(
    "size", [32, pytest.param(1000, marks=pytest.mark.slow)]
)  # 1,000 nodes: ~150 MB of reports written, then compared
def test_a_fleet_names_exactly_its_odd_nodes(check_on_h100, tmp_path, size):
    folder = write(tmp_path / "reports", fleets.fleet(check_on_h100, size))
    code, doc, _ = compare(str(folder))
    assert code == 0  # outliers and drift are warnings by default; no node's own check failed
    assert named(doc) == expected(fleets.odd_hosts(size))
    assert doc["data"]["nodes_compared"] == size - 1  # the truncated report is skipped, named
    slow = [c for c in doc["checks"] if c["id"].startswith("compare.outlier.")]
    assert slow and all(re.search(r"\b(69|70|71)% of the fleet median", c["summary"]) for c in slow)
    assert all("slower" in c["summary"] for c in slow)
    grid = {r["host"]: r for r in doc["data"]["grid"]}  # every node up to 64, else the odd ones only
    gemm = next(h for h, kind in fleets.odd_hosts(size).items() if kind == "slow_gemm")
    every = {f"node-{i:04d}" for i in range(size)} - named(doc)["skipped_hosts"]
    assert set(grid) == ({gemm} if size > 64 else every)
    assert grid[gemm]["odd"] == ["matmul_float32", "matmul_float64", "stress_sustained_float32"]
    assert 69 < grid[gemm]["matmul_float32"] < 71
    assert all(r["odd"] == [] and 98.5 < r["matmul_float32"] < 101.5 for h, r in grid.items() if h != gemm)


@pytest.mark.parametrize("kind", fleets.KINDS)
def test_a_fleet_of_4_names_its_one_odd_node(check_on_h100, tmp_path, kind):
    folder = write(tmp_path / "reports", fleets.fleet(check_on_h100, 4, kinds=(kind,)))
    code, doc, _ = compare(str(folder))
    assert code == 0 and named(doc) == expected(fleets.odd_hosts(4, (kind,)))


def test_a_healthy_fleet_is_alike(check_on_h100, tmp_path):
    code, doc, stderr = compare(str(write(tmp_path / "r", fleets.fleet(check_on_h100, 8, kinds=()))))
    assert code == 0 and doc["verdict"].startswith("compare: 8 node(s), 64 GPU(s) alike")
    assert {c["status"] for c in doc["checks"]} == {"ok"}
    assert all(g["judged"] and g["outliers"] == 0 for g in doc["data"]["groups"])


def test_a_gpu_idling_at_pcie_gen_1_is_not_drift_but_a_lower_maximum_is(check_on_h100, tmp_path):
    reports = {host: json.loads(text) for host, text in fleets.fleet(check_on_h100, 4, kinds=()).items()}
    gpu = reports["node-0001"]["data"]["gpus"][2]
    gpu["pcie_generation"] = {**gpu["pcie_generation"], "value": 1}  # idle at P8, as the public dumps show
    code, doc, _ = compare(str(write(tmp_path / "r", {h: json.dumps(d) for h, d in reports.items()})))
    assert code == 0 and doc["data"]["drift"] == []
    gpu["pcie_generation_max"] = {**gpu["pcie_generation_max"], "value": 4}  # a Gen4 slot: that is drift
    code, doc, _ = compare(str(write(tmp_path / "s", {h: json.dumps(d) for h, d in reports.items()})))
    assert [(r["fact"], [d["host"] for d in r["differing"]]) for r in doc["data"]["drift"]] == [
        ("pcie_generation_max", ["node-0001"])
    ]


def test_one_node_with_another_vbios_is_drift(check_on_h100, tmp_path):
    reports = {host: json.loads(text) for host, text in fleets.fleet(check_on_h100, 4, kinds=()).items()}
    gpu = reports["node-0002"]["data"]["gpus"][5]
    gpu["vbios_version"] = {**gpu["vbios_version"], "value": "96.00.74.00.01"}  # the public H100 SXM dump's
    code, doc, _ = compare(str(write(tmp_path / "r", {h: json.dumps(d) for h, d in reports.items()})))
    assert [
        (r["fact"], r["majority"], [(d["host"], d["device"]) for d in r["differing"]]) for r in doc["data"]["drift"]
    ] == [("vbios_version", "96.00.DA.00.0C", [("node-0002", "cuda:5")])]


def test_stdin_json_lines_and_printed_reports_with_other_text(check_on_h100):
    texts = fleets.fleet(check_on_h100, 6, kinds=("slow_gemm", "truncated"))
    odd = fleets.odd_hosts(6, ("slow_gemm", "truncated"))
    whole = {h: t for h, t in texts.items() if odd.get(h) != "truncated"}
    lines = "".join(json.dumps(json.loads(t)) + "\n" for t in whole.values())
    code, doc, _ = compare("-", stdin=lines)
    assert code == 0 and doc["data"]["nodes_compared"] == 5 and not doc["data"]["skipped"]
    assert {h for h, _ in named(doc)["outliers"]} == {h for h, k in odd.items() if k == "slow_gemm"}
    # `kubectl logs` of many pods: pip's lines, then each pod's indented report, one truncated mid-line
    logs = "Collecting devcheck\nSuccessfully installed devcheck-0.1.0\n" + "".join(texts.values())
    code, doc, _ = compare("-", stdin=logs)
    assert doc["data"]["nodes_compared"] == 5 and len(doc["data"]["skipped"]) == 1
    assert "truncated" in doc["data"]["skipped"][0]["why"] and doc["data"]["skipped"][0]["input"].startswith("<stdin>:")
    assert "2 line(s) of other text" in next(c["summary"] for c in doc["checks"] if c["id"] == "compare.noise")


def test_folder_glob_and_file_inputs(check_on_h100, tmp_path):
    folder = write(tmp_path / "reports", fleets.fleet(check_on_h100, 12, kinds=()))
    code, doc, _ = compare(str(folder / "node-000*.json"))  # a glob devcheck expands (quoted in a shell)
    assert code == 0 and doc["data"]["nodes_compared"] == 10
    files = sorted(folder.glob("*.json"))
    code, doc, _ = compare(str(files[0]), str(files[1]), str(folder))  # a file named twice is read once
    assert doc["data"]["nodes_compared"] == 12 and not doc["data"]["skipped"]


def test_bad_inputs_are_named_and_skipped_strict_makes_them_errors(check_on_h100, tmp_path):
    folder = write(tmp_path / "reports", fleets.fleet(check_on_h100, 4, kinds=()))
    newer = {**json.loads((folder / "node-0000.json").read_text()), "schema_version": 2, "host": "newer"}
    bad = {
        "other.json": json.dumps({"name": "not devcheck"}),
        "newer.json": json.dumps(newer),
        "cut.json": (folder / "node-0001.json").read_text()[:5000],
        "shapeless.json": json.dumps({**newer, "schema_version": 1, "host": "x", "data": {"records": [{"rate": 1}]}}),
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
    missing = str(tmp_path / "missing.json")
    code, doc, _ = compare(str(folder), *(str(tmp_path / n) for n in bad), missing)
    assert code == 0 and doc["data"]["nodes_compared"] == 4
    why = {Path(r["input"]).name: r["why"] for r in doc["data"]["skipped"]}
    assert set(why) == {*bad, "missing.json"}
    assert "not a devcheck report" in why["other.json"] and "schema_version 2 is newer" in why["newer.json"]
    assert why["cut.json"].startswith("truncated") and "no such file" in why["missing.json"]
    assert "not as devcheck writes it" in why["shapeless.json"]
    assert sum(c["status"] == "warn" and c["id"].startswith("compare.input.") for c in doc["checks"]) == 5
    result = runner.invoke(app, ["compare", "--strict", str(folder), str(tmp_path / "cut.json")])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "cut.json: truncated" in result.stderr and "--strict" in result.stderr


def test_a_json_array_names_each_of_its_documents(check_on_h100, tmp_path):
    (tmp_path / "many.json").write_text(json.dumps([{"a": 1}, check_on_h100, {"b": 2}]))
    code, doc, _ = compare(str(tmp_path / "many.json"))
    assert code == 0 and doc["data"]["nodes_compared"] == 1
    assert [Path(r["input"]).name for r in doc["data"]["skipped"]] == ["many.json[0]", "many.json[2]"]
    ids = [c["id"] for c in doc["checks"]]
    assert len(ids) == len(set(ids))  # one JUnit test case each


def test_hostile_inputs_are_skipped_not_crashes(check_on_h100, tmp_path):
    """Found by a bad-input campaign: each once crashed the whole comparison, hung or ran out of memory."""
    import os

    folder = write(tmp_path / "reports", fleets.fleet(check_on_h100, 4, kinds=()))
    base = json.loads((folder / "node-0000.json").read_text())
    huge = json.loads(json.dumps(base))
    huge["host"], huge["data"]["records"][0]["shape"] = "huge", [1e400, 1]  # int(inf): OverflowError
    (tmp_path / "huge.json").write_text(json.dumps(huge).replace("Infinity", "1e400"))
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)  # RecursionError in the decoder
    (tmp_path / "bom.json").write_text("\ufeff" + json.dumps({**base, "host": "bom"}), encoding="utf-8")
    os.mkfifo(tmp_path / "fifo.json")  # no writer: reading it would wait forever
    odd = {**base, "host": "fast"}
    odd["data"] = json.loads(json.dumps(base["data"]))
    odd["data"]["records"][0]["rate"] = 1e308  # its ratio to the median overflows to infinity
    (tmp_path / "fast.json").write_text(json.dumps(odd))
    (tmp_path / "escape.json").write_text(json.dumps({**base, "host": "evil\x1b[31mred"}))
    names = ("huge.json", "deep.json", "bom.json", "fifo.json", "escape.json")
    inputs = [str(folder), *(str(tmp_path / n) for n in names)]
    code, doc, _ = compare(*inputs, str(tmp_path / "fast.json"))
    assert code == 0 and doc["data"]["nodes_compared"] == 6  # the 4, bom, fast
    why = {Path(r["input"]).name: r["why"] for r in doc["data"]["skipped"]}
    assert "OverflowError" in why["huge.json"] and "nested too deep" in why["deep.json"]
    assert "not a regular file" in why["fifo.json"] and "control characters" in why["escape.json"]
    result = runner.invoke(app, ["compare", "--json", *inputs, str(tmp_path / "fast.json")])
    assert "Infinity" not in result.stdout and "NaN" not in result.stdout  # strict JSON: null instead


def test_a_device_given_as_an_output_is_written_to_not_replaced(check_on_h100, tmp_path, null_device):
    import os
    import stat

    null = null_device
    folder = write(tmp_path / "reports", fleets.fleet(check_on_h100, 3, kinds=()))
    for option in ("--prometheus", "--json-file", "--junit"):
        result = runner.invoke(app, ["compare", "-q", str(folder), option, str(null)])
        assert result.exit_code == 0 and stat.S_ISCHR(os.stat(null).st_mode), option


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], "no reports given"),
        (["--fail-on", "slow", "x.json"], "--fail-on 'slow': slow unknown"),
        (["--fail-on", "none,drift", "x.json"], "--fail-on 'none,drift'"),
        (["--thresholds", "/nonexistent/floors.toml", "x.json"], "--thresholds /nonexistent/floors.toml: no such file"),
        (["--prometheus", "/nonexistent/dir/x.prom", "x.json"], "--prometheus /nonexistent/dir/x.prom"),
        (["-", "-"], "- (stdin) given more than once"),
        (["/nonexistent/reports"], "no devcheck report to compare: 1 input(s) skipped"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args, words):
    result = runner.invoke(app, ["compare", *args], input="")
    assert result.exit_code == 2 and words in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("option", ["--json-file", "--junit", "--prometheus", "--summary"])
def test_an_output_that_is_one_of_the_reports_is_refused_and_left_alone(check_on_h100, tmp_path, option):
    folder = write(tmp_path / "fleet", {"a": json.dumps(check_on_h100), "b": json.dumps(check_on_h100)})
    before = (folder / "a.json").read_text()
    for inputs in (["fleet/a.json", "fleet/b.json"], ["fleet"], ["fleet/*.json"]):
        result = runner.invoke(app, ["compare", *[str(tmp_path / i) for i in inputs], option, str(folder / "a.json")])
        assert result.exit_code == 2 and "is one of the reports being compared" in result.stderr, result.stderr
        assert (folder / "a.json").read_text() == before


def test_a_hard_link_or_stdin_from_a_report_is_refused_but_an_earlier_comparison_may_be_replaced(
    check_on_h100, tmp_path
):
    folder = write(tmp_path / "fleet", {"a": json.dumps(check_on_h100), "b": json.dumps(check_on_h100)})
    os.link(folder / "a.json", tmp_path / "same-as-a.json")
    result = runner.invoke(app, ["compare", str(folder), "--json-file", str(tmp_path / "same-as-a.json")])
    assert result.exit_code == 2 and "is one of the reports being compared" in result.stderr
    with open(folder / "b.json") as stdin:  # `devcheck compare - --json-file b.json < b.json`
        done = subprocess.run(
            [sys.executable, "-m", "devcheck", "compare", "-", "--json-file", str(folder / "b.json")],
            stdin=stdin, capture_output=True, text=True, check=False,
        )  # fmt: skip
    assert done.returncode == 2 and "is one of the reports being compared" in done.stderr
    assert json.loads((folder / "b.json").read_text()) == check_on_h100
    for _ in range(2):  # a nightly job writing into the folder it compares: its last output is replaced
        result = runner.invoke(app, ["compare", str(folder), "--json-file", str(folder / "fleet.json")])
        assert result.exit_code == 0, result.stderr
    assert json.loads((folder / "fleet.json").read_text())["command"] == "compare"


def test_empty_stdin_is_one_line_and_exit_2():
    result = runner.invoke(app, ["compare", "-"], input="just text\n")
    assert result.exit_code == 2 and "<stdin>: no JSON report in it" in result.stderr


def test_fail_on_picks_what_fails(check_on_h100, tmp_path):
    texts = fleets.fleet(check_on_h100, 6, kinds=("slow_gemm", "driver"))
    folder = write(tmp_path / "reports", texts)
    assert compare(str(folder))[0] == 0
    assert compare("--fail-on", "outlier", str(folder))[0] == 1
    assert compare("--fail-on", "drift", str(folder))[0] == 1
    assert compare("--fail-on", "none", str(folder))[0] == 0
    # one node's own report failed a check (its named check's status changed to fail)
    healthy = (
        next(h for h, k in fleets.odd_hosts(6, ("slow_gemm", "driver")).items() if False) if False else "node-0000"
    )
    doc = json.loads((folder / f"{healthy}.json").read_text())
    for c in doc["checks"]:
        if c["id"] == "check.stress.cuda:0":
            c["status"] = "fail"
    (folder / f"{healthy}.json").write_text(json.dumps(doc))
    code, out, _ = compare(str(folder))
    assert code == 1 and f"compare.failed.{healthy}.check.stress.cuda:0" in {c["id"] for c in out["checks"]}
    assert compare("--fail-on", "outlier,drift", str(folder))[0] == 1  # the outlier and the drift still fail it
    assert compare("--fail-on", "none", str(folder))[0] == 0


def test_thresholds_set_absolute_floors(check_on_h100, tmp_path):
    texts = fleets.fleet(check_on_h100, 4, kinds=("slow_gemm",))
    slow = next(h for h, k in fleets.odd_hosts(4, ("slow_gemm",)).items() if k == "slow_gemm")
    doc = json.loads(next(iter(texts.values())))
    record = next(r for r in doc["data"]["records"] if r["case"] == "matmul" and r["dtype"] == "float32")
    floor = 0.85 * record["rate"] / record["peak"]["value"]  # between the slow GPU (70%) and the rest (99-101%)
    floors = tmp_path / "floors.toml"
    floors.write_text(f'["NVIDIA H100 80GB HBM3"]\nmatmul_float32 = {floor}\n')
    code, out, _ = compare("--thresholds", str(floors), str(write(tmp_path / "r", texts)))
    assert code == 1 and [(r["host"], r["device"], r["key"]) for r in out["data"]["below_floor"]] == [
        (slow, "cuda:3", "matmul_float32")
    ]


def test_small_groups_are_shown_not_judged(check_on_h100, tmp_path):
    base = json.dumps(fleets.spread(check_on_h100, gpus=1))
    rng = fleets.random.Random(0)
    docs = {h: fleets.node(base, h, rng) for h in ("node-a", "node-b")}
    fleets.slow_gemm(docs["node-b"], "cuda:0")
    code, doc, _ = compare(str(write(tmp_path / "r", {h: json.dumps(d) for h, d in docs.items()})))
    assert code == 0 and not doc["data"]["outliers"]
    assert all(not g["judged"] and g["devices"] == 2 for g in doc["data"]["groups"])
    assert next(c for c in doc["checks"] if c["id"] == "compare.small_groups")["status"] == "skip"


def test_both_directions_and_identical_values(check_on_h100, tmp_path):
    texts = fleets.fleet(check_on_h100, 5, kinds=())
    docs = {h: json.loads(t) for h, t in texts.items()}
    for r in docs["node-0001"]["data"]["records"]:
        if r["device"] == "cuda:0" and r["case"] == "matmul":
            r["rate"] *= 1.3  # a GPU much faster than its peers
    gpus = docs["node-0002"]["data"]["gpus"]
    gpus[1]["power_limit_w"]["value"] = 600.0  # every other power limit is the recorded 700 W
    gpus[2]["power_limit_w"]["value"] = 695.0  # within 1% of the median: not flagged (MAD floor)
    code, doc, _ = compare(str(write(tmp_path / "r", {h: json.dumps(d) for h, d in docs.items()})))
    flagged = {(r["host"], r["device"], r["measure"]) for r in doc["data"]["outliers"]}
    assert flagged == {
        ("node-0001", "cuda:0", "matmul"),
        ("node-0002", "cuda:1", "power_limit_w"),
    }
    summaries = [c["summary"] for c in doc["checks"] if c["id"].startswith("compare.outlier.")]
    assert any("faster" in s for s in summaries) and any("600 W" in s for s in summaries)


def test_later_report_of_a_host_wins_and_env_adds_to_check(check_on_h100, h100_env, tmp_path):
    texts = fleets.fleet(check_on_h100, 4, kinds=())
    old = json.loads(texts["node-0000"])
    old["run_id"] = "20201128T000000Z-00000000"  # an earlier run of the same node, with another driver
    old["data"]["driver"]["driver"]["value"] = fleets.OTHER_DRIVER
    texts["node-0000-old"] = json.dumps(old)
    env = {**fleets.spread(h100_env), "host": "node-0001"}  # the node's env report beside its check report
    texts["node-0001-env"] = json.dumps(env)
    code, doc, _ = compare(str(write(tmp_path / "r", texts)))
    assert code == 0 and not doc["data"]["drift"] and doc["data"]["nodes_compared"] == 4
    assert "1 earlier report(s)" in next(c["summary"] for c in doc["checks"] if c["id"] == "compare.superseded")
    assert doc["data"]["nodes"] == []
    env["data"]["cupy"]["version"]["value"] = "13.6.0"  # a node's env report adds to (and wins over) its check
    texts["node-0002-env"] = json.dumps({**env, "host": "node-0002"})
    code, doc, _ = compare(str(write(tmp_path / "r2", texts)))
    drift = doc["data"]["drift"]  # every check report carries CuPy's version too: 3 nodes against 1
    assert [(r["fact"], r["tie"], r["majority"]) for r in drift] == [("cupy", False, "14.2.0")]
    assert [d["host"] for d in drift[0]["differing"]] == ["node-0002"]
    checks_only = fleets.fleet(check_on_h100, 4, kinds=())  # check reports alone carry NumPy's version too
    odd = json.loads(checks_only["node-0003"])
    odd["data"]["numpy"]["numpy"]["value"] = "1.26.4"
    checks_only["node-0003"] = json.dumps(odd)
    code, doc, _ = compare(str(write(tmp_path / "r3", checks_only)))
    assert [(r["fact"], [d["host"] for d in r["differing"]]) for r in doc["data"]["drift"]] == [
        ("numpy", ["node-0003"])
    ]


def test_a_cpu_fleet_from_this_machine(cpu_reports, tmp_path):
    """Six nodes of this machine's env and bench reports; one with another NumPy, one whose matmul is slow."""
    texts = {}
    for i in range(6):
        env, bench = (json.loads(json.dumps(cpu_reports[k])) for k in ("env", "bench"))
        env["host"] = bench["host"] = f"cpu-{i}"
        for r in bench["data"]["records"]:
            r["rate"] *= 1 + 0.004 * (i - 3)
        if i == 2:
            env["data"]["numpy"]["numpy"]["value"] = "1.26.4"
        if i == 4:
            for r in bench["data"]["records"]:
                r["rate"] *= 0.7
        texts[f"cpu-{i}-env"], texts[f"cpu-{i}-bench"] = json.dumps(env), json.dumps(bench)
    code, doc, _ = compare(str(write(tmp_path / "r", texts)))
    assert named(doc)["drift"] == {("numpy", "cpu-2", "")}
    assert {h for h, _ in named(doc)["outliers"]} == {"cpu-4"} and named(doc)["nodes"] == {"cpu-2", "cpu-4"}


# The text exposition format, line by line (https://prometheus.io/docs/instrumenting/exposition_formats/).
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    rf"^{NAME}(?:\{{(?:[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE})(?:,[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE})*\}})? "
    r"(?:[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+|Inf)|NaN)$"
)
COMMENT = re.compile(rf"^# (?:HELP {NAME} .*|TYPE {NAME} (?:counter|gauge|histogram|summary|untyped))$")


def test_prometheus_file_parses(check_on_h100, tmp_path):
    texts = fleets.fleet(check_on_h100, 6)
    docs = {h: t for h, t in texts.items()}
    odd = json.loads(docs["node-0000"])
    odd["host"] = 'node "0"\\ab'  # a label value with a quote and a backslash, escaped (a newline is refused)
    docs["node-0000"] = json.dumps(odd)
    path = tmp_path / "devcheck.prom"
    code, doc, _ = compare("--prometheus", str(path), str(write(tmp_path / "r", docs)))
    lines = path.read_text().splitlines()
    assert path.read_text().endswith("\n") and lines
    bad = [line for line in lines if not (SAMPLE.match(line) or COMMENT.match(line))]
    assert not bad, bad[:3]
    families = [line.split()[2] for line in lines if line.startswith("# TYPE")]
    assert len(families) == len(set(families))  # each family once, its samples together
    assert 'host="node \\"0\\"\\\\ab"' in path.read_text()
    slow = next(h for h, k in fleets.odd_hosts(6).items() if k == "slow_gemm")
    assert any(
        line.startswith("devcheck_outlier{") and f'host="{slow}"' in line and line.endswith(" 1") for line in lines
    )
    assert sum(line.startswith("devcheck_outlier{") and line.endswith(" 1") for line in lines) == len(
        doc["data"]["outliers"]
    )
    assert "devcheck_compare_inputs_skipped 1" in lines


def test_a_json_example_in_a_markdown_document_is_not_a_node(check_on_h100, tmp_path):
    """The README's example (a valid report's shape) read as a node made `compare README.md` exit 0; the same
    reports in a pod's log, between lines of other text, are still read (issue 23, item 16)."""
    readme = Path(__file__).parents[1] / "README.md"
    code, doc, stderr = compare(str(readme))
    assert code == 2 and "a JSON example in a Markdown code block, not a report" in stderr
    texts = list(fleets.fleet(check_on_h100, 3, kinds=()).values())
    for fence in ("```json", "~~~"):
        prose = "".join(f"# Node {i}\n\nIts report:\n\n{fence}\n{t.strip()}\n```\n\n" for i, t in enumerate(texts))
        code, doc, stderr = compare("-", stdin=prose)
        assert code == 2 and stderr.count("Markdown code block") == 1, stderr  # one line naming all three
    code, doc, _ = compare("-", stdin="".join(f"pod {i} says:\n{t}" for i, t in enumerate(texts)))
    assert code == 0 and doc["data"]["nodes_compared"] == 3


def test_nodes_with_nothing_comparable_are_not_alike(cpu_reports, tmp_path):
    """Issue 22: three runs of one machine whose check picked its matmul size from the speed it measured
    (1024, 1024, 512) shared no group of 3: compare said "alike" and passed `--fail-on outlier`. Now it
    says nothing was comparable, and fails where outliers were asked to fail; the same reports of one
    size are judged and pass."""

    reports = functools.partial(sized, cpu_reports["bench"])
    gate = ("--fail-on", "outlier")
    prom = tmp_path / "devcheck.prom"
    code, doc, _ = compare(*gate, "--prometheus", str(prom), str(write(tmp_path / "mixed", reports((1024, 1024, 512)))))
    assert "devcheck_compare_groups_judged 0" in prom.read_text().splitlines()
    outliers = next(c for c in doc["checks"] if c["id"] == "compare.outliers")
    assert code == 1 and outliers["status"] == "fail" and outliers["summary"].startswith("nothing comparable: ")
    assert "alike" not in doc["verdict"] and "nothing comparable" in doc["verdict"]
    code, doc, _ = compare(str(tmp_path / "mixed"))  # outliers not asked to fail: said, as a warning
    assert next(c for c in doc["checks"] if c["id"] == "compare.outliers")["status"] == "warn"
    code, doc, _ = compare(*gate, str(write(tmp_path / "same", reports((1024, 1024, 1024)))))
    outliers = next(c for c in doc["checks"] if c["id"] == "compare.outliers")
    assert code == 0 and outliers["status"] == "ok" and any(g["judged"] for g in doc["data"]["groups"])
    assert "nothing comparable" not in doc["verdict"]


def sized(bench: dict, sizes: tuple[int, ...], slow: int | None = None) -> dict[str, str]:
    """Nodes cpu-0, cpu-1, ... of this machine's bench report, node i's matmul at sizes[i] (as an older check
    sized them by the speed it measured); node `slow` at half the rate."""
    texts = {}
    for i, n in enumerate(sizes):
        doc = json.loads(json.dumps(bench))
        doc["host"] = f"cpu-{i}"
        for r in doc["data"]["records"]:
            r["shape"] = [n, n, n]
            r["rate"] *= 0.5 if i == slow else 1 + 0.002 * i
        texts[f"cpu-{i}"] = json.dumps(doc)
    return texts


def test_a_node_measured_at_another_size_than_its_peers_is_named_not_passed(cpu_reports, tmp_path):
    """Issue 22: the slow node is the likeliest to have picked the smaller size, and left alone in its group
    it escaped judgement while its peers were judged alike. It is now named, and fails `--fail-on outlier`."""
    folder = write(tmp_path / "r", sized(cpu_reports["bench"], (1024, 1024, 1024, 512), slow=3))
    code, doc, _ = compare("--fail-on", "outlier", str(folder))
    other = [c for c in doc["checks"] if c["id"].startswith("compare.other_shape.")]
    assert code == 1 and [(c["id"], c["status"]) for c in other] == [("compare.other_shape.cpu-3", "fail")]
    assert "512x512x512" in other[0]["summary"] and "1024x1024x1024" in other[0]["summary"]
    assert "alike" not in doc["verdict"] and "cpu-3" in doc["verdict"]
    code, doc, _ = compare(
        "--fail-on", "outlier", str(write(tmp_path / "same", sized(cpu_reports["bench"], (1024,) * 4, slow=3)))
    )
    assert code == 1 and {r["host"] for r in doc["data"]["outliers"]} == {"cpu-3"}  # one size: judged, an outlier
    assert not any(c["id"].startswith("compare.other_shape.") for c in doc["checks"])


def test_a_folder_is_read_with_the_folders_inside_it(check_on_h100, tmp_path):
    """Ansible's `fetch` writes DEST/<host>/<path>/check.json: one folder per node, nested."""
    for host, text in fleets.fleet(check_on_h100, 4, kinds=()).items():
        inside = tmp_path / "fetched" / host / "var" / "tmp"
        inside.mkdir(parents=True)
        (inside / "check.json").write_text(text)
    code, doc, _ = compare(str(tmp_path / "fetched"))
    assert code == 0 and doc["data"]["nodes_compared"] == 4 and not doc["data"]["skipped"]
