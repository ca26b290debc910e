import pytest


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch):
    """Typer/Rich force colour on GitHub Actions (GITHUB_ACTIONS, FORCE_COLOR): keep output plain and wide."""
    for name in ("GITHUB_ACTIONS", "FORCE_COLOR", "PY_COLORS", "CUDA_VISIBLE_DEVICES", "CUPY_TF32"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("_TYPER_FORCE_DISABLE_TERMINAL", "1")
    monkeypatch.setenv("TERMINAL_WIDTH", "200")
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture(scope="session", autouse=True)
def simulated_device():
    from tests import simdevice

    return simdevice.register()


@pytest.fixture(params=["cpu", "sim"])
def device(request):
    """Every engine test that takes `device` runs on the CPU and on the simulated GPU."""
    return request.param


@pytest.fixture(params=["cpu", "sim", "cuda"])
def fused_device(request):
    """The three ways an op with fused kernels (engine/fused.py) runs. cpu: NumPy (Adam's in-place
    version, the rest generic); sim: the generic code; cuda: the fused ElementwiseKernels, over the
    CuPy stand-in of the recorded H100, which runs each operation as written."""
    if request.param != "cuda":
        yield request.param
        return
    from devcheck.machine.replay import seam
    from tests.recordings import h100

    with seam.replay(h100()):
        yield "cuda:0"


@pytest.fixture
def null_device(tmp_path_factory):
    """A null device of the test's own (character device 1,3, as /dev/null): a test of what devcheck writes
    to a device must never risk the machine's /dev/null, which a wrong writer (a mutant, a regression)
    running as root would replace with a regular file, breaking every program after it."""
    import os
    import stat

    null = tmp_path_factory.mktemp("dev") / "null"  # a folder of its own: the test's tmp_path stays as it was
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device file needs root")
    return null
