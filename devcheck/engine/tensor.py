"""Tensor and Function: a define-by-run, reverse-mode autograd graph.

Rules (after Chainer and DeZero):
- A Function holds its inputs strongly and its output weakly, so a graph lives exactly as long
  as the tensors that lead to it, and dies with its loss.
- Backward walks the graph iteratively, newest function first (a heap keyed on generation), each
  function once; gradients of a tensor used twice add up.
- After backward the graph is freed unless retain_graph=True; a second backward through it is an
  error, not silently wrong gradients.
- Every gradient a Function returns is checked against its input's shape, dtype and device.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy

from devcheck.engine.backend import Device


class _GradMode(threading.local):
    enabled = True  # per thread, as in PyTorch


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    return _grad_mode.enabled


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Run ops without recording a graph (evaluation, optimizer steps)."""
    previous = _grad_mode.enabled
    _grad_mode.enabled = False
    try:
        yield
    finally:
        _grad_mode.enabled = previous


class Tensor:
    __slots__ = ("data", "device", "requires_grad", "grad", "creator", "generation", "__weakref__")
    __array_priority__ = 200  # so that ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data: Any, device: Device, requires_grad: bool = False, creator: Function | None = None):
        self.data = data
        self.device = device
        self.requires_grad = requires_grad
        self.grad: Tensor | None = None
        self.creator = creator
        self.generation = creator.generation + 1 if creator else 0

    # --- facts -----------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return len(self.data.shape)

    @property
    def dtype(self) -> str:
        return dtype_name(self.data.dtype)

    @property
    def is_leaf(self) -> bool:
        return self.creator is None

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        where = f", device='{self.device.name}'" if self.device.name != "cpu" else ""
        return f"tensor({numpy.array2string(self.numpy(), precision=4, separator=', ')}{where}{grad})"

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self.data.size} elements is ambiguous")
        return bool(self.item())

    # --- explicit copies to the host ------------------------------------------------------------------
    def numpy(self) -> numpy.ndarray:
        """A host copy (or view, on the CPU) of the data: the only way data leaves the device."""
        return numpy.asarray(self.device.to_host(self.data))

    def item(self) -> float | int | bool:
        if self.data.size != 1:
            raise ValueError(f"item() needs a one-element tensor, this one has shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        return Tensor(self.data, self.device)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if not self.is_leaf:
            raise RuntimeError("requires_grad can only be set on a leaf tensor (one not computed by an op)")
        self.requires_grad = flag
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # --- autograd -----------------------------------------------------------------------------------
    def backward(self, gradient: Tensor | None = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's .grad that requires it."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad (was it computed under no_grad?)")
        grads = run_backward([self], [_seed(self, gradient)], retain_graph=retain_graph, want=None)
        for leaf, g in grads.values():
            if leaf.grad is None:
                leaf.grad = Tensor(g, leaf.device)
            else:
                with leaf.device.context():
                    leaf.grad = Tensor(leaf.grad.data + g, leaf.device)


_dtype_names: dict[int, tuple[Any, str]] = {}  # by identity: dtypes of two libraries must not be compared


def dtype_name(dtype: Any) -> str:
    """'float32' for NumPy's, CuPy's and array-api-strict's float32 alike."""
    hit = _dtype_names.get(id(dtype))
    if hit is None:
        name = (getattr(dtype, "name", None) or str(dtype)).rsplit(".", 1)[-1]
        hit = _dtype_names[id(dtype)] = (dtype, name)  # holding dtype keeps its id from being reused
    return hit[1]


def _seed(output: Tensor, gradient: Tensor | None) -> Any:
    if gradient is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"backward() needs a gradient for an output of shape {output.shape}: "
                "an implicit gradient of 1 exists only for one-element outputs"
            )
        # In the output's device context: array-api-compat drops `device=` for CuPy, whose creation
        # functions allocate on the current GPU, which need not be the output's; other namespaces
        # (array-api-strict's devices) place it by `device=`.
        with output.device.context():
            xp, data = output.device.xp, output.data
            return xp.ones(data.shape, dtype=data.dtype, device=getattr(data, "device", None))
    data = gradient.data if isinstance(gradient, Tensor) else gradient
    if tuple(data.shape) != output.shape:
        raise RuntimeError(f"gradient of shape {tuple(data.shape)} given for an output of shape {output.shape}")
    if not output.device.owns(data):
        where = gradient.device.name if isinstance(gradient, Tensor) else type(data).__name__
        raise RuntimeError(f"gradient on {where} given for an output on {output.device.name}: move it with .to(device)")
    return data


def raise_two_devices(one: Any, other: Any) -> None:
    raise RuntimeError(
        f"expected all tensors on one device, got {one.name} and {other.name}: move one with .to(device)"
    )


class Function:
    """One op: `forward` maps arrays to an array, `backward` maps the output's gradient to one
    gradient per input (None where an input needs none). Subclasses save what backward needs.
    Both take every array function from `self.xp`, the Array API namespace of the op's device, and
    what the standard lacks (a fused kernel, scatter_add) from `self.device`, where it has it."""

    __slots__ = ("xp", "device", "inputs", "output", "generation", "needs_grad", "freed", "__dict__")

    def forward(self, *xs: Any) -> Any:
        raise NotImplementedError

    def backward(self, gy: Any) -> tuple[Any, ...]:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Tensor:
        """Run forward on raw arrays; record the graph when some input requires grad. One pass over
        the inputs: this runs for every op, and on a small model its cost is the step's cost."""
        fn = cls.__new__(cls)
        if params:
            fn.__dict__.update(params)
        device, arrays, record, generation = None, [], False, 0
        for x in inputs:
            if isinstance(x, Tensor):
                if device is None:
                    device = x.device
                elif x.device is not device:
                    raise_two_devices(device, x.device)
                arrays.append(x.data)
                if x.requires_grad:
                    record, generation = True, max(generation, x.generation)
            else:
                arrays.append(x)
        if device is None:
            raise TypeError("an op needs at least one Tensor input")
        fn.xp = device.xp  # one way for every device: never from the arrays (CuPy's have no __array_namespace__)
        fn.device = device  # what the standard lacks: fused kernels (engine/fused.py), scatter_add
        with device.context():
            data = fn.forward(*arrays)
        if isinstance(data, numpy.generic):  # NumPy's 0-d reductions return scalars, not arrays
            data = numpy.asarray(data)
        if not (record and _grad_mode.enabled):
            return Tensor(data, device)
        fn.inputs = inputs
        fn.needs_grad = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
        fn.generation = generation
        fn.freed = False
        out = Tensor(data, device, requires_grad=True, creator=fn)
        fn.output = weakref.ref(out)
        return out

    def __repr__(self) -> str:
        return type(self).__name__


def run_backward(
    outputs: Sequence[Tensor], seeds: Sequence[Any], *, retain_graph: bool, want: Sequence[Tensor] | None
) -> dict[int, tuple[Tensor, Any]]:
    """Propagate `seeds` from `outputs` to the leaves (want=None) or to the tensors in `want`.

    Returns {id(tensor): (tensor, gradient array)} for every leaf requiring grad (or every wanted
    tensor that was reached).
    """
    pending: dict[int, list] = {}  # id(tensor) -> [tensor, its gradient so far]
    heap: list[tuple[int, int, Function]] = []  # a function enters when its output gets a first gradient
    order = itertools.count()  # ties in generation: first reached, first run
    wanted = {id(t) for t in want} if want is not None else None
    result: dict[int, tuple[Tensor, Any]] = {}

    def accumulate(tensor: Tensor, g: Any) -> None:
        entry = pending.get(id(tensor))
        if entry is not None:
            with tensor.device.context():  # the sum is a kernel on the tensor's GPU, not the current one
                entry[1] = entry[1] + g  # out of place: g may be shared
            return
        pending[id(tensor)] = [tensor, g]
        if tensor.creator is not None:
            heapq.heappush(heap, (-tensor.creator.generation, next(order), tensor.creator))

    for out, seed in zip(outputs, seeds, strict=True):
        accumulate(out, seed)
    while heap:
        _, _, fn = heapq.heappop(heap)
        if fn.freed:
            raise RuntimeError(
                "trying to backward through the graph a second time: its buffers were freed by the first "
                "backward; pass retain_graph=True to the first call if you need to"
            )
        out = fn.output()
        entry = pending.pop(id(out), None) if out is not None else None
        if entry is None:
            continue
        gy = entry.pop()
        if wanted is not None and id(out) in wanted:
            result[id(out)] = (out, gy)
        with out.device.context():
            gxs = fn.backward(gy)
        del gy
        for x, gx, needed in zip(fn.inputs, gxs, fn.needs_grad, strict=True):
            if needed and gx is not None:
                _check_grad(fn, x, gx)
                accumulate(x, gx)
        del gxs
        if not retain_graph:  # release saved arrays now, so the rest of backward can reuse their memory
            _free(fn)
    for key, (tensor, g) in pending.items():
        if (wanted is None and tensor.is_leaf and tensor.requires_grad) or (wanted is not None and key in wanted):
            result[key] = (tensor, g)
    return result


def _free(fn: Function) -> None:
    fn.inputs = ()
    fn.freed = True
    fn.__dict__.clear()  # the arrays forward saved for backward


def _check_grad(fn: Function, x: Tensor, gx: Any) -> None:
    """Chainer's safety net: a gradient must look exactly like the input it belongs to."""
    data = x.data
    if gx.shape != data.shape or gx.dtype != data.dtype or not x.device.owns(gx):
        raise RuntimeError(
            f"{fn!r}.backward returned a gradient of shape {tuple(gx.shape)}, dtype {dtype_name(gx.dtype)} "
            f"for an input of shape {x.shape}, dtype {x.dtype} on {x.device.name}: the op has a bug"
        )


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Tensor | Sequence[Tensor | None] | None = None,
    retain_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of outputs with respect to inputs, returned rather than stored in .grad
    (like torch.autograd.grad)."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs)
    for x in inputs:
        if not x.requires_grad:
            raise RuntimeError(f"an input of shape {x.shape} does not require grad")
    seeds = [_seed(out, g) for out, g in zip(outputs, grad_outputs, strict=True)]
    found = run_backward(outputs, seeds, retain_graph=retain_graph, want=inputs)
    result = []
    for x in inputs:
        if id(x) in found:
            result.append(Tensor(found[id(x)][1], x.device))
        elif allow_unused:
            result.append(None)
        else:
            raise RuntimeError(f"an input of shape {x.shape} was not used to compute the outputs (allow_unused=True)")
    return tuple(result)
