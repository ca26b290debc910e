"""The surface of the real cupy / cupyx / pynvml, and the names devcheck uses from them.

`scripts/snapshot_surface.py` imports this file to write `surface.json` (so the script and the
tests share one definition of "kind"); the tests read the committed snapshot, so they run where
CuPy is not installed. This file imports neither cupy nor pynvml nor devcheck at module level.

kinds: "module", "class" (any type, numpy scalar types such as cupy.float32 included), "callable"
(functions, builtins, methods, ufunc objects: anything callable that is not a class) and "value"
(everything else: constants, dtype instances, properties and other data descriptors on a class).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any, NamedTuple

SURFACE_PATH = Path(__file__).with_name("surface.json")
REPO_ROOT = Path(__file__).resolve().parents[2]

# Modules whose public names are recorded (each imports cheaply and without a GPU).
MODULES = (
    "cupy",
    "cupy.cuda",
    "cupy.cuda.device",
    "cupy.cuda.nccl",
    "cupy.cuda.runtime",
    "cupy.fft",
    "cupy.linalg",
    "cupy.random",
    "cupyx",
    "cupyx.scipy",
    "pynvml",
)
# Classes whose attributes are recorded, by the dotted name devcheck (or a stand-in) reaches them under.
CLASSES = (
    "cupy.ElementwiseKernel",
    "cupy.RawKernel",
    "cupy.RawModule",
    "cupy.cuda.Device",
    "cupy.cuda.Event",
    "cupy.cuda.MemoryPointer",
    "cupy.cuda.PinnedMemoryPointer",
    "cupy.cuda.Stream",
    "cupy.cuda.runtime.CUDARuntimeError",
    "cupy.ndarray",
    "cupy.ufunc",  # type(cupy.add)
    "pynvml.NVMLError",
)
# Module-level dunders worth recording (devcheck reads cupy.__version__).
MODULE_DUNDERS = ("__version__",)
# Dunders that say nothing about the contract: every class has them, or they are bookkeeping of
# how the class was written (Cython, dataclasses, Python classes), not of what it offers.
BOOKKEEPING_DUNDERS = frozenset(
    {
        "__abstractmethods__",
        "__annotations__",
        "__class__",
        "__class_getitem__",
        "__dataclass_fields__",
        "__dataclass_params__",
        "__delattr__",
        "__dict__",
        "__dir__",
        "__doc__",
        "__firstlineno__",
        "__format__",
        "__getattribute__",
        "__getstate__",
        "__init__",
        "__init_subclass__",
        "__match_args__",
        "__module__",
        "__new__",
        "__orig_bases__",
        "__parameters__",
        "__pyx_vtable__",
        "__qualname__",
        "__reduce__",
        "__reduce_ex__",
        "__repr__",
        "__setattr__",
        "__setstate__",
        "__sizeof__",
        "__slots__",
        "__static_attributes__",
        "__str__",
        "__subclasshook__",
        "__weakref__",
    }
)


# --- kinds -------------------------------------------------------------------------------------------


def kind_of(obj: Any) -> str:
    if inspect.ismodule(obj):
        return "module"
    if isinstance(obj, type):
        return "class"
    if callable(obj):
        return "callable"
    return "value"


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4


def module_surface(module: Any) -> dict[str, str]:
    """{public name: kind} of a module, plus the few module dunders in MODULE_DUNDERS. Standard-library
    modules it imported are left out (pynvml's `sys`, `os`, and `util` once anything imported ctypes.util):
    they are not its API, and whether they show depends on what else was imported."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated aliases warn on access
        for name in dir(module):
            if name.startswith("_") and name not in MODULE_DUNDERS:
                continue
            try:
                obj = getattr(module, name)
            except Exception:  # listed by dir() but not really there (a lazy import that fails)
                continue
            if inspect.ismodule(obj) and str(getattr(obj, "__name__", "")).split(".")[0] in sys.stdlib_module_names:
                continue
            out[name] = kind_of(obj)
    return dict(sorted(out.items()))


def class_surface(cls: type) -> dict[str, str]:
    """{attribute: kind} of a class: its public names, and the dunders it (or a base other than
    `object`) defines, less BOOKKEEPING_DUNDERS. Properties and other descriptors are "value"."""
    defined_dunders = {n for klass in cls.__mro__ if klass is not object for n in vars(klass) if _is_dunder(n)}
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in set(dir(cls)) | defined_dunders:
            if _is_dunder(name):
                if name not in defined_dunders or name in BOOKKEEPING_DUNDERS:
                    continue
            elif name.startswith("_"):
                continue
            try:
                out[name] = kind_of(getattr(cls, name))
            except Exception:
                continue
    return dict(sorted(out.items()))


# --- the live modules --------------------------------------------------------------------------------


def live_object(dotted: str) -> Any:
    """The object at a dotted name, importing the longest importable module prefix. Raises
    ImportError / AttributeError when it is not there."""
    parts = dotted.split(".")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj, i = importlib.import_module(parts[0]), 1
        while i < len(parts):
            try:
                obj = importlib.import_module(".".join(parts[: i + 1]))
            except ImportError:
                break
            i += 1
        for part in parts[i:]:
            obj = getattr(obj, part)
    return obj


def live_kind(dotted: str) -> str | None:
    try:
        return kind_of(live_object(dotted))
    except (ImportError, AttributeError):
        return None


def snapshot() -> dict:
    """What scripts/snapshot_surface.py writes, from the installed cupy, cupyx and pynvml."""
    import datetime
    import importlib.metadata as md
    import platform

    modules = {name: module_surface(live_object(name)) for name in MODULES}
    classes = {name: class_surface(live_object(name)) for name in CLASSES}
    # Objects whose attributes are looked up through a recorded class: cupy.add.at is ufunc.at.
    types_ = {id(live_object(name)): name for name in CLASSES}
    instances: dict[str, list[str]] = {}
    for module_name in MODULES:
        module = live_object(module_name)
        for name, kind in modules[module_name].items():
            if kind in ("callable", "value") and id(type(getattr(module, name))) in types_:
                instances.setdefault(types_[id(type(getattr(module, name)))], []).append(f"{module_name}.{name}")
    versions = {}
    for dist in ("cupy-cuda12x", "cupy-cuda13x", "cupy", "nvidia-ml-py", "numpy"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return {
        "about": {
            "versions": versions,
            "python": platform.python_version(),
            "date": datetime.date.today().isoformat(),
            "written_by": "scripts/snapshot_surface.py",
        },
        "modules": modules,
        "classes": classes,
        "instances": {k: sorted(v) for k, v in sorted(instances.items())},
    }


def dumps(surface: dict) -> str:
    return json.dumps(surface, indent=1, sort_keys=True) + "\n"


# --- the committed snapshot --------------------------------------------------------------------------


def load_surface(path: Path | str = SURFACE_PATH) -> dict:
    return json.loads(Path(path).read_text())


def resolve(dotted: str, surface: dict | None = None) -> str | None:
    """The kind of a dotted name according to the snapshot, or None when it is not there.

    "cupy.cuda.runtime.getDeviceCount" -> "callable"; "cupy.cuda.Device.pci_bus_id" -> "value"
    (through the recorded class); "cupy.add.at" -> "callable" (cupy.add is a recorded cupy.ufunc).
    Past an object whose class is not recorded, the answer is None.
    """
    surface = surface if surface is not None else load_surface()
    modules, classes = surface["modules"], surface["classes"]
    instance_of = {name: cls for cls, names in surface.get("instances", {}).items() for name in names}
    parts = dotted.split(".")
    k = next((k for k in range(len(parts), 0, -1) if ".".join(parts[:k]) in modules), 0)
    if not k:
        return None
    if k == len(parts):
        return "module"
    path = ".".join(parts[:k])
    members = modules[path]
    for part in parts[k:]:
        if members is None or part not in members:
            return None
        kind = members[part]
        path = f"{path}.{part}"
        cls = path if path in classes else instance_of.get(path)
        members = classes[cls] if cls else None
    return kind


# --- what devcheck uses ------------------------------------------------------------------------------

NVML_NAME = re.compile(r"^(nvml[A-Z]\w+|NVML_[A-Z0-9_]+|NVMLError\w*)$")
# An attribute with one of these names holds the cupy module: CudaEventClock's `self.cupy`, and a CUDA
# engine Device's `.native` (numpy for the CPU device, whose names numpy has as well).
CUPY_ATTRIBUTES = {"cupy": "cupy", "native": "cupy"}
CUPY_ROOTS = ("cupy", "cupyx")
PREFIX_METHODS = ("startswith", "endswith", "removeprefix", "removesuffix")
# Names written as strings relative to cupy: the recorder's and the stand-in's call names
# ("cuda.runtime.getDeviceCount", "Device.compute_capability") must be real CuPy names too.
CUPY_STRING = re.compile(r"^(cuda(\.[A-Za-z_]\w*)+|Device\.[A-Za-z_]\w*)$")


class Uses(NamedTuple):
    cupy: dict[str, list[str]]  # "cupy.cuda.runtime.getDeviceCount" -> ["devcheck/engine/backend.py:101", ...]
    nvml: dict[str, list[str]]  # "nvmlDeviceGetBrand" -> [...]


def _chain(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """cupy.cuda.runtime.getDevice for that Attribute chain, if it starts at cupy / cupyx (or an alias)."""
    parts = []
    while isinstance(node, ast.Attribute):
        if node.attr in CUPY_ATTRIBUTES and not isinstance(node.value, ast.Attribute):  # self.cupy, device.native
            parts.append(CUPY_ATTRIBUTES[node.attr])
            return ".".join(reversed(parts))
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CUPY_ROOTS:
        parts.append(node.func.attr)  # seam.cupy().cuda.runtime: the seam's function returns the module
        return ".".join(reversed(parts))
    if isinstance(node, ast.Name):
        root = node.id if node.id in CUPY_ROOTS else aliases.get(node.id)
        if root:
            parts.append(root)
            return ".".join(reversed(parts))
    return None


def _aliases(tree: ast.AST) -> dict[str, str]:
    """`runtime = cupy.cuda.runtime`, `native = device.native`: names bound to a cupy chain (file-wide,
    which is enough for devcheck's short functions)."""
    aliases: dict[str, str] = {}
    for _ in range(2):  # an alias of an alias
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                chain = _chain(node.value, aliases) if isinstance(node.value, ast.Attribute) else None
                if chain and node.targets[0].id not in CUPY_ROOTS:
                    aliases[node.targets[0].id] = chain
    return aliases


def names_used_by_devcheck(root: str | Path = "devcheck", exclude: tuple[str, ...] = ()) -> Uses:
    """An AST scan of devcheck's source: every attribute chain read from cupy / cupyx (bare names, the
    aliases above, `hasattr(chain, "name")`, and CUPY_STRING names such as "cuda.runtime.getDevice"),
    and every NVML name written as an attribute or a string (`nvml.NVML_CLOCK_SM`,
    `read("nvmlDeviceGetBrand", h)`). Strings passed to str.startswith() and the like are prefixes,
    not names, and are skipped."""
    root = Path(root)
    if not root.is_absolute():
        root = REPO_ROOT / root
    cupy_uses: dict[str, set[str]] = {}
    nvml_uses: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else str(path)
        if any(rel.endswith(e) for e in exclude):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        aliases = _aliases(tree)
        inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        prefixes = {  # name.startswith(("nvmlClocks", ...)): prefixes, not names
            id(c)
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in PREFIX_METHODS
            for a in n.args
            for c in ast.walk(a)
        }
        for node in ast.walk(tree):
            where = f"{rel}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Attribute):
                if NVML_NAME.match(node.attr):
                    nvml_uses.setdefault(node.attr, set()).add(where)
                if id(node) not in inner and isinstance(node.ctx, ast.Load):
                    chain = _chain(node, aliases)
                    if chain:
                        cupy_uses.setdefault(chain, set()).add(where)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prefixes:
                if NVML_NAME.match(node.value):
                    nvml_uses.setdefault(node.value, set()).add(where)
                elif CUPY_STRING.match(node.value):
                    name = ("cupy.cuda." if node.value.startswith("Device.") else "cupy.") + node.value
                    cupy_uses.setdefault(name, set()).add(where)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("hasattr", "getattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
            ):
                chain = _chain(node.args[0], aliases)
                if chain:
                    cupy_uses.setdefault(f"{chain}.{node.args[1].value}", set()).add(where)

    def done(uses: dict[str, set[str]]) -> dict[str, list[str]]:
        return {name: sorted(where) for name, where in sorted(uses.items())}

    return Uses(done(cupy_uses), done(nvml_uses))


def device_attributes_used(root: str | Path = "devcheck") -> dict[str, list[str]]:
    """Attributes read on names bound to `cupy.cuda.Device(...)` in the same function (`gpu = ...`,
    `with cupy.cuda.Device(i) as device`). Objects passed between functions are not followed."""
    root = Path(root)
    if not root.is_absolute():
        root = REPO_ROOT / root
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else str(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        aliases = _aliases(tree)
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            bound = set()
            for node in ast.walk(fn):
                calls = []
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    calls.append((node.targets[0].id, node.value))
                elif isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name):
                    calls.append((node.optional_vars.id, node.context_expr))
                for name, value in calls:
                    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
                        if _chain(value.func, aliases) == "cupy.cuda.Device":
                            bound.add(name)
            for node in ast.walk(fn):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound:
                    found.setdefault(node.attr, set()).add(f"{rel}:{node.lineno}")
    return {name: sorted(where) for name, where in sorted(found.items())}
