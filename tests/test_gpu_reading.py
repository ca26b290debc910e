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
