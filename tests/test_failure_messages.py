"""Each real failure message in tests/fixtures/public/failures.md that devcheck can meet: recognised,
explained, and given its fix (issue 16). One test per message, on a variant of a real recording.

NVML errors are raised from their code (nvidia-ml-py builds the exception, and its text, from the code),
so for those the test names the verbatim message and checks devcheck's summary and fix for that code.
Errors that carry their own text (CuPy's CUDARuntimeError, NVRTC load failures) carry the verbatim text.
"""

import pynvml

from devcheck.commands.env import collect
from devcheck.machine.replay import seam
from devcheck.report import Status
from tests.recordings import GPU0, h100, load, nvml_error, variant

NO_DEVICE = "cudaErrorNoDevice: no CUDA-capable device is detected"  # recorded on the H100 itself


def run(recording):
    with seam.replay(recording):
        return collect(environ={})


def nvml_init_fails(code, section):
    return h100(
        why=f"nvmlInit fails with NVML error {code} (failures.md section {section}); CuPy then sees no device",
        nvml={("nvmlInit",): {"error": nvml_error(code)}},
        cupy={("is_available",): False, ("cuda.runtime.getDeviceCount",): {"error": {"str": NO_DEVICE}}},
    )


def driver_check(report, status):
    check = report.check("nvml.driver")
    assert check.status is status, check
    return check


# --- 1, 10: Driver/library version mismatch -------------------------------------------------------


def test_driver_library_version_mismatch():
    """ "Failed to initialize NVML: Driver/library version mismatch" (NVML_ERROR_LIB_RM_VERSION_MISMATCH)."""
    check = driver_check(run(nvml_init_fails(pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, 1)), Status.FAIL)
    assert "driver/library version mismatch" in check.summary.lower()
    assert check.fix.startswith("reboot") and "modprobe nvidia" in check.fix


# --- 2: NVML Shared Library Not Found --------------------------------------------------------------


def test_nvml_shared_library_not_found():
    """ "pynvml.NVMLError_LibraryNotFound: NVML Shared Library Not Found": recorded for real here."""
    report = run(variant(load("no-driver"), "failures.md section 2: the real recording of this message"))
    check = driver_check(report, Status.SKIP)
    assert check.detail == "nvmlInit: NVML Shared Library Not Found"
    assert "libnvidia-ml.so.1 not found" in check.summary and "install the NVIDIA driver" in check.fix
    assert "--gpus all" in check.fix


# --- 3: Insufficient Permissions -----------------------------------------------------------------------


def test_insufficient_permissions_at_init():
    """ "NVMLError_NoPermission: Insufficient Permissions" from nvmlInit (Datadog agent)."""
    check = driver_check(run(nvml_init_fails(pynvml.NVML_ERROR_NO_PERMISSION, 3)), Status.FAIL)
    assert check.detail == "nvmlInit: Insufficient Permissions"
    assert "no permission" in check.summary and "/dev/nvidia*" in check.fix


def test_insufficient_permissions_for_memory_info_on_a_mig_device_in_a_container():
    """ "pynvml.NVMLError_NoPermission: Insufficient Permissions" from nvmlDeviceGetMemoryInfo, in a
    container given a MIG device: the memory fields are n/a with why, and nothing fails."""
    mig = h100(
        why="MIG on; nvmlDeviceGetMemoryInfo answers NoPermission (failures.md section 3, container-toolkit #842)",
        nvml={
            ("nvmlDeviceGetMigMode", GPU0): (1, 1),
            ("nvmlDeviceGetMemoryInfo", GPU0): {"error": nvml_error(pynvml.NVML_ERROR_NO_PERMISSION)},
        },
    )
    report = run(mig)
    field = report.to_dict()["data"]["gpus"][0]["memory_total_mib"]
    assert field["status"] == "n/a" and "MIG device" in field["note"]
    assert report.check("gpu0.health").status is Status.OK


# --- 4: Unable to determine the device handle ... Unknown Error -------------------------------------


def test_unable_to_determine_the_device_handle_unknown_error():
    """ "Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error" (and the Windows
    "Unable to detect the device handle", "nvmlDeviceGetHandleByIndex(): Unknown Error")."""
    broken = h100(
        why="nvmlDeviceGetHandleByIndex(0) answers Unknown Error (failures.md section 4)",
        nvml={("nvmlDeviceGetHandleByIndex", 0): {"error": nvml_error(pynvml.NVML_ERROR_UNKNOWN)}},
    )
    report = run(broken)
    check = report.check("gpu0.unreachable")
    assert check.status is Status.FAIL and "Unknown Error" in check.summary
    assert "Unable to determine the device handle" in check.detail
    assert "dmesg" in check.fix and "reseat" in check.fix and "container" in check.fix
    assert report.check("gpu0.health") is None and not report.ok


def test_unable_to_determine_the_device_handle_gpu_is_lost():
    """ "Unable to determine the device handle for GPU 0000:02:00.0: GPU is lost. Reboot the system to
    recover this GPU" (NVML_ERROR_GPU_IS_LOST from nvmlDeviceGetHandleByIndex)."""
    lost = h100(
        why="nvmlDeviceGetHandleByIndex(0) answers GpuIsLost (failures.md section 4)",
        nvml={("nvmlDeviceGetHandleByIndex", 0): {"error": nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)}},
    )
    check = run(lost).check("gpu0.lost")
    assert check.status is Status.FAIL and "reboot" in check.fix


# --- 5, 7: fallen off the bus, GPU is lost ------------------------------------------------------------


def test_fallen_off_the_bus_seen_as_remapped_rows_gpu_is_lost():
    """ "failed to get remapped rows for GPU-...: failed to get device remapped rows: ERROR_GPU_IS_LOST"
    after "NVRM: Xid (PCI:0000:44:00): 79, GPU has fallen off the bus"."""
    lost = h100(
        why="nvmlDeviceGetRemappedRows answers GpuIsLost mid-read (failures.md section 5)",
        nvml={("nvmlDeviceGetRemappedRows", GPU0): {"error": nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)}},
    )
    report = run(lost)
    check = report.check("gpu0.lost")
    assert check.status is Status.FAIL and "fallen off the bus" in check.detail and "Xid 79" in check.detail
    assert "nvidia-smi -r -i 0" in check.fix
    assert report.to_dict()["data"]["gpus"][0]["state"]["value"] == "lost"


def test_gpu_is_lost_from_get_handle_by_index():
    """ "NVMLError_GpuIsLost: GPU is lost" from nvmlDeviceGetHandleByIndex (nvgpu), as Slurm's
    "NVML: Failed to get usage(15): GPU is lost": code 15 on the second GPU, the first still read."""
    assert str(pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)) == "GPU is lost"
    lost = h100(
        why="GPU 0's handle answers GpuIsLost (failures.md section 7)",
        nvml={("nvmlDeviceGetHandleByIndex", 0): {"error": nvml_error(15)}},
    )
    report = run(lost)
    assert report.check("gpu0.lost").status is Status.FAIL
    assert "is lost: it stopped answering the driver" in report.check("gpu0.lost").summary


# --- 8: Driver Not Loaded ------------------------------------------------------------------------------


def test_driver_not_loaded():
    """ "pynvml.NVMLError_DriverNotLoaded: Driver Not Loaded" (kernel module not loaded, e.g. after a
    kernel upgrade with a .run-installed driver)."""
    check = driver_check(run(nvml_init_fails(pynvml.NVML_ERROR_DRIVER_NOT_LOADED, 8)), Status.FAIL)
    assert check.detail == "nvmlInit: Driver Not Loaded"
    assert "installed but not loaded" in check.summary
    assert "modprobe nvidia" in check.fix and "kernel upgraded" in check.fix and "reinstall" in check.fix


# --- 9: Not Supported --------------------------------------------------------------------------------


def test_not_supported_power_usage_is_na_not_an_error():
    """ "NVMLError_NotSupported" from nvmlDeviceGetPowerUsage on a GeForce GTX 1050 Ti."""
    unsupported = h100(
        why="nvmlDeviceGetPowerUsage answers NotSupported (failures.md section 9)",
        nvml={("nvmlDeviceGetPowerUsage", GPU0): {"error": nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)}},
    )
    report = run(unsupported)
    field = report.to_dict()["data"]["gpus"][0]["power_draw_w"]
    assert field == {
        "value": None,
        "source": "NVML nvmlDeviceGetPowerUsage",
        "status": "n/a",
        "note": "not supported on this GPU",
    }
    assert report.ok


# --- 11: Failed to initialize NVML: Unknown Error (in a container) -------------------------------------


def test_failed_to_initialize_nvml_unknown_error_in_a_container():
    """ "Failed to initialize NVML: Unknown Error" inside a container after `systemctl daemon-reload`."""
    check = driver_check(run(nvml_init_fails(pynvml.NVML_ERROR_UNKNOWN, 11)), Status.FAIL)
    assert check.detail == "nvmlInit: Unknown Error"
    assert "container" in check.summary and "daemon-reload" in check.summary
    assert "restart it" in check.fix and "nvidia-ctk system create-dev-char-symlinks" in check.fix


# --- 13, 14: CuPy's CUDA runtime errors ------------------------------------------------------------------


def cupy_unavailable(text, section):
    return h100(
        why=f"CuPy answers {text.split(':')[0]} (failures.md section {section}, verbatim)",
        cupy={("is_available",): False, ("cuda.runtime.getDeviceCount",): {"error": {"str": text}}},
    )


def test_cuda_error_insufficient_driver():
    text = "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version"
    report = run(cupy_unavailable(text, 13))
    check = report.check("cupy.available")
    assert check.status is Status.FAIL and check.detail == f"CUDARuntimeError: {text}"
    assert check.fix == 'pip install "cupy-cuda13x[ctk]"  (or upgrade the NVIDIA driver)'
    assert report.verdict.startswith("GPU compute: not available — CuPy cannot use any GPU")


def test_cuda_error_no_device():
    text = "cudaErrorNoDevice: no CUDA-capable device is detected"
    check = run(cupy_unavailable(text, 14)).check("cupy.available")
    assert check.status is Status.FAIL and check.detail == f"CUDARuntimeError: {text}"
    assert "CUDA_VISIBLE_DEVICES" in check.fix and "--gpus all" in check.fix


# --- 15: CuPy failed to load libnvrtc ---------------------------------------------------------------------


def nvrtc_missing(text, wheel):
    return h100(
        why=f"the kernel step raises {text[:40]}... (failures.md section 15, verbatim); {wheel} installed",
        faults={"ElementwiseKernel": text},
        packages={wheel: "13.0.0", "nvidia-ml-py": "13.610.43"},
    )


def test_cupy_failed_to_load_libnvrtc_so_12():
    text = (
        "CuPy failed to load libnvrtc.so.12: OSError: libnvrtc.so.12: "
        "cannot open shared object file: No such file or directory"
    )
    report = run(nvrtc_missing(text, "cupy-cuda12x"))
    check = report.check("cupy.kernel")
    assert check.status is Status.FAIL and check.detail == f"cuda:0: RuntimeError: {text}"
    assert check.fix.startswith('pip install "cupy-cuda12x[ctk]"  (brings NVRTC)')  # the wheel installed, not 13
    assert report.check("cupy.matmul").status is Status.OK


def test_cupy_failed_to_load_libnvrtc_so_13():
    text = (
        "CuPy failed to load libnvrtc.so.13: OSError: libnvrtc.so.13: "
        "cannot open shared object file: No such file or directory"
    )
    check = run(nvrtc_missing(text, "cupy-cuda13x")).check("cupy.kernel")
    assert check.status is Status.FAIL and "libnvrtc.so.13" in check.detail
    assert check.fix.startswith('pip install "cupy-cuda13x[ctk]"  (brings NVRTC)')


def test_cupy_failed_to_load_nvrtc_dll_on_windows():
    text = (
        "CuPy failed to load nvrtc64_120_0.dll: FileNotFoundError: Could not find module 'nvrtc64_120_0.dll' "
        "(or one of its dependencies). Try using the full path with constructor syntax."
    )
    check = run(nvrtc_missing(text, "cupy-cuda12x")).check("cupy.kernel")
    assert check.status is Status.FAIL and "nvrtc64_120_0.dll" in check.detail
    assert check.fix.startswith('pip install "cupy-cuda12x[ctk]"')


# --- 16: multiple CuPy packages -----------------------------------------------------------------------------


def test_multiple_cupy_packages_installed():
    """CuPy's import warning "CuPy may not function correctly because multiple CuPy packages are installed
    in your environment: cupy-cuda12x, cupy-cuda13x": devcheck finds it before importing CuPy."""
    two = h100(
        why="cupy-cuda12x and cupy-cuda13x both installed (failures.md section 16)",
        packages={"cupy-cuda12x": "14.2.0", "cupy-cuda13x": "14.2.0", "nvidia-ml-py": "13.610.43"},
    )
    report = run(two)
    check = report.check("cupy.installed")
    assert check.status is Status.FAIL and check.summary.endswith("cupy-cuda12x, cupy-cuda13x")
    assert check.fix == 'pip uninstall -y cupy-cuda12x cupy-cuda13x && pip install "cupy-cuda13x[ctk]"'
    assert report.check("cupy.import") is None  # stopped before importing a broken mix
