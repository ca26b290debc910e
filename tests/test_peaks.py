"""Peaks against NVIDIA's datasheets, one case per model and precision (tests/fixtures/gpu_specs.json,
written by scripts/gpu_specs_fixture.py from NVIDIA's datasheets and the public dumps in tests/fixtures/public).

Each model becomes a stand-in card: the recorded H100 with the model's own figures put where a real
card reports them (CUDA's properties: compute capability, SMs, rated boost clock, memory clock and
bus; NVML: name, brand, PCIe link, max clocks from the model's public `nvidia-smi -q` dump). devcheck
then derives every peak from those numbers and its per-architecture rates, never from a model table.
"""

import json
from pathlib import Path

import pynvml
import pytest

from devcheck.machine.model import facts, peaks
from devcheck.machine.replay import seam
from tests.recordings import GPU0, h100

SPECS = json.loads((Path(__file__).parent / "fixtures" / "gpu_specs.json").read_text())
PRECISIONS = {  # devcheck's matmul dtype (and TF32 on or off) -> the datasheet column
    ("float32", False): "fp32_tflops",
    ("float64", False): "fp64_tensor_tflops|fp64_tflops",  # the tensor-core rate where cuBLAS uses it
    ("float32", True): "tf32_tensor_tflops",
    ("float16", False): "fp16_tensor_tflops_fp32acc",  # CuPy's float16 matmul accumulates in FP32
    ("bfloat16", False): "bf16_tensor_tflops",
}
BRANDS = {"NVIDIA": "NVIDIA", "NVIDIA RTX": "NVIDIA_RTX", "GeForce": "GEFORCE", "Tesla": "TESLA", "Quadro": "QUADRO"}
# NVIDIA quotes Hopper's and Blackwell's dense FP16/BF16/TF32 tensor peaks at a lower tensor clock (1830
# MHz on the H100 SXM, not 1980; 1860 on the B200): devcheck's peaks are at that clock too (peaks.py).
# The H100 NVL's tensor figures alone imply a lower one still (about 1545 of its 1785 MHz, its notes):
# devcheck's peak there is an upper bound, 7% above.
LOWER_STILL = {
    ("H100 NVL (per GPU)", c) for c in ("tf32_tensor_tflops", "fp16_tensor_tflops_fp32acc", "bf16_tensor_tflops")
}


def datasheet(model: dict, column: str) -> float | None:
    return next((model[c] for c in column.split("|") if model.get(c) is not None), None)


def stand_in(model: dict):
    """The recorded H100, answering with this model's figures (synthetic: said in the recording)."""
    base = h100()
    props = next(c["result"] for c in base.cupy if c["fn"] == "cuda.runtime.getDeviceProperties")
    major, minor = (int(x) for x in model["compute_capability"].split("."))
    props = {k: v for k, v in props.items() if k != "singleToDoublePrecisionPerfRatio"}  # not in the datasheets
    if model.get("fp64_ratio"):  # an export part's cut FP64, as CUDA reports it (see the model's notes)
        props["singleToDoublePrecisionPerfRatio"] = model["fp64_ratio"]
    props |= {
        "name": {"__bytes__": model["nvidia_smi_name"]},
        "major": major,
        "minor": minor,
        "multiProcessorCount": model["sms"],
        "clockRate": model["boost_mhz"] * 1000,  # CUDA's clockRate: the rated boost (deviceQuery)
        "memoryClockRate": (model["max_memory_mhz"] or 0) * 1000,
        "memoryBusWidth": model["bus_width_bits"] or 0,
    }
    brand = getattr(pynvml, f"NVML_BRAND_{BRANDS.get(model['brand'] or 'NVIDIA', 'NVIDIA')}")
    from tests.recordings import variant

    return variant(
        base,
        f"{model['name']}: figures from tests/fixtures/gpu_specs.json and its public dump",
        cupy={
            ("cuda.runtime.getDeviceProperties", 0): props,
            ("Device.compute_capability", 0): f"{major}{minor}",
        },
        nvml={
            ("nvmlDeviceGetName", GPU0): model["nvidia_smi_name"],
            ("nvmlDeviceGetBrand", GPU0): brand,
            ("nvmlDeviceGetMaxClockInfo", GPU0, pynvml.NVML_CLOCK_SM): model["max_sm_mhz"] or model["boost_mhz"],
            ("nvmlDeviceGetMaxClockInfo", GPU0, pynvml.NVML_CLOCK_MEM): model["max_memory_mhz"] or 0,
            ("nvmlDeviceGetMemoryBusWidth", GPU0): model["bus_width_bits"] or 0,
            ("nvmlDeviceGetMaxPcieLinkGeneration", GPU0): model["pcie_gen"],
            ("nvmlDeviceGetMaxPcieLinkWidth", GPU0): model["pcie_lanes"],
        },
    )


def facts_of(model: dict, monkeypatch, tf32: bool) -> facts.DeviceFacts:
    monkeypatch.setenv("CUPY_TF32", "1" if tf32 else "0")
    with seam.replay(stand_in(model)):
        return facts.facts_for("cuda:0")


CASES = [
    pytest.param(model, dtype, tf32, column, id=f"{model['name']}-{column.split('|')[0]}")
    for model in SPECS
    if model["sms"]
    for (dtype, tf32), column in PRECISIONS.items()
    if datasheet(model, column) is not None
]


@pytest.mark.parametrize(("model", "dtype", "tf32", "column"), CASES)
def test_peak_within_3_percent_of_the_datasheet(model, dtype, tf32, column, monkeypatch):
    expected = datasheet(model, column) * 1e3  # GFLOP/s
    got = facts_of(model, monkeypatch, tf32).flops_peak(dtype)
    assert got.value is not None, got.basis
    # 3%, or the datasheet's own rounding where it gives a whole number: the H800's "1 TFLOPS" FP64 is 0.5-1.5
    rounding = 0.5 / datasheet(model, column) if float(datasheet(model, column)).is_integer() else 0
    if (model["name"], column) in LOWER_STILL:
        assert expected < got.value <= 1.08 * expected, got.basis
    else:
        assert got.value == pytest.approx(expected, rel=max(0.03, rounding)), got.basis


BANDWIDTH = [pytest.param(m, id=m["name"]) for m in SPECS if m["sms"] and m["bus_width_bits"] and m["max_memory_mhz"]]


@pytest.mark.parametrize("model", BANDWIDTH)
def test_memory_bandwidth_within_5_percent_of_the_datasheet(model, monkeypatch):
    got = facts_of(model, monkeypatch, False).bandwidth_peak
    assert got.value == pytest.approx(model["memory_bandwidth_gbs"], rel=0.05), got.basis


def test_every_model_with_figures_is_covered():
    covered = {p.values[0]["name"] for p in CASES}
    assert covered == {m["name"] for m in SPECS if m["sms"]}  # all but the A10G, whose SMs are unknown
    assert len(BANDWIDTH) >= 18


def test_an_unknown_architecture_gets_no_peak_and_says_why():
    unknown = peaks.GpuModel((5, 2), 16, 1000.0)
    assert peaks.gpu_flops_peak("float32", unknown).value is None
    assert "unknown compute capability 5.2" in peaks.gpu_flops_peak("float32", unknown).basis
    assert "no float16 tensor-core rate known for compute capability 6.1" in (
        peaks.gpu_flops_peak("float16", peaks.GpuModel((6, 1), 8, 1480.0)).basis
    )
    assert peaks.gpu_flops_peak("bfloat16", peaks.GpuModel((7, 0), 80, 1530.0)).value is None  # no BF16 on Volta


def test_the_cards_own_fp64_ratio_wins_over_the_architectures():
    """CUDA's singleToDoublePrecisionPerfRatio (2 on the recorded H100) is what the card says of itself."""
    sm_86 = peaks.GpuModel((8, 6), 84, 1800.0)
    assert peaks.gpu_flops_peak("float64", sm_86).value == pytest.approx(84 * 256 * 1.8 / 64)
    told = peaks.gpu_flops_peak("float64", peaks.GpuModel((8, 6), 84, 1800.0, fp64_ratio=32))
    assert told.value == pytest.approx(84 * 256 * 1.8 / 32) and "singleToDoublePrecisionPerfRatio" in told.basis


def test_the_peak_clock_is_cudas_rated_boost_not_nvmls_max(monkeypatch):
    """An RTX 4090 reports a 2520 MHz clockRate to CUDA and a 3105 MHz max SM clock to NVML (its
    public dump); the datasheet's 82.6 TFLOP/s is 128 x 256 x 2.52 GHz."""
    rtx4090 = next(m for m in SPECS if m["name"] == "GeForce RTX 4090")
    got = facts_of(rtx4090, monkeypatch, False).flops_peak("float32")
    assert got.value == pytest.approx(82_575, rel=1e-3) and "2520 MHz" in got.basis


def test_an_export_hopper_gets_its_cut_fp64_not_the_dmma_rate(monkeypatch):
    """The H800 is an H100 SXM with FP64 cut to 1 TFLOPS: CUDA's ratio says so, and the 67 TFLOPS DMMA rate
    of the full part must not hide it; the H100 SXM, whose ratio is the architecture's 2, keeps DMMA."""
    h800, h100_sxm = (next(m for m in SPECS if m["name"] == n) for n in ("H800 SXM5 80GB", "H100 SXM5 80GB"))
    cut = facts_of(h800, monkeypatch, False).flops_peak("float64")
    assert cut.value < 2_000 and "singleToDoublePrecisionPerfRatio" in cut.basis, cut.basis
    full = facts_of(h100_sxm, monkeypatch, False).flops_peak("float64")
    assert full.value == pytest.approx(66_908, rel=1e-3) and "DMMA" in full.basis
    told_2 = peaks.gpu_flops_peak("float64", peaks.GpuModel((9, 0), 132, 1980.0, fp64_ratio=2))
    assert told_2.value == pytest.approx(66_908, rel=1e-3)


@pytest.mark.parametrize(
    ("model", "nvml_brand", "half"),
    [
        ("GeForce RTX 4090", True, True),  # NVML says GeForce
        ("GeForce RTX 4090", False, True),  # NVML cannot say: CUDA's name "NVIDIA GeForce RTX 4090" does
        ("RTX 6000 Ada Generation", False, False),  # the same chip, not a GeForce: the full rate
    ],
)
def test_a_geforce_is_known_without_nvml(model, nvml_brand, half, monkeypatch):
    """GeForce cards run FP16 with FP32 accumulate, and TF32, at half the rate of the same chip elsewhere."""
    spec = next(m for m in SPECS if m["name"] == model)
    recording = stand_in(spec)
    if not nvml_brand:
        from tests.recordings import nvml_error, variant

        recording = variant(
            recording,
            "NVML cannot read the brand (NVML_ERROR_NOT_SUPPORTED)",
            nvml={("nvmlDeviceGetBrand", GPU0): {"error": nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)}},
        )
    monkeypatch.setenv("CUPY_TF32", "1")
    with seam.replay(recording):
        got = facts.facts_for("cuda:0").flops_peak("float32")
    per_sm = 256 if half else 512  # Ada's dense TF32 tensor FLOP/clock/SM: half its FP16 rate
    assert got.value == pytest.approx(spec["sms"] * per_sm * spec["boost_mhz"] * 1e-3), got.basis
