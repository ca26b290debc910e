"""Every entry of the peak tables, each against its published figure written out here (not read back
from devcheck's tables): PCIe lane rates per generation, FP32 lanes per SM per architecture
(cuda-samples' _ConvertSMVer2Cores), FP64 ratios and DMMA rates, FP16 tensor rates and the GeForce
half-rate rule, the CPU's FLOP per cycle per vector ISA. One card of 100 SMs at 1000 MHz makes each
peak 0.1 x its per-SM-per-clock figure in GFLOP/s."""

import pytest

from devcheck.machine.model import peaks

SMS, MHZ = 100, 1000.0


def card(cc, geforce=False, fp64_ratio=None):
    return peaks.GpuModel(cc, SMS, MHZ, geforce=geforce, fp64_ratio=fp64_ratio)


def gflops(per_sm_per_clock):
    return SMS * per_sm_per_clock * MHZ * 1e-3


def flops(dtype, gpu, tf32=False):
    """The peak, whose unit is always GFLOP/s, with a value or not."""
    peak = peaks.gpu_flops_peak(dtype, gpu, tf32=tf32)
    assert peak.unit == "GFLOP/s" and peak.basis, peak
    return peak


def exactly(value):
    return pytest.approx(value, rel=1e-12)


# GB/s per lane after line encoding: 2.5/5 GT/s at 8b/10b, 8/16/32 GT/s at 128b/130b, 64 GT/s FLIT (PCI-SIG).
PCIE = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}


@pytest.mark.parametrize("generation", sorted(PCIE))
@pytest.mark.parametrize("width", [1, 8, 16])
def test_every_pcie_generation(generation, width):
    peak = peaks.pcie_peak(generation, width)
    assert peak.value == exactly(PCIE[generation] * width) and peak.unit == "GB/s"
    assert peak.basis == f"PCIe gen {generation} x{width}: {PCIE[generation]} GB/s per lane"


@pytest.mark.parametrize(("generation", "width"), [(None, 16), (3, None), (0, 16), (3, 0), (7, 16)])
def test_an_unreported_or_unknown_pcie_link_has_no_peak(generation, width):
    peak = peaks.pcie_peak(generation, width)
    assert (peak.value, peak.unit, peak.basis) == (None, "GB/s", "PCIe generation or width not reported (NVML)")


FP32_LANES = {
    (6, 0): 64, (6, 1): 128, (6, 2): 128, (7, 0): 64, (7, 2): 64, (7, 5): 64, (8, 0): 64, (8, 6): 128,
    (8, 7): 128, (8, 9): 128, (9, 0): 128, (10, 0): 128, (10, 1): 128, (10, 3): 128, (11, 0): 128,
    (12, 0): 128, (12, 1): 128,
}  # fmt: skip


@pytest.mark.parametrize("cc", sorted(FP32_LANES))
def test_fp32_lanes_of_every_architecture(cc):
    peak = flops("float32", card(cc))
    assert peak.value == exactly(gflops(FP32_LANES[cc] * 2))
    assert peak.basis == f"100 SMs x 1000 MHz x {FP32_LANES[cc]} FP32 lanes x 2 (FMA)"


FP64_RATIO = {(6, 0): 2, (7, 0): 2, (10, 0): 2, (6, 1): 32, (7, 5): 32, (8, 6): 64, (8, 9): 64, (12, 0): 64}
DMMA = {(8, 0): 128, (9, 0): 256}  # A100 19.5, H100 SXM 67 TFLOP/s


@pytest.mark.parametrize("cc", sorted(FP64_RATIO))
def test_fp64_ratio_of_every_architecture(cc):
    peak = flops("float64", card(cc))
    assert peak.value == exactly(gflops(FP32_LANES[cc] * 2 / FP64_RATIO[cc]))
    lanes, ratio = FP32_LANES[cc], FP64_RATIO[cc]
    assert peak.basis == f"100 SMs x 1000 MHz x {lanes} FP32 lanes x 2 / {ratio} (compute capability {cc[0]}.{cc[1]})"


@pytest.mark.parametrize("cc", sorted(DMMA))
def test_fp64_on_the_dmma_tensor_cores(cc):
    """A100 and H100 run DGEMM on FP64 tensor cores, whatever ratio the card reports."""
    for gpu in (card(cc), card(cc, fp64_ratio=2)):
        peak = flops("float64", gpu)
        assert peak.value == exactly(gflops(DMMA[cc]))
        assert (
            peak.basis
            == f"100 SMs x 1000 MHz x {DMMA[cc]} dense FP64 tensor-core FLOP/clock/SM (DMMA, used by cuBLAS DGEMM)"
        )


def test_tf32_is_off_unless_asked():
    assert peaks.gpu_flops_peak("float32", card((9, 0))).value == exactly(gflops(128 * 2))


def test_an_architecture_with_no_fp64_ratio_has_no_fp64_peak():
    peak = flops("float64", card((8, 7)))
    assert peak.value is None and peak.basis == "no FP64 rate known for compute capability 8.7"
    told = flops("float64", card((8, 7), fp64_ratio=64))
    assert told.value == exactly(gflops(128 * 2 / 64))
    assert told.basis == "100 SMs x 1000 MHz x 128 FP32 lanes x 2 / 64 (CUDA's singleToDoublePrecisionPerfRatio)"


def test_no_peak_for_a_dtype_with_no_model():
    assert flops("int8", card((9, 0))).value is None
    assert flops("int8", card((9, 0))).basis == "no peak model for int8"
    unknown = flops("float32", card((5, 2)))
    assert unknown.basis == "unknown compute capability 5.2: no FP32 lanes per SM known"


TENSOR_FP16 = {(7, 0): 1024, (7, 5): 1024, (8, 0): 2048, (8, 6): 1024, (8, 9): 1024, (9, 0): 4096, (10, 0): 8192}
TENSOR_FP16 |= {(12, 0): 1024}
GEFORCE_HALF = {(7, 5), (8, 6), (8, 9), (12, 0)}  # RTX 20, 30, 40 and 50 series: FP32 accumulate at half rate
# NVIDIA rates Hopper's and Blackwell's tensor peaks at a tensor clock below the boost clock (H100 SXM
# 1830 of 1980 MHz; B200 1860 of 1980): the peak is the boost-clock figure times this fraction.
TENSOR_CLOCK = {(9, 0): (1830, 1980), (10, 0): (1860, 1980)}


def tensor_basis(cc, per_sm, name):
    basis = f"100 SMs x 1000 MHz x {per_sm} dense {name} tensor FLOP/clock/SM"
    if cc in TENSOR_CLOCK:
        tensor, boost = TENSOR_CLOCK[cc]
        basis += f" x {tensor}/{boost} (the tensor clock, as NVIDIA rates compute capability {cc[0]}.{cc[1]})"
    return basis


def tensor_gflops(cc, per_sm):
    tensor, boost = TENSOR_CLOCK.get(cc, (1, 1))
    return gflops(per_sm) * tensor / boost


@pytest.mark.parametrize("cc", sorted(TENSOR_FP16))
@pytest.mark.parametrize("geforce", [False, True])
def test_fp16_tensor_rate_and_the_geforce_rule(cc, geforce):
    per_sm = TENSOR_FP16[cc] // (2 if geforce and cc in GEFORCE_HALF else 1)
    peak = flops("float16", card(cc, geforce=geforce))
    assert peak.value == exactly(tensor_gflops(cc, per_sm))
    assert peak.basis == tensor_basis(cc, per_sm, "FP16")


def test_the_rtx_5090_float16_peak_is_half_its_datasheet_fp16_accumulate_rate():
    """RTX 5090: 170 SMs at 2407 MHz; NVIDIA's 209.5 TFLOP/s dense FP16 with FP32 accumulate (419 with FP16)."""
    peak = flops("float16", peaks.GpuModel((12, 0), 170, 2407.0, geforce=True))
    assert peak.value == pytest.approx(209_500, rel=0.01)


@pytest.mark.parametrize("cc", [cc for cc in sorted(TENSOR_FP16) if cc >= (8, 0)])
def test_bf16_and_tf32_from_ampere_on(cc):
    per_sm = TENSOR_FP16[cc] // (2 if cc in GEFORCE_HALF else 1)
    bf16 = flops("bfloat16", card(cc, geforce=True))
    assert bf16.value == exactly(tensor_gflops(cc, per_sm))
    assert bf16.basis == tensor_basis(cc, per_sm, "BF16")
    tf32 = flops("float32", card(cc, geforce=True), tf32=True)
    assert tf32.value == exactly(tensor_gflops(cc, per_sm // 2))
    assert tf32.basis == tensor_basis(cc, per_sm // 2, "TF32")


@pytest.mark.parametrize("cc", [(7, 0), (7, 5)])
def test_no_bf16_or_tf32_before_ampere(cc):
    assert (
        flops("bfloat16", card(cc)).basis
        == f"no bfloat16 tensor-core rate known for compute capability {cc[0]}.{cc[1]}"
    )
    tf32 = flops("float32", card(cc), tf32=True)  # TF32 asked of a card without it: FP32 lanes
    assert tf32.value == exactly(gflops(FP32_LANES[cc] * 2))


def test_an_architecture_without_tensor_cores_has_no_tensor_peak():
    peak = flops("float16", card((8, 7)))
    assert peak.value is None and peak.basis == "no float16 tensor-core rate known for compute capability 8.7"


def test_only_hopper_and_blackwell_tensor_peaks_are_at_the_lower_tensor_clock():
    assert flops("float16", card((9, 0))).value == exactly(gflops(4096) * 1830 / 1980)
    assert flops("float16", card((10, 0))).value == exactly(gflops(8192) * 1860 / 1980)
    assert "tensor clock" not in flops("float16", card((8, 0))).basis
    assert "tensor clock" not in flops("float32", card((9, 0))).basis  # FP32 lanes run at the boost clock


def test_memory_bandwidth_is_ddr_times_clock_times_bus():
    """H100 SXM: 2619 MHz x 5120 bits: 3352 GB/s (datasheet 3.35 TB/s)."""
    peak = peaks.gpu_bandwidth_peak(2619.0, 5120)
    assert peak.value == exactly(3352.32) and peak.basis == "2 x 2619 MHz x 5120 bits / 8" and peak.unit == "GB/s"
    for none in (peaks.gpu_bandwidth_peak(None, 5120), peaks.gpu_bandwidth_peak(2619.0, 0)):
        assert (none.value, none.unit, none.basis) == (None, "GB/s", "memory clock or bus width not reported")


# --- CPU ---------------------------------------------------------------------------------------------------
ISA = [
    (
        ["avx512f", "avx2", "fma"],
        "GenuineIntel",
        6,
        32,
        "AVX-512 with two FMA units (Xeon Silver/Bronze have one: half)",
    ),
    (
        ["avx512f", "avx2", "fma"],
        "AuthenticAMD",
        0x19,
        16,
        "AVX-512 on Zen 4 (256-bit units, one 512-bit FMA per cycle)",
    ),
    (
        ["avx512f", "avx2", "fma"],
        "AuthenticAMD",
        0x1A,
        32,
        "AVX-512 with two FMA units (Xeon Silver/Bronze have one: half)",
    ),
    (["avx512f"], "GenuineIntel", 0x19, 32, "AVX-512 with two FMA units (Xeon Silver/Bronze have one: half)"),
    (["avx2", "fma", "avx"], "AuthenticAMD", 0x17, 16, "AVX2 + FMA, two 256-bit FMA units"),
    (["avx2", "avx"], "GenuineIntel", 6, 8, "AVX without FMA"),  # AVX2 without FMA: AVX's rate
    (["fma", "avx"], "GenuineIntel", 6, 8, "AVX without FMA"),
    (["avx"], "GenuineIntel", 6, 8, "AVX without FMA"),
    (["sse4_2"], "GenuineIntel", 6, 4, "SSE2"),
    (["asimd"], "ARM", None, 8, "Arm NEON/SVE, assuming two 128-bit FMA pipes"),
    (["sve"], "ARM", None, 8, "Arm NEON/SVE, assuming two 128-bit FMA pipes"),
    (["mmx"], "GenuineIntel", 6, None, "unknown vector ISA"),
]


@pytest.mark.parametrize(("isa", "vendor", "family", "fp64", "basis"), ISA)
def test_cpu_flops_per_cycle_of_every_isa(isa, vendor, family, fp64, basis):
    assert peaks.cpu_fp64_flops_per_cycle(isa, vendor, family) == (fp64, basis)


def test_cpu_peak_is_cores_times_clock_times_flops_per_cycle():
    f64 = peaks.cpu_peak("float64", 8, 3000.0, "cpuinfo", ["avx2", "fma"], "GenuineIntel", 6)
    f32 = peaks.cpu_peak("float32", 8, 3000.0, "cpuinfo", ["avx2", "fma"], "GenuineIntel", 6)
    assert f64.value == exactly(8 * 3.0 * 16) and f32.value == exactly(8 * 3.0 * 32)
    assert f64.basis == "8 cores x 3000 MHz (cpuinfo) x 16 float64 FLOP/cycle (AVX2 + FMA, two 256-bit FMA units)"
    assert f32.basis == "8 cores x 3000 MHz (cpuinfo) x 32 float32 FLOP/cycle (AVX2 + FMA, two 256-bit FMA units)"
    assert f64.unit == f32.unit == "GFLOP/s"
    zen4 = peaks.cpu_peak("float64", 8, 3000.0, "cpuinfo", ["avx512f"], "AuthenticAMD", 0x19)
    assert zen4.value == exactly(8 * 3.0 * 16)  # the vendor and family reach the ISA rule


@pytest.mark.parametrize(
    ("dtype", "mhz", "isa", "why"),
    [
        ("float16", 3000.0, ["avx2", "fma"], "no CPU peak model for float16"),
        ("float32", None, ["avx2", "fma"], "the CPU clock is not exposed"),
        ("float32", 0.0, ["avx2", "fma"], "the CPU clock is not exposed"),
        ("float32", 3000.0, [], "unknown vector ISA"),
    ],
)
def test_a_cpu_with_no_peak_says_why(dtype, mhz, isa, why):
    peak = peaks.cpu_peak(dtype, 8, mhz, "cpuinfo", isa, "GenuineIntel", 6)
    assert (peak.value, peak.unit, peak.basis) == (None, "GFLOP/s", why)


@pytest.mark.parametrize(
    ("measured", "pct", "noted"), [(50.0, 50.0, False), (100.0, 100.0, False), (101.0, 101.0, True)]
)
def test_percent_of_peak_notes_only_above_100(measured, pct, noted):
    got, note = peaks.percent(measured, peaks.Peak(100.0, "GFLOP/s", ""))
    assert got == exactly(pct)
    assert note == (
        "above 100%: the clock behind the peak is under-reported (a base clock, turbo runs faster)" if noted else ""
    )
    assert peaks.percent(1.0, peaks.Peak(None, "GFLOP/s", "")) == (None, "")


def test_peak_to_dict():
    assert peaks.Peak(1.5, "GB/s", "b").to_dict() == {"value": 1.5, "unit": "GB/s", "basis": "b"}


NVLINK_4_H100 = {"value": 450.0, "unit": "GB/s", "basis": "NVLink 4: 18 active links x 25 GB/s per direction"}


@pytest.mark.parametrize(
    ("version", "links", "peak"),
    [
        (6, 18, NVLINK_4_H100),  # an H100 SXM: nvmlDeviceGetNvLinkVersion 6 is NVLink 4.0
        (4, 12, {"value": 300.0, "unit": "GB/s", "basis": "NVLink 3: 12 active links x 25 GB/s per direction"}),
        (7, 18, {"value": 900.0, "unit": "GB/s", "basis": "NVLink 5: 18 active links x 50 GB/s per direction"}),
        (6, 0, {"value": None, "unit": "GB/s", "basis": "no active NVLink"}),
        (None, 0, {"value": None, "unit": "GB/s", "basis": "no active NVLink"}),
        (99, 4, {"value": None, "unit": "GB/s", "basis": "4 active NVLinks of an unknown version (NVML answered 99)"}),
    ],
)
def test_every_branch_of_the_nvlink_peak(version, links, peak):
    assert peaks.nvlink_peak(version, links).to_dict() == peak


def test_a_pairs_peak_is_the_slower_link_once_each_way():
    fast, slow = peaks.nvlink_peak(6, 18), peaks.pcie_peak(4, 16)
    none = peaks.nvlink_peak(6, 0)
    assert peaks.pair_peak(fast, slow) == slow and peaks.pair_peak(slow, fast) == slow
    both = peaks.pair_peak(fast, fast, directions=2).to_dict()
    assert both == {"value": 900.0, "unit": "GB/s", "basis": f"2 directions x ({NVLINK_4_H100['basis']})"}
    unknown = peaks.Peak(None, "GB/s", "the receiver's link could not be read")
    assert peaks.pair_peak(none, fast).to_dict() == {"value": None, "unit": "GB/s", "basis": "no active NVLink"}
    assert peaks.pair_peak(fast, unknown).to_dict() == {
        "value": None, "unit": "GB/s", "basis": "the receiver's link could not be read"
    }  # fmt: skip
