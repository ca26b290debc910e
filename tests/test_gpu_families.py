"""`devcheck env` on a stand-in for each GPU family with a public `nvidia-smi -q` dump (issue 16).

Each stand-in (tests/fixtures/recordings/public/<dump>.json) is written by scripts/recording_from_smi.py
from one dump in tests/fixtures/public/ (sources in SOURCES.md there): it answers only what the dump
shows. The table below was read from the dumps themselves, line by line, not from the parser's output:
what nvidia-smi printed is what devcheck must say.
"""

import re
from pathlib import Path

import pynvml
import pytest

from devcheck.commands.env import collect
from devcheck.machine.probes.nvml import Reader
from devcheck.machine.replay import seam
from devcheck.machine.replay.recording import Handle, Recording
from devcheck.report import Status

FOLDER = Path(__file__).parent / "fixtures" / "recordings" / "public"
DUMPS = Path(__file__).parent / "fixtures" / "public"
NA = "n/a"  # the dump says N/A (or Not Supported): NVML answers NotSupported, devcheck shows n/a
ABSENT = "absent"  # the dump has no such line: the stand-in has no answer

# Every replay warns that it is one (machine.replay); no dump shows CuPy, so the stand-ins have none
# and devcheck warns that the GPU cannot be used from it (cupy.installed). Nothing else in any dump
# implies a warning: idle PCIe links below their maximum, a software power cap, ECC or MIG not
# supported, a GH200's x1 link, remapped rows that succeeded (GH200: 1 uncorrectable, none pending,
# no failure) are all normal.
ALWAYS = {("machine.replay", "warn"), ("cupy.installed", "warn")}
HOST = ("python.", "cpu.", "blas.", "openmp.", "numpy.", "toolkit.", "envvar.")  # this machine, not the card

# dump: name, brand, architecture, (PCIe gen, gen max, width, width max), MIG, ECC, power limit W
CARDS = {
    "a10.txt": ("NVIDIA A10", "NVIDIA", "Ampere", (1, 4, 16, 16), NA, "on", 150.0),
    "a100-sxm4-40gb-mig.xml": ("NVIDIA A100-SXM4-40GB", "NVIDIA", "Ampere", (4, 4, 16, 16), "on", "on", 400.0),
    "a100-sxm4-80gb-mig.xml": ("NVIDIA A100-SXM4-80GB", "NVIDIA", "Ampere", (4, 4, 16, 16), "on", "on", 500.0),
    "a100-sxm4-80gb.txt": ("NVIDIA A100-SXM4-80GB", "NVIDIA", "Ampere", (4, 4, 16, 16), "off", "on", 500.0),
    "a10g.xml": ("NVIDIA A10G", "NVIDIA", "Ampere", (1, 4, 8, 16), NA, "on", 300.0),
    "a40.txt": ("NVIDIA A40", "NVIDIA", "Ampere", (1, 4, 16, 16), NA, "on", 300.0),
    "geforce-gtx680.txt": ("NVIDIA GeForce GTX 680", "GeForce", ABSENT, (NA, NA, NA, NA), NA, NA, NA),
    "geforce-rtx2080-windows.xml": ("NVIDIA GeForce RTX 2080", "GeForce", "Turing", (3, 3, 8, 16), NA, NA, 275.0),
    "geforce-rtx3060.xml": ("NVIDIA GeForce RTX 3060", "GeForce", "Ampere", (1, 4, 16, 16), NA, NA, 170.0),
    "geforce-rtx3090.xml": ("NVIDIA GeForce RTX 3090", "GeForce", "Ampere", (1, 4, 16, 16), NA, NA, 200.0),
    "geforce-rtx4090.txt": ("NVIDIA GeForce RTX 4090", "GeForce", "Ada Lovelace", (1, 4, 16, 16), NA, "off", 450.0),
    "geforce-rtx4090.xml": ("NVIDIA GeForce RTX 4090", "GeForce", "Ada Lovelace", (1, 3, 16, 16), NA, "off", 450.0),
    "geforce-rtx5090.txt": ("NVIDIA GeForce RTX 5090", "GeForce", "Blackwell", (1, 5, 8, 16), NA, NA, 575.0),
    "gh200-480gb.txt": ("NVIDIA GH200 480GB", "NVIDIA", "Hopper", (4, 4, 1, 1), "off", "on", 700.0),
    "h100-nvl.txt": ("NVIDIA H100 NVL", "NVIDIA", "Hopper", (5, 5, 16, 16), "off", "on", 310.0),
    "h100-sxm-80gb-hbm3.txt": ("NVIDIA H100 80GB HBM3", "NVIDIA", "Hopper", (5, 5, 16, 16), "off", "on", 700.0),
    "h200.txt": ("NVIDIA H200", "NVIDIA", "Hopper", (5, 5, 16, 16), "off", "on", 700.0),
    "l4.txt": ("NVIDIA L4", "NVIDIA", "Ada Lovelace", (1, 4, 8, 16), NA, "on", 72.0),
    "l40s.txt": ("NVIDIA L40S", "NVIDIA", "Ada Lovelace", (1, 4, 16, 16), NA, "on", 350.0),
    "quadro-p2000.xml": ("Quadro P2000", "Quadro", "Pascal", (1, 3, 8, 16), NA, NA, 75.0),
    "rtx-6000-ada.txt": (
        "NVIDIA RTX 6000 Ada Generation",
        "NVIDIA RTX",
        "Ada Lovelace",
        (1, 4, 16, 16),
        NA,
        "off",
        300.0,
    ),
    "rtx-a6000.txt": ("NVIDIA RTX A6000", "NVIDIA RTX", "Ampere", (1, 4, 16, 16), NA, "on", 300.0),
    "rtx-ada-4000-sff.xml": (
        "NVIDIA RTX 4000 SFF Ada Generation",
        "NVIDIA RTX",
        "Ada Lovelace",
        (1, 4, 16, 16),
        NA,
        "off",
        70.0,
    ),
    "t4.xml": ("Tesla T4", "NVIDIA", "Turing", (3, 3, 8, 16), NA, "on", 70.0),  # brand NVIDIA, not Tesla
    "tesla-p100-pcie.xml": ("Tesla P100-PCIE-16GB", "Tesla", "Pascal", (3, 3, 16, 16), NA, "on", 250.0),
    "v100-sxm2-16gb.txt": ("Tesla V100-SXM2-16GB", "Tesla", "Volta", (3, 3, 16, 16), NA, "on", 300.0),
}
PCIE = ("pcie_generation", "pcie_generation_max", "pcie_width", "pcie_width_max")


def stand_in(dump: str) -> Recording:
    return Recording.load(FOLDER / f"{dump}.json")


def env(dump: str):
    with seam.replay(stand_in(dump)):
        return collect(environ={})


def shown(field: dict):
    """A field as the table writes it: its value, n/a, or absent (not in the recording)."""
    if field["status"] == "ok":
        return field["value"]
    if field["status"] == "n/a":
        return NA
    assert field["status"] == "error" and "not in the recording" in field["note"], field
    return ABSENT


def test_every_stand_in_has_a_row_and_every_dump_a_stand_in():
    assert sorted(p.name.removesuffix(".json") for p in FOLDER.glob("*.json")) == sorted(CARDS)
    assert sorted(p.name for p in DUMPS.iterdir() if p.suffix in (".txt", ".xml")) == sorted(CARDS)


@pytest.mark.parametrize("dump", sorted(CARDS))
def test_env_says_what_the_dump_says(dump):
    name, brand, architecture, pcie, mig, ecc, power = CARDS[dump]
    report = env(dump)
    gpus = report.to_dict()["data"]["gpus"]
    assert len(gpus) == 1
    g = gpus[0]
    assert g["name"]["value"] == name
    assert shown(g["brand"]) == brand
    assert shown(g["architecture"]) == architecture
    assert tuple(shown(g[k]) for k in PCIE) == pcie
    assert shown(g["mig_mode"]) == mig
    assert shown(g["ecc_mode"]) == ecc
    assert shown(g["power_limit_w"]) == power
    assert re.fullmatch(r"[0-9A-Fa-f]{2}(\.[0-9A-Fa-f]{2}){4}", g["vbios_version"]["value"])  # as the dump prints it
    problems = {
        (c.id, c.status.value) for c in report.checks if c.status is not Status.OK and not c.id.startswith(HOST)
    }
    assert problems == ALWAYS, f"{dump}: {[(c.id, c.summary) for c in report.checks if c.status is not Status.OK]}"
    assert report.check("gpu0.health").status is Status.OK
    assert report.check("nvml.driver").status is Status.OK


def test_the_stand_ins_say_where_they_come_from():
    for dump in CARDS:
        recording = stand_in(dump)
        assert recording.synthetic.startswith(f"built from the public dump {dump} (https://github.com/")
        assert recording.cupy is None and set(recording.packages) == {"nvidia-ml-py"}


# --- the quirks, one by one ------------------------------------------------------------------------


def answer(recording: Recording, fn: str) -> dict:
    return next(c for c in recording.nvml if c["fn"] == fn)


def test_v100_unknown_error_for_the_host_pcie_maximum_is_no_problem():
    """The dump: PCIe Max 3, Device Max 3, Host Max "Unknown Error". devcheck reads NVML's max (3), which
    already takes the host into account; nvidia-smi's host maximum is no NVML call devcheck makes."""
    recording = stand_in("v100-sxm2-16gb.txt")
    assert answer(recording, "nvmlDeviceGetMaxPcieLinkGeneration")["result"] == 3
    assert not [c for c in recording.nvml if c.get("error", {}).get("value") == pynvml.NVML_ERROR_UNKNOWN]
    g = env("v100-sxm2-16gb.txt").to_dict()["data"]["gpus"][0]
    assert (g["pcie_generation"]["value"], g["pcie_generation_max"]["value"]) == (3, 3)


def test_gh200_x1_link_is_reported_as_it_is_without_a_warning():
    report = env("gh200-480gb.txt")
    g = report.to_dict()["data"]["gpus"][0]
    assert (g["pcie_width"]["value"], g["pcie_width_max"]["value"]) == (1, 1)
    assert g["remapped_rows"]["value"] == {"correctable": 0, "uncorrectable": 1, "pending": False, "failed": False}
    assert report.check("gpu0.memory") is None


def test_gtx680_without_an_architecture_line_is_no_warning():
    """Kepler on driver 470: no "Product Architecture" line, PCIe, power and max clocks N/A."""
    report = env("geforce-gtx680.txt")
    g = report.to_dict()["data"]["gpus"][0]
    assert "nvmlDeviceGetArchitecture" not in {c["fn"] for c in stand_in("geforce-gtx680.txt").nvml}
    assert g["architecture"]["status"] == "error"  # the stand-in does not know; devcheck does not guess
    assert g["sm_clock_max_mhz"]["status"] == "n/a" and g["power_draw_w"]["status"] == "n/a"
    assert g["clock_slowdowns"]["status"] == "n/a"  # "Clocks Throttle Reasons : N/A"
    assert report.ok


@pytest.mark.parametrize("dump", ["rtx-ada-4000-sff.xml", "geforce-rtx3060.xml", "geforce-rtx5090.txt"])
def test_drivers_570_and_later(dump):
    """570+ drivers: power as "Average Power Draw", and some fields "Requested functionality has been
    deprecated" (NVML_ERROR_DEPRECATED), which devcheck shows as n/a, never as an error."""
    recording = stand_in(dump)
    assert answer(recording, "nvmlDeviceGetPowerUsage")["result"] > 0
    report = env(dump)
    assert report.to_dict()["data"]["gpus"][0]["power_draw_w"]["status"] == "ok"
    deprecated = [c for c in recording.nvml if c.get("error", {}).get("value") == pynvml.NVML_ERROR_DEPRECATED]
    with seam.replay(recording):
        read = Reader(seam.nvml())
        for call in deprecated:
            args = [Handle(a["__handle__"]) if isinstance(a, dict) else a for a in call["args"]]
            field = read(call["fn"], *args)
            assert field.status is Status.NA and "deprecated" in field.note


def test_the_v13_dump_answers_deprecated_for_display_mode_and_applications_clocks():
    recording = stand_in("rtx-ada-4000-sff.xml")
    deprecated = {c["fn"] for c in recording.nvml if c.get("error", {}).get("value") == pynvml.NVML_ERROR_DEPRECATED}
    assert deprecated == {
        "nvmlDeviceGetDisplayMode",
        "nvmlDeviceGetApplicationsClock",
        "nvmlDeviceGetDefaultApplicationsClock",
    }
    assert (
        answer(recording, "nvmlDeviceGetDisplayMode")["error"]["str"] == "Requested functionality has been deprecated"
    )


def test_mig_stand_ins_list_their_mig_devices_and_count_them():
    """The dumps list 4 (80 GB) and 2 (40 GB) MIG devices; NVML's maximum MIG device count is not in a
    dump, so the stand-ins take the A100's 7 from NVIDIA's MIG user guide (said in `synthetic`), and
    answer NotFound for the slots the dump does not list, as NVML does."""
    for dump, found in (("a100-sxm4-80gb-mig.xml", 4), ("a100-sxm4-40gb-mig.xml", 2)):
        recording = stand_in(dump)
        handles = [c for c in recording.nvml if c["fn"] == "nvmlDeviceGetMigDeviceHandleByIndex"]
        assert len([h for h in handles if "result" in h]) == found
        assert {h["error"]["type"] for h in handles if "error" in h} == {"NVMLError_NotFound"}
        assert "7 MIG slots from its Supported GPUs table" in recording.synthetic
        g = env(dump).to_dict()["data"]["gpus"][0]
        assert g["mig_mode"]["value"] == "on" and g["mig_instances"]["value"] == found
        assert g["utilization_percent"]["status"] == "n/a"  # utilization is N/A under MIG


def test_throttle_reasons_of_older_drivers_are_read():
    """Drivers before 535 print "Clocks Throttle Reasons"; devcheck falls back to that NVML call."""
    recording = stand_in("t4.xml")
    assert "nvmlDeviceGetCurrentClocksEventReasons" not in {c["fn"] for c in recording.nvml}
    g = env("t4.xml").to_dict()["data"]["gpus"][0]
    assert g["clock_slowdowns"] == {
        "value": [],
        "source": "NVML nvmlDeviceGetCurrentClocksThrottleReasons",
        "status": "ok",
    }
    assert g["compute_processes"]["value"] == 1  # one "C" process (python); Xorg is "G"
