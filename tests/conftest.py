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
