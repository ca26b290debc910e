"""`devcheck env` on a node of GPUs: one row per GPU first, then the full table of each GPU that has a
problem (of every GPU with --details); the JSON is the same whatever the table shows.

The nodes are the recorded H100 copied n times (tests/recordings.py `n_gpus`), variants of it with the
health problems tests/test_env.py checks one by one, and the public single-GPU dumps."""

import io
import json
import re
from pathlib import Path

import pynvml
import pytest
from rich.console import Console

from devcheck.cli import app
from devcheck.commands.check.health import gate
from devcheck.commands.check.thresholds import Thresholds
from devcheck.commands.env import collect
from devcheck.machine.replay import seam
from devcheck.machine.replay.recording import Handle, Recording
from devcheck.render.glance import glance_table, gpu_of, gpu_rows, shown_sections
from devcheck.render.text import to_markdown
from tests.cli import runner
from tests.recordings import h100, load, n_gpus, nvml_error, two_gpus, variant

PUBLIC = sorted((Path(__file__).parent / "fixtures" / "recordings" / "public").glob("*.json"))
ROW = re.compile(r"^\s*(\d+)\s\s")  # a table line that starts a GPU's row: its index, then the next column
ECC_ON_5 = ("nvmlDeviceGetTotalEccErrors", Handle("gpu5"), 1, 0)  # uncorrected, volatile: as test_env's
SLOW_ON_2 = ("nvmlDeviceGetCurrentClocksEventReasons", Handle("gpu2"))


def faulty(n=8):
    """n recorded H100s; GPU 5 has 4 uncorrected ECC errors, GPU 2 a hardware thermal slowdown."""
    return variant(
        n_gpus(h100(), n),
        "GPU 5: 4 uncorrected ECC errors; GPU 2: hardware thermal slowdown",
        nvml={ECC_ON_5: 4, SLOW_ON_2: 0x40},
    )


def report_of(recording, environ=None):
    with seam.replay(recording):
        return collect(environ=environ or {})


def table_text(report, width, details=False):
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(glance_table(report, details))
    return console.file.getvalue()


def rows(text):
    """{index: the cells of its row's first line}."""
    found = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            found[int(match.group(1))] = re.split(r"\s{2,}", line.strip())
    return found


def invoke(recording, *args):
    with seam.replay(recording):
        return runner.invoke(app, ["env", *args])


# --- the table ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 8])
def test_the_gpus_come_first_one_row_each(n):
    result = invoke(n_gpus(h100(), n))
    text = result.stderr
    assert result.exit_code == 0, text
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{n} GPUs: NVIDIA H100 80GB HBM3"))
    assert lines[0].startswith("GPU compute: ready") and all("field" not in line for line in lines[:start])
    assert start < text.splitlines().index(next(x for x in lines if x.startswith("Python")))
    found = rows("\n".join(lines[start : start + 4 + n]))
    # the recorded H100's own values (tests/fixtures/recordings/h100-sxm.json), in every copy
    assert found == {
        i: [str(i), "480 / 81559", "0", "42", "75.8 / 700", "345", "gen5 x16", "0 / 0", "ok"] for i in range(n)
    }


@pytest.mark.parametrize("n", [1, 2, 8])
def test_healthy_gpus_show_no_table_of_fields_unless_asked(n):
    node = n_gpus(h100(), n)
    short, full = invoke(node).stderr, invoke(node, "--details").stderr
    assert "GPU 0: NVIDIA H100 80GB HBM3" not in short and "VBIOS version" not in short
    assert "every field of the GPUs that are ok: --details (or --json)" in short
    assert all(f"GPU {i}: NVIDIA H100 80GB HBM3" in full for i in range(n)) and "--details (or" not in full
    assert len(short.splitlines()) < len(full.splitlines()) - 30 * n


def test_a_faulty_gpu_says_so_in_its_row_and_shows_its_fields():
    result = invoke(faulty())
    text = result.stderr
    assert result.exit_code == 1
    found = rows(text[: text.index("Python")])
    assert found[5][-1] == "FAIL: 4 uncorrected ECC errors since boot" and found[5][-2] == "4 / 0"
    assert found[2][-1] == "warn: slowed down: hardware thermal slowdown"
    assert {i for i, cells in found.items() if cells[-1] == "ok"} == {0, 1, 3, 4, 6, 7}
    # the full tables of GPUs 2 and 5 only, where they always were
    assert re.findall(r"^GPU (\d): NVIDIA H100 80GB HBM3", text, re.M) == ["2", "5"]
    assert "ECC uncorrected errors (since" in text and "hardware thermal slowdown" in text


def test_the_verdict_is_the_worst_of_that_gpus_checks_and_counts_the_rest():
    both = variant(
        faulty(), "and GPU 5 slowed down too", nvml={("nvmlDeviceGetCurrentClocksEventReasons", Handle("gpu5")): 0x40}
    )
    row = gpu_rows(report_of(both))[5]
    assert [c.id for c in row.problems] == ["gpu5.ecc", "gpu5.clocks"]
    assert row.verdict == "FAIL: 4 uncorrected ECC errors since boot (+1 more)"


def test_gpu1s_checks_are_not_gpu10s():
    """A check belongs to a GPU by its id's tag: gpu1 is not a prefix of gpu10.ecc."""
    node = variant(
        n_gpus(h100(), 11), "GPU 10: ECC errors", nvml={("nvmlDeviceGetTotalEccErrors", Handle("gpu10"), 1, 0): 4}
    )
    verdicts = {r.index: r.verdict for r in gpu_rows(report_of(node))}
    assert verdicts[1] == "ok" and verdicts[10].startswith("FAIL: 4 uncorrected")
    assert sorted(verdicts) == list(range(11))


def test_checks_that_judge_a_gpu_by_its_tag():
    assert [gpu_of(i) for i in ("gpu3.ecc", "check.gpu3.pcie", "gpu10.ecc", "gpu.required")] == [
        "gpu3",
        "gpu3",
        "gpu10",
        None,
    ]
    assert gpu_of("check.cuda:0.under_load") is None and gpu_of("gpu3") is None


def test_checks_own_gpu_checks_count_in_the_row():
    """`check` judges more of each GPU than env (persistence mode): a GPU with persistence off is not ok there."""
    off = variant(
        two_gpus(h100()), "persistence mode off on GPU 1", nvml={("nvmlDeviceGetPersistenceMode", Handle("gpu1")): 0}
    )
    report = report_of(off)
    assert [r.verdict for r in gpu_rows(report)] == ["ok", "ok"]  # env does not judge persistence
    with seam.replay(off):
        report = collect(environ={}, gate=gate(Thresholds(), strict=False))
    assert gpu_rows(report)[0].verdict == "ok"
    assert gpu_rows(report)[1].verdict.startswith("warn: persistence mode is off")
    assert [s.key for s in shown_sections(report, details=False) if s.group == "gpus"] == ["gpu1"]


def test_a_lost_gpu_and_a_crashed_probe_still_have_their_rows():
    broken = variant(
        n_gpus(h100(), 3),
        "GPU 1 answers GpuIsLost (Xid 79); GPU 2's memory info lacks its fields",
        nvml={
            ("nvmlDeviceGetHandleByIndex", 1): {"error": nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)},
            ("nvmlDeviceGetMemoryInfo", Handle("gpu2")): 42,
        },
        cupy={("cuda.runtime.getDeviceCount",): 1},
    )
    found = {r.index: r for r in gpu_rows(report_of(broken))}
    assert found[1].verdict.startswith("FAIL: lost: it stopped answering the driver")
    assert found[2].verdict.startswith("ERROR: the gpu2 probe crashed: AttributeError") and not found[2].fields
    text = table_text(report_of(broken), 120)
    assert rows(text)[1][1:9] == ["—"] * 8 and rows(text)[0][-1] == "ok"


def test_a_mixed_node_names_each_gpu():
    mixed = variant(
        two_gpus(h100()),
        "the second GPU is another model",
        nvml={("nvmlDeviceGetName", Handle("gpu1")): "NVIDIA H100 PCIe"},
    )
    text = table_text(report_of(mixed), 120)
    assert text.splitlines()[0].strip() == "2 GPUs"
    assert rows(text)[0][1] == "NVIDIA H100 80GB HBM3" and rows(text)[1][1] == "NVIDIA H100 PCIe"


def test_no_driver_no_table():
    report = report_of(load("no-driver"))
    assert glance_table(report) is None and gpu_rows(report) == []
    assert "GPU:" not in invoke(load("no-driver")).stderr and "GPUs:" not in invoke(load("no-driver")).stderr


# --- narrow terminals and pipes -------------------------------------------------------------------


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("node", ["healthy", "faulty", "mixed"])
def test_no_value_is_cut_on_80_or_120_columns(width, node):
    recording = {
        "healthy": n_gpus(h100(), 8),
        "faulty": faulty(),
        "mixed": variant(
            faulty(), "GPU 3 is another model", nvml={("nvmlDeviceGetName", Handle("gpu3")): "NVIDIA H100 PCIe"}
        ),
    }[node]
    text = table_text(report_of(recording), width)
    assert max(len(line) for line in text.splitlines()) <= width
    found = rows(text)
    assert sorted(found) == list(range(8))
    for cells in found.values():
        assert "480 / 81559" in cells and "42" in cells and "75.8 / 700" in cells and "gen5 x16" in cells


@pytest.mark.parametrize("path", PUBLIC, ids=lambda p: p.name.removesuffix(".json"))
def test_every_public_card_reads_whole_on_80_columns(path):
    """The row says what the card's JSON says: memory used / total, temperature, power, SM clock."""
    report = report_of(Recording.load(path))
    gpu = report.to_dict()["data"]["gpus"][0]
    value = {key: gpu[key]["value"] for key in gpu}
    cells = rows(table_text(report, 80))[0]
    memory = "—" if value["memory_used_mib"] is None else f"{value['memory_used_mib']} / {value['memory_total_mib']}"
    assert cells[1] == memory
    shown = " ".join(cells)
    for key in ("temperature_c", "sm_clock_mhz"):
        assert value[key] is None or str(value[key]) in cells
    assert value["power_limit_w"] is None or f"{value['power_limit_w']:g}" in shown


# --- the JSON and Markdown keep everything --------------------------------------------------------


def test_json_is_the_same_with_or_without_details():
    node = faulty()
    plain, detailed = (json.loads(invoke(node, "--json", *extra).stdout) for extra in ((), ("--details",)))
    for doc in (plain, detailed):
        doc.pop("run_id")
        doc["data"]["cpu"].pop("ram_available_gib")  # read live: the two runs may differ
    assert plain == detailed
    gpus = plain["data"]["gpus"]
    assert len(gpus) == 8 and all(g.keys() == gpus[0].keys() for g in gpus)
    assert {"vbios_version", "remapped_rows", "clock_slowdowns", "uuid"} <= gpus[0].keys()  # an ok GPU's too


def test_markdown_keeps_every_gpus_fields():
    text = to_markdown(report_of(n_gpus(h100(), 8)))
    assert all(f"### GPU {i}: NVIDIA H100 80GB HBM3" in text for i in range(8))


def test_check_takes_details_too():
    assert "--details" in runner.invoke(app, ["check", "--help"]).stdout
