"""The array namespace comes from the Device, never from the arrays.

A real cupy.ndarray has no `__array_namespace__`; when the engine asked the arrays, it fell back
to NumPy on the GPU and crashed (numpy.zeros(device=<cupy device>), numpy.arange), or went
silently through NumPy's dispatch. The "nons" device below has arrays like that: boxes around
array-api-strict arrays with no `__array_namespace__`, that refuse NumPy's functions and implicit
conversion, and whose only namespace is the device's `xp`, which unboxes and boxes again. Every
op, the optimizers and gradcheck must run on it and agree with the CPU.
"""

import array_api_strict as strict
import numpy
import pytest

from devcheck.commands.grad_cases import cases, input_for
from devcheck.engine import backend, grad, gradcheck, manual_seed, nn, optim, tensor
from devcheck.engine import functional as F

_DEVICE, _CPU = strict.Device("device1"), strict.Device("CPU_DEVICE")
_RAW = type(strict.empty(0))


def _unbox(value):
    if isinstance(value, Boxed):
        return value.raw
    if isinstance(value, list | tuple):
        return type(value)(_unbox(v) for v in value)
    if isinstance(value, dict):
        return {k: _unbox(v) for k, v in value.items()}
    return value


def _box(value):
    if isinstance(value, _RAW):
        return Boxed(value)
    if isinstance(value, list | tuple):
        return type(value)(_box(v) for v in value)
    return value


class Boxed:
    """An array with no __array_namespace__ that NumPy cannot compute on (as a CuPy array, minus
    CuPy's __array_ufunc__ dispatch: here a NumPy function fails loudly instead)."""

    __slots__ = ("raw",)
    __array_ufunc__ = None  # numpy.exp(boxed) raises TypeError; ndarray + boxed defers to Boxed

    def __init__(self, raw):
        self.raw = raw

    def __array__(self, dtype=None, copy=None):
        raise TypeError("implicit conversion to a NumPy array is not allowed (as CuPy)")

    def __array_function__(self, func, types, args, kwargs):
        return NotImplemented  # numpy.sum(boxed), numpy.zeros(like=boxed): TypeError

    shape = property(lambda self: self.raw.shape)
    ndim = property(lambda self: self.raw.ndim)
    size = property(lambda self: self.raw.size)
    dtype = property(lambda self: self.raw.dtype)
    device = property(lambda self: self.raw.device)

    def __setitem__(self, key, value):
        self.raw[_unbox(key)] = _unbox(value)

    def __bool__(self):
        return bool(self.raw)


def _operator(name):
    def method(self, *args):
        result = getattr(self.raw, name)(*_unbox(args))
        return self if name.startswith("__i") and result is self.raw else _box(result)

    return method


for _name in (
    "add radd sub rsub mul rmul truediv rtruediv pow rpow matmul rmatmul neg pos abs "
    "gt lt ge le eq ne and or invert iadd isub imul itruediv getitem"
).split():
    setattr(Boxed, f"__{_name}__", _operator(f"__{_name}__"))


class BoxedNamespace:
    """array-api-strict's functions, over boxes."""

    def __getattr__(self, name):
        attr = getattr(strict, name)
        if callable(attr) and not isinstance(attr, type):

            def call(*args, **kwargs):
                return _box(attr(*_unbox(args), **_unbox(kwargs)))

            setattr(self, name, call)
            return call
        return attr


@pytest.fixture(scope="module", autouse=True)
def nons():
    device = backend.Device(
        name="nons",
        xp=BoxedNamespace(),
        from_host=lambda a: Boxed(strict.asarray(numpy.asarray(a), device=_DEVICE)),
        to_host=lambda a: numpy.asarray(a.raw.to_device(_CPU)),
        owns=lambda a: isinstance(a, Boxed),
        scatter_add=None,
    )
    backend.register(device)
    yield device
    del backend._devices["nons"]


def test_the_boxes_really_refuse_numpy():
    x = tensor([1.0, 2.0], device="nons")
    assert not hasattr(x.data, "__array_namespace__")
    for call in (lambda: numpy.exp(x.data), lambda: numpy.sum(x.data), lambda: numpy.asarray(x.data)):
        with pytest.raises(TypeError):
            call()


@pytest.mark.parametrize("op", sorted(cases("cpu")))
def test_every_op_uses_the_devices_namespace(op):
    x, want = input_for("nons"), input_for("cpu")
    value = cases("nons")[op](x)
    assert isinstance(value.data, Boxed)
    (g,) = grad(value, [x])
    (expected,) = grad(cases("cpu")[op](want), [want])
    assert isinstance(g.data, Boxed)
    numpy.testing.assert_allclose(value.numpy(), cases("cpu")[op](want).numpy(), rtol=1e-12)
    numpy.testing.assert_allclose(g.numpy(), expected.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("op", ["matmul", "index_repeats", "cross_entropy", "max"])
def test_gradcheck_runs_on_the_device(op):
    result = gradcheck(cases("nons")[op], [input_for("nons")])
    assert result.ok, result.message


@pytest.mark.parametrize("make", [lambda p: optim.SGD(p, lr=0.1, momentum=0.9), lambda p: optim.Adam(p, lr=0.01)])
def test_training_steps_match_the_cpu(make):
    losses = {}
    for device in ("cpu", "nons"):
        manual_seed(0)
        layers = [nn.Linear(4, 8, device=device), nn.ReLU(), nn.Dropout(0.25), nn.Linear(8, 3, device=device)]
        model = nn.Sequential(*layers)
        opt = make(model.parameters())
        x = tensor(numpy.random.default_rng(0).standard_normal((16, 4)), dtype="float32", device=device)
        y = tensor(numpy.arange(16) % 3, device=device)
        losses[device] = []
        for _ in range(3):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses[device].append(loss.item())
    numpy.testing.assert_allclose(losses["nons"], losses["cpu"], rtol=1e-5)


def test_index_bounds_are_checked_on_the_device():
    x = tensor(numpy.zeros((3, 2)), device="nons")
    with pytest.raises(IndexError, match="index 3 is out of bounds for axis 0 with size 3"):
        x[tensor([0, 3], device="nons")]
    assert x[tensor([0, -1], device="nons")].shape == (2, 2)


def test_the_compat_namespace_is_imported_on_first_use_only():
    import subprocess
    import sys

    code = (
        "import sys, devcheck.engine as e; assert 'array_api_compat' not in sys.modules; "
        "assert e.tensor([1.0]).device.xp.__name__ == 'array_api_compat.numpy'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
