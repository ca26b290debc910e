"""How the graph behaves: order, reuse, freeing, memory, and the safety net on gradients."""

import gc
import tracemalloc
import weakref

import numpy
import pytest

from devcheck.engine import functional as F
from devcheck.engine import grad, manual_seed, nn, no_grad, optim, randn, tensor
from devcheck.engine.tensor import Function


@pytest.mark.slow  # a whole run of the command: kept in CI (-m "slow or not slow")
def test_a_100000_op_chain_backpropagates_without_recursion():
    x = tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 0.0
    y.backward()
    assert x.grad.item() == 1.0


def test_diamond_and_reuse():
    a = tensor(3.0, requires_grad=True)
    b = a * 2.0  # b = 2a
    c = b + b  # c = 4a, b reached twice
    d = c * b  # d = 8a^2
    d.backward()
    assert a.grad.item() == 16 * 3.0


def test_tensor_used_twice_adds_up(device):
    x = tensor([1.0, -2.0], requires_grad=True, device=device)
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, -4.0]


def test_leaf_grads_accumulate_until_zeroed():
    x = tensor(2.0, requires_grad=True)
    (x * 3.0).backward()
    (x * 3.0).backward()
    assert x.grad.item() == 6.0
    x.zero_grad()
    assert x.grad is None


def test_second_backward_through_a_freed_graph_is_an_error():
    x = tensor(2.0, requires_grad=True)
    y = x * x
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = tensor(2.0, requires_grad=True)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == 8.0


def test_grad_of_an_intermediate_and_unused_inputs():
    x, unused = tensor(2.0, requires_grad=True), tensor(1.0, requires_grad=True)
    h = x * x
    y = h * 3.0
    gh, gx = grad(y, [h, x], retain_graph=True)
    assert (gh.item(), gx.item()) == (3.0, 12.0)
    with pytest.raises(RuntimeError, match="was not used"):
        grad(y, [unused])
    assert grad(x * 1.0, [x, unused], allow_unused=True)[1] is None


def test_implicit_gradient_only_for_one_element_outputs():
    x = tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="implicit gradient of 1 exists only for one-element outputs"):
        (x * 2.0).backward()
    (x * 2.0).backward(tensor([1.0, 10.0]))
    assert x.grad.tolist() == [2.0, 20.0]


def test_no_grad_and_detach_record_nothing():
    x = tensor(1.0, requires_grad=True)
    with no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.creator is None
    assert x.detach().creator is None and not x.detach().requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_a_dropped_loss_frees_its_graph():
    x = tensor(numpy.ones(3), requires_grad=True)
    loss = ((x * 2.0).exp() * 3.0).sum()
    creators = [weakref.ref(loss.creator)]
    node = loss.creator
    while node.inputs and hasattr(node.inputs[0], "creator") and node.inputs[0].creator:
        node = node.inputs[0].creator
        creators.append(weakref.ref(node))
    del loss, node
    assert all(ref() is None for ref in creators)  # no cycle: freed at once, without the cyclic GC


def test_backward_frees_saved_arrays_even_while_the_loss_lives():
    x = tensor(numpy.ones(1000), requires_grad=True)
    loss = (x.exp() * x).sum()
    loss.backward()
    assert loss.creator.freed and loss.creator.inputs == ()


def test_memory_stays_flat_over_300_training_steps():
    manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = randn(64, 20), tensor(numpy.random.default_rng(0).integers(0, 3, 64))

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    tracemalloc.start()  # both measurements inside tracing, so replaced arrays count on both sides
    for _ in range(50):
        step()
    gc.collect()
    baseline = tracemalloc.get_traced_memory()[0]
    for _ in range(250):
        step()
    gc.collect()
    growth = tracemalloc.get_traced_memory()[0] - baseline
    tracemalloc.stop()
    # One graph of this model holds over 30 KB of activations: a graph kept per step would be megabytes.
    assert growth < 64 * 1024, f"memory grew by {growth} bytes over 250 steps"


class WrongShape(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return (gy[..., :1],)


class WrongDtype(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return (gy.astype("float64"),)


@pytest.mark.parametrize("op", [WrongShape, WrongDtype])
def test_a_buggy_backward_is_caught(op):
    x = tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=f"{op.__name__}.backward returned a gradient of shape .* the op has a bug"):
        op.apply(x).sum().backward()
