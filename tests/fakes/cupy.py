"""A fake CuPy at the probe boundary: CuPy's documented API shape, NumPy arithmetic behind it,
and the real failures users meet (messages as CuPy/CUDA print them)."""

from __future__ import annotations

import time
import types

import numpy


class CUDARuntimeError(RuntimeError):
    pass


INSUFFICIENT_DRIVER = "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version"
NO_DEVICE = "cudaErrorNoDevice: no CUDA-capable device is detected"


class DeviceArray(numpy.ndarray):
    """A "device" array: NumPy memory with CuPy's explicit host copies."""

    def set(self, host, stream=None):
        self[...] = host

    def get(self, stream=None, out=None):
        if out is None:
            return numpy.array(self)
        out[...] = self
        return out


class Event:
    """CUDA event: records when it was reached (here, the host clock)."""

    def record(self, stream=None):
        self.t = time.perf_counter()

    def synchronize(self):
        pass


def get_elapsed_time(start, end):  # milliseconds, as cupy.cuda.get_elapsed_time
    return (end.t - start.t) * 1e3


class FakeCupy(types.ModuleType):
    """GPUs are (name, compute capability "90", PCI bus id, total bytes) tuples."""

    float32, int32 = numpy.float32, numpy.int32

    def __init__(
        self,
        gpus,
        runtime=12080,
        driver=12040,
        error: str | None = None,
        nvrtc_error: str | None = None,
        cublas_error: str | None = None,
        wrong_matmul=False,
    ):
        super().__init__("cupy")
        self.__version__ = "14.2.0"
        self.gpus, self.error = gpus, error
        self.nvrtc_error, self.cublas_error, self.wrong_matmul = nvrtc_error, cublas_error, wrong_matmul
        fake = self

        class Device:
            def __init__(self, index):
                if index >= len(fake.gpus):
                    raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
                self.index = index

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            compute_capability = property(lambda self: fake.gpus[self.index][1])
            attributes = property(
                lambda self: {
                    "ComputeCapabilityMajor": int(fake.gpus[self.index][1][:-1]),
                    "ComputeCapabilityMinor": int(fake.gpus[self.index][1][-1]),
                    "MultiProcessorCount": 132,
                    "ClockRate": 1_980_000,
                    "MemoryClockRate": 2_619_000,
                    "GlobalMemoryBusWidth": 5120,
                    "L2CacheSize": 50 * 2**20,
                }
            )
            pci_bus_id = property(lambda self: fake.gpus[self.index][2])
            mem_info = property(lambda self: (fake.gpus[self.index][3] // 2, fake.gpus[self.index][3]))

        def device_count():
            if fake.error:
                raise CUDARuntimeError(fake.error)
            return len(fake.gpus)

        runtime_api = types.SimpleNamespace(
            runtimeGetVersion=lambda: runtime,
            driverGetVersion=lambda: driver,
            getDeviceCount=device_count,
            getDeviceProperties=lambda i: {"name": fake.gpus[i][0].encode(), "multiProcessorCount": 132},
        )
        self.cuda = types.SimpleNamespace(
            runtime=runtime_api,
            Device=Device,
            Event=Event,
            get_elapsed_time=get_elapsed_time,
            alloc_pinned_memory=lambda nbytes: bytearray(nbytes),
        )

    def is_available(self):
        try:
            return self.cuda.runtime.getDeviceCount() > 0
        except Exception:
            return False

    def arange(self, n, dtype=None):
        return numpy.arange(n, dtype=dtype)

    def asarray(self, x):
        if self.cublas_error:
            return _NoBlas(x, self.cublas_error)
        return (numpy.asarray(x) * (1.001 if self.wrong_matmul else 1)).view(DeviceArray)

    def empty_like(self, x):
        return numpy.empty_like(x).view(DeviceArray)

    def copyto(self, dst, src):
        dst[...] = src

    def asnumpy(self, x):
        return numpy.asarray(x)

    def RawKernel(self, source, name):
        if self.nvrtc_error:
            raise RuntimeError(self.nvrtc_error)
        assert name in source

        def launch(grid, block, args):
            x, y, n = args
            y[:n] = 2 * x[:n] + 1

        return launch


class _NoBlas(numpy.ndarray):
    def __new__(cls, x, error):
        obj = numpy.asarray(x).view(cls)
        obj.error = error
        return obj

    def __matmul__(self, other):
        raise ImportError(self.error)
