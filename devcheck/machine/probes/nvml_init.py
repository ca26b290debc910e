"""Why NVML would not start, told apart, each with what to type: the first thing `devcheck env` says on
a machine whose driver is missing, not loaded, upgraded without a reboot, or out of reach."""

from __future__ import annotations

from devcheck.report import Check, Status

LIBRARY_NOT_FOUND = 12  # NVML_ERROR_LIBRARY_NOT_FOUND, without importing pynvml
_FAILURES = {
    # NVML error code: (status, summary, fix)
    LIBRARY_NOT_FOUND: (
        Status.SKIP,
        "no NVIDIA driver installed (NVML library libnvidia-ml.so.1 not found)",
        "install the NVIDIA driver; in a container, start it with `--gpus all` (NVIDIA Container Toolkit)",
    ),
    9: (
        Status.FAIL,
        "the NVIDIA driver is installed but not loaded",
        "`sudo modprobe nvidia` (`dmesg | grep -i nvidia` says why not: Secure Boot, or a kernel upgraded since "
        "the driver was installed: reinstall it)",
    ),
    18: (
        Status.FAIL,
        "driver/library version mismatch: the driver was upgraded without a reboot",
        "reboot, or reload the kernel modules: "
        "`sudo rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia && sudo modprobe nvidia`",
    ),
    4: (
        Status.FAIL,
        "no permission to talk to the NVIDIA driver (/dev/nvidia*)",
        "add your user to the group that owns /dev/nvidia* (often `video`), or fix the device node permissions",
    ),
    999: (
        Status.FAIL,
        "NVML failed to initialise: Unknown Error (a container loses its GPUs so after `systemctl daemon-reload`)",
        "in a container: restart it (`sudo nvidia-ctk system create-dev-char-symlinks --create-all` on the host stops "
        "it recurring); not in a container: check `dmesg | grep NVRM` and reboot",
    ),
}


def init_failure(code: int | None, call: str, error: str) -> Check:
    """The check for NVML error `code` at start-up, with the failing call and its own words."""
    status, summary, fix = _FAILURES.get(code, (Status.ERROR, f"NVML failed to initialise: {error}", ""))
    return Check("nvml.driver", status, summary, detail=f"{call}: {error}", fix=fix)
