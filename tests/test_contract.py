"""Contract tests: every name devcheck uses from cupy / cupyx / pynvml exists on the real modules, and
every name a stand-in offers exists there with the same kind.

They read the committed snapshot tests/contract/surface.json (written by scripts/snapshot_surface.py
from the real cupy-cuda12x and nvidia-ml-py), so they run where CuPy is not installed; pynvml is a
dependency, so NVML names are also checked on the live module. Where the real CuPy is importable,
the snapshot itself is checked against it (.ci/run does that in a venv of its own).
"""

from __future__ import annotations

import types

import pytest

from tests.contract import surface as contract

# Attributes devcheck reads on objects the scan cannot follow (a Device handed to another function,
# arrays returned by cupy calls). Keep in step with devcheck; the Device list is also scanned.
DEVICE_ATTRIBUTES = (
    "compute_capability",
    "attributes",
    "pci_bus_id",
    "mem_info",
    "synchronize",
    "id",
    "use",
    "__enter__",  # `with cupy.cuda.Device(i):`
    "__exit__",
)
NDARRAY_ATTRIBUTES = ("get", "set", "device", "__getitem__", "__matmul__", "__array_ufunc__", "__array_function__")
EVENT_ATTRIBUTES = ("record", "synchronize")  # bench/timing.py: CudaEventClock
UFUNC_ATTRIBUTES = ("at", "reduce", "__call__")


@pytest.fixture(scope="module")
def snapshot() -> dict:
    return contract.load_surface()


@pytest.fixture(scope="module")
def uses() -> contract.Uses:
    return contract.names_used_by_devcheck("devcheck")


def _where(places: list[str]) -> str:
    return ", ".join(places[:3]) + (f" (+{len(places) - 3})" if len(places) > 3 else "")


# --- the snapshot ------------------------------------------------------------------------------------


def test_snapshot_is_well_formed(snapshot):
    kinds = {"module", "class", "callable", "value"}
    assert set(snapshot) >= {"about", "modules", "classes"}
    assert {"cupy", "cupy.cuda", "cupy.cuda.runtime", "cupyx", "pynvml"} <= set(snapshot["modules"])
    for group in ("modules", "classes"):
        for owner, members in snapshot[group].items():
            assert members, f"{group}[{owner!r}] is empty"
            assert list(members) == sorted(members), f"{group}[{owner!r}] is not sorted"
            bad = {n: k for n, k in members.items() if k not in kinds}
            assert not bad, f"{group}[{owner!r}] has unknown kinds: {bad}"
    assert snapshot["about"]["versions"].get("nvidia-ml-py")
    assert any(d.startswith("cupy") for d in snapshot["about"]["versions"])


def test_snapshot_records_cupy_as_it_is(snapshot):
    """The facts a CuPy stand-in must copy: these are what broke on the first real GPU run."""
    ndarray = snapshot["classes"]["cupy.ndarray"]
    assert "__array_namespace__" not in ndarray  # CuPy 14.2's ndarray has none (cupy.array_api is gone)
    for name in ("__array__", "__array_ufunc__", "__array_function__", "__dlpack__", "__getitem__"):
        assert ndarray.get(name) == "callable", name
    assert snapshot["modules"]["cupy"]["float32"] == "class"  # numpy's scalar type
    assert snapshot["modules"]["cupy"]["add"] == "callable"  # a cupy.ufunc object
    assert "cupy.add" in snapshot["instances"]["cupy.ufunc"]


def test_resolve(snapshot):
    assert contract.resolve("cupy", snapshot) == "module"
    assert contract.resolve("cupy.cuda.runtime", snapshot) == "module"
    assert contract.resolve("cupy.cuda.runtime.getDeviceCount", snapshot) == "callable"
    assert contract.resolve("cupy.cuda.Device", snapshot) == "class"
    assert contract.resolve("cupy.cuda.Device.pci_bus_id", snapshot) == "value"
    assert contract.resolve("cupy.add.at", snapshot) == "callable"
    assert contract.resolve("cupy.no_such_name", snapshot) is None
    assert contract.resolve("cupy.asnumpy.whatever", snapshot) is None
    assert contract.resolve("torch.cuda", snapshot) is None
    assert contract.resolve("pynvml.nvmlInit", snapshot) == "callable"


def test_kind_of():
    import numpy

    assert contract.kind_of(types) == "module"
    assert contract.kind_of(numpy.float32) == "class"
    assert contract.kind_of(numpy.add) == "callable"
    assert contract.kind_of(len) == "callable"
    assert contract.kind_of(numpy.dtype("float32")) == "value"
    assert contract.kind_of(numpy.pi) == "value"
    assert contract.kind_of(property(lambda self: 1)) == "value"


# --- what devcheck uses ------------------------------------------------------------------------------


def test_the_scan_finds_what_devcheck_uses(uses):
    """Guards the scanner itself: names known to be in devcheck's source must be found."""
    for name in ("cupy.cuda.runtime.getDeviceCount", "cupy.asnumpy", "cupy.cuda.Device", "cupy.add.at"):
        assert name in uses.cupy, name
    for name in ("nvmlInit", "nvmlDeviceGetBrand", "NVML_CLOCK_SM", "NVMLError"):
        assert name in uses.nvml, name


def test_every_cupy_name_devcheck_uses_exists(snapshot, uses):
    missing = [
        f"{name} ({_where(places)})" for name, places in uses.cupy.items() if not contract.resolve(name, snapshot)
    ]
    assert not missing, "not on the real cupy/cupyx (per tests/contract/surface.json):\n  " + "\n  ".join(missing)


def test_every_nvml_name_devcheck_uses_exists(snapshot, uses):
    import pynvml

    recorded = snapshot["modules"]["pynvml"]
    missing = [f"{name} ({_where(places)})" for name, places in uses.nvml.items() if name not in recorded]
    assert not missing, "not in nvidia-ml-py's pynvml (per the snapshot):\n  " + "\n  ".join(missing)
    missing = [f"{name} ({_where(places)})" for name, places in uses.nvml.items() if not hasattr(pynvml, name)]
    assert not missing, f"not on the installed pynvml ({pynvml.__file__}):\n  " + "\n  ".join(missing)


@pytest.mark.parametrize(
    "cls, names",
    [
        ("cupy.cuda.Device", DEVICE_ATTRIBUTES),
        ("cupy.ndarray", NDARRAY_ATTRIBUTES),
        ("cupy.cuda.Event", EVENT_ATTRIBUTES),
        ("cupy.ufunc", UFUNC_ATTRIBUTES),
    ],
)
def test_every_attribute_devcheck_reads_exists(snapshot, cls, names):
    names = set(names)
    if cls == "cupy.cuda.Device":
        names |= set(contract.device_attributes_used("devcheck"))
    members = snapshot["classes"][cls]
    missing = sorted(n for n in names if n not in members)
    assert not missing, f"{cls} has no {', '.join(missing)} on the real CuPy"


# --- stand-ins ---------------------------------------------------------------------------------------


def standin_class_problems(class_name: str, standin_cls: type, snapshot: dict) -> dict[str, str]:
    """{dotted name: what is wrong} for every attribute of the stand-in class that the real class
    (per the snapshot) lacks or has with another kind."""
    real = snapshot["classes"][class_name]
    where = f"{standin_cls.__module__}.{standin_cls.__qualname__}"
    return {
        f"{class_name}.{name}": f"stand-in {where} has a {kind}; the real {class_name} "
        + (f"has a {real[name]}" if name in real else "has no such attribute")
        for name, kind in contract.class_surface(standin_cls).items()
        if real.get(name) != kind
    }


def standin_problems(module_name: str, standin: types.ModuleType, snapshot: dict) -> dict[str, str]:
    """{dotted name: what is wrong} for every public name of the stand-in module that the real module
    (per the snapshot) lacks or has with another kind; stand-in classes and objects whose real class
    is recorded (cupy.ndarray, cupy.add's cupy.ufunc...) are checked attribute by attribute too."""
    if module_name not in snapshot["modules"]:
        return {
            module_name: "the snapshot does not record this module: add it to MODULES in "
            "tests/contract/surface.py and rerun scripts/snapshot_surface.py"
        }
    real = snapshot["modules"][module_name]
    offered = contract.module_surface(standin)
    problems = {
        f"{module_name}.{name}": f"the stand-in has a {kind}; the real module "
        + (f"has a {real[name]}" if name in real else "has no such name")
        for name, kind in offered.items()
        if real.get(name) != kind
    }
    instance_of = {name: cls for cls, names in snapshot.get("instances", {}).items() for name in names}
    checked: set[tuple[str, type]] = set()
    for name, kind in offered.items():
        dotted, obj = f"{module_name}.{name}", getattr(standin, name)
        # An object is checked through its type only when the stand-in wrote that type (a plain function
        # standing in for a ufunc offers no ufunc attributes, and a function's own are not the point).
        cls_name, cls = (dotted, obj) if kind == "class" else (instance_of.get(dotted), type(obj))
        if kind != "class" and cls.__module__ == "builtins":
            continue
        if cls_name in snapshot["classes"] and (cls_name, cls) not in checked:
            checked.add((cls_name, cls))
            problems |= standin_class_problems(cls_name, cls, snapshot)
    return problems


def _report(problems: dict[str, str], what: str) -> None:
    lines = "\n  ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
    assert not problems, f"{what} differs from the real module:\n  {lines}"


def assert_standin_matches(module_name: str, standin: types.ModuleType, snapshot: dict | None = None) -> None:
    """Every public name the stand-in module offers exists on the real module with the same kind."""
    problems = standin_problems(module_name, standin, snapshot or contract.load_surface())
    lines = "\n  ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
    assert not problems, f"stand-in for {module_name} differs from the real one:\n  {lines}"


def assert_standin_class_matches(class_name: str, standin_cls: type, snapshot: dict | None = None) -> None:
    """Every attribute the stand-in class offers exists on the real class with the same kind."""
    problems = standin_class_problems(class_name, standin_cls, snapshot or contract.load_surface())
    lines = "\n  ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
    assert not problems, f"stand-in for {class_name} differs from the real one:\n  {lines}"


def test_cupy_standin_offers_only_real_names(snapshot):
    from devcheck.machine.replay import standin

    modules = standin.MODULES
    assert "cupy" in modules, f"the stand-in's modules: {sorted(modules)}"
    problems = {}
    for name, module in sorted(modules.items()):
        problems |= standin_problems(name, module, snapshot)
    _report(problems, "the CuPy stand-in")


def test_nvml_replay_offers_only_real_names(snapshot):
    import pynvml

    from devcheck.machine.replay.nvml_replay import nvml_module
    from devcheck.machine.replay.recording import Recording

    replay = nvml_module(Recording())
    problems = standin_problems("pynvml", replay, snapshot)
    live = contract.module_surface(pynvml)
    for name, kind in contract.module_surface(replay).items():
        if live.get(name) != kind and f"pynvml.{name}" not in problems:
            problems[f"pynvml.{name}"] = f"the replay has a {kind}; the installed pynvml has {live.get(name)}"
    _report(problems, "the NVML replay")


def test_the_checkers_catch_a_wrong_standin(snapshot):
    fake = types.ModuleType("cupy")
    fake.asnumpy = lambda a: a  # right
    fake.float32 = lambda x: x  # wrong kind: a class on the real CuPy
    fake.not_in_cupy = 1  # not there at all

    class ndarray:  # noqa: N801
        device = property(lambda self: None)  # right: a property, as on CuPy

        def __array_namespace__(self):  # CuPy 14.2 has none
            return None

    fake.ndarray = ndarray
    problems = standin_problems("cupy", fake, snapshot)
    assert set(problems) == {"cupy.float32", "cupy.not_in_cupy", "cupy.ndarray.__array_namespace__"}, problems
    with pytest.raises(AssertionError, match="cupy.float32"):
        assert_standin_matches("cupy", fake, snapshot)
    with pytest.raises(AssertionError, match="__array_namespace__"):
        assert_standin_class_matches("cupy.ndarray", ndarray, snapshot)


# --- the snapshot against the real CuPy (where it is installed) ----------------------------------------


def test_snapshot_matches_the_installed_cupy(snapshot, uses):
    """Every name devcheck uses has the same kind in the snapshot as on the installed CuPy; with the
    snapshot's own CuPy version installed, the whole snapshot must be what the script writes now."""
    pytest.importorskip("cupy")
    import importlib.metadata as md

    stale = [
        f"{name}: snapshot {contract.resolve(name, snapshot)}, installed {contract.live_kind(name)}"
        for name in uses.cupy
        if contract.resolve(name, snapshot) != contract.live_kind(name)
    ]
    for cls, names in (("cupy.cuda.Device", DEVICE_ATTRIBUTES), ("cupy.ndarray", NDARRAY_ATTRIBUTES)):
        for name in names:
            recorded, live = snapshot["classes"][cls].get(name), contract.live_kind(f"{cls}.{name}")
            if recorded != live:
                stale.append(f"{cls}.{name}: snapshot {recorded}, installed {live}")
    assert not stale, "tests/contract/surface.json is stale; rerun scripts/snapshot_surface.py:\n  " + "\n  ".join(
        stale
    )

    fresh = contract.snapshot()

    def apis(about: dict) -> dict:  # numpy's version does not change cupy's or pynvml's names
        return {k: v for k, v in about["versions"].items() if k != "numpy"}

    if apis(fresh["about"]) != apis(snapshot["about"]):
        pytest.skip(
            f"installed {apis(fresh['about'])}, snapshot of {apis(snapshot['about'])}: "
            "the names devcheck uses agree; the rest is compared only between the same versions"
        )
    for group in ("modules", "classes", "instances"):
        for owner in sorted(set(fresh[group]) | set(snapshot[group])):
            old, new = snapshot[group].get(owner), fresh[group].get(owner)
            assert old == new, f"{group}[{owner!r}] differs from the installed CuPy: rerun scripts/snapshot_surface.py"
    assert md.version("nvidia-ml-py") == snapshot["about"]["versions"]["nvidia-ml-py"]
