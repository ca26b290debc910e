"""devcheck env on modelled cards and failures (fakes at the NVML/CuPy boundary), and for real
on this machine, which has no NVIDIA driver."""

import pynvml
import pytest

from devcheck.env import collect, cpu, nvml
from devcheck.env.blas import probe as blas_probe
from devcheck.env.cupy_probe import install_line, wheel_cuda_major
from devcheck.env.packages import installed
from devcheck.report import Status
from tests.fakes.cupy import INSUFFICIENT_DRIVER, NO_DEVICE, FakeCupy
from tests.fakes.nvml import A100_MIG, GEFORCE, H100, FakeNVML, card

BASE_DISTS = {"nvidia-ml-py": "13.615.71", "numpy": "2.4.6"}
CUPY = {**BASE_DISTS, "cupy-cuda12x": "14.2.0"}


def as_cupy(*cards):
    return [(c.name, f"{c.cc[0]}{c.cc[1]}", c.bus_id[4:], c.memory_mib[0] * 2**20) for c in cards]


def run(cards=(H100,), dists=CUPY, environ=None, cupy=None, **nvml_kw):
    fake_cupy = cupy if cupy is not None else FakeCupy(as_cupy(*cards))
    return collect(
        environ=environ or {}, nvml_module=FakeNVML(list(cards), **nvml_kw), cupy_loader=lambda: fake_cupy, dists=dists
    )


def status(report, check_id):
    check = report.check(check_id)
    assert check is not None, f"no check {check_id}: {[c.id for c in report.checks]}"
    return check.status


def gpu(report, index=0):
    return report.to_dict()["data"]["gpus"][index]


# --- the real path on this machine ---------------------------------------------------------------


def test_real_nvml_without_driver_is_a_skip_not_a_failure():
    try:
        pynvml.nvmlInit()
        pytest.skip("this machine has an NVIDIA driver")
    except pynvml.NVMLError_LibraryNotFound:
        pass
    report = collect(dists=BASE_DISTS)
    assert status(report, "nvml.driver") is Status.SKIP
    assert "no NVIDIA driver" in report.check("nvml.driver").summary
    assert report.verdict.startswith("GPU compute: not available — no NVIDIA driver installed")
    assert report.ok
    assert collect(require_gpu=True, dists=BASE_DISTS).check("gpu.required").status is Status.FAIL


def test_real_sections_are_filled_from_this_machine():
    data = collect(dists=BASE_DISTS).to_dict()["data"]
    assert data["python"]["version"]["value"].count(".") == 2
    assert data["cpu"]["usable CPUs"]["value"] >= 1
    assert data["numpy"]["numpy"]["value"].startswith("2.")
    assert data["numpy"]["BLAS loaded"]["source"] == "threadpoolctl"


# --- modelled cards -------------------------------------------------------------------------------


def test_h100_ready_with_every_field():
    report = run()
    assert report.ok
    assert report.verdict == "GPU compute: ready on 1 GPU(s): cuda:0 (NVIDIA H100 80GB HBM3)"
    g = gpu(report)
    assert g["compute capability"]["value"] == "9.0"
    assert g["architecture"]["value"] == "Hopper"
    assert g["memory total MiB"]["value"] == 81559
    assert g["power limit W"]["value"] == 700.0
    assert g["PCIe width max"]["value"] == 16
    assert g["ECC uncorrected errors (since boot)"]["value"] == 0
    assert g["CUDA index"] == {"value": 0, "source": "CUDA runtime (CuPy)", "status": "ok"}
    assert status(report, "cupy.kernel") is Status.OK and status(report, "cupy.matmul") is Status.OK
    assert status(report, "gpu0.health") is Status.OK


def test_geforce_unsupported_fields_are_na_not_errors():
    report = run([GEFORCE])
    g = gpu(report)
    assert g["ECC mode"]["status"] == "n/a" and g["ECC mode"]["note"] == "not supported on this GPU"
    assert g["MIG mode"]["status"] == "n/a"
    assert g["remapped rows"]["status"] == "n/a"
    assert g["brand"]["value"] == "GeForce"
    assert report.ok and not [c for c in report.checks if c.status is Status.ERROR]


def test_a100_with_mig_enabled():
    g = gpu(run([A100_MIG]))
    assert g["MIG mode"]["value"] == "on"
    assert g["MIG instances"]["value"] == 3
    assert g["utilization %"]["status"] == "n/a"


def test_function_missing_from_an_old_driver_is_na():
    report = run(missing=frozenset({"nvmlDeviceGetMemoryBusWidth"}))
    assert gpu(report)["memory bus width bits"]["status"] == "n/a"
    assert report.ok


def test_a_lost_gpu_is_reported_and_the_others_still_read():
    second = card(H100, uuid="GPU-ffff", bus_id="00000000:2B:00.0", lost=True)
    report = run([H100, second], cupy=FakeCupy(as_cupy(H100)))
    assert status(report, "gpu1.lost") is Status.FAIL
    assert "nvidia-smi -r -i 1" in report.check("gpu1.lost").fix
    assert gpu(report, 1)["state"]["value"] == "lost"
    assert gpu(report, 0)["temperature C"]["value"] == 34
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
    report = run(init_error=code, cupy=FakeCupy(as_cupy(H100), error=NO_DEVICE))
    check = report.check("nvml.driver")
    assert check.status is Status.FAIL and expected in check.summary and fix in check.fix
    assert expected in report.verdict
    assert not report.ok


def test_library_not_found_is_no_driver():
    report = run(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, dists=BASE_DISTS)
    assert status(report, "nvml.driver") is Status.SKIP
    assert status(report, "cupy.installed") is Status.SKIP
    assert report.ok


# --- CuPy, step by step ---------------------------------------------------------------------------


def test_driver_but_no_cupy_prints_the_matching_install_line():
    report = run(dists=BASE_DISTS, cuda=12040)
    check = report.check("cupy.installed")
    assert check.status is Status.WARN and check.fix == 'pip install "cupy-cuda12x[ctk]"'
    assert report.verdict.endswith('pip install "cupy-cuda12x[ctk]"')
    assert "cupy-cuda13x" in run(dists=BASE_DISTS, cuda=13000).check("cupy.installed").fix


def test_two_cupy_packages_fail_with_the_exact_uninstall_line():
    report = run(dists={**CUPY, "cupy-cuda11x": "13.6.0"})
    check = report.check("cupy.installed")
    assert check.status is Status.FAIL
    assert check.fix == 'pip uninstall -y cupy-cuda12x cupy-cuda11x && pip install "cupy-cuda12x[ctk]"'


def test_cupy_wheel_newer_than_the_driver_fails():
    check = run(dists={**BASE_DISTS, "cupy-cuda13x": "14.2.0"}, cuda=12040).check("cupy.installed")
    assert check.status is Status.FAIL and "needs a driver for CUDA 13" in check.summary
    assert "pip uninstall -y cupy-cuda13x" in check.fix


def test_broken_import():
    def broken():
        raise ImportError("libcudart.so.12: cannot open shared object file: No such file or directory")

    report = collect(environ={}, nvml_module=FakeNVML([H100]), cupy_loader=broken, dists=CUPY)
    check = report.check("cupy.import")
    assert check.status is Status.FAIL and "libcudart.so.12" in check.detail
    assert "--force-reinstall" in check.fix


@pytest.mark.parametrize(
    ("error", "fix"), [(INSUFFICIENT_DRIVER, "upgrade the NVIDIA driver"), (NO_DEVICE, "CUDA_VISIBLE_DEVICES")]
)
def test_cupy_unavailable_says_why(error, fix):
    report = run(cupy=FakeCupy(as_cupy(H100), error=error))
    check = report.check("cupy.available")
    assert check.status is Status.FAIL and error.split(":")[0] in check.detail and fix in check.fix
    assert report.verdict.startswith("GPU compute: not available — CuPy cannot use any GPU")


def test_nvrtc_and_cublas_failures_are_separate_checks():
    report = run(cupy=FakeCupy(as_cupy(H100), nvrtc_error="nvrtc: libnvrtc.so.12 not found"))
    assert status(report, "cupy.kernel") is Status.FAIL and status(report, "cupy.matmul") is Status.OK
    report = run(cupy=FakeCupy(as_cupy(H100), cublas_error="libcublas.so.12: cannot open shared object file"))
    assert status(report, "cupy.matmul") is Status.FAIL and "libcublas" in report.check("cupy.matmul").detail
    report = run(cupy=FakeCupy(as_cupy(H100), wrong_matmul=True))
    assert "relative error" in report.check("cupy.matmul").detail


def test_runtime_newer_than_driver_fails():
    report = run(cupy=FakeCupy(as_cupy(H100), runtime=13000, driver=12040))
    assert status(report, "cupy.runtime") is Status.FAIL


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
    ("changes", "check_id", "expected"),
    [
        ({"ecc_uncorrected": 4}, "gpu0.ecc", Status.FAIL),
        ({"remapped": (0, 1, 0, 1)}, "gpu0.memory", Status.FAIL),
        ({"remapped": (0, 1, 1, 0)}, "gpu0.memory", Status.WARN),
        ({"retired_pending": 1}, "gpu0.memory", Status.WARN),
        ({"reasons": 0x40}, "gpu0.clocks", Status.WARN),
        ({"compute_mode": 2}, "gpu0.compute_mode", Status.FAIL),
    ],
)
def test_gpu_health_problems(changes, check_id, expected):
    report = run([card(H100, **changes)])
    assert status(report, check_id) is expected
    assert report.check(check_id).fix


def test_power_cap_alone_is_not_a_slowdown_warning():
    assert run([card(H100, reasons=0x4)]).check("gpu0.clocks") is None


# --- CUDA_VISIBLE_DEVICES -------------------------------------------------------------------------

TWO = [H100, card(H100, uuid="GPU-0000aaaa-1111", bus_id="00000000:2B:00.0")]


def visible_run(value, cards=TWO, **env):
    return collect(
        environ={"CUDA_VISIBLE_DEVICES": value, **env},
        nvml_module=FakeNVML(cards),
        cupy_loader=lambda: FakeCupy([]),
        dists=BASE_DISTS,
    )


def selected(report):
    return report.to_dict()["data"]["visible"]["selected"]["value"]


def test_visible_devices_empty_hides_every_gpu():
    report = visible_run("")
    assert status(report, "visible.none") is Status.WARN
    assert selected(report) == []


def test_visible_devices_stops_at_an_invalid_entry():
    report = visible_run("1,7,0")
    assert "'7' matches no GPU" in report.check("visible.invalid").summary
    assert selected(report) == ["cuda:0 = GPU 1 (GPU-0000aaaa-1111, 0000:2b:00.0)"]
    assert gpu(report, 1)["CUDA index"]["value"] == 0
    assert gpu(report, 0)["CUDA index"]["status"] == "n/a"


def test_visible_devices_by_uuid_prefix_and_duplicates():
    assert selected(visible_run("GPU-0000aaaa")) == ["cuda:0 = GPU 1 (GPU-0000aaaa-1111, 0000:2b:00.0)"]
    assert status(visible_run("0,0"), "visible.duplicate") is Status.WARN


def test_mixed_models_with_indices_warn_about_order():
    mixed = [H100, card(GEFORCE, bus_id="00000000:2B:00.0")]
    assert status(visible_run("1", cards=mixed), "visible.order") is Status.WARN
    assert visible_run("1", cards=mixed, CUDA_DEVICE_ORDER="PCI_BUS_ID").check("visible.order") is None


def test_cupy_bus_ids_are_authoritative_for_cuda_indices():
    cards = [H100, card(H100, uuid="GPU-2", bus_id="00000000:2B:00.0")]
    report = run(cards, cupy=FakeCupy(as_cupy(cards[1], cards[0])))  # CUDA enumerates them the other way round
    assert gpu(report, 0)["CUDA index"]["value"] == 1 and gpu(report, 1)["CUDA index"]["value"] == 0


# --- host side ------------------------------------------------------------------------------------


def test_harmful_variables_warn_and_secrets_never_appear():
    report = run(environ={"CUDA_LAUNCH_BLOCKING": "1", "AWS_SECRET_ACCESS_KEY": "hunter2", "OMP_NUM_THREADS": "4"})
    assert status(report, "envvar.CUDA_LAUNCH_BLOCKING") is Status.WARN
    text = str(report.to_dict())
    assert "hunter2" not in text and "AWS_SECRET" not in text
    assert report.to_dict()["data"]["envvars"]["OMP_NUM_THREADS"]["value"] == "4"


def test_deprecated_pynvml_package_warns_with_the_fix():
    check = run(dists={**CUPY, "pynvml": "13.0.1"}).check("nvml.bindings")
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
    assert report.to_dict()["data"]["toolkit"]["nvcc version"]["value"] == "11.8"
    assert status(report, "toolkit.major") is Status.WARN


def test_bus_id_normalization():
    assert nvml.normalize_bus_id("00000000:3B:00.0") == nvml.normalize_bus_id("0000:3b:00.0") == "0000:3b:00.0"


def test_a_crashing_probe_becomes_an_error_check(monkeypatch):
    monkeypatch.setattr(cpu, "probe", lambda: 1 / 0)
    report = run()
    assert status(report, "cpu.probe") is Status.ERROR
    assert not report.ok and report.to_dict()["data"]["python"]
