"""Write devcheck/machine/replay/standin/names.py: the CuPy names the stand-in offers, taken from the snapshot of
the real CuPy (tests/contract/surface.json, written by scripts/snapshot_surface.py), so the stand-in
can only offer names the real module has.

    python scripts/standin_names.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy

ROOT = Path(__file__).resolve().parents[1]


def shared(surface: dict, module: str, numpy_module: object, kinds: tuple[str, ...]) -> list[str]:
    return sorted(
        name
        for name, kind in surface["modules"][module].items()
        if kind in kinds and hasattr(numpy_module, name) and not isinstance(getattr(numpy_module, name), type(numpy))
    )


def main() -> None:
    surface = json.loads((ROOT / "tests/contract/surface.json").read_text())
    cupy_callables = shared(surface, "cupy", numpy, ("callable",))
    ufuncs = [n for n in cupy_callables if isinstance(getattr(numpy, n), numpy.ufunc)]
    functions = [n for n in cupy_callables if n not in ufuncs]
    classes = shared(surface, "cupy", numpy, ("class",))
    values = shared(surface, "cupy", numpy, ("value",))
    methods = sorted(
        n
        for n, kind in surface["classes"]["cupy.ndarray"].items()
        if kind == "callable" and not n.startswith("_") and callable(getattr(numpy.ndarray, n, None))
    )
    groups = {
        "UFUNCS": ufuncs,
        "FUNCTIONS": functions,
        "NUMPY_CLASSES": classes,
        "NUMPY_VALUES": values,
        "LINALG": shared(surface, "cupy.linalg", numpy.linalg, ("callable",)),
        "FFT": shared(surface, "cupy.fft", numpy.fft, ("callable",)),
        "NDARRAY_METHODS": methods,
    }
    import textwrap

    version = surface["about"]["versions"].get("cupy-cuda12x", "?")
    lines = [
        f'"""CuPy names the stand-in offers, from the snapshot of the real CuPy {version}.',
        "",
        "Written by scripts/standin_names.py; do not edit.",
        '"""',
        "",
    ]
    for name, values_ in groups.items():
        body = textwrap.wrap(" ".join(values_), 100, break_on_hyphens=False)
        lines += [f"{name} = (", *(f'    "{line} "' for line in body), ").split()", ""]
    text = "\n".join(lines)
    (ROOT / "devcheck/machine/replay/standin/names.py").write_text(text)
    print({k: len(v) for k, v in groups.items()})


if __name__ == "__main__":
    main()
