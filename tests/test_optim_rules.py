"""The optimizers' rules at their edges: PyTorch's defaults, the hyperparameter bounds on both sides
and the words that refuse them, eps where it matters, the state that follows a parameter to another
device, and state_dict / load_state_dict round trips with what a checkpoint gives back."""

import numpy
import pytest

from devcheck.engine import nn, optim, tensor


def param(device="cpu", values=(0.5, -1.5)):
    return nn.Parameter(tensor(list(values), device=device))


def test_pytorchs_defaults():
    assert optim.Adam([param()]).hyper == {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}
    assert optim.SGD([param()]).hyper == {"lr": 0.01, "momentum": 0.0, "weight_decay": 0.0}


@pytest.mark.parametrize(
    ("kwargs", "ok"),
    [
        ({"betas": (0.0, 0.0)}, True),
        ({"betas": (0.9, 0.999), "eps": 1e-300}, True),
        ({"betas": (1.0, 0.999)}, False),
        ({"betas": (0.9, 1.0)}, False),
        ({"betas": (1.5, 0.999)}, False),
        ({"betas": (-0.1, 0.999)}, False),
        ({"eps": 0.0}, False),
        ({"eps": -1e-8}, False),
    ],
)
def test_adams_bounds(kwargs, ok):
    if ok:
        optim.Adam([param()], **kwargs)
        return
    with pytest.raises(ValueError) as e:
        optim.Adam([param()], **kwargs)
    betas, eps = kwargs.get("betas", (0.9, 0.999)), kwargs.get("eps", 1e-8)
    assert str(e.value) == f"betas={betas}, eps={eps}: expected 0 <= beta < 1 and eps > 0"


@pytest.mark.parametrize(("momentum", "decay"), [(-0.1, 0.0), (0.0, -0.1)])
def test_sgds_bounds(momentum, decay):
    with pytest.raises(ValueError) as e:
        optim.SGD([param()], momentum=momentum, weight_decay=decay)
    assert str(e.value) == f"momentum={momentum}, weight_decay={decay}: expected >= 0"
    optim.SGD([param()], momentum=0.0, weight_decay=0.0)


def test_no_parameters_is_refused_in_words():
    with pytest.raises(ValueError) as e:
        optim.SGD([])
    assert str(e.value) == "the optimizer got no parameters"


@pytest.mark.parametrize("device", ["cpu", "sim"])
def test_adams_eps_is_added_to_the_denominator(device):
    """With eps = 1 the first step is lr x g / (|g| + 1): 0.1 x 0.75 / 1.75 for g = 0.75."""
    p = param(device, (0.5,))
    opt = optim.Adam([p], lr=0.1, eps=1.0)
    (p**3).sum().backward()
    opt.step()
    assert p.numpy()[0] == pytest.approx(0.5 - 0.1 * 0.75 / 1.75, rel=1e-12)


def test_adams_state_follows_the_parameter_to_another_device():
    """Adam's state holds arrays and a step count; the arrays move with the model, the count stays a number."""
    model = nn.Linear(2, 2)
    opt = optim.Adam(model.parameters(), lr=0.1)
    x = tensor([[0.5, -1.5]])
    (model(x) ** 2).sum().backward()
    opt.step()
    model.to("sim")
    opt.zero_grad()
    (model(x.to("sim")) ** 2).sum().backward()
    opt.step()
    for p in model.parameters():
        assert p.device.owns(opt.state[p]["m"]) and opt.state[p]["step"] == 2


def stepped(optimizer_class, device="cpu", steps=2, **kwargs):
    p = param(device)
    opt = optimizer_class([p], lr=0.1, **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
    return p, opt


def test_state_dict_holds_the_hyperparameters_tensors_and_numbers():
    _, opt = stepped(optim.Adam)
    saved = opt.state_dict()
    assert saved["hyper"] == opt.hyper and saved["hyper"] is not opt.hyper
    entry = saved["state"]["0"]
    assert entry["step"] == 2 and type(entry["step"]) is int
    assert type(entry["m"]).__name__ == "Tensor" and entry["m"].numpy().shape == (2,)


def test_a_state_dict_loads_into_a_fresh_optimizer_and_steps_alike():
    p, opt = stepped(optim.Adam)
    q = nn.Parameter(tensor(p.numpy()))
    fresh = optim.Adam([q], lr=0.5)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.hyper == opt.hyper
    for o, x in ((opt, p), (fresh, q)):
        o.zero_grad()
        (x * x).sum().backward()
        o.step()
    numpy.testing.assert_array_equal(p.numpy(), q.numpy())


def test_what_a_checkpoint_gives_back_loads_numbers_as_numbers_and_arrays_as_copies():
    """A checkpoint read back holds NumPy arrays, 0-d for the step count."""
    p, opt = stepped(optim.Adam, steps=1)
    m = numpy.array([0.25, -0.5])
    opt.load_state_dict({"state": {"0": {"step": numpy.array(7), "m": m, "v": numpy.array([1.0, 1.0])}}})
    state = opt.state[p]
    assert state["step"] == 7 and type(state["step"]) is int
    assert isinstance(state["m"], numpy.ndarray) and state["m"] is not m
    opt.zero_grad()
    (p * p).sum().backward()
    opt.step()  # updates the optimizer's m in place, never the caller's array
    numpy.testing.assert_array_equal(m, [0.25, -0.5])
    assert opt.state[p]["step"] == 8


def test_only_hyperparameters_may_be_loaded():
    _, opt = stepped(optim.SGD, momentum=0.9)
    opt.load_state_dict({"hyper": {"lr": 0.5}})
    assert opt.hyper["lr"] == 0.5 and "momentum_buffer" in opt.state[opt.params[0]]


@pytest.mark.parametrize("key", ["1", "5"])
def test_state_for_a_parameter_the_optimizer_lacks_is_refused(key):
    _, opt = stepped(optim.SGD, momentum=0.9)
    with pytest.raises(ValueError) as e:
        opt.load_state_dict({"state": {key: {"momentum_buffer": numpy.zeros(2)}}})
    assert str(e.value) == "optimizer state has 1 parameters, this optimizer 1"


def test_state_of_the_wrong_shape_is_refused_in_words():
    _, opt = stepped(optim.SGD, momentum=0.9)
    with pytest.raises(ValueError) as e:
        opt.load_state_dict({"state": {"0": {"momentum_buffer": numpy.zeros(3)}}})
    assert str(e.value) == "optimizer state 0.momentum_buffer: shape (3,), parameter (2,)"


def test_the_fused_kernels_carry_devchecks_names():
    """CuPy names a kernel after its third argument; profilers and the stand-in's faults see that name."""
    from devcheck.engine import get_device
    from devcheck.machine.replay import seam
    from tests.recordings import h100

    with seam.replay(h100()):
        fused = get_device("cuda:0").fused
        assert {name: kernel.name for name, kernel in fused.items()} == {n: f"devcheck_{n}" for n in fused}


def test_plain_sgd_on_a_gpu_is_one_fused_launch():
    from devcheck.machine.replay import seam, standin
    from tests.recordings import h100

    with seam.replay(h100()):
        p = param("cuda:0")
        opt = optim.SGD([p], lr=0.1)
        p.grad = tensor([1.0, 1.0], device="cuda:0")
        opt.step()
        standin.COUNTS.clear()
        opt.step()
        assert standin.COUNTS["launches"] == 1
