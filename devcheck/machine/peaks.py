"""Theoretical peaks, each with the basis it was computed from, or with why there is none.

CPU:  usable cores x clock x FLOP/cycle from the vector ISA.
GPU:  SMs x FP32 cores/SM x 2 x SM clock; FP64 at the part's ratio, or at the FP64 tensor-core
      (DMMA) rate where cuBLAS uses it for DGEMM (A100, H100); float16 at the dense tensor-core
      rate, float32 with TF32 on (CUPY_TF32=1) at the TF32 tensor-core rate (half the FP16 rate);
      memory bandwidth = 2 (DDR) x memory clock x bus width / 8.
PCIe: lanes x per-lane rate of the generation, after line encoding.
Sources: NVIDIA cuda-samples helper_cuda.h (_ConvertSMVer2Cores), cudnn-frontend's
_FLOPS_PER_CLOCK_PER_SM, mixbench/nvbench's bandwidth formula (see shared/research/bench_anchors.md).
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
# FP64 rate as a fraction of FP32: the HPC parts run at half rate, the others at 1/32 or 1/64.
FP64_RATIO = {
    (6, 0): 1 / 2,
    (7, 0): 1 / 2,
    (8, 0): 1 / 2,
    (9, 0): 1 / 2,
    (10, 0): 1 / 2,
    (6, 1): 1 / 32,
    (7, 5): 1 / 32,
    (8, 6): 1 / 64,
    (8, 9): 1 / 64,
    (12, 0): 1 / 64,
}
# Dense FP16 tensor-core FLOP per clock per SM (FP32 accumulate); GeForce parts of 7.5-8.9 run at half.
TENSOR_FP16_PER_SM = {
    (7, 0): 1024,
    (7, 5): 1024,
    (8, 0): 2048,
    (8, 6): 1024,
    (8, 9): 1024,
    (9, 0): 4096,
    (10, 0): 8192,
    (12, 0): 1024,
}
_GEFORCE_HALF_RATE = {(7, 5), (8, 6), (8, 9)}
# Dense FP64 tensor-core (DMMA) FLOP per clock per SM: NVIDIA's datasheets give A100 19.5 and H100 SXM
# 67 TFLOP/s (108 x 128 x 1.41 GHz, 132 x 256 x 1.98 GHz); cuBLAS runs DGEMM on them.
FP64_TENSOR_PER_SM = {(8, 0): 128, (9, 0): 256}


def _tensor_fp16_per_sm(cc: tuple[int, int], geforce: bool) -> int | None:
    per_sm = TENSOR_FP16_PER_SM.get(cc)
    if per_sm is not None and cc in _GEFORCE_HALF_RATE and geforce:
        per_sm //= 2  # GeForce runs FP16 with FP32 accumulate (what CuPy's matmul uses) at half rate
    return per_sm


def gpu_flops_peak(
    dtype: str, cc: tuple[int, int], sms: int, sm_mhz: float, geforce: bool = False, tf32: bool = False
) -> Peak:
    clock = f"{sms} SMs x {sm_mhz:.0f} MHz"
    if dtype == "float16" or (dtype == "float32" and tf32 and cc >= (8, 0)):
        per_sm = _tensor_fp16_per_sm(cc, geforce)
        if per_sm is None:
            return Peak(None, "GFLOP/s", f"no tensor-core rate known for compute capability {cc[0]}.{cc[1]}")
        if dtype == "float32":  # TF32: half the FP16 tensor rate on every part that has it
            return Peak(
                sms * per_sm // 2 * sm_mhz * 1e-3,
                "GFLOP/s",
                f"{clock} x {per_sm // 2} dense TF32 tensor FLOP/clock/SM (CUPY_TF32 is on)",
            )
        return Peak(sms * per_sm * sm_mhz * 1e-3, "GFLOP/s", f"{clock} x {per_sm} dense FP16 tensor FLOP/clock/SM")
    cores = FP32_CORES_PER_SM.get(cc)
    if cores is None:
        return Peak(None, "GFLOP/s", f"unknown compute capability {cc[0]}.{cc[1]}: no FP32 core count")
    fp32 = sms * cores * 2 * sm_mhz * 1e-3
    if dtype == "float32":
        return Peak(fp32, "GFLOP/s", f"{clock} x {cores} FP32 cores x 2 (FMA)")
    if dtype == "float64":
        dmma = FP64_TENSOR_PER_SM.get(cc)
        if dmma is not None:
            return Peak(
                sms * dmma * sm_mhz * 1e-3,
                "GFLOP/s",
                f"{clock} x {dmma} dense FP64 tensor-core FLOP/clock/SM (DMMA, used by cuBLAS DGEMM)",
            )
        ratio = FP64_RATIO.get(cc)
        if ratio is None:
            return Peak(None, "GFLOP/s", f"no FP64 ratio known for compute capability {cc[0]}.{cc[1]}")
        return Peak(fp32 * ratio, "GFLOP/s", f"{clock} x {cores} FP32 cores x 2 x {ratio:g} (FP64 rate)")
    return Peak(None, "GFLOP/s", f"no peak model for {dtype}")


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
