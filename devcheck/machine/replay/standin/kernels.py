"""User kernels. An ElementwiseKernel runs its operation as Python over NumPy arrays when the C body
is also valid Python (`y = 2 * x + 1`, `y = table[i]`), with CuPy 14.2's argument, shape and type
rules and messages (cupy/_core/_kernel.pyx ElementwiseKernel, _broadcast, _decide_params_type_core,
_get_out_args_with_params); a RawKernel is CUDA C, which only NVRTC and a GPU can run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy

from devcheck.machine.replay.standin.arrays import broadcast, ndarray, operand, wrap
from devcheck.machine.replay.standin.state import COUNTS, fault, faulty, scaled

# CUDA's math functions by their C names; its float max and min are fmax and fmin, which return the
# other operand where one is nan (numpy.maximum would return the nan).
_MATH = {n: getattr(numpy, n) for n in ("sqrt", "exp", "log", "tanh", "abs", "fabs", "fmax", "fmin")}
_MATH |= {"max": numpy.fmax, "min": numpy.fmin}
_KERNEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z_0-9]*$")  # cupy/cuda/compiler.py is_valid_kernel_name


@dataclass(frozen=True)
class _Param:
    """One of "float32 x", "T y", "raw T z" (_kernel.pyx ParameterInfo)."""

    name: str
    dtype: numpy.dtype | None  # None: a placeholder (one letter), bound by the arguments
    ctype: str
    raw: bool


def _params(text: str) -> tuple[_Param, ...]:
    if len(text) == 0:
        return ()
    out = []
    for part in text.strip().split(","):
        words = part.split()
        if len(words) < 2:
            raise Exception(f"Syntax error: {part}")
        for word in words[:-2]:
            if word not in ("raw", "_non_const"):
                raise Exception(f'Unknown keyword "{word}"')
        ctype, name = words[-2:]
        out.append(_Param(name, None if len(ctype) == 1 else numpy.dtype(ctype), ctype, "raw" in words[:-2]))
    return tuple(out)


def _dtype(value: Any) -> numpy.dtype | None:
    """What _kernel.pyx reads of an argument's type: an array's dtype, a scalar's for an output
    (CScalar.dtype), None for a scalar input (it binds no placeholder)."""
    return value.dtype if isinstance(value, ndarray) else numpy.asarray(value).dtype


def _decide(params: tuple[_Param, ...], dtypes: list, bound: dict[str, numpy.dtype]) -> None:
    """_decide_params_type_core, one side: fixed types must match, placeholders bind on first sight."""
    for p, a in zip(params, dtypes):
        if a is None:
            continue
        if p.dtype is not None:
            if a != p.dtype:
                raise TypeError(f"Type is mismatched. {p.name} {a} {p.dtype}")
        elif p.ctype in bound:
            if bound[p.ctype] != a:
                raise TypeError(f"Type is mismatched. {p.name} {a} {bound[p.ctype]} {p.ctype}")
        else:
            bound[p.ctype] = a


def _loop_shape(args: list[Any], params: tuple[_Param, ...], size: int) -> tuple[int, ...]:
    """_broadcast: the non-raw arrays, inputs and outputs together, give the loop's shape; `size`
    gives it only where every array is raw."""
    arrays = [a if isinstance(a, ndarray) and not p.raw else None for a, p in zip(args, params)]
    if size != -1:
        if any(a is not None for a in arrays):
            raise ValueError("Specified 'size' can be used only if all of the ndarray are 'raw'.")
        return (size,)
    if all(a is None for a in arrays):
        raise ValueError("Loop size is undecided.")
    return broadcast(arrays)


class ElementwiseKernel:
    def __init__(
        self,
        in_params: str,
        out_params: str,
        operation: str,
        name: str = "kernel",
        reduce_dims: bool = True,
        preamble: str = "",
        no_return: bool = False,
        return_tuple: bool = False,
        **kwargs: Any,
    ):
        if not _KERNEL_NAME.match(name):
            raise ValueError(f'Invalid kernel name: "{name}"')
        self.in_params, self.out_params = _params(in_params), _params(out_params)
        self.nin, self.nout = len(self.in_params), len(self.out_params)
        self.nargs, self.params = self.nin + self.nout, self.in_params + self.out_params
        self.operation, self.name, self.__name__ = operation, name, name
        self.no_return, self.return_tuple = no_return, return_tuple
        if "i" in [p.name for p in self.params]:
            raise ValueError("Can not use 'i' as a parameter name")
        try:
            statements = [line.strip() for line in operation.split(";") if line.strip()]
            self._code = compile("\n".join(statements), name, "exec")
        except SyntaxError as e:
            raise NotImplementedError(
                f"the CuPy stand-in runs only operations that are also valid Python: {e}"
            ) from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        size, block_size = kwargs.pop("size", -1), kwargs.pop("block_size", 128)
        kwargs.pop("stream", None)  # the stand-in's work is done when the call returns, on any stream
        if len(kwargs):
            raise TypeError(f"Wrong arguments {kwargs}")
        if block_size <= 0:
            raise ValueError("block_size must be greater than zero")
        if len(args) not in (self.nin, self.nargs):
            raise TypeError(
                f"Wrong number of arguments for {self.name!r}. "
                f"It must be either {self.nin} or {self.nargs} (with outputs), but given {len(args)}."
            )
        values = [operand(a) for a in args]  # _preprocess_args: on this device, or a Python or NumPy scalar
        shape = _loop_shape(list(args), self.params, size)
        bound: dict[str, numpy.dtype] = {}
        _decide(self.out_params, [_dtype(a) for a in args[self.nin :]], bound)  # the outputs first
        _decide(self.in_params, [a.dtype if isinstance(a, ndarray) else None for a in args[: self.nin]], bound)
        in_types = [p.dtype or bound[p.ctype] for p in self.in_params]  # KeyError for an unbound one, as CuPy
        out_types = [p.dtype or bound[p.ctype] for p in self.out_params]
        outs = self._outputs(list(args[self.nin :]), out_types, shape, sized=size != -1)
        result = None if self.no_return else outs[0] if self.nout == 1 and not self.return_tuple else tuple(outs)
        if 0 not in shape:
            self._run(values[: self.nin], in_types, outs, shape)
        return result

    def _outputs(self, given: list[Any], types: list[numpy.dtype], shape: tuple, sized: bool) -> list[ndarray]:
        """_get_out_args_with_params: new arrays of the loop's shape, or the given ones, checked."""
        if not given:
            if any(p.raw for p in self.out_params) and not sized:
                raise ValueError("Output array size is Undecided")
            return [wrap(numpy.empty(shape, t)) for t in types]
        for p, a in zip(self.out_params, given):
            if not isinstance(a, ndarray):
                raise TypeError("Output arguments type must be cupy.ndarray")
            if not p.raw and a.shape != shape:
                raise ValueError("Out shape is mismatched")
        return given

    def _run(self, ins: list, in_types: list[numpy.dtype], outs: list[ndarray], shape: tuple[int, ...]) -> None:
        """The operation over the whole loop at once (`ins`: the inputs' memory, or host scalars); a raw
        array is read and written by its flat (C-order) index, as CuPy's CArray is, with `i` the loop's
        own index."""
        scope: dict[str, Any] = {"__builtins__": {}, **_MATH}
        if "i" in self._code.co_names:
            scope["i"] = numpy.arange(numpy.prod(shape, dtype=numpy.int64)).reshape(shape)
        for p, a, t in zip(self.in_params, ins, in_types):  # a host scalar becomes its parameter's C type
            scope[p.name] = t.type(a) if not isinstance(a, numpy.ndarray) else a.reshape(-1) if p.raw else a
        for p, o in zip(self.out_params, outs):  # outputs, on this device (operand checked a given one)
            scope[p.name] = o._a.reshape(-1).copy() if p.raw else o._a.copy()
        COUNTS["launches"] += 1
        faulty("ElementwiseKernel", None)
        with numpy.errstate(all="ignore"):  # a kernel's 0/0 is nan, silently, as on a GPU
            exec(self._code, scope)
        scale = fault(self.name)  # a synthetic recording's fault on this kernel, once per launch
        for p, o in zip(self.out_params, outs):
            value = numpy.asarray(scope[p.name], o.dtype)
            o._a[...] = scaled(value.reshape(o.shape) if p.raw else value, scale)


class RawKernel:
    """CUDA C needs NVRTC and a GPU: the stand-in refuses it the way a broken NVRTC would."""

    def __init__(self, code: str, name: str, options: tuple = (), **kwargs: Any):
        self.code, self.name = code, name

    def __call__(self, grid: Any, block: Any, args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"the CuPy stand-in cannot compile CUDA C (kernel {self.name!r}) without a GPU")
