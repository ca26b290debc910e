"""devcheck env on recordings of real machines (and variants of them for failures no machine here can
produce), and for real on this machine, which has no NVIDIA driver."""

import subprocess
import sys

import pynvml
import pytest

from devcheck.commands.env import collect, cpu, nvml
from devcheck.machine.probes.blas import probe as blas_probe
from devcheck.machine.probes.cupy_probe import install_line, wheel_cuda_major
from devcheck.machine.probes.packages import installed
from devcheck.machine.replay import seam
from devcheck.machine.replay.recording import Handle
from devcheck.report import Status
from tests.recordings import GPU0, GPU1, h100, load, nvml_error, two_gpus, variant

NO_DEVICE = "cudaErrorNoDevice: no CUDA-capable device is detected"  # recorded on the H100 with CUDA_VISIBLE_DEVICES=''
# Verbatim from tests/fixtures/public/failures.md section 13.
INSUFFICIENT = "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version"


def run(recording=None, environ=None, **kwargs):
    with seam.replay(recording or h100()):
        return collect(environ=environ or {}, **kwargs)


def status(report, check_id):
    check = report.check(check_id)
    assert check is not None, f"no check {check_id}: {[c.id for c in report.checks]}"
    return check.status


def gpu(report, index=0):
    return report.to_dict()["data"]["gpus"][index]


def without_cupy(recording, why="CuPy not installed"):
    out = variant(recording, why, packages={"nvidia-ml-py": "13.610.43"})
    out.cupy = None
    return out


# --- the real path on this machine ---------------------------------------------------------------


@pytest.fixture
def no_driver():
    """This machine as it is, when it has no NVIDIA driver (NVML's library is not there)."""
    try:
        pynvml.nvmlInit()
        pytest.skip("this machine has an NVIDIA driver")
    except pynvml.NVMLError_LibraryNotFound:
        pass


def test_real_nvml_without_driver_is_a_skip_not_a_failure(no_driver):
    report = collect()
    assert status(report, "nvml.driver") is Status.SKIP
    assert "no NVIDIA driver" in report.check("nvml.driver").summary
    detail = report.check("nvml.driver").detail  # the loader's own words (glibc: "cannot open shared object file")
    assert detail.startswith("dlopen: ") and "libnvidia-ml.so.1" in detail
    assert report.verdict.startswith("GPU compute: not available — no NVIDIA driver installed")
    assert report.ok
    assert collect(require_gpu=True).check("gpu.required").status is Status.FAIL


def test_without_the_driver_library_pynvml_is_never_imported(no_driver):
    """pynvml's import is a fifth of `env`'s own start-up; a machine without libnvidia-ml.so.1 skips it."""
    code = "import sys; from devcheck.commands.env import collect; collect(); print(sorted(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "'numpy'" in result.stdout and "pynvml" not in result.stdout


def test_real_sections_are_filled_from_this_machine():
    data = collect().to_dict()["data"]
    assert data["python"]["version"]["value"].count(".") == 2
    assert data["cpu"]["usable_cpus"]["value"] >= 1
    assert data["numpy"]["numpy"]["value"].startswith("2.")
    assert data["numpy"]["blas_loaded"]["source"] == "threadpoolctl"
    import platform

    assert data["python"]["platform"]["value"] == platform.platform()  # built without its `uname -p`


def test_the_no_driver_recording_replays_as_it_was_recorded():
    """Recorded on a machine without a driver (`devcheck env --record`): NVML's real LibraryNotFound."""
    report = run(load("no-driver"))
    assert status(report, "nvml.driver") is Status.SKIP and status(report, "cupy.installed") is Status.SKIP
    assert "nvmlInit: NVML Shared Library Not Found" in report.check("nvml.driver").detail
    assert report.ok and not run(load("no-driver"), require_gpu=True).ok


# --- the recorded H100 ---------------------------------------------------------------------------


def test_h100_recording_replays_every_field():
    report = run()
    assert report.ok
    assert report.verdict == "GPU compute: ready on 1 GPU(s): cuda:0 (NVIDIA H100 80GB HBM3)"
    g = gpu(report)
    expected = {
        "name": "NVIDIA H100 80GB HBM3",
        "brand": "NVIDIA",  # NVML_BRAND_NVIDIA (14), not "GeForce RTX"
        "compute_capability": "9.0",
        "architecture": "Hopper",
        "vbios_version": "96.00.DA.00.0C",
        "memory_total_mib": 81559,
        "memory_bus_width_bits": 5120,
        "power_limit_w": 700.0,
        "sm_clock_max_mhz": 1980,
        "pcie_generation": 5,
        "pcie_width": 16,
        "pcie_generation_max": 5,
        "pcie_width_max": 16,
        "ecc_mode": "on",
        "ecc_uncorrected_errors_since_boot": 0,
        "mig_mode": "off",
        "persistence_mode": "on",
        "compute_mode": "Default",
        "clock_slowdowns": [],
    }
    assert {k: g[k]["value"] for k in expected} == expected
    assert g["retired_pages_pending"] == {
        "value": None,
        "source": "NVML nvmlDeviceGetRetiredPagesPendingStatus",
        "status": "n/a",
        "note": "not supported on this GPU",
    }
    assert g["cuda_index"] == {"value": 0, "source": "CUDA runtime (CuPy)", "status": "ok"}
    assert status(report, "cupy.kernel") is Status.OK and status(report, "cupy.matmul") is Status.OK
    assert status(report, "gpu0.health") is Status.OK
    cuda = report.to_dict()["data"]["cuda_devices"][0]
    assert (cuda["name"], cuda["compute_capability"], cuda["sms"]) == ("NVIDIA H100 80GB HBM3", "9.0", 132)


def test_h100_replay_through_the_command_line(monkeypatch):
    import json
    import subprocess
    import sys

    path = "tests/fixtures/recordings/h100-sxm.json"
    out = subprocess.run(
        [sys.executable, "-m", "devcheck", "env", "--json"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DEVCHECK_REPLAY": path},
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["verdict"] == "GPU compute: ready on 1 GPU(s): cuda:0 (NVIDIA H100 80GB HBM3)"
    assert doc["data"]["gpus"][0]["brand"]["value"] == "NVIDIA"
    assert any(c["id"] == "machine.replay" and path in c["summary"] for c in doc["checks"])


def test_an_nvml_call_missing_from_a_recording_is_an_error_field_not_a_value():
    h = h100()
    h.nvml = [c for c in h.nvml if c["fn"] != "nvmlDeviceGetMemoryBusWidth"]
    field = gpu(run(h))["memory_bus_width_bits"]
    assert field["status"] == "error" and "not in the recording" in field["note"]


# --- variants for what the recording cannot show (each marked synthetic) --------------------------


def test_geforce_fields_that_nvml_does_not_support_are_na_not_errors():
    # tests/fixtures/public/geforce-rtx4090.txt shows ECC, MIG and remapped rows as N/A.
    unsupported = {"error": nvml_error(pynvml.NVML_ERROR_NOT_SUPPORTED)}
    geforce = h100(
        why="the fields an RTX 4090 dump shows as N/A answered NotSupported; brand GeForce RTX",
        nvml={
            ("nvmlDeviceGetBrand", GPU0): pynvml.NVML_BRAND_GEFORCE_RTX,
            ("nvmlDeviceGetEccMode", GPU0): unsupported,
            ("nvmlDeviceGetMigMode", GPU0): unsupported,
            ("nvmlDeviceGetRemappedRows", GPU0): unsupported,
        },
    )
    report = run(geforce)
    g = gpu(report)
    assert g["ecc_mode"]["status"] == "n/a" and g["ecc_mode"]["note"] == "not supported on this GPU"
    assert g["mig_mode"]["status"] == "n/a" and g["remapped_rows"]["status"] == "n/a"
    assert g["brand"]["value"] == "GeForce RTX"
    assert report.ok and not [c for c in report.checks if c.status is Status.ERROR]


def test_mig_enabled_counts_the_instances():
    mig = h100(
        why="MIG on with 3 instances, as in tests/fixtures/public/a100-sxm4-40gb-mig.xml",
        nvml={
            ("nvmlDeviceGetMigMode", GPU0): (1, 1),
            ("nvmlDeviceGetMaxMigDeviceCount", GPU0): 7,
            **{("nvmlDeviceGetMigDeviceHandleByIndex", GPU0, i): Handle(f"gpu0/mig{i}") for i in range(3)},
        },
    )
    g = gpu(run(mig))
    assert g["mig_mode"]["value"] == "on" and g["mig_instances"]["value"] == 3


def test_a_lost_gpu_is_reported_and_the_others_still_read():
    lost = variant(
        two_gpus(h100()),
        "the second GPU answers GpuIsLost (Xid 79, tests/fixtures/public/failures.md section 7)",
        nvml={("nvmlDeviceGetHandleByIndex", 1): {"error": nvml_error(pynvml.NVML_ERROR_GPU_IS_LOST)}},
        cupy={("cuda.runtime.getDeviceCount",): 1},
    )
    report = run(lost)
    assert status(report, "gpu1.lost") is Status.FAIL
    assert "nvidia-smi -r -i 1" in report.check("gpu1.lost").fix
    assert gpu(report, 1)["state"]["value"] == "lost"
    assert gpu(report, 0)["temperature_c"]["value"] == 42
    assert not report.ok


@pytest.mark.parametrize(
    ("code", "expected", "fix"),
    [
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "installed but not loaded", "modprobe nvidia"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "version mismatch", "reboot"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "no permission", "/dev/nvidia"),
    ],
)
def test_driver_failures_are_told_apart(code, expected, fix):
    broken = h100(
        why=f"nvmlInit fails with NVML error {code} (failures.md sections 1, 3, 8)",
        nvml={("nvmlInit",): {"error": nvml_error(code)}},
        cupy={("is_available",): False, ("cuda.runtime.getDeviceCount",): {"error": {"str": NO_DEVICE}}},
    )
    report = run(broken)
    check = report.check("nvml.driver")
    assert check.status is Status.FAIL and expected in check.summary and fix in check.fix
    assert expected in report.verdict
    assert not report.ok


# --- CuPy, step by step ---------------------------------------------------------------------------


def test_driver_but_no_cupy_prints_the_matching_install_line():
    report = run(without_cupy(h100()))
    check = report.check("cupy.installed")
    assert check.status is Status.WARN and check.fix == 'pip install "cupy-cuda13x[ctk]"'  # driver for CUDA 13.0
    assert report.verdict.endswith('pip install "cupy-cuda13x[ctk]"')
    cuda12 = variant(without_cupy(h100()), "driver for CUDA 12.4", nvml={("nvmlSystemGetCudaDriverVersion_v2",): 12040})
    assert run(cuda12).check("cupy.installed").fix == 'pip install "cupy-cuda12x[ctk]"'


def test_two_cupy_packages_fail_with_the_exact_uninstall_line():
    two = h100(why="two CuPy packages", packages={"cupy-cuda13x": "14.2.0", "cupy-cuda12x": "14.2.0"})
    check = run(two).check("cupy.installed")
    assert check.status is Status.FAIL
    assert check.fix == 'pip uninstall -y cupy-cuda13x cupy-cuda12x && pip install "cupy-cuda13x[ctk]"'


def test_cupy_wheel_newer_than_the_driver_fails():
    old_driver = h100(why="a driver for CUDA 12.4", nvml={("nvmlSystemGetCudaDriverVersion_v2",): 12040})
    check = run(old_driver).check("cupy.installed")
    assert check.status is Status.FAIL and "needs a driver for CUDA 13" in check.summary
    assert "pip uninstall -y cupy-cuda13x" in check.fix


def test_broken_import_is_reported_with_cupys_own_message():
    message = "libcudart.so.12: cannot open shared object file: No such file or directory"
    broken = h100(why="CuPy installed but its import fails")
    broken.cupy = [{"fn": "import", "args": [], "error": {"type": "ImportError", "str": message}}]
    check = run(broken).check("cupy.import")
    assert check.status is Status.FAIL and "libcudart.so.12" in check.detail
    assert "--force-reinstall" in check.fix


@pytest.mark.parametrize(
    ("error", "fix"), [(INSUFFICIENT, "upgrade the NVIDIA driver"), (NO_DEVICE, "CUDA_VISIBLE_DEVICES")]
)
def test_cupy_unavailable_says_why(error, fix):
    unavailable = h100(
        why=f"CuPy answers {error.split(':')[0]}",
        cupy={("is_available",): False, ("cuda.runtime.getDeviceCount",): {"error": {"str": error}}},
    )
    report = run(unavailable)
    check = report.check("cupy.available")
    assert check.status is Status.FAIL and error.split(":")[0] in check.detail and fix in check.fix
    assert report.verdict.startswith("GPU compute: not available — CuPy cannot use any GPU")


def test_nvrtc_and_cublas_failures_are_separate_checks():
    nvrtc = (
        "CuPy failed to load libnvrtc.so.12: OSError: libnvrtc.so.12: cannot open shared object file"  # failures.md 15
    )
    report = run(h100(why="NVRTC missing", faults={"ElementwiseKernel": nvrtc}))
    assert status(report, "cupy.kernel") is Status.FAIL and status(report, "cupy.matmul") is Status.OK
    assert "libnvrtc.so.12" in report.check("cupy.kernel").detail
    report = run(h100(why="cuBLAS fails", faults={"matmul": "CUBLAS_STATUS_NOT_INITIALIZED"}))
    assert status(report, "cupy.matmul") is Status.FAIL and "CUBLAS_STATUS" in report.check("cupy.matmul").detail
    report = run(h100(why="matmul results 0.1% off", faults={"matmul": 1.001}))
    assert "relative error" in report.check("cupy.matmul").detail


def test_runtime_newer_than_driver_fails():
    newer = h100(why="runtime 13.2 on a driver for 12.4", cupy={("cuda.runtime.driverGetVersion",): 12040})
    assert status(run(newer), "cupy.runtime") is Status.FAIL


def test_install_line_and_wheel_major():
    assert install_line(11).startswith("upgrade the NVIDIA driver")
    assert install_line(None).startswith('pip install "cupy-cuda12x[ctk]"')
    assert (wheel_cuda_major("cupy-cuda12x"), wheel_cuda_major("cupy-cuda117"), wheel_cuda_major("cupy")) == (
        12,
        11,
        None,
    )


# --- GPU health checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "args", "value", "check_id", "expected"),
    [
        ("nvmlDeviceGetTotalEccErrors", (1, 0), 4, "gpu0.ecc", Status.FAIL),
        ("nvmlDeviceGetRemappedRows", (), (0, 1, 0, 1), "gpu0.memory", Status.FAIL),
        ("nvmlDeviceGetRemappedRows", (), (0, 1, 1, 0), "gpu0.memory", Status.WARN),
        ("nvmlDeviceGetCurrentClocksEventReasons", (), 0x40, "gpu0.clocks", Status.WARN),
        ("nvmlDeviceGetComputeMode", (), 2, "gpu0.compute_mode", Status.FAIL),
    ],
)
def test_gpu_health_problems(fn, args, value, check_id, expected):
    report = run(h100(why=f"{fn} answers {value}", nvml={(fn, GPU0, *args): value}))
    assert status(report, check_id) is expected
    assert report.check(check_id).fix


def test_retired_pages_pending_on_a_card_that_retires_pages():
    report = run(
        h100(why="a card that retires pages (V100)", nvml={("nvmlDeviceGetRetiredPagesPendingStatus", GPU0): 1})
    )
    assert status(report, "gpu0.memory") is Status.WARN


def test_power_cap_alone_is_not_a_slowdown_warning():
    capped = h100(why="software power cap", nvml={("nvmlDeviceGetCurrentClocksEventReasons", GPU0): 0x4})
    assert run(capped).check("gpu0.clocks") is None


# --- CUDA_VISIBLE_DEVICES -------------------------------------------------------------------------


def visible_run(value, recording=None):
    return run(recording or without_cupy(two_gpus(h100())), environ={"CUDA_VISIBLE_DEVICES": value})


def selected(report):
    return report.to_dict()["data"]["visible"]["selected"]["value"]


def test_visible_devices_empty_hides_every_gpu():
    report = visible_run("")
    assert status(report, "visible.none") is Status.WARN
    assert selected(report) == []


def test_visible_devices_stops_at_an_invalid_entry():
    report = visible_run("1,7,0")
    assert "'7' matches no GPU" in report.check("visible.invalid").summary
    assert selected(report) == ["cuda:0 = GPU 1 (GPU-5e1f0c2a-0000-4000-8000-000000000002, 0000:00:07.0)"]
    assert gpu(report, 1)["cuda_index"]["value"] == 0
    assert gpu(report, 0)["cuda_index"]["status"] == "n/a"


@pytest.mark.parametrize(("value", "hides"), [("GPU-xyz", True), ("7", True), ("1", False), ("0,1", False)])
def test_with_nvml_one_judgement_of_cuda_visible_devices(value, hides):
    """Read as text, GPU-xyz looks like a UUID that limits CUDA to one GPU; NVML knows it matches none.
    Only the judgement against the real GPUs is given, never both (issue 23, item 16)."""
    report = visible_run(value)
    summaries = " ".join(c.summary for c in report.checks)
    assert report.check("envvar.CUDA_VISIBLE_DEVICES") is None and "limits CUDA to" not in summaries
    assert (report.check("visible.none") is not None) is hides
    assert (
        report.check("envvars").status is Status.OK
        and "see the CUDA device selection" in report.check("envvars").summary
    )


def test_without_nvml_cuda_visible_devices_is_read_as_text():
    report = run(load("no-driver"), environ={"CUDA_VISIBLE_DEVICES": "GPU-xyz"})
    assert "limits CUDA to GPU GPU-xyz (as cuda:0)" in report.check("envvar.CUDA_VISIBLE_DEVICES").summary


def test_visible_devices_by_uuid_prefix():
    assert selected(visible_run("GPU-5e1f0c2a-0000-4000-8000-000000000002")) == [
        "cuda:0 = GPU 1 (GPU-5e1f0c2a-0000-4000-8000-000000000002, 0000:00:07.0)"
    ]


def test_visible_devices_0_0_exposes_no_gpu():
    """Recorded on the H100: with CUDA_VISIBLE_DEVICES=0,0 CuPy answers cudaErrorInvalidDevice."""
    invalid = "cudaErrorInvalidDevice: invalid device ordinal"
    recorded = h100(
        why="CuPy's answers with CUDA_VISIBLE_DEVICES='0,0', recorded on the same H100",
        cupy={("is_available",): False, ("cuda.runtime.getDeviceCount",): {"error": {"str": invalid}}},
    )
    report = run(recorded, environ={"CUDA_VISIBLE_DEVICES": "0,0"})
    assert status(report, "visible.duplicate") is Status.FAIL
    assert "CUDA then exposes no GPU at all" in report.check("visible.duplicate").summary
    assert selected(report) == [] and "cuda:0" not in str(selected(report))
    assert gpu(report)["cuda_index"]["status"] == "n/a" or gpu(report)["cuda_index"]["value"] is None
    assert not report.verdict.startswith("GPU compute: ready")
    assert status(visible_run("0,0"), "visible.duplicate") is Status.FAIL  # the same without CuPy


def test_mixed_models_with_indices_warn_about_order():
    mixed = variant(
        without_cupy(two_gpus(h100())),
        "the second GPU is another model",
        nvml={("nvmlDeviceGetName", GPU1): "NVIDIA H100 PCIe"},
    )
    assert status(visible_run("1", mixed), "visible.order") is Status.WARN
    report = run(mixed, environ={"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    assert report.check("visible.order") is None


def test_cupy_bus_ids_are_authoritative_for_cuda_indices():
    swapped = variant(
        two_gpus(h100()),
        "CUDA enumerates the two GPUs the other way round",
        cupy={("Device.pci_bus_id", 0): "0000:00:07.0", ("Device.pci_bus_id", 1): "0000:00:06.0"},
    )
    report = run(swapped)
    assert gpu(report, 0)["cuda_index"]["value"] == 1 and gpu(report, 1)["cuda_index"]["value"] == 0


# --- host side ------------------------------------------------------------------------------------


def test_harmful_variables_warn_and_secrets_never_appear():
    report = run(environ={"CUDA_LAUNCH_BLOCKING": "1", "AWS_SECRET_ACCESS_KEY": "hunter2", "OMP_NUM_THREADS": "4"})
    assert status(report, "envvar.CUDA_LAUNCH_BLOCKING") is Status.WARN
    text = str(report.to_dict())
    assert "hunter2" not in text and "AWS_SECRET" not in text
    assert report.to_dict()["data"]["envvars"]["OMP_NUM_THREADS"]["value"] == "4"


def test_deprecated_pynvml_package_warns_with_the_fix():
    recording = h100(why="the deprecated pynvml package beside nvidia-ml-py")
    recording.packages["pynvml"] = "13.0.1"
    check = run(recording).check("nvml.bindings")
    assert check.status is Status.WARN and check.fix.startswith("pip uninstall -y pynvml")


@pytest.mark.parametrize(
    ("pools", "check_id", "expected"),
    [
        ([{"user_api": "blas", "internal_api": "openblas", "num_threads": 64}], "blas.threads", Status.WARN),
        ([{"user_api": "blas", "internal_api": "netlib", "num_threads": 1}], "blas.library", Status.WARN),
        (
            [
                {"user_api": "blas", "internal_api": "mkl", "num_threads": 2},
                {"user_api": "openmp", "prefix": "libiomp"},
                {"user_api": "openmp", "prefix": "libgomp"},
            ],
            "openmp.runtimes",
            Status.WARN,
        ),
        ([], "blas.library", Status.WARN),
    ],
)
def test_blas_problems(pools, check_id, expected):
    findings = blas_probe(usable_cpus=2, pools=pools)
    check = next(c for c in findings.checks if c.id == check_id)
    assert check.status is expected and check.fix


def test_blas_threads_fix_names_the_right_variable():
    findings = blas_probe(usable_cpus=2, pools=[{"user_api": "blas", "internal_api": "openblas", "num_threads": 64}])
    assert findings.checks[-1].fix == "export OPENBLAS_NUM_THREADS=2"


def test_cpuinfo_parsing_counts_physical_cores():
    text = "".join(
        f"processor\t: {i}\nmodel name\t: Xeon\nphysical id\t: {i // 4}\ncore id\t\t: {i % 2}\n"
        "flags\t\t: fpu avx2 fma avx512f\n\n"
        for i in range(8)
    )
    model, cores, flags = cpu.parse_cpuinfo(text)
    assert (model, cores) == ("Xeon", 4) and {"avx2", "avx512f"} <= flags


def test_cgroup_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cpu.cgroup_cpu_quota(str(tmp_path)) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu.cgroup_cpu_quota(str(tmp_path)) is None


def test_installed_reads_dist_info_names(tmp_path):
    (tmp_path / "cupy_cuda12x-14.2.0.dist-info").mkdir()
    (tmp_path / "nvidia_ml_py-13.615.71.dist-info").mkdir()
    assert installed([str(tmp_path)]) == {"cupy-cuda12x": "14.2.0", "nvidia-ml-py": "13.615.71"}


def test_toolkit_major_differs_from_cupy_runtime(tmp_path):
    nvcc = tmp_path / "bin" / "nvcc"
    nvcc.parent.mkdir()
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 11.8, V11.8.89'\n")
    nvcc.chmod(0o755)
    report = run(environ={"CUDA_HOME": str(tmp_path)})
    assert report.to_dict()["data"]["toolkit"]["nvcc_version"]["value"] == "11.8"
    assert status(report, "toolkit.major") is Status.WARN


def test_an_nvcc_that_prints_bytes_not_text_still_gives_a_report(tmp_path):
    nvcc = tmp_path / "bin" / "nvcc"
    nvcc.parent.mkdir()
    nvcc.write_bytes(b"#!/bin/sh\nprintf 'release 12.4 \\377\\n'\n")
    nvcc.chmod(0o755)
    report = run(environ={"CUDA_HOME": str(tmp_path)})
    assert report.to_dict()["data"]["toolkit"]["nvcc_version"]["value"] == "12.4"


def test_bus_id_normalization():
    assert nvml.normalize_bus_id("00000000:3B:00.0") == nvml.normalize_bus_id("0000:3b:00.0") == "0000:3b:00.0"


def test_a_probe_that_crashes_becomes_an_error_check_and_the_rest_still_comes_out():
    odd = h100(why="NVML memory info without its fields", nvml={("nvmlDeviceGetMemoryInfo", GPU0): 42})
    report = run(odd)
    assert status(report, "gpu0.probe") is Status.ERROR and "AttributeError" in report.check("gpu0.probe").summary
    assert not report.ok and report.to_dict()["data"]["python"] and report.check("cupy.matmul")


def test_long_values_keep_their_full_text_in_json():
    long = "cuda>=12.9 " + "brand=tesla,driver>=535,driver<536 " * 30
    report = run(environ={"NVIDIA_REQUIRE_CUDA": long})
    assert report.to_dict()["data"]["envvars"]["NVIDIA_REQUIRE_CUDA"]["value"] == long


def test_cupy_without_a_driver_replays_cudas_own_reason():
    """Recorded here with the real cupy-cuda12x 14.2 installed and no driver (`devcheck env --record`)."""
    report = run(load("cupy-no-driver"))
    check = report.check("cupy.available")
    assert check.status is Status.SKIP and "cudaErrorInsufficientDriver" in check.detail
    assert report.to_dict()["data"]["cupy"]["cuda_runtime"]["value"] == "12.9"


# --- the install advice compiles for the GPU it is given for (issue 23, item 8) ------------------------------
# CUDA 13's NVRTC refuses -arch=sm_50 to sm_72 (NVIDIA's "Navigating GPU Architecture Support" blog on CUDA
# 13.0): a V100 (7.0) or P100 (6.0) on a driver for CUDA 13 needs cupy-cuda12x, which runs on that driver.


def older_gpu(cc, recording=None):
    return variant(
        recording or h100(),
        f"NVML reports compute capability {cc[0]}.{cc[1]} (a V100 is 7.0, a P100 6.0, a T4 7.5)",
        nvml={("nvmlDeviceGetCudaComputeCapability", GPU0): cc},
        cupy={("Device.compute_capability", 0): f"{cc[0]}{cc[1]}"},
    )


@pytest.mark.parametrize(
    ("cc", "wheel"), [((6, 0), "12"), ((7, 0), "12"), ((7, 2), "12"), ((7, 5), "13"), ((9, 0), "13")]
)
def test_the_cupy_to_install_can_compile_for_the_gpu(cc, wheel):
    fix = run(without_cupy(older_gpu(cc))).check("cupy.installed").fix
    assert fix.startswith(f'pip install "cupy-cuda{wheel}x[ctk]"'), fix
    assert (f"CUDA 13 cannot compile for compute capability {cc[0]}.{cc[1]}" in fix) is (wheel == "12")


@pytest.mark.parametrize(("cc", "fails"), [((7, 0), True), ((7, 5), False)])
def test_cupy_cuda13x_on_a_gpu_cuda_13_cannot_compile_for_fails(cc, fails):
    check = run(older_gpu(cc)).check("cupy.installed")  # the recorded H100 has cupy-cuda13x
    assert (check.status is Status.FAIL) is fails, check
    if fails:
        assert "cannot compile a kernel for compute capability 7.0" in check.summary
        assert check.fix.startswith('pip uninstall -y cupy-cuda13x && pip install "cupy-cuda12x[ctk]"')


def test_install_line_takes_the_oldest_gpu():
    assert install_line(13, (7, 0)).startswith('pip install "cupy-cuda12x[ctk]"')
    assert install_line(13, (7, 5)) == install_line(13) == 'pip install "cupy-cuda13x[ctk]"'
    assert install_line(12, (6, 0)) == 'pip install "cupy-cuda12x[ctk]"'


# --- env says what is set, and what is broken (issue 23, item 11) ------------------------------------------


def test_a_cupy_with_no_package_metadata_that_imports_is_used():
    """A source, conda or copied install has no *.dist-info: it is installed all the same."""
    no_metadata = variant(h100(), "CuPy imports, no package metadata", packages={"nvidia-ml-py": "13.610.43"})
    report = run(no_metadata)
    assert (
        status(report, "cupy.installed") is Status.OK
        and "no package metadata" in report.check("cupy.installed").summary
    )
    assert status(report, "cupy.import") is Status.OK and status(report, "cupy.matmul") is Status.OK


def test_a_broken_cupy_with_no_package_metadata_is_broken_not_missing():
    message = "libcudart.so.12: cannot open shared object file: No such file or directory"
    broken = variant(
        h100(), "a `cupy` folder that fails to import, no package metadata", packages={"nvidia-ml-py": "1"}
    )
    broken.cupy = [{"fn": "import", "args": [], "error": {"type": "ImportError", "str": message}}]
    report = run(broken)
    assert "not installed" not in " ".join(c.summary for c in report.checks) + report.verdict
    assert status(report, "cupy.import") is Status.FAIL and "libcudart.so.12" in report.check("cupy.import").detail
    assert "`python -c 'import cupy'` names its folder" in report.check("cupy.import").fix


def test_without_metadata_or_module_cupy_is_not_installed():
    report = run(without_cupy(h100()))
    assert report.check("cupy.installed").summary.startswith("CuPy is not installed")
    assert report.check("cupy.import") is None


@pytest.mark.parametrize("value", ["", "0", "1"])
def test_a_variable_set_is_never_reported_unset(value):
    from devcheck.machine.probes.envvars import RELEVANT

    environ = {name: value for name in RELEVANT}
    doc = run(environ=environ).to_dict()["data"]
    for name in RELEVANT:
        field = doc["envvars"][name]
        assert field["value"] == value and field["status"] == "ok", (name, field)
        assert (field.get("note") == "set, to the empty string") is (value == "")
    home = doc["toolkit"]["cuda_home"]
    assert home["value"] == value and home["status"] == "ok" and "unset" not in home.get("note", ""), home


@pytest.mark.parametrize(
    ("environ", "value", "note"),
    [
        ({"CUDA_HOME": "/opt/cuda"}, "/opt/cuda", None),
        ({"CUDA_HOME": ""}, "", "set, to the empty string"),
        ({"CUDA_PATH": "/usr/local/cuda"}, "/usr/local/cuda", "CUDA_HOME is unset"),
        ({}, None, "unset, and so is CUDA_PATH"),
    ],
)
def test_cuda_home_as_set(environ, value, note):
    home = run(environ=environ).to_dict()["data"]["toolkit"]["cuda_home"]
    assert home["value"] == value and home.get("note") == note, home


def readme_json_example() -> dict:
    import json
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## JSON") :]
    return json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))


def test_the_readmes_json_example_is_what_a_machine_without_a_driver_reports():
    """Every key of the example, and every check, as this machine without a driver writes them."""
    example = readme_json_example()
    real = run(load("no-driver")).to_dict()
    assert set(example) == set(real)
    for section, fields in example["data"].items():
        for name, field in fields.items():
            got = real["data"][section][name]
            assert set(got) == set(field), (section, name, got)
            assert got["source"] == field["source"] and got["status"] == field["status"], (section, name, got)
    ours = {c["id"]: c for c in real["checks"]}
    for check in example["checks"]:
        assert ours[check["id"]]["status"] == check["status"] and ours[check["id"]]["summary"] == check["summary"]


def test_every_fact_env_reads_is_a_field_and_every_table_a_list_of_records():
    for section in run(load("no-driver")).to_dict()["data"].values():
        if isinstance(section, list):
            assert all(isinstance(row, dict) for row in section)
            continue
        for name, field in section.items():
            assert {"value", "source", "status"} <= set(field), (name, field)
