"""Theoretical peaks, each with the basis it was computed from, or with why there is none.

CPU:  usable cores x clock x FLOP/cycle from the vector ISA.
GPU:  SMs x FP32 cores/SM x 2 x SM clock; FP64 at the part's ratio, or at the FP64 tensor-core
      (DMMA) rate where cuBLAS uses it for DGEMM (A100, H100; not an export part whose own ratio says
      its FP64 is cut, as the H800's); float16 at the dense tensor-core rate (at the tensor clock
      where NVIDIA rates it lower), float32 with TF32 on (as CuPy reads CUPY_TF32) at the TF32 rate;
      memory bandwidth = 2 (DDR) x memory clock x bus width / 8.
PCIe: lanes x per-lane rate of the generation, after line encoding.
GPU to GPU: NVLink generation x active links x per-link rate per direction, else the PCIe link; a
      pair gets the slower GPU's; an all-reduce's busbw = algbw x 2(n-1)/n (nccl-tests).
Sources: NVIDIA cuda-samples helper_cuda.h (_ConvertSMVer2Cores), cudnn-frontend's
_FLOPS_PER_CLOCK_PER_SM, mixbench's and nvbench's bandwidth formula; the figures each model's peak is
checked against, with their datasheets, are in tests/fixtures/gpu_specs.json.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Peak:
    value: float | None  # GFLOP/s or GB/s
    unit: str
    basis: str  # how it was computed, or why there is none

    def to_dict(self) -> dict:
        return {"value": self.value, "unit": self.unit, "basis": self.basis}


# --- CPU ----------------------------------------------------------------------------------------------------


def cpu_fp64_flops_per_cycle(isa: list[str], vendor: str, family: int | None) -> tuple[int | None, str]:
    """Double-precision FLOP per cycle per core (single precision is twice that)."""
    if "avx512f" in isa:
        if vendor == "AuthenticAMD" and family == 0x19:
            return 16, "AVX-512 on Zen 4 (256-bit units, one 512-bit FMA per cycle)"
        return 32, "AVX-512 with two FMA units (Xeon Silver/Bronze have one: half)"
    if "avx2" in isa and "fma" in isa:
        return 16, "AVX2 + FMA, two 256-bit FMA units"
    if "avx" in isa:
        return 8, "AVX without FMA"
    if "sse4_2" in isa:
        return 4, "SSE2"
    if "asimd" in isa or "sve" in isa:
        return 8, "Arm NEON/SVE, assuming two 128-bit FMA pipes"
    return None, "unknown vector ISA"


def cpu_peak(
    dtype: str, cores: int, mhz: float | None, mhz_source: str, isa: list[str], vendor: str, family: int | None
) -> Peak:
    if dtype not in ("float32", "float64"):
        return Peak(None, "GFLOP/s", f"no CPU peak model for {dtype}")
    if not mhz:
        return Peak(None, "GFLOP/s", "the CPU clock is not exposed")
    fp64, isa_basis = cpu_fp64_flops_per_cycle(isa, vendor, family)
    if fp64 is None:
        return Peak(None, "GFLOP/s", isa_basis)
    per_cycle = fp64 * (2 if dtype == "float32" else 1)
    value = cores * mhz * 1e-3 * per_cycle
    return Peak(
        value, "GFLOP/s", f"{cores} cores x {mhz:.0f} MHz ({mhz_source}) x {per_cycle} {dtype} FLOP/cycle ({isa_basis})"
    )


# --- GPU ----------------------------------------------------------------------------------------------------

FP32_CORES_PER_SM = {
    (6, 0): 64,
    (6, 1): 128,
    (6, 2): 128,
    (7, 0): 64,
    (7, 2): 64,
    (7, 5): 64,
    (8, 0): 64,
    (8, 6): 128,
    (8, 7): 128,
    (8, 9): 128,
    (9, 0): 128,
    (10, 0): 128,
    (10, 1): 128,
    (10, 3): 128,
    (11, 0): 128,
    (12, 0): 128,
    (12, 1): 128,
}
# FP64 rate as a fraction of FP32, for a card that does not report CUDA's singleToDoublePrecisionPerfRatio:
# the HPC parts run at half rate, the others at 1/32 or 1/64.
FP64_RATIO = {(6, 0): 2, (7, 0): 2, (8, 0): 2, (9, 0): 2, (10, 0): 2, (6, 1): 32, (7, 5): 32, (8, 6): 64, (8, 9): 64}
FP64_RATIO |= {(12, 0): 64}
# Dense FP16 tensor-core FLOP per clock per SM (FP32 accumulate, CuPy's default); GeForce 7.5-12.0 halve it.
TENSOR_FP16_PER_SM = {(7, 0): 1024, (7, 5): 1024, (8, 0): 2048, (8, 6): 1024, (8, 9): 1024, (9, 0): 4096}
TENSOR_FP16_PER_SM |= {(10, 0): 8192, (12, 0): 1024}
_GEFORCE_HALF_RATE = {(7, 5), (8, 6), (8, 9), (12, 0)}
# Dense FP64 tensor-core (DMMA) FLOP per clock per SM: NVIDIA's datasheets give A100 19.5 and H100 SXM
# 67 TFLOP/s (108 x 128 x 1.41 GHz, 132 x 256 x 1.98 GHz); cuBLAS runs DGEMM on them.
FP64_TENSOR_PER_SM = {(8, 0): 128, (9, 0): 256}
BF16_FROM = (8, 0)  # BF16 and TF32 tensor cores from Ampere on, at the FP16 (FP32-accumulate) rate and half of it


@dataclass(frozen=True)
class GpuModel:
    """What a GPU reports about itself (CUDA's properties, NVML's max clock and brand): all a peak needs."""

    cc: tuple[int, int]
    sms: int
    sm_mhz: float
    geforce: bool = False
    fp64_ratio: int | None = None  # CUDA's singleToDoublePrecisionPerfRatio

    @property
    def clock(self) -> str:
        return f"{self.sms} SMs x {self.sm_mhz:.0f} MHz"

    def rate(self, per_sm: float) -> float:
        return self.sms * per_sm * self.sm_mhz * 1e-3


def _tensor_fp16_per_sm(gpu: GpuModel) -> int | None:
    per_sm = TENSOR_FP16_PER_SM.get(gpu.cc)
    if per_sm is not None and gpu.cc in _GEFORCE_HALF_RATE and gpu.geforce:
        per_sm //= 2  # GeForce runs FP16 with FP32 accumulate (what CuPy's matmul uses) at half rate
    return per_sm


# Hopper's and Blackwell's tensor cores run at a lower clock than the rated boost one, and NVIDIA's
# tensor peaks are at that clock: 1830 of 1980 MHz on the H100 SXM (its architecture whitepaper; the
# H100 PCIe's 756 TF dense TF32... are the same fraction of its 1755 MHz), 1860 of 1980 MHz on the B200
# (148 SMs x 8192 x 1.86 GHz = its 2.25 PFLOPS dense FP16). CUDA reports only the boost clock.
TENSOR_CLOCK_FRACTION = {(9, 0): (1830, 1980), (10, 0): (1860, 1980)}


def _tensor_peak(dtype: str, gpu: GpuModel) -> Peak:
    per_sm = _tensor_fp16_per_sm(gpu)
    cc = f"{gpu.cc[0]}.{gpu.cc[1]}"
    if per_sm is None or (dtype != "float16" and gpu.cc < BF16_FROM):
        return Peak(None, "GFLOP/s", f"no {dtype} tensor-core rate known for compute capability {cc}")
    name = {"float32": "TF32", "bfloat16": "BF16"}.get(dtype, "FP16")
    per_sm = per_sm // 2 if dtype == "float32" else per_sm  # TF32: half the FP16 tensor rate on every part
    tensor, boost = TENSOR_CLOCK_FRACTION.get(gpu.cc, (1, 1))
    basis = f"{gpu.clock} x {per_sm} dense {name} tensor FLOP/clock/SM"
    if tensor != boost:
        basis += f" x {tensor}/{boost} (the tensor clock, as NVIDIA rates compute capability {cc})"
    return Peak(gpu.rate(per_sm) * tensor / boost, "GFLOP/s", basis)


def gpu_flops_peak(dtype: str, gpu: GpuModel, tf32: bool = False) -> Peak:
    """The dense peak of a matmul in `dtype` (float32 with TF32 on when CUPY_TF32 is set), from the
    card's own numbers and its architecture's rates; an unknown architecture gets no peak, and says so."""
    cc = f"{gpu.cc[0]}.{gpu.cc[1]}"
    if dtype in ("float16", "bfloat16") or (dtype == "float32" and tf32 and gpu.cc >= BF16_FROM):
        return _tensor_peak(dtype, gpu)
    cores = FP32_CORES_PER_SM.get(gpu.cc)
    if cores is None:
        return Peak(None, "GFLOP/s", f"unknown compute capability {cc}: no FP32 lanes per SM known")
    if dtype == "float32":
        return Peak(gpu.rate(cores * 2), "GFLOP/s", f"{gpu.clock} x {cores} FP32 lanes x 2 (FMA)")
    if dtype != "float64":
        return Peak(None, "GFLOP/s", f"no peak model for {dtype}")
    dmma = FP64_TENSOR_PER_SM.get(gpu.cc)
    if dmma is not None and gpu.fp64_ratio in (None, FP64_RATIO.get(gpu.cc)):  # not an export part's cut FP64
        basis = f"{gpu.clock} x {dmma} dense FP64 tensor-core FLOP/clock/SM (DMMA, used by cuBLAS DGEMM)"
        return Peak(gpu.rate(dmma), "GFLOP/s", basis)
    ratio, source = (
        (gpu.fp64_ratio, "CUDA's singleToDoublePrecisionPerfRatio")
        if gpu.fp64_ratio
        else (
            FP64_RATIO.get(gpu.cc),
            f"compute capability {cc}",
        )
    )
    if not ratio:
        return Peak(None, "GFLOP/s", f"no FP64 rate known for compute capability {cc}")
    return Peak(gpu.rate(cores * 2 / ratio), "GFLOP/s", f"{gpu.clock} x {cores} FP32 lanes x 2 / {ratio} ({source})")


def gpu_bandwidth_peak(mem_mhz: float | None, bus_bits: int | None) -> Peak:
    if not mem_mhz or not bus_bits:
        return Peak(None, "GB/s", "memory clock or bus width not reported")
    return Peak(2 * mem_mhz * 1e6 * bus_bits / 8 / 1e9, "GB/s", f"2 x {mem_mhz:.0f} MHz x {bus_bits} bits / 8")


# GB/s per lane per direction after line encoding (8b/10b to gen 2, 128b/130b from gen 3, FLIT at gen 6).
PCIE_LANE_GBPS = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}


def pcie_peak(generation: int | None, width: int | None) -> Peak:
    if not generation or not width or generation not in PCIE_LANE_GBPS:
        return Peak(None, "GB/s", "PCIe generation or width not reported (NVML)")
    return Peak(
        PCIE_LANE_GBPS[generation] * width,
        "GB/s",
        f"PCIe gen {generation} x{width}: {PCIE_LANE_GBPS[generation]} GB/s per lane",
    )


def percent(measured: float, peak: Peak) -> tuple[float | None, str]:
    """Percent of peak, and a note when it is above 100% (a peak built on an under-reported clock)."""
    if peak.value is None:
        return None, ""
    pct = 100 * measured / peak.value
    if pct > 100:
        return pct, "above 100%: the clock behind the peak is under-reported (a base clock, turbo runs faster)"
    return pct, ""


# --- GPU to GPU ---------------------------------------------------------------------------------------------

# nvmlDeviceGetNvLinkVersion answers NVML's nvmlNvlinkVersion_t, not the generation (an A100 answers 5,
# NVLink 3.1; hwloc issue 658): NVML_NVLINK_VERSION_1_0 = 1, 2_0 = 2, 2_2 = 3, 3_0 = 4, 3_1 = 5, 4_0 = 6,
# 5_0 = 7 in nvidia-ml-py.
NVLINK_GENERATION = {1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 4, 7: 5}
# Payload GB/s per link per direction (NVIDIA's per-GPU figures over its link count: V100 6 x 25 = 150,
# A100 12 x 25 = 300, H100 18 x 25 = 450, B200 18 x 50 = 900; P100 4 x 20 = 80). `nvidia-smi nvlink -s`
# prints the signalling rate, about 6% above this (26.562 GB/s per H100 link).
NVLINK_LINK_GBPS = {1: 20.0, 2: 25.0, 3: 25.0, 4: 25.0, 5: 50.0}


def nvlink_peak(version: int | None, links: int) -> Peak:
    """One GPU's NVLink bandwidth per direction: active links x the per-link rate of its generation."""
    generation = NVLINK_GENERATION.get(version or 0)
    if not links:
        return Peak(None, "GB/s", "no active NVLink")
    if generation is None:
        return Peak(None, "GB/s", f"{links} active NVLinks of an unknown version (NVML answered {version})")
    rate = NVLINK_LINK_GBPS[generation]
    return Peak(links * rate, "GB/s", f"NVLink {generation}: {links} active links x {rate:g} GB/s per direction")


def link_peak(nvlink_version: int | None, nvlink_links: int, pcie_gen: int | None, pcie_width: int | None) -> Peak:
    """What one GPU can send to another per direction: its NVLinks where any is active, else its PCIe link."""
    if nvlink_links:
        return nvlink_peak(nvlink_version, nvlink_links)
    return pcie_peak(pcie_gen, pcie_width)


def pair_peak(sender: Peak, receiver: Peak, directions: int = 1) -> Peak:
    """A copy between two GPUs runs at most at the slower of their links; both ways at once, twice that.
    A pair wired directly (no NVSwitch) shares its GPUs' links with the other pairs: this is its upper bound."""
    if sender.value is None or receiver.value is None:
        missing = sender if sender.value is None else receiver
        return Peak(None, "GB/s", missing.basis)
    slower = min(sender, receiver, key=lambda p: p.value)
    if directions == 1:
        return slower
    return Peak(directions * slower.value, "GB/s", f"{directions} directions x ({slower.basis})")


def bus_bandwidth(algbw: float, ranks: int) -> float:
    """nccl-tests' busbw of an all-reduce: algbw x 2(n-1)/n, the rate each link carries (doc/PERFORMANCE.md)."""
    return algbw * 2 * (ranks - 1) / ranks
