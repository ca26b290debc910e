"""Checkpoints: nested dicts of tensors and numbers in a NumPy .npz with pickle disabled, so
loading a file never runs code; written to a temporary file and renamed, so a crash never
leaves half a checkpoint behind."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy

from devcheck.engine.backend import Device, get_device
from devcheck.engine.tensor import Tensor

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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            numpy.savez(f, **{_TREE: numpy.array(json.dumps(tree))}, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
