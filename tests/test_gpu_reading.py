"""The typed reading of one GPU (devcheck/machine/probes/gpu_reading.py), filled by the real probe from
recordings: its label table is complete, and what NVML could not read says so in the reading and the
report alike."""

from dataclasses import fields
from pathlib import Path

import pynvml

from devcheck.machine.probes import gpu_reading, nvml
from devcheck.machine.probes.gpu_reading import LABELS, SHOWN, GpuReading, RemappedRows
from devcheck.machine.replay import seam
from devcheck.machine.replay.recording import Recording
from devcheck.report import Field, Status
from tests.recordings import GPU0, _replace, h100, nvml_error, variant

PUBLIC = Path(__file__).parent / "fixtures" / "recordings" / "public"


def read(recording: Recording, index: int = 0) -> GpuReading:
    with seam.replay(recording):
        gpu = nvml.read_driver().gpus[index]
        return gpu_reading.read(seam.nvml(), gpu, Field(index, "CUDA_VISIBLE_DEVICES"))


def read_attributes(reading: GpuReading) -> list[str]:
    return [f.name for f in fields(GpuReading) if getattr(reading, f.name) is not None]


def test_every_attribute_has_one_label_and_every_label_one_attribute():
    assert list(LABELS) == [f.name for f in fields(GpuReading)]
    assert len(set(LABELS.values())) == len(LABELS)


def test_every_attribute_read_appears_in_the_section_exactly_once():
    """A GPU in MIG mode (the A100 40GB dump) reads every attribute but `state`; a lost GPU its identity
    and `state`: each shows once, under its own label, with its source, status and note."""
    mig = read(Recording.load(PUBLIC / "a100-sxm4-40gb-mig.xml.json"))
    fell_off = {("nvmlDeviceGetTemperature", GPU0, 0): {"error": nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)}}
    lost = read(variant(h100(), "GPU 0 fell off the bus while it was read", nvml=fell_off))
    assert read_attributes(mig) == [a for a in LABELS if a != "state"]
    assert read_attributes(lost) == ["nvml_index", "cuda_index", "name", "uuid", "bus_id", "state"]
    for reading in (mig, lost):
        section = gpu_reading.section(reading)
        assert list(section.fields) == [LABELS[a] for a in read_attributes(reading)]
        for attr in read_attributes(reading):
            want, got = getattr(reading, attr), section.fields[LABELS[attr]]
            assert (got.source, got.status, got.note) == (want.source, want.status, want.note)
            assert attr in SHOWN or got.value == want.value  # SHOWN's: the next test
    assert mig.mig_instances.value == 2 and gpu_reading.section(mig).fields["MIG mode"].value == "on"
    assert (lost.state.value, lost.state.status) == ("lost", Status.FAIL)


def test_values_are_typed_in_the_reading_and_shown_as_before_in_the_report():
    reading = read(h100())
    assert reading.compute_capability.value == (9, 0)
    assert reading.ecc_mode.value is True and reading.persistence_mode.value is True
    assert reading.mig_mode.value is False and reading.mig_instances is None
    assert reading.remapped_rows.value == RemappedRows(0, 0, False, False)
    data = gpu_reading.section(reading).data()
    assert data["compute_capability"]["value"] == "9.0"
    assert (data["ecc_mode"]["value"], data["persistence_mode"]["value"], data["mig_mode"]["value"]) == (
        "on",
        "on",
        "off",
    )
    assert data["remapped_rows"]["value"] == {"correctable": 0, "uncorrectable": 0, "pending": False, "failed": False}


def test_a_field_nvml_could_not_read_is_an_error_in_the_reading_and_the_section():
    recording = h100(why="NVML's power reading fails (Unknown Error)")
    _replace(recording.nvml, "nvmlDeviceGetPowerUsage", [GPU0], {"error": nvml_error(pynvml.NVML_ERROR_UNKNOWN)})
    reading = read(recording)
    assert (reading.power_draw_w.value, reading.power_draw_w.status) == (None, Status.ERROR)
    assert reading.power_draw_w.note == "Unknown Error"
    assert reading.unreadable() == [("power draw W", reading.power_draw_w)]
    shown = gpu_reading.section(reading).data()["power_draw_w"]
    assert shown == {
        "value": None,
        "source": "NVML nvmlDeviceGetPowerUsage",
        "status": "error",
        "note": "Unknown Error",
    }
    assert read(h100()).unreadable() == []  # n/a (retired pages on an H100) is no error


# What the recorded H100's NVML answered, field by field, and the call each field names as its source.
H100_READ = {
    "nvml_index": (0, "NVML"),
    "cuda_index": (0, "CUDA_VISIBLE_DEVICES"),
    "name": ("NVIDIA H100 80GB HBM3", "NVML nvmlDeviceGetName"),
    "uuid": ("GPU-5e1f0c2a-0000-4000-8000-000000000001", "NVML nvmlDeviceGetUUID"),
    "bus_id": ("0000:00:06.0", "NVML nvmlDeviceGetPciInfo"),
    "brand": ("NVIDIA", "NVML nvmlDeviceGetBrand"),
    "compute_capability": ((9, 0), "NVML nvmlDeviceGetCudaComputeCapability"),
    "architecture": ("Hopper", "NVML nvmlDeviceGetArchitecture"),
    "vbios_version": ("96.00.DA.00.0C", "NVML nvmlDeviceGetVbiosVersion"),
    "memory_total_mib": (81559, "NVML nvmlDeviceGetMemoryInfo"),
    "memory_used_mib": (480, "NVML nvmlDeviceGetMemoryInfo"),
    "memory_free_mib": (81079, "NVML nvmlDeviceGetMemoryInfo"),
    "memory_bus_width_bits": (5120, "NVML nvmlDeviceGetMemoryBusWidth"),
    "utilization_percent": (0, "NVML nvmlDeviceGetUtilizationRates"),
    "temperature_c": (42, "NVML nvmlDeviceGetTemperature"),
    "slowdown_temperature_c": (89, "NVML nvmlDeviceGetTemperatureThreshold"),
    "power_draw_w": (75.8, "NVML nvmlDeviceGetPowerUsage"),
    "power_limit_w": (700.0, "NVML nvmlDeviceGetEnforcedPowerLimit"),
    "sm_clock_mhz": (345, "NVML nvmlDeviceGetClockInfo"),
    "sm_clock_max_mhz": (1980, "NVML nvmlDeviceGetMaxClockInfo"),
    "memory_clock_mhz": (2619, "NVML nvmlDeviceGetClockInfo"),
    "memory_clock_max_mhz": (2619, "NVML nvmlDeviceGetMaxClockInfo"),
    "pcie_generation": (5, "NVML nvmlDeviceGetCurrPcieLinkGeneration"),
    "pcie_generation_max": (5, "NVML nvmlDeviceGetMaxPcieLinkGeneration"),
    "pcie_width": (16, "NVML nvmlDeviceGetCurrPcieLinkWidth"),
    "pcie_width_max": (16, "NVML nvmlDeviceGetMaxPcieLinkWidth"),
    "ecc_mode": (True, "NVML nvmlDeviceGetEccMode"),
    "ecc_uncorrected_since_boot": (0, "NVML nvmlDeviceGetTotalEccErrors"),
    "retired_pages_pending": (None, "NVML nvmlDeviceGetRetiredPagesPendingStatus"),
    "remapped_rows": (RemappedRows(0, 0, False, False), "NVML nvmlDeviceGetRemappedRows"),
    "persistence_mode": (True, "NVML nvmlDeviceGetPersistenceMode"),
    "compute_mode": ("Default", "NVML nvmlDeviceGetComputeMode"),
    "mig_mode": (False, "NVML nvmlDeviceGetMigMode"),
    "compute_processes": (0, "NVML nvmlDeviceGetComputeRunningProcesses"),
    "clock_slowdowns": ([], "NVML nvmlDeviceGetCurrentClocksEventReasons"),
}


def test_the_recorded_h100_reads_as_its_nvml_answered_each_field_naming_its_call():
    """Every value a conversion makes from NVML's answer (MiB, W to 0.1, clocks by type, the PCIe link
    now and at most), and every source a person reads to find where a value came from."""
    reading = read(h100())
    got = {a: (getattr(reading, a).value, getattr(reading, a).source) for a in read_attributes(reading)}
    assert got == H100_READ
    assert [a for a in got if getattr(reading, a).status is not Status.OK] == ["retired_pages_pending"]
    assert reading.retired_pages_pending.note == "not supported on this GPU"
    section = gpu_reading.section(reading)
    assert (section.key, section.title, section.group) == ("gpu0", "GPU 0: NVIDIA H100 80GB HBM3", "gpus")


def test_ecc_off_and_mig_instances_say_why_in_their_notes():
    off = read(variant(h100(), "ECC off", nvml={("nvmlDeviceGetEccMode", GPU0): [0, 0]}))
    assert off.ecc_mode.value is False and off.ecc_uncorrected_since_boot.status is Status.NA
    assert off.ecc_uncorrected_since_boot.source == "NVML nvmlDeviceGetTotalEccErrors"
    assert off.ecc_uncorrected_since_boot.note == "ECC is off or not supported"
    mig = read(Recording.load(PUBLIC / "a100-sxm4-40gb-mig.xml.json")).mig_instances
    assert (mig.value, mig.source, mig.status) == (2, "NVML nvmlDeviceGetMigDeviceHandleByIndex", Status.OK)
    assert mig.note == "CUDA sees these MIG instances, not the whole GPU"


def test_a_lost_gpu_is_one_failed_check_that_says_which_and_keeps_its_identity():
    fell_off = {("nvmlDeviceGetTemperature", GPU0, 0): {"error": nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)}}
    lost = read(variant(h100(), "GPU 0 fell off the bus while it was read", nvml=fell_off))
    assert (lost.state.source, lost.state.note) == ("NVML", "")
    [check] = gpu_reading.findings(lost).checks
    assert (check.id, check.status) == ("gpu0.lost", Status.FAIL)
    assert check.summary == "GPU 0 (0000:00:06.0) is lost: it stopped answering the driver"
    assert check.detail == "usually Xid 79 'fallen off the bus' in `dmesg`"
    assert check.fix.startswith("sudo nvidia-smi -r -i 0 or reboot")
    assert (lost.name.source, lost.uuid.source, lost.uuid.value) == (
        "NVML nvmlDeviceGetName",
        "NVML nvmlDeviceGetUUID",
        "GPU-5e1f0c2a-0000-4000-8000-000000000001",
    )


def test_conversions_of_answers_the_h100_did_not_give():
    """A part-MiB memory size, a power limit in odd milliwatts, modes whose current and pending settings
    differ (the reading is of the current one), an architecture and a compute mode NVML added later, a
    retired page pending, a compute capability as NVML's two ints: each converted as written."""
    changes = {
        ("nvmlDeviceGetEnforcedPowerLimit", GPU0): 612_345,
        ("nvmlDeviceGetEccMode", GPU0): [1, 0],
        ("nvmlDeviceGetMigMode", GPU0): [1, 0],
        ("nvmlDeviceGetArchitecture", GPU0): 99,
        ("nvmlDeviceGetComputeMode", GPU0): 9,
        ("nvmlDeviceGetRetiredPagesPendingStatus", GPU0): 1,
        ("nvmlDeviceGetCudaComputeCapability", GPU0): [9, 0],
    }
    reading = read(variant(h100(), "answers no H100 gave", nvml=changes))
    assert reading.power_limit_w.value == 612.3
    assert reading.ecc_mode.value is True and reading.mig_mode.value is True
    assert reading.architecture.value == "unknown (99)" and reading.compute_mode.value == "9"
    assert reading.retired_pages_pending.value is True
    assert reading.compute_capability.value == (9, 0) and type(reading.compute_capability.value) is tuple


def test_a_gpu_nvml_gives_no_handle_is_one_failed_check_with_nvidia_smis_words():
    no_handle = {("nvmlDeviceGetHandleByIndex", 0): {"error": nvml_error(pynvml.NVML_ERROR_UNKNOWN)}}
    reading = read(variant(h100(), "no handle for GPU 0", nvml=no_handle))
    assert (reading.state.value, reading.state.status, reading.state.source) == ("unreachable", Status.FAIL, "NVML")
    [check] = gpu_reading.findings(reading).checks
    assert (
        check.id == "gpu0.unreachable"
        and check.summary == f"GPU 0: NVML cannot get a handle to it ({reading.state.note})"
    )
    assert check.detail == "nvidia-smi says 'Unable to determine the device handle for GPU <bus id>: Unknown Error'"
    assert check.fix == (
        "check `dmesg | grep NVRM` for Xid errors; reseat the card or reboot; in a container only: restart it"
    )
    assert gpu_reading.section(reading).title == "GPU 0: unknown"
