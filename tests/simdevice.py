"""The simulated non-CPU device: array-api-strict's Device("device1"). Like CuPy it refuses
implicit conversion to NumPy and refuses mixing arrays of two devices, so every GPU code path
of the engine runs in CI. Registered as "sim"; users never see it."""

import array_api_strict as xp
import numpy

from devcheck.engine import backend

NAME = "sim"
_DEVICE, _CPU = xp.Device("device1"), xp.Device("CPU_DEVICE")


def register() -> backend.Device:
    device = backend.Device(
        name=NAME,
        xp=xp,
        from_host=lambda a: xp.asarray(numpy.asarray(a), device=_DEVICE),
        to_host=lambda a: numpy.asarray(a.to_device(_CPU)),
        owns=lambda a: type(a) is type(xp.empty(0)) and a.device == _DEVICE,
        scatter_add=None,  # the standard has none: the engine's matmul fallback runs
    )
    backend.register(device)
    return device
