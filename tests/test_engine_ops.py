"""Every op gradient-checked on the CPU and the simulated GPU; broadcasting and reductions
property-tested; dtype and device rules."""

import math
import re

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

from devcheck.commands.grad_cases import cases, input_for
from devcheck.engine import argmax, get_device, grad, gradcheck, isfinite, isinf, isnan, tensor
from devcheck.engine import functional as F

OPS = sorted(cases("cpu"))


@pytest.mark.parametrize("op", OPS)
def test_every_op_gradient_checked(op, device):
    result = gradcheck(cases(device)[op], [input_for(device)])
    assert result.ok, f"{op} on {device}: {result.message}"
    assert result.reentrant and result.zero_grad_ok


@pytest.mark.parametrize("op", ["matmul", "softmax", "index_repeats", "mask"])
def test_fast_mode_agrees(op, device):
    assert gradcheck(cases(device)[op], [input_for(device)], fast=True)


def test_classic_example_gives_exactly_2_1_1(device):
    a, b, c = (tensor(v, requires_grad=True, device=device) for v in (1.0, 2.0, 3.0))
    x = tensor(1.0, device=device)
    y = a**2 * x + b * x + c
    assert y.item() == 6.0
    assert [g.item() for g in grad(y, [a, b, c])] == [2.0, 1.0, 1.0]
    assert a.grad is None  # grad() leaves .grad alone
    (a**2 * x + b * x + c).backward()
    assert (a.grad.item(), b.grad.item(), c.grad.item()) == (2.0, 1.0, 1.0)


@settings(max_examples=25, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3), op=st.sampled_from("+-*/"))
def test_broadcasting_gradients(shapes, op):
    rng = numpy.random.default_rng(0)
    a, b = (tensor(rng.uniform(0.5, 2, s), dtype="float64", requires_grad=True) for s in shapes.input_shapes)
    fn = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}[op]
    result = gradcheck(lambda a, b: fn(a, b) ** 2, [a, b])
    assert result.ok, result.message
    ga, gb = grad((fn(a, b) ** 2).sum(), [a, b])
    assert (ga.shape, gb.shape) == (a.shape, b.shape)


@settings(max_examples=25, deadline=None)
@given(
    shape=array_shapes(min_dims=1, max_dims=3, max_side=4),
    data=st.data(),
    reduction=st.sampled_from(["sum", "mean", "max", "min"]),
    keepdims=st.booleans(),
)
def test_reductions_over_any_axes(shape, data, reduction, keepdims):
    axes = data.draw(st.lists(st.integers(0, len(shape) - 1), unique=True, max_size=len(shape)) | st.none())
    x = tensor(
        numpy.random.default_rng(1).permutation(numpy.prod(shape)).reshape(shape) * 0.1,
        dtype="float64",
        requires_grad=True,
    )  # distinct values: no ties
    axis = tuple(axes) if axes else None
    result = gradcheck(lambda x: getattr(x, reduction)(axis=axis, keepdims=keepdims) ** 2, [x])
    assert result.ok, result.message
    expected = getattr(numpy, reduction)(x.numpy(), axis=axis, keepdims=keepdims)
    numpy.testing.assert_allclose(getattr(x, reduction)(axis=axis, keepdims=keepdims).numpy(), expected)


def test_ties_share_the_gradient_evenly(device):
    x = tensor([1.0, 3.0, 3.0], requires_grad=True, device=device)
    x.max().backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5]


def test_repeated_indices_accumulate(device):
    x = tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    x[[0, 0, 1]].sum().backward()
    assert x.grad.tolist() == [2.0, 1.0, 0.0]


def test_float32_model_stays_float32(device):
    x = tensor(numpy.ones((4, 3)), dtype="float32", device=device, requires_grad=True)
    w = tensor(numpy.ones((2, 3)), dtype="float32", device=device, requires_grad=True)
    target = tensor([0, 1, 1, 0], device=device)  # int64
    loss = F.cross_entropy(F.linear(x * 2 + 1.5, w) / 3.0, target) + (x**2).mean() * 0.1
    assert loss.dtype == "float32"
    loss.backward()
    assert (x.grad.dtype, w.grad.dtype) == ("float32", "float32")


def test_float16_and_float64(device):
    # float16 is outside the Array API standard, so the simulated device has none; NumPy and CuPy do.
    for dtype in ("float16", "float64") if device == "cpu" else ("float64",):
        x = tensor([0.5, -1.0], dtype=dtype, device=device, requires_grad=True)
        (x.tanh() * x).sum().backward()
        assert x.grad.dtype == dtype
        numpy.testing.assert_allclose(
            x.grad.numpy(),
            [0.5 / numpy.cosh(0.5) ** 2 + numpy.tanh(0.5), -1 / numpy.cosh(1) ** 2 + numpy.tanh(-1)],
            rtol=2e-3,
        )


def test_mixed_float_dtypes_are_an_error():
    with pytest.raises(TypeError, match="dtype mismatch: float32 and float64"):
        tensor([1.0]) + tensor([1.0], dtype="float64")


def test_int_tensor_takes_the_float_dtype():
    assert (tensor([1.0, 2.0]) * tensor([1, 2])).dtype == "float32"


def test_mixing_devices_names_both():
    with pytest.raises(RuntimeError, match="expected all tensors on one device, got cpu and sim"):
        tensor([1.0]) + tensor([1.0], device="sim")


def test_unknown_devices_are_clear_errors():
    with pytest.raises(ValueError, match="unknown device 'tpu': expected cpu, cuda or cuda:N"):
        get_device("tpu")
    from devcheck.machine.replay import seam
    from tests.recordings import load

    with seam.replay(load("no-driver")), pytest.raises(ValueError, match="device 'cuda' needs CuPy"):
        get_device("cuda:0")
    with seam.replay(load("cupy-no-driver")), pytest.raises(ValueError, match="0 CUDA device.*InsufficientDriver"):
        get_device("cuda:0")


def test_to_moves_between_devices_differentiably():
    x = tensor([1.0, 2.0], requires_grad=True)
    y = x.to("sim")
    assert y.device.name == "sim"
    (y * y).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0] and x.grad.device.name == "cpu"
    assert x.to("float64").dtype == "float64"


def test_non_differentiable_helpers(device):
    x = tensor([1.0, float("nan"), float("inf"), -2.0], device=device)
    assert isnan(x).tolist() == [False, True, False, False]
    assert isinf(x).tolist() == [False, False, True, False]
    assert isfinite(x).tolist() == [True, False, False, True]
    assert argmax(tensor([[1.0, 5.0], [7.0, 2.0]], device=device), axis=1).tolist() == [1, 0]


def test_softmax_family_is_stable_for_huge_logits(device):
    logits = tensor([[1e4, 0.0, -1e4]], device=device, requires_grad=True)
    loss = F.cross_entropy(logits * 1.0, tensor([1], device=device))
    assert loss.item() == pytest.approx(1e4)
    loss.backward()
    assert numpy.isfinite(logits.grad.numpy()).all()
    assert F.softmax(logits).numpy() == pytest.approx(numpy.array([[1.0, 0.0, 0.0]]))


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int64"])
def test_cross_entropy_of_narrow_integer_targets_past_their_range(fused_device, dtype):
    """300 rows: row numbers in a uint8 or int8 would wrap and pick other rows' targets."""
    rng = numpy.random.default_rng(5)
    z, t = rng.standard_normal((300, 5)), rng.integers(0, 5, 300)
    logits = tensor(z.astype("float32"), device=fused_device, requires_grad=True)
    loss = F.cross_entropy(logits, tensor(t.astype(dtype), device=fused_device))
    loss.backward()
    logp = z - z.max(axis=1, keepdims=True)
    logp -= numpy.log(numpy.exp(logp).sum(axis=1, keepdims=True))
    softmax_minus_onehot = (numpy.exp(logp) - numpy.eye(5)[t]) / 300
    assert loss.item() == pytest.approx(-logp[numpy.arange(300), t].mean(), rel=1e-5)
    assert logits.grad.numpy() == pytest.approx(softmax_minus_onehot, abs=1e-6)


def test_cross_entropy_of_an_empty_batch_is_nan_as_in_torch(fused_device):
    """torch: mean over no rows is nan (0/0), the sum is 0; neither raises, and the gradient is empty."""
    logits = tensor(numpy.zeros((0, 3), "float32"), device=fused_device, requires_grad=True)
    target = tensor(numpy.zeros(0, "int64"), device=fused_device)
    loss = F.cross_entropy(logits, target)
    assert numpy.isnan(loss.item())
    loss.backward()
    assert logits.grad.shape == (0, 3)
    total = F.cross_entropy(logits, target, reduction="sum").item()
    assert total == 0.0 and math.copysign(1.0, total) == 1.0  # torch's 0, not -0


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_on_a_gpu_is_three_fused_kernels_and_three_reductions(reduction):
    """On the stand-in of the recorded H100: the loss and gradient of the CPU's, in 7 launches where
    the generic code took 16, with a class masked by -inf (0 * inf must not make it nan); a target
    outside [0, C) makes its row infinite or nan, where indexing would wrap."""
    from devcheck.machine.replay import seam, standin
    from tests.recordings import h100

    rng = numpy.random.default_rng(9)
    z, t = rng.standard_normal((64, 7)).astype("float32"), rng.integers(0, 7, 64)
    z[0, (t[0] + 1) % 7] = -numpy.inf
    cpu = tensor(z, requires_grad=True)
    F.cross_entropy(cpu, tensor(t), reduction=reduction).backward()
    with seam.replay(h100()):
        logits, target = tensor(z, device="cuda:0", requires_grad=True), tensor(t, device="cuda:0")
        standin.COUNTS.clear()
        loss = F.cross_entropy(logits, target, reduction=reduction)
        forward = standin.COUNTS["launches"]
        loss.backward()
        assert (forward, standin.COUNTS["launches"] - forward) == (6, 2)  # backward: its seed, then one kernel
        assert standin.COUNTS["to_host"] == 0
        numpy.testing.assert_allclose(logits.grad.numpy(), cpu.grad.numpy(), rtol=1e-5, atol=1e-7)
        expected = F.cross_entropy(tensor(z), tensor(t), reduction=reduction).item()
        assert loss.item() == pytest.approx(expected, rel=1e-6)

        outside = t.copy()
        outside[3] = 7
        logits.grad = None
        loss = F.cross_entropy(logits, tensor(outside, device="cuda:0"), reduction=reduction)
        loss.backward()
        grad = logits.grad.numpy()
        assert (
            numpy.isnan(loss.item())
            and not numpy.isfinite(grad[3]).any()
            and numpy.isfinite(numpy.delete(grad, 3, 0)).all()
        )


EPS32 = float(numpy.finfo(numpy.float32).eps)


def test_relu_and_tanh_on_a_gpu_are_one_fused_launch_each_way():
    """On the stand-in of the recorded H100: ReLU's forward (output and mask) and tanh's backward are
    one kernel each, with the CPU's values (tanh's to within a real GPU's few ulps); ReLU's backward
    and tanh's forward were one launch already."""
    from devcheck.machine.replay import seam, standin
    from tests.recordings import h100

    z = numpy.array([[-2.0, -0.0, 0.0, 0.5, float("nan"), 3.0]], "float32")
    for op in ("relu", "tanh"):
        cpu = tensor(z, requires_grad=True)
        getattr(cpu, op)().sum().backward()
        with seam.replay(h100()):
            x = tensor(z, device="cuda:0", requires_grad=True)
            standin.COUNTS.clear()
            y = getattr(x, op)()
            assert standin.COUNTS["launches"] == 1
            total = y.sum()
            standin.COUNTS.clear()
            total.backward()
            assert standin.COUNTS["launches"] == 2  # the seed (a ones array) and the op's backward
            if op == "relu":  # a comparison and a product by 0 or 1: exact on any device
                numpy.testing.assert_array_equal(y.numpy(), getattr(tensor(z), op)().numpy())
                numpy.testing.assert_array_equal(x.grad.numpy(), cpu.grad.numpy())
            else:  # a real GPU's tanhf is within 2 ulp of NumPy's, and NVRTC contracts 1 - y * y into an FMA
                numpy.testing.assert_allclose(y.numpy(), getattr(tensor(z), op)().numpy(), rtol=4 * EPS32)
                numpy.testing.assert_allclose(x.grad.numpy(), cpu.grad.numpy(), rtol=4 * EPS32, atol=4 * EPS32)


def test_bad_loss_inputs():
    with pytest.raises(TypeError, match="integer class indices"):
        F.cross_entropy(tensor([[1.0, 2.0]]), tensor([0.0]))
    with pytest.raises(ValueError, match="reduction='none'"):
        F.cross_entropy(tensor([[1.0, 2.0]]), tensor([0]), reduction="none")
    with pytest.raises(IndexError, match=r"targets must be in \[0, 2\), got -1"):
        F.cross_entropy(tensor([[1.0, 2.0]]), tensor([-1]))  # indexing would read it as the last class
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(tensor([[1.0, 2.0]]), tensor([2]))
    assert F.cross_entropy(tensor([[1.0, 2.0]]), tensor([1])).item() > 0


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ([0, 5], "index 5 is out of bounds for axis 0 with size 3"),
        ((slice(None), [4]), "index 4 is out of bounds for axis 1 with size 4"),
        ("tensor", "index 3 is out of bounds for axis 0 with size 3"),
        (-4, "index -4 is out of bounds for axis 0 with size 3"),
        (numpy.array([-4, 0]), "index -4 is out of bounds for axis 0 with size 3"),
        ((None, Ellipsis, 4), "index 4 is out of bounds for axis 1 with size 4"),  # axes past None and ...
        ((None, 1, 7), "index 7 is out of bounds for axis 1 with size 4"),
        ((0, 0, 0), "too many indices for tensor: tensor is 2-dimensional, but 3 were indexed"),
        ([True, False], "size of axis is 3 but size of corresponding boolean axis is 2"),
    ],
)
def test_out_of_range_indices_raise_before_reaching_the_device(index, message, device):
    # CuPy wraps an out-of-range integer-array index where NumPy raises: the engine checks first.
    x = tensor(numpy.arange(12.0).reshape(3, 4), device=device)
    index = tensor([0, 3], device=device) if isinstance(index, str) else index
    with pytest.raises(IndexError, match=re.escape(message)):
        x[index]


def test_in_range_indices_still_work(device):
    x = tensor(numpy.arange(12.0).reshape(3, 4), device=device)
    assert x[[0, -1]].tolist() == [[0, 1, 2, 3], [8, 9, 10, 11]]
    assert x[tensor([2, -3], device=device)][:, 0].tolist() == [8, 0]
    assert x[-3, -4].item() == 0 and x[:, [-4, 3]].shape == (3, 2) and x[[]].shape == (0, 4)
    assert x[tensor([0, 2])].shape == (2, 4)  # an index tensor on the CPU serves every device
    with pytest.raises(IndexError, match="integer \\(or boolean\\) type"):
        x[tensor([0.0])]
