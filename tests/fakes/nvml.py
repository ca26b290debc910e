"""A fake NVML module at the probe boundary, modelled on real cards and real failures.

It reuses nvidia-ml-py's own constants and exception classes (NVMLError(code) builds the real
subclass), so the probe's error handling is exercised exactly as with a real driver.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, replace

import pynvml as real

NOT_SUPPORTED = real.NVML_ERROR_NOT_SUPPORTED


@dataclass
class Card:
    name: str
    uuid: str
    bus_id: str
    cc: tuple[int, int]
    arch: int
    brand: int
    memory_mib: tuple[int, int]  # total, used
    bus_width: int = 5120
    util: int = 3
    temp: int = 34
    slowdown_temp: int = 87
    power_mw: int = 71_000
    limit_mw: int = 700_000
    sm_clock: tuple[int, int] = (345, 1980)
    mem_clock: tuple[int, int] = (2619, 2619)
    pcie: tuple[int, int, int, int] = (5, 5, 16, 16)  # gen, gen max, width, width max
    ecc: tuple[int, int] = (1, 1)
    ecc_uncorrected: int = 0
    retired_pending: int = 0
    remapped: tuple[int, int, int, int] = (0, 0, 0, 0)
    persistence: int = 1
    compute_mode: int = 0
    mig: tuple[int, int] = (0, 0)
    mig_slots: int = 7
    mig_instances: int = 0
    processes: int = 0
    reasons: int = 0x1  # GPU idle
    unsupported: frozenset[str] = frozenset()
    lost: bool = False


H100 = Card(
    "NVIDIA H100 80GB HBM3", "GPU-8f6b2c1e-0a8d-4c7e-9a59-1d2f3e4a5b6c", "00000000:1B:00.0", (9, 0), 9, 2, (81559, 1)
)
GEFORCE = Card(
    "NVIDIA GeForce RTX 4090",
    "GPU-2a3b4c5d-6e7f-4081-92a3-b4c5d6e7f809",
    "00000000:01:00.0",
    (8, 9),
    8,
    5,
    (24564, 412),
    bus_width=384,
    limit_mw=450_000,
    ecc=(0, 0),
    persistence=0,
    unsupported=frozenset(
        {
            "nvmlDeviceGetEccMode",
            "nvmlDeviceGetMigMode",
            "nvmlDeviceGetRemappedRows",
            "nvmlDeviceGetRetiredPagesPendingStatus",
            "nvmlDeviceGetTotalEccErrors",
        }
    ),
)
A100_MIG = Card(
    "NVIDIA A100-SXM4-40GB",
    "GPU-5d1a7e33-7f0b-4c5e-8a1d-9b0c1d2e3f40",
    "00000000:07:00.0",
    (8, 0),
    7,
    2,
    (40960, 2000),
    mig=(1, 1),
    mig_instances=3,
    unsupported=frozenset({"nvmlDeviceGetUtilizationRates"}),
)


def card(base: Card, **changes) -> Card:
    return replace(base, **changes)


class FakeNVML(types.ModuleType):
    def __init__(
        self,
        cards: list[Card],
        init_error: int | None = None,
        driver: str = "550.54.15",
        cuda: int = 12040,
        missing: frozenset[str] = frozenset(),
    ):
        super().__init__("pynvml")
        for name in dir(real):
            if name.startswith(("NVML_", "NVMLError", "nvmlClocks", "nvmlMemory")):
                setattr(self, name, getattr(real, name))
        self.cards, self.init_error, self.driver, self.cuda = cards, init_error, driver, cuda
        self.calls: list[str] = []
        self._install_device_calls(missing)

    def nvmlInit(self):
        if self.init_error is not None:
            raise real.NVMLError(self.init_error)

    def nvmlShutdown(self):
        pass

    def nvmlSystemGetDriverVersion(self):
        return self.driver

    def nvmlSystemGetCudaDriverVersion_v2(self):
        return self.cuda

    def nvmlSystemGetNVMLVersion(self):
        return "12." + self.driver

    def nvmlDeviceGetCount(self):
        return len(self.cards)

    def nvmlDeviceGetHandleByIndex(self, index):
        if self.cards[index].lost:
            raise real.NVMLError(real.NVML_ERROR_GPU_IS_LOST)
        return self.cards[index]

    def _install_device_calls(self, missing: frozenset[str]) -> None:
        clocks = {real.NVML_CLOCK_SM: 0, real.NVML_CLOCK_MEM: 1}

        def pci(c):
            return types.SimpleNamespace(busId=c.bus_id.encode())

        def memory(c):
            total, used = (m * 1024 * 1024 for m in c.memory_mib)
            return types.SimpleNamespace(total=total, used=used, free=total - used)

        def mig_handle(c, i):
            if i >= c.mig_instances:
                raise real.NVMLError(real.NVML_ERROR_NOT_FOUND)
            return (c, i)

        table = {
            "nvmlDeviceGetName": lambda c: c.name,
            "nvmlDeviceGetUUID": lambda c: c.uuid,
            "nvmlDeviceGetPciInfo": pci,
            "nvmlDeviceGetBrand": lambda c: c.brand,
            "nvmlDeviceGetCudaComputeCapability": lambda c: c.cc,
            "nvmlDeviceGetArchitecture": lambda c: c.arch,
            "nvmlDeviceGetMemoryInfo": memory,
            "nvmlDeviceGetMemoryBusWidth": lambda c: c.bus_width,
            "nvmlDeviceGetUtilizationRates": lambda c: types.SimpleNamespace(gpu=c.util, memory=1),
            "nvmlDeviceGetTemperature": lambda c, sensor: c.temp,
            "nvmlDeviceGetTemperatureThreshold": lambda c, kind: c.slowdown_temp,
            "nvmlDeviceGetPowerUsage": lambda c: c.power_mw,
            "nvmlDeviceGetEnforcedPowerLimit": lambda c: c.limit_mw,
            "nvmlDeviceGetClockInfo": lambda c, kind: (c.sm_clock, c.mem_clock)[clocks[kind]][0],
            "nvmlDeviceGetMaxClockInfo": lambda c, kind: (c.sm_clock, c.mem_clock)[clocks[kind]][1],
            "nvmlDeviceGetCurrPcieLinkGeneration": lambda c: c.pcie[0],
            "nvmlDeviceGetMaxPcieLinkGeneration": lambda c: c.pcie[1],
            "nvmlDeviceGetCurrPcieLinkWidth": lambda c: c.pcie[2],
            "nvmlDeviceGetMaxPcieLinkWidth": lambda c: c.pcie[3],
            "nvmlDeviceGetEccMode": lambda c: c.ecc,
            "nvmlDeviceGetTotalEccErrors": lambda c, kind, counter: c.ecc_uncorrected,
            "nvmlDeviceGetRetiredPagesPendingStatus": lambda c: c.retired_pending,
            "nvmlDeviceGetRemappedRows": lambda c: c.remapped,
            "nvmlDeviceGetPersistenceMode": lambda c: c.persistence,
            "nvmlDeviceGetComputeMode": lambda c: c.compute_mode,
            "nvmlDeviceGetMigMode": lambda c: c.mig,
            "nvmlDeviceGetMaxMigDeviceCount": lambda c: c.mig_slots,
            "nvmlDeviceGetMigDeviceHandleByIndex": mig_handle,
            "nvmlDeviceGetComputeRunningProcesses": lambda c: [object()] * c.processes,
            "nvmlDeviceGetCurrentClocksEventReasons": lambda c: c.reasons,
        }
        for name, fn in table.items():
            if name not in missing:
                setattr(self, name, self._device_call(name, fn))

    def _device_call(self, name, fn):
        def call(handle, *args):
            self.calls.append(name)
            c = handle[0] if isinstance(handle, tuple) else handle
            if c.lost:
                raise real.NVMLError(real.NVML_ERROR_GPU_IS_LOST)
            if name in c.unsupported:
                raise real.NVMLError(NOT_SUPPORTED)
            return fn(handle, *args) if isinstance(handle, tuple) else fn(c, *args)

        return call
