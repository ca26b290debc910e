"""engine.functional beyond grad_cases: the weight and bias gradients of a linear layer (grad_cases
checks the input's only), on batched inputs; log-softmax on rows of very different scale, where a
shift by the wrong maximum underflows; the losses' reductions and input checks; a bias of another
dtype."""

import numpy
import pytest

from devcheck.engine import functional as F
from devcheck.engine import gradcheck, tensor


def rand(shape, device, seed, requires_grad=True):
    data = numpy.random.default_rng(seed).standard_normal(shape)
    return tensor(data, dtype="float64", device=device, requires_grad=requires_grad)


@pytest.mark.parametrize("batch", [(5,), (2, 5)])
def test_linear_gradients_of_input_weight_and_bias(batch, fused_device):
    x, w, b = rand((*batch, 4), fused_device, 0), rand((3, 4), fused_device, 1), rand((3,), fused_device, 2)
    result = gradcheck(lambda x, w, b: (F.linear(x, w, b) ** 2).sum(), [x, w, b])
    assert result.ok, result.message
    no_bias = gradcheck(lambda x, w: (F.linear(x, w) ** 2).sum(), [x, w])
    assert no_bias.ok, no_bias.message


def test_linear_weight_gradient_of_a_data_batch():
    """A data batch needs no gradient: the weight's and bias's are still right (x @ W.T + b, squared)."""
    x, w, b = rand((2, 3, 4), "cpu", 0, False), rand((3, 4), "cpu", 1), rand((3,), "cpu", 2)
    (F.linear(x, w, b) ** 2).sum().backward()
    xn, wn, bn = x.numpy().reshape(-1, 4), w.numpy(), b.numpy()
    gy = 2 * (xn @ wn.T + bn)
    numpy.testing.assert_allclose(w.grad.numpy(), gy.T @ xn, rtol=1e-12)
    numpy.testing.assert_allclose(b.grad.numpy(), gy.sum(axis=0), rtol=1e-12)
    assert x.grad is None


def test_a_bias_of_another_dtype_is_added_not_subtracted():
    x, w = tensor([[1.0, 2.0]], dtype="float32"), tensor([[0.5, 0.25]], dtype="float32")
    y = F.linear(x, w, tensor([10.0], dtype="float64"))
    assert y.numpy().tolist() == [[11.0]] and y.numpy().dtype == numpy.float64  # promoted, as NumPy and torch do


EXTREME = [[1000.0, 1001.0], [-1000.0, -999.0]]  # one maximum for all rows would underflow the second


@pytest.mark.parametrize("device", ["cpu", "sim"])
def test_log_softmax_shifts_each_row_by_its_own_maximum(device):
    got = F.log_softmax(tensor(EXTREME, dtype="float64", device=device)).numpy()
    row = [-numpy.log1p(numpy.e), -numpy.log1p(numpy.exp(-1.0))]
    numpy.testing.assert_allclose(got, [row, row], rtol=1e-12)
    loss = F.cross_entropy(tensor(EXTREME, dtype="float64", device=device), tensor([1, 1], device=device))
    assert loss.item() == pytest.approx(numpy.log1p(numpy.exp(-1.0)), rel=1e-12)


@pytest.mark.parametrize(("logits", "target"), [((2, 3, 4), (2,)), ((2, 3), (3,)), ((2, 3), (2, 1))])
def test_cross_entropy_needs_n_by_c_logits_and_n_targets(logits, target):
    with pytest.raises(ValueError) as e:
        F.cross_entropy(tensor(numpy.zeros(logits)), tensor(numpy.zeros(target, dtype="int64")))
    assert str(e.value) == f"cross_entropy needs logits (N, C) and targets (N,), got {logits} and {target}"


@pytest.mark.parametrize(("reduction", "expected"), [("mean", 3.75), ("sum", 15.0)])
def test_mse_loss_reductions(reduction, expected):
    assert (
        F.mse_loss(tensor([1.0, 2.0, 3.0, 4.0]), tensor([0.0, 0.0, 6.0, 5.0]), reduction=reduction).item() == expected
    )


def test_dropout_of_zero_is_the_input_itself_and_its_default_drops_about_half():
    x = tensor(numpy.ones(1000))
    assert F.dropout(x, 0.0) is x and F.dropout(x, 0.9, training=False) is x
    kept = (F.dropout(x).numpy() != 0).mean()
    assert 0.4 < kept < 0.6 and set(numpy.unique(F.dropout(x).numpy())) <= {0.0, 2.0}


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_a_dropout_probability_outside_0_to_1_is_refused_in_words(p):
    with pytest.raises(ValueError) as e:
        F.dropout(tensor([1.0]), p)
    assert str(e.value) == f"dropout probability p={p}: expected 0 <= p < 1"
