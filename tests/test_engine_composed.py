"""abs, clip and flip, composed from the primitives (x times its sign, two wheres, a reversed slice):
values and gradients against NumPy and finite differences of NumPy's own functions from both sides
of each kink, and on the CuPy stand-in of the recorded H100, no read-back to the host."""

import numpy
import pytest

from devcheck.engine import grad, gradcheck, tensor

EPS = 1e-6


def one_sided(reference, z):
    """The derivatives of an elementwise NumPy function from the right and from the left, elementwise."""
    return (reference(z + EPS) - reference(z)) / EPS, (reference(z) - reference(z - EPS)) / EPS


def gradient(fn, z, device):
    x = tensor(z, dtype="float64", device=device, requires_grad=True)
    y = fn(x)
    y.sum().backward()
    return y.numpy(), x.grad.numpy()


def test_abs_is_numpys_and_its_gradient_at_zero_is_the_central_difference(device):
    """PyTorch's d|x|/dx at 0 is sign(0) = 0: between the one-sided derivatives -1 and 1, their mean.
    The value is NumPy's bit for bit: |-0.0| is 0.0 (x * sign(x) alone would give -0.0)."""
    z = numpy.array([-1.5, -0.0, 0.0, 2.0, -numpy.inf])
    value, g = gradient(abs, z, device)
    numpy.testing.assert_array_equal(value, numpy.abs(z))
    assert not numpy.signbit(value).any()
    right, left = one_sided(numpy.abs, z[:4])
    assert (right[1:3].tolist(), left[1:3].tolist()) == ([1.0, 1.0], [-1.0, -1.0])  # a kink: the sides disagree
    numpy.testing.assert_allclose(g[:4], (right + left) / 2, atol=1e-9)
    assert g[4] == -1.0
    x = tensor([-3, 0, 4], device=device)
    assert abs(x).dtype == "int64" and abs(x).tolist() == [3, 0, 4]


@pytest.mark.parametrize(("low", "high"), [(-0.5, 0.5), (-0.5, None), (None, 0.5), (1.0, 0.0)])
def test_clip_passes_the_gradient_at_its_bounds_as_pytorch(low, high, device):
    """At a bound the gradient is x's (PyTorch's clamp): the larger one-sided derivative, where the
    central difference would say 0.5. Away from the bounds both sides agree; min > max gives max, as
    NumPy's and PyTorch's."""
    z = numpy.array([-1.0, -0.5, -0.2, 0.0, 0.5, 0.7, 1.0])
    value, g = gradient(lambda x: x.clip(low, high), z, device)
    reference = lambda a: numpy.clip(a, low, high)  # noqa: E731
    numpy.testing.assert_array_equal(value, reference(z))
    right, left = one_sided(reference, z)
    numpy.testing.assert_allclose(g, numpy.maximum(right, left), atol=1e-9)
    if low is not None and high is not None and low < high:  # the test sees both sides of each bound
        kinks = (z == low) | (z == high)
        assert (abs(right - left) > 0.5)[kinks].all() and (abs(right - left) < 1e-6)[~kinks].all()


def test_clip_keeps_nan_and_passes_its_gradient(device):
    """nan is beyond no bound, so both wheres keep x: nan out, its gradient passed (PyTorch gives 0)."""
    value, g = gradient(lambda x: x.clip(-1.0, 1.0), numpy.array([numpy.nan, 3.0, -3.0]), device)
    assert numpy.isnan(value[0]) and value[1:].tolist() == [1.0, -1.0]
    assert g.tolist() == [1.0, 0.0, 0.0]


def test_clip_by_tensors_gives_the_bounds_their_gradients(device):
    """A tensor bound's gradient is 1 where it is picked (x beyond it), against finite differences; at a tie
    the gradient is x's, not the bound's."""
    rng = numpy.random.default_rng(3)
    x = tensor(rng.standard_normal((3, 4)), device=device, requires_grad=True)
    low = tensor(rng.standard_normal(4) - 0.5, device=device, requires_grad=True)  # broadcast over x's rows
    high = tensor(rng.standard_normal((3, 1)) + 0.5, device=device, requires_grad=True)
    result = gradcheck(lambda x, low, high: (x.clip(low, high) * x).sum(), [x, low, high])
    assert result.ok, result.message
    tie = tensor([0.0, 1.0], device=device, requires_grad=True)
    bound = tensor([0.0, 0.0], device=device, requires_grad=True)
    assert [g.tolist() for g in grad(tie.clip(bound).sum(), [tie, bound])] == [[1.0, 1.0], [0.0, 0.0]]


AXES = [None, 0, -1, (0, 2), (-3, 1), [2, 0], ()]


@pytest.mark.parametrize("axis", AXES, ids=str)
def test_flip_is_numpys_on_any_axes_and_its_gradient_flips_back(axis, device):
    z = numpy.arange(24.0).reshape(2, 3, 4)
    w = numpy.random.default_rng(0).standard_normal(z.shape)
    weight = tensor(w, device=device)
    value, g = gradient(lambda x: x.flip(axis) * weight, z, device)
    numpy.testing.assert_array_equal(value, numpy.flip(z, axis) * w)
    numpy.testing.assert_array_equal(g, numpy.flip(w, axis))
    x = tensor(z, device=device, requires_grad=True)
    assert gradcheck(lambda x: (x.flip(axis) * weight).sum(), [x])


def test_flip_refuses_what_numpy_refuses(device):
    x = tensor(numpy.zeros((2, 3)), device=device)
    with pytest.raises(IndexError, match="axis 2 is out of bounds for array of dimension 2"):
        x.flip(2)
    with pytest.raises(ValueError, match="repeated axis"):
        x.flip((0, -2))
    assert tensor(3.0, device=device).flip().item() == 3.0


def test_clip_takes_numpy_bounds_on_every_device_and_never_synchronises(fused_device):
    """A NumPy bound (0-d, a scalar, an array) works on every device as on the CPU (CuPy refuses a host
    array as an operand); on a GPU neither way reads back to the host (array-api-compat's generic clip
    assigns through boolean masks, and each mask reads its count back, a synchronisation)."""
    from devcheck.machine.replay import standin

    z = numpy.array([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], "float32")
    for low, high in (
        (numpy.array(0.0), numpy.array(1.0)),
        (numpy.float32(0), None),
        (numpy.array([0.0, -5.0, 0.0]), 2),
    ):
        x = tensor(z, device=fused_device, requires_grad=True)
        standin.COUNTS.clear()
        y = x.clip(low, high)
        total = y.sum()
        total.backward()
        assert standin.COUNTS["to_host"] == 0
        expected = numpy.clip(z, low, high)
        assert y.dtype == "float32" and numpy.array_equal(y.numpy(), expected)
        inside = (z >= (low if low is not None else -numpy.inf)) & (z <= (high if high is not None else numpy.inf))
        assert numpy.array_equal(x.grad.numpy(), inside.astype("float32"))


def test_abs_backward_is_sign_with_nans_and_never_synchronises(fused_device):
    """d|x|/dx = sign(x), nan at nan, as NumPy's and CuPy 14's sign give it; array-api-compat's, on
    CuPy, also assigns nans through a boolean mask: a synchronisation on a GPU."""
    from devcheck.machine.replay import standin

    z = numpy.array([-2.0, -0.0, 0.0, 3.0, numpy.nan, -numpy.inf], "float32")
    x = tensor(z, device=fused_device, requires_grad=True)
    standin.COUNTS.clear()
    y = abs(x).sum()
    y.backward()
    assert standin.COUNTS["to_host"] == 0
    numpy.testing.assert_array_equal(x.grad.numpy(), numpy.sign(z))


ON_A_GPU = {
    "abs": abs,
    "clip": lambda x: x.clip(-0.5, 0.5),
    "flip": lambda x: x.flip((0, -1)),
    "shift": lambda x: x + 0.5,
}


@pytest.mark.parametrize(
    ("op", "forward", "backward"),
    [
        ("abs", 3, 2),  # sign, copysign, the product; the seed, then the product by the sign (none for it)
        ("clip", 4, 3),  # a comparison and a where per bound; the seed, then one where per bound (none for them)
        ("flip", 0, 3),  # a view; the seed, then zeros and an assignment (GetItem's backward)
        ("shift", 1, 1),  # x + 0.5: the seed is x's gradient, and the constant gets no sum
    ],
)
def test_composed_ops_on_a_gpu_launch_few_kernels_and_never_read_back(op, forward, backward):
    """On the stand-in of the recorded H100: the CPU's values and gradients, no copy to the host either
    way, and no kernel for a gradient that no input needs (the sign, the bounds)."""
    from devcheck.machine.replay import seam, standin
    from tests.recordings import h100

    fn = ON_A_GPU[op]
    z = numpy.array([[-2.0, -0.5, -0.0], [0.0, 0.5, numpy.nan]], "float32")
    cpu = tensor(z, requires_grad=True)
    fn(cpu).sum().backward()
    with seam.replay(h100()):
        x = tensor(z, device="cuda:0", requires_grad=True)
        standin.COUNTS.clear()
        y = fn(x)
        assert (standin.COUNTS["launches"], standin.COUNTS["to_host"]) == (forward, 0)
        total = y.sum()
        standin.COUNTS.clear()
        total.backward()
        assert (standin.COUNTS["launches"], standin.COUNTS["to_host"]) == (backward, 0)
        numpy.testing.assert_array_equal(y.numpy(), fn(tensor(z)).numpy())
        numpy.testing.assert_array_equal(x.grad.numpy(), cpu.grad.numpy())
