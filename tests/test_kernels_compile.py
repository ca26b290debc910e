"""Every fused kernel (engine/fused.py) as the CUDA C that the installed CuPy generates for it, compiled
by nvcc for an H100 (sm_90) in each float dtype the engine has (and narrow targets). Compiling needs
no GPU, so a kernel that NVRTC would refuse at its first launch on a user's GPU fails here (float16's
overloads have: max(float, float16) is ambiguous); what it computes is checked on the CuPy stand-in
(test_engine_ops.py, test_engine_nn.py), which runs the same operation as Python.

Skipped without CuPy (the CI's second venv has it) or nvcc, or if CuPy's code generator moved."""

import shutil
import subprocess

import numpy
import pytest

from devcheck.engine import fused

cupy = pytest.importorskip("cupy")
kernel = pytest.importorskip("cupy._core._kernel")
core = pytest.importorskip("cupy._core.core")
NVCC = shutil.which("nvcc")
if NVCC is None:
    pytest.skip("no nvcc to compile with", allow_module_level=True)
if not all(hasattr(kernel, n) for n in ("_get_elementwise_kernel_code", "_ArgInfo", "_TypeMap", "ParameterInfo")):
    pytest.skip(f"CuPy {cupy.__version__} generates kernel code elsewhere", allow_module_level=True)

NDARRAY, INDEXER, SCALAR = 1, 2, 3  # cupy/_core/_kernel.pxd _ArgKind
# How devcheck calls each kernel: its host scalars, its arrays (a new name must be placed in one), and
# the arrays' dimensions.
SCALARS = {"lr", "decay", "momentum", "step", "b1", "b2", "eps", "bc2", "scale", "classes", "lowest"}
ARRAYS = {"g", "p", "buf", "m", "v", "z", "s", "t", "j", "e", "gy", "loss", "x", "y", "mask", "gx"}
NDIM = {name: 2 if name.startswith("cross_entropy") else 1 for name in fused.CUDA}
FLOATS = (numpy.float16, numpy.float32, numpy.float64)
CASES = [(t, numpy.int64) for t in FLOATS] + [(numpy.float32, i) for i in (numpy.uint8, numpy.int8)]  # narrow targets


def cuda_source(name: str, dtype: type, index: type) -> str:
    """What CuPy's ElementwiseKernel would hand NVRTC for this call (cupy/_core/_kernel.pyx)."""
    in_params, out_params, operation = fused.CUDA[name]
    params = tuple(
        [kernel.ParameterInfo(p, True) for p in in_params.split(",")]
        + [kernel.ParameterInfo(p, False) for p in out_params.split(",")]
        + [kernel.ParameterInfo("CIndexer _ind", False)]
    )
    unknown = {p.name for p in params[:-1]} - SCALARS - ARRAYS
    assert not unknown, f"tell this test whether devcheck passes {unknown} as host scalars or arrays"
    bound = {"T": dtype, "I": index, "J": numpy.int64}  # class numbers come from arange: the default int
    infos = []
    for p in params[:-1]:
        is_scalar = p.name in SCALARS
        infos.append(
            kernel._ArgInfo(
                SCALAR if is_scalar else NDARRAY,
                object if is_scalar else cupy.ndarray,
                p.dtype or bound[p.ctype],
                0 if is_scalar else NDIM[name],
                True,
                True,
            )
        )
    infos.append(kernel._ArgInfo(INDEXER, object, None, NDIM[name], True, True))
    types = kernel._TypeMap(tuple((t, bound[t]) for t in sorted({p.ctype for p in params[:-1] if p.dtype is None})))
    return kernel._get_elementwise_kernel_code(tuple(infos), types, params, operation, f"devcheck_{name}", "")


@pytest.mark.parametrize(("dtype", "index"), CASES, ids=lambda v: v.__name__)
def test_the_fused_kernels_compile_for_a_gpu(dtype, index, tmp_path):
    """One file per case (nvcc starts once): the kernels that take targets, or all of them."""
    names = [n for n in sorted(fused.CUDA) if index is numpy.int64 or n.startswith("cross_entropy")]
    headers = "".join(f"#include <{h}>\n" for h in core._cupy_header_list)
    source = tmp_path / "kernels.cu"
    source.write_text(headers + "\n".join(cuda_source(name, dtype, index) for name in names))
    result = subprocess.run(
        [
            NVCC,
            "-c",
            "-arch=sm_90",
            "-std=c++17",
            f"-I{core._get_header_dir_path()}",
            "-o",
            str(tmp_path / "k.o"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    compiled = (tmp_path / "k.o").read_bytes()
    assert all(f"devcheck_{name}".encode() in compiled for name in names)
