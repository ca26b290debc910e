"""User kernels. An ElementwiseKernel runs its operation as Python over NumPy arrays when the C body
is also valid Python (`y = 2 * x + 1`), with CuPy's argument and type rules (_kernel.pyx
_decide_params_type_core); a RawKernel is CUDA C, which only NVRTC and a GPU can run."""

from __future__ import annotations

from typing import Any

import numpy

from devcheck.machine.standin.arrays import ndarray, unwrap, wrap
from devcheck.machine.standin.state import COUNTS, fault, faulty, scaled

# CUDA's math functions by their C names; its float max and min are fmax and fmin, which return the
# other operand where one is nan (numpy.maximum would return the nan).
_MATH = {n: getattr(numpy, n) for n in ("sqrt", "exp", "log", "tanh", "abs", "fabs", "fmax", "fmin")}
_MATH |= {"max": numpy.fmax, "min": numpy.fmin}


def _params(text: str) -> list[tuple[str, str]]:
    """ "float32 x, T y, raw T z" -> [("float32", "x"), ("T", "y"), ("T", "z")]."""
    out = []
    for part in (p.split() for p in text.split(",") if p.strip()):
        words = [w for w in part if w != "raw"]
        out.append((words[0], words[-1]))
    return out


def _fixed(type_name: str) -> numpy.dtype | None:
    """float32 -> its dtype; a placeholder (T, U, ...: one capital letter) -> None."""
    if len(type_name) == 1 and type_name.isupper():
        return None
    return numpy.dtype(type_name)


class ElementwiseKernel:
    def __init__(self, in_params: str, out_params: str, operation: str, name: str = "kernel", **kwargs: Any):
        self.ins, self.outs = _params(in_params), _params(out_params)
        self.nin, self.nout, self.nargs = len(self.ins), len(self.outs), len(self.ins) + len(self.outs)
        self.operation, self.name = operation, name
        try:
            statements = [line.strip() for line in operation.split(";") if line.strip()]
            self._code = compile("\n".join(statements), name, "exec")
        except SyntaxError as e:
            raise NotImplementedError(
                f"the CuPy stand-in runs only operations that are also valid Python: {e}"
            ) from None

    def _bind(self, args: list[Any]) -> dict[str, numpy.dtype]:
        bound: dict[str, numpy.dtype] = {}
        for (type_name, param), value in zip(self.ins + self.outs, args):
            if not isinstance(value, ndarray):
                continue
            want = _fixed(type_name) or bound.setdefault(type_name, value.dtype)
            if value.dtype != want:
                raise TypeError(f"Type is mismatched. {param} {value.dtype} {want}")
        return bound

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) not in (self.nin, self.nargs):
            raise TypeError(
                f"Wrong number of arguments for {self.name!r}. "
                f"It must be either {self.nin} or {self.nargs} (with outputs), but given {len(args)}."
            )
        bound = self._bind(list(args))
        ins = [unwrap(a) for a in args[: self.nin]]
        shape = numpy.broadcast_shapes(*(numpy.shape(a) for a in ins))
        outs = list(args[self.nin :])
        for type_name, _ in self.outs[len(outs) :]:
            dtype = _fixed(type_name) or bound.get(type_name)
            if dtype is None:
                raise TypeError(f"Cannot determine the type of output {type_name!r} of {self.name!r}")
            outs.append(wrap(numpy.empty(shape, dtype)))
        scope = {"__builtins__": {}, **_MATH}
        for (type_name, p), a in zip(self.ins, ins):  # a host scalar becomes its parameter's C type, as in CuPy
            scalar = not isinstance(a, numpy.ndarray)
            scope[p] = (_fixed(type_name) or bound[type_name]).type(a) if scalar else a
        scope.update({p: unwrap(o).copy() for (_, p), o in zip(self.outs, outs)})  # outputs too: on this device
        COUNTS["launches"] += 1
        faulty("ElementwiseKernel", None)
        with numpy.errstate(all="ignore"):  # a kernel's 0/0 is nan, silently, as on a GPU
            exec(self._code, scope)
        scale = fault(self.name)  # a synthetic recording's fault on this kernel, once per launch
        for (_, p), o in zip(self.outs, outs):
            o._a[...] = scaled(numpy.asarray(scope[p], o.dtype), scale)
        return outs[0] if len(outs) == 1 else tuple(outs)


class RawKernel:
    """CUDA C needs NVRTC and a GPU: the stand-in refuses it the way a broken NVRTC would."""

    def __init__(self, code: str, name: str, options: tuple = (), **kwargs: Any):
        self.code, self.name = code, name

    def __call__(self, grid: Any, block: Any, args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"the CuPy stand-in cannot compile CUDA C (kernel {self.name!r}) without a GPU")
