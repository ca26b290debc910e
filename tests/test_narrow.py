"""Issue 23, item 15: at 60, 80 and 120 columns, with stderr not a terminal (a pipe, a CI log), the text
loses no value: compare's checks came one character per line at 80 columns, its tables dropped median,
MAD and z, `grad --fast` dropped "rel tol", bench at 60 columns "rel err", env's CUDA table at 100 cut
"matmul rel err". Each command runs at each width with --json-file, and its text is read against its JSON.

What "a value appears in the text" means here, precisely:
- the text is stderr with every run of whitespace made one space (a table's last column and a record
  may wrap between words; never inside one), and so is each value;
- a value is written as the renderer writes it: `devcheck.render.values.show` (0.000123 is "1.23e-04",
  2596.0 is "2,596", None is "—"), and one longer than TABLE_LIMIT by the part a table keeps of it
  (its first 120 characters; the cell says how long it is and that --json shows all);
- it appears when it is a substring of the text.
The values are those the text is made from: the verdict; every check's id and summary, and its detail
and fix wherever the checks table shows them (a check not ok, skip or n/a, or one with a fix); every
section the text prints: each cell of a table (JSON: data.KEY, a list of flat records) and each field of
a group, its value and its note (data.KEY or data.gpus[i]: {name: {value, source, status, note}}); GPUs'
fields with --details (without it, the healthy GPUs' are in JSON only, as the caption says). Raw
measurements are not sections (data.records, check's data.stress): the tables show them in their
units (ms, GFLOP/s), and a number reading the same in a table and a record is a coincidence."""

import json
import re

import pytest

from devcheck.cli import app
from devcheck.machine.replay import seam
from devcheck.render.values import TABLE_LIMIT, show
from tests import fleet
from tests.cli import BENCH_ON_H100, runner
from tests.recordings import h100

WIDTHS = (60, 80, 120)
RAW = {"records", "stress", "skipped"}  # measurements and the plan's skipped cases: said in checks, not tables


def one_line(text: str) -> str:
    return " ".join(text.split())


def written(value) -> str:
    text = show(value)
    return one_line(text if len(text) <= TABLE_LIMIT else text[: TABLE_LIMIT - 40])


def fields(group: dict) -> bool:
    return bool(group) and all(isinstance(f, dict) and {"value", "source", "status"} <= set(f) for f in group.values())


def table(rows) -> bool:
    return isinstance(rows, list) and all(
        isinstance(r, dict) and all(not isinstance(v, dict | list) or not _nested(v) for v in r.values()) for r in rows
    )


def _nested(value) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return any(isinstance(v, dict | list) for v in items)


def expected(doc: dict) -> list[str]:
    """Every value the text is made from (see the module's docstring)."""
    values = [doc["verdict"]]
    for c in doc["checks"]:
        values += [c["id"], c["summary"]]
        if c["status"] not in ("ok", "skip", "n/a") or c.get("fix"):
            values += [c.get("detail", ""), c.get("fix", "")]
    values = [one_line(v) for v in values]
    for key, data in doc["data"].items():
        groups = data if key == "gpus" and isinstance(data, list) else [data]
        for group in groups:
            if isinstance(group, dict) and fields(group):
                for f in group.values():
                    values += [written(f["value"]) if f["value"] is not None or not f.get("note") else ""]
                    values += [one_line(f.get("note", ""))]
        if key not in RAW and table(data):
            values += [written(v) for row in data for v in row.values()]
    return [v for v in values if v]


def missing(doc: dict, text: str) -> list[str]:
    text = one_line(text)
    return sorted({v for v in expected(doc) if v not in text})


def run(tmp_path, monkeypatch, width: int, args: list[str], stdin: str | None = None) -> tuple[dict, str]:
    monkeypatch.setenv("COLUMNS", str(width))
    out = tmp_path / f"report-{width}.json"
    result = runner.invoke(app, [*args, "--json-file", str(out)], input=stdin)
    assert result.exit_code in (0, 1), result.output
    assert max(len(line) for line in result.stderr.splitlines()) > 0
    return json.loads(out.read_text()), result.stderr


COMMANDS = {
    "env": ["env", "--details"],
    "grad": ["grad", "--fast", "--ops", "add,matmul,tanh"],
}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("command", ["env", "grad"])
def test_every_value_appears_at_any_width(command, width, tmp_path, monkeypatch):
    with seam.replay(h100()):
        doc, text = run(tmp_path, monkeypatch, width, COMMANDS[command])
    assert missing(doc, text) == []


def test_every_value_of_bench_appears_at_80_columns(bench_on_h100):
    assert missing(bench_on_h100.doc, bench_on_h100.text) == []


@pytest.mark.slow  # a bench run per width; the suite's shared run is at 80 columns
@pytest.mark.parametrize("width", [w for w in WIDTHS if w != 80])
def test_every_value_of_bench_appears_at_any_width(width, tmp_path, monkeypatch):
    with seam.replay(h100()):
        doc, text = run(tmp_path, monkeypatch, width, BENCH_ON_H100)
    assert missing(doc, text) == []


@pytest.mark.slow  # a check run per width
@pytest.mark.parametrize("width", WIDTHS)
def test_every_value_of_check_appears_at_any_width(width, tmp_path, monkeypatch):
    with seam.replay(h100()):
        doc, text = run(tmp_path, monkeypatch, width, ["check", "--budget", "5s", "--details"])
    assert missing(doc, text) == []


@pytest.fixture(scope="module")
def fleet_jsonl(check_on_h100) -> str:
    """Three nodes of the replayed H100's `check --json`, one slow GPU and one other driver."""
    nodes = fleet.fleet(check_on_h100, 3, kinds=("slow_gemm", "driver"))
    return "".join(json.dumps(json.loads(text)) + "\n" for text in nodes.values())


@pytest.mark.parametrize("width", WIDTHS)
def test_every_value_of_compare_appears_at_any_width(width, fleet_jsonl, tmp_path, monkeypatch):
    """At 80 columns its checks came one character per line (about 280 lines for 3 nodes)."""
    doc, text = run(tmp_path, monkeypatch, width, ["compare", "-"], stdin=fleet_jsonl)
    assert missing(doc, text) == []
    assert len(text.splitlines()) < 200
    assert not re.search(r"^\s*\S\s*$", text, re.M)  # no line of one character


def test_a_table_is_whole_at_each_width_it_is_printed_at():
    """One table, printed at 120, 40 and 120 columns: a table, then records (the check's id alone is
    wider than the summary could be), then the same table again; a path wider than the console is kept
    whole, not cropped."""
    import io

    from rich.console import Console

    from devcheck.render.console import checks_table
    from devcheck.report import Check, Report, Status

    report = Report("x")
    path = "/opt/" + "very-long-folder/" * 4 + "libcuda.so"
    report.checks = [Check("a.long.check.id", Status.FAIL, f"cannot load {path}", detail="why", fix="do this")]
    table = checks_table(report)
    texts = []
    for width in (120, 40, 120):
        console = Console(width=width, file=io.StringIO(), color_system=None)
        console.print(table, crop=False)
        texts.append(console.file.getvalue())
    assert texts[0] == texts[2] and "summary" in texts[0] and "summary" not in texts[1]
    assert all(path in text and "fix: do this" in text for text in texts)
