"""Host<->device and device->device copies, CuPy's ways against PyTorch's, side by side on one GPU:
what `devcheck bench` measures, and the candidates for closing issue 13's gaps (on the H100,
pageable host->device 7.2 GB/s against torch's 16.1, device->device 2,145 against 2,976).

    python benchmarks/copies.py          # needs a GPU, CuPy and, for the reference column, torch

What the sources say (CuPy v14.2.0, PyTorch main), which this script puts to the test:
- `cupy.asarray(pageable)` first copies the whole array into a pinned buffer from CuPy's pool, with
  one host thread (`_core/core.pyx` `_array_default`), then sends it: the two steps add up.
- `dst.set(pageable)` is one `cudaMemcpyAsync` from pageable memory (the driver stages it), what
  torch's `.to("cuda")` does too (`Copy.cu` -> `memcpy_and_sync`); this is what devcheck times.
- `cupy.copyto(dst, src)` is one `cudaMemcpyAsync` device->device (`_manipulation/basic.py`
  `_can_memcpy`); `src.copy()` launches CuPy's elementwise copy kernel instead. torch's `clone()`
  of a contiguous tensor is a `cudaMemcpyAsync`.
- One short copy between two CUDA events also counts the GPU's idle time while Python prepares the
  call; every figure here times back-to-back calls (devcheck's bench does the same since issue 13).

Each row: GB/s (device->device counts read + write), median of 5 samples of back-to-back calls
timed with CUDA events, and torch's time for the same copy divided by this way's (torch's host->device
`copy_` synchronises after each call, which `dst.set` does not: a slight edge to CuPy here).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devcheck.commands.bench.timing import CudaEventClock, measure  # noqa: E402

SIZES = (64 * 2**20, 256 * 2**20, 2**30)
CHUNK = 8 * 2**20


class TorchEvents:
    """torch's CUDA events around back-to-back calls (devcheck's CudaEventClock interface), for
    torch's work, which runs on torch's current stream rather than CuPy's."""

    def __init__(self, torch: object):
        self.start, self.end = (torch.cuda.Event(enable_timing=True) for _ in range(2))

    def time(self, fn, calls: int = 1) -> float:
        self.start.record()
        for _ in range(calls):
            fn()
        self.end.record()
        self.end.synchronize()
        return self.start.elapsed_time(self.end) / 1000 / calls


def staged(cupy, dst, host: numpy.ndarray) -> object:
    """A double-buffered upload through two pinned chunks: the host copy of chunk i+1 overlaps the
    DMA of chunk i (what the driver's own staging should do; a candidate if `set` stays slow)."""
    buffers = [numpy.frombuffer(cupy.cuda.alloc_pinned_memory(CHUNK), numpy.uint8) for _ in range(2)]
    done = [cupy.cuda.Event(), cupy.cuda.Event()]
    src, stream = host.view(numpy.uint8).reshape(-1), cupy.cuda.get_current_stream()

    def run() -> None:
        for i, offset in enumerate(range(0, src.size, CHUNK)):
            part = src[offset : offset + CHUNK]
            done[i % 2].synchronize()  # this buffer's previous DMA has finished
            buffers[i % 2][: part.size] = part
            (dst.data + offset).copy_from_host_async(buffers[i % 2].ctypes.data, part.size, stream)
            done[i % 2].record(stream)

    return run


def rows(cupy, torch, nbytes: int) -> list[tuple[str, float, float | None]]:
    n = nbytes // 4
    host = numpy.random.default_rng(0).standard_normal(n, dtype=numpy.float32)
    src, dst = cupy.asarray(host), cupy.empty(n, numpy.float32)
    clock = CudaEventClock(cupy, cupy.cuda.Device())
    ways = {
        "h2d pageable: dst.set (devcheck)": (lambda: dst.set(host), nbytes),
        "h2d pageable: cupy.asarray": (lambda: cupy.asarray(host), nbytes),
        "h2d pageable: 2 pinned chunks": (staged(cupy, dst, host), nbytes),
        "d2h pageable: src.get(out=)": (lambda: src.get(out=host), nbytes),
        "d2d: cupy.copyto (devcheck)": (lambda: cupy.copyto(dst, src), 2 * nbytes),
        "d2d: src.copy()": (lambda: src.copy(), 2 * nbytes),
    }
    reference: dict[str, float] = {}
    if torch is not None:
        t_host, t_src = torch.from_numpy(host), torch.from_numpy(host).cuda()
        t_dst = torch.empty_like(t_src)
        tclock = TorchEvents(torch)
        for key, fn in (("h2d", lambda: t_dst.copy_(t_host)), ("d2h", lambda: t_host.copy_(t_src)),
                        ("d2d", lambda: t_src.clone())):  # fmt: skip
            reference[key] = measure(fn, tclock, 5, 10.0)[1].median
    out = []
    for name, (fn, moved) in ways.items():
        median = measure(fn, clock, 5, 10.0)[1].median
        ref = reference.get(name[:3])
        out.append((name, moved / median / 1e9, ref / median if ref else None))
    return out


def main() -> int:
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no CuPy, no driver, no GPU
        why = str(e).splitlines()[0] if str(e) else ""
        print(f"copies.py: no GPU usable through CuPy here: {type(e).__name__}: {why}")
        return 0
    try:
        import torch

        torch = torch if torch.cuda.is_available() else None
    except ImportError:
        torch = None
    print(f"{'way':<36} {'MiB':>5} {'GB/s':>8} {'x torch':>9}  (x torch: torch's time / this way's; > 1 is faster)")
    for nbytes in SIZES:
        if 8 * nbytes > cupy.cuda.Device().mem_info[0]:  # both libraries' arrays and temporaries at once
            continue
        for name, rate, ratio in rows(cupy, torch, nbytes):
            versus = f"{ratio:8.2f}x" if ratio else "       -"
            print(f"{name:<36} {nbytes >> 20:>5} {rate:8.1f} {versus}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
