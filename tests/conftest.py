from typing import NamedTuple

import pytest


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch):
    plain(monkeypatch)


def plain(monkeypatch, columns: int = 200) -> None:
    """Typer/Rich force colour on GitHub Actions (GITHUB_ACTIONS, FORCE_COLOR): keep output plain and wide,
    and the GPU selection and TF32 as on a machine where nobody set them."""
    for name in ("GITHUB_ACTIONS", "FORCE_COLOR", "PY_COLORS", "CUDA_VISIBLE_DEVICES", "CUPY_TF32"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"_TYPER_FORCE_DISABLE_TERMINAL": "1", "TERMINAL_WIDTH": "200"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", str(columns))


@pytest.fixture(scope="session", autouse=True)
def one_blas_thread():
    """NumPy's BLAS on one thread, here and in the devcheck processes tests start: the suite's matrices are
    small, and a BLAS that spreads each over two cores another process also uses spends its time waiting
    (one test took 0.3 s or 5.8 s by the load beside it). Tests of the BLAS probe give it its pools."""
    from threadpoolctl import threadpool_limits

    with pytest.MonkeyPatch.context() as mp, threadpool_limits(limits=1, user_api="blas"):
        for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
            mp.setenv(name, "1")
        yield


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


@pytest.fixture
def gpu():
    """The recorded H100, replayed at the NVML/CuPy seam: `auto` is the CPU and cuda:0, the engine's real
    CUDA device over the CuPy stand-in."""
    from devcheck.machine.replay import seam
    from tests.recordings import h100

    with seam.replay(h100()):
        yield


class Ran(NamedTuple):
    doc: dict  # its --json-file
    text: str  # its table, on stderr


@pytest.fixture(scope="session")
def bench_on_h100(tmp_path_factory) -> Ran:
    """bench's everyday cases on the recorded H100 and the CPU, run once per pytest process (seconds, most
    of them the copy case's arrays, 4x the H100's L2), at 80 columns. Tests read it, never change it
    (copy.deepcopy what you alter); --max-time is a bound, not a target."""
    import json

    from devcheck.machine.replay import seam
    from tests.cli import BENCH_ON_H100, invoke
    from tests.recordings import h100

    out = tmp_path_factory.mktemp("bench") / "bench.json"
    with pytest.MonkeyPatch.context() as mp, seam.replay(h100()):
        plain(mp, columns=80)
        result = invoke(*BENCH_ON_H100, "--json-file", out)
    assert result.exit_code == 0, result.output
    return Ran(json.loads(out.read_text()), result.stderr)


@pytest.fixture(scope="session")
def check_on_h100() -> dict:
    """`devcheck check --budget 5s --device cuda --json` of the recorded H100, made once per pytest process:
    a fleet's reports are made from it (every step runs in 5 s on one replayed GPU, the stress window too).
    Tests never change it (copy.deepcopy what you alter)."""
    import json

    from devcheck.machine.replay import seam
    from tests.cli import invoke
    from tests.recordings import h100

    with pytest.MonkeyPatch.context() as mp, seam.replay(h100()):
        plain(mp)
        result = invoke("check", "--budget", "5s", "--device", "cuda", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)
