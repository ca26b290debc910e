"""Checkpoints: nested dicts of tensors and numbers in a NumPy .npz with pickle disabled, so
loading a file never runs code; written to a temporary file and renamed, so a crash never
leaves half a checkpoint behind."""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy

from devcheck.engine.backend import Device, get_device
from devcheck.engine.tensor import Tensor

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks, so no temporary is ever judged stale
    fcntl = None

_TREE = "__devcheck_tree__"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: missing, truncated, corrupt, or carrying pickled objects."""


def save(obj: Any, path: str | os.PathLike) -> None:
    arrays: dict[str, numpy.ndarray] = {}

    def encode(value: Any) -> Any:
        if isinstance(value, dict):
            return {"dict": {str(k): encode(v) for k, v in value.items()}}
        if isinstance(value, list | tuple):
            return {"list": [encode(v) for v in value]}
        if isinstance(value, Tensor) or hasattr(value, "__array__") and not isinstance(value, str):
            key = f"a{len(arrays)}"
            arrays[key] = value.numpy() if isinstance(value, Tensor) else numpy.asarray(value)
            if arrays[key].dtype == object:
                raise TypeError("save() stores numbers and arrays only, not Python objects")
            return {"array": key, "tensor": isinstance(value, Tensor)}
        if value is None or isinstance(value, bool | int | float | str):
            return {"value": value}
        raise TypeError(
            f"save() cannot store a {type(value).__name__}: use tensors, arrays, numbers, str, lists, dicts"
        )

    tree = encode(obj)
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ValueError(f"save(): {str(path)!r} exists and is not a regular file; refusing to replace it")
    remove_stale_temporaries(path)
    fd, tmp = _locked_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            numpy.savez(f, **{_TREE: numpy.array(json.dumps(tree))}, **arrays)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)  # while the temporary is still locked: see remove_stale_temporaries
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _flock(fd: int, blocking: bool) -> bool:
    """An exclusive advisory lock on fd; False when another process holds it (or locks are not supported)."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def _same_file(fd: int, path: str | os.PathLike) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except OSError:
        return False


def _locked_temporary(path: Path) -> tuple[int, str]:
    """A new `.NAME.PID.XXXXXXXX.tmp` beside `path`, locked (flock) for as long as save() writes it: the
    lock, released by the kernel when the writer dies, even by kill -9, is what tells a live
    temporary from a stale one."""
    for _ in range(5):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        _flock(fd, blocking=True)
        if fcntl is None or _same_file(fd, tmp):  # not removed as stale between mkstemp and flock
            return fd, tmp
        os.close(fd)
    raise OSError(f"save(): temporaries beside {str(path)!r} keep disappearing")


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries a killed save() of `path` left behind (`.NAME.[PID.]XXXXXXXX.tmp`). One
    is stale when no process holds its lock: a live writer holds it from creation to rename, and the
    kernel drops the lock of a dead one. Where locks do not work, nothing is removed."""
    path, removed = Path(path), []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+\.)?[A-Za-z0-9_]{{8}}\.tmp")
    try:
        names = [n for n in os.listdir(path.parent) if pattern.fullmatch(n)]
    except OSError:
        return removed
    for name in names:
        tmp = path.parent / name
        try:
            fd = os.open(tmp, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _flock(fd, blocking=False) and _same_file(fd, tmp):
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def load(path: str | os.PathLike, device: str | Device = "cpu") -> Any:
    """Read a checkpoint written by save(), tensors landing on `device`."""
    target, path = get_device(device), Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # every .npz is a zip archive
            raise CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupt (not an .npz archive)")
    try:
        with numpy.load(path, allow_pickle=False) as npz:
            tree = json.loads(str(npz[_TREE]))
            arrays = {name: npz[name] for name in npz.files if name != _TREE}
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise CheckpointError(f"checkpoint {str(path)!r} holds pickled objects; refusing to load it") from None
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt: {e}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupt ({type(e).__name__}: {e})") from None

    def decode(node: Any) -> Any:
        try:
            if "dict" in node:
                return {k: decode(v) for k, v in node["dict"].items()}
            if "list" in node:
                return [decode(v) for v in node["list"]]
            if "array" in node:
                array = arrays[node["array"]]
                return Tensor(target.from_host(array), target) if node["tensor"] else array
            return node["value"]
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"checkpoint {str(path)!r} has a damaged index ({e})") from None

    return decode(tree)
