"""Modules, optimizers, data loading, checkpoints, and learning: on the CPU and the simulated GPU."""

import os

import numpy
import pytest

from devcheck.engine import CheckpointError, gradcheck, load, manual_seed, nn, optim, save, tensor
from devcheck.engine import functional as F
from devcheck.engine.data import DataLoader, RandomSampler, TensorDataset
from devcheck.engine.ops import Tanh


def mlp(device="cpu", seed=0):
    manual_seed(seed)
    return nn.Sequential(
        nn.Linear(2, 16, device=device),
        nn.Tanh(),
        nn.Linear(16, 16, device=device),
        nn.ReLU(),
        nn.Linear(16, 2, device=device),
    )


def blobs(n=256, seed=0):
    rng = numpy.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 2)).astype("float32") + numpy.where(y[:, None] == 1, 1.5, -1.5).astype("float32")
    return x, y


def train(device, epochs=5, optimizer="sgd"):
    model = mlp(device)
    opt = (
        optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        if optimizer == "sgd"
        else optim.Adam(model.parameters(), lr=0.01)
    )
    manual_seed(1)
    loader = DataLoader(TensorDataset(*blobs()), batch_size=32, shuffle=True, device=device)
    losses = []
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return model, losses


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_mlp_learns_and_both_devices_tell_the_same_story(optimizer):
    _, cpu = train("cpu", optimizer=optimizer)
    _, sim = train("sim", optimizer=optimizer)
    assert numpy.mean(cpu[-8:]) < 0.25 * numpy.mean(cpu[:8])
    numpy.testing.assert_allclose(sim, cpu, rtol=1e-5)


def test_same_seed_gives_bit_identical_weights_on_every_device():
    cpu, sim = mlp("cpu"), mlp("sim")
    for (name, a), (_, b) in zip(cpu.named_parameters(), sim.named_parameters(), strict=True):
        assert numpy.array_equal(a.numpy(), b.numpy()), name
        assert b.device.name == "sim"


def test_linear_init_follows_pytorch():
    manual_seed(0)
    layer = nn.Linear(400, 30)
    bound = 1 / 20
    w = layer.weight.numpy()
    assert w.shape == (30, 400) and w.dtype == numpy.float32
    assert -bound <= w.min() < -0.9 * bound and 0.9 * bound < w.max() <= bound
    assert abs(layer.bias.numpy()).max() <= bound


def test_state_dict_names_in_order_and_round_trip():
    model = mlp()
    names = list(model.state_dict())
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    other = mlp(seed=5)
    other.load_state_dict(model.state_dict())
    x = tensor(numpy.ones((3, 2)))
    assert numpy.array_equal(other(x).numpy(), model(x).numpy())


def test_load_state_dict_names_every_mismatch():
    state = mlp().state_dict()
    state.pop("0.bias")
    state["extra"] = tensor([1.0])
    state["2.weight"] = tensor(numpy.zeros((3, 3)))
    state["4.bias"] = tensor(numpy.zeros(2), dtype="float64")
    with pytest.raises(ValueError) as err:
        mlp().load_state_dict(state)
    message = str(err.value)
    for part in (
        "missing key '0.bias'",
        "unexpected key 'extra'",
        "'2.weight': shape (3, 3) in the state, (16, 16)",
        "'4.bias': dtype float64 in the state, float32",
    ):
        assert part in message


def test_train_eval_switches_dropout():
    manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    x = tensor(numpy.ones((8, 4)))
    model.eval()
    assert numpy.array_equal(model(x).numpy(), model(x).numpy())
    model.train()
    assert not numpy.array_equal(model(x).numpy(), model(x).numpy())


def test_dropout_masks_match_across_devices():
    manual_seed(3)
    a = F.dropout(tensor(numpy.ones(1000, dtype="float32")), 0.3).numpy()
    manual_seed(3)
    b = F.dropout(tensor(numpy.ones(1000, dtype="float32"), device="sim"), 0.3).numpy()
    assert numpy.array_equal(a, b)
    assert 0.6 < (a > 0).mean() < 0.8 and set(numpy.unique(a)) == {0.0, numpy.float32(1 / 0.7)}


def test_sgd_momentum_and_weight_decay_match_the_formula(fused_device):
    p = nn.Parameter(tensor([1.0, -2.0], device=fused_device))
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    buf, w = numpy.zeros(2), numpy.array([1.0, -2.0])
    for _ in range(3):
        opt.zero_grad()
        (p * p).sum().backward()
        g = 2 * w + 0.01 * w
        buf = g if not buf.any() else 0.9 * buf + g
        w = w - 0.1 * buf
        opt.step()
    numpy.testing.assert_allclose(p.numpy(), w, rtol=1e-6)


def test_plain_sgd_matches_the_formula(fused_device):
    p = nn.Parameter(tensor([1.0, -2.0], device=fused_device))
    opt = optim.SGD([p], lr=0.1, momentum=0.0, weight_decay=0.01)
    w = numpy.array([1.0, -2.0])
    for _ in range(3):
        opt.zero_grad()
        (p * p).sum().backward()
        w = w - 0.1 * (2 * w + 0.01 * w)
        opt.step()
    numpy.testing.assert_allclose(p.numpy(), w, rtol=1e-6)


def test_hyperparameters_given_as_0d_numpy_arrays_update_on_every_device(fused_device):
    """A fused kernel on a GPU takes Python and NumPy scalars, not a 0-d numpy.ndarray (CuPy's
    "Unsupported type"): the optimizer holds its hyperparameters as floats, as it does lr."""
    results = []
    for number in (float, numpy.array):
        p, q = (nn.Parameter(tensor([1.0, -2.0], device=fused_device)) for _ in range(2))
        sgd = optim.SGD([p], lr=0.1, momentum=number(0.9), weight_decay=number(0.01))
        adam = optim.Adam([q], lr=0.1, betas=(number(0.9), number(0.999)), eps=number(1e-8), weight_decay=number(0.05))
        for _ in range(2):
            sgd.zero_grad(), adam.zero_grad()
            ((p * p).sum() + (q * q).sum()).backward()
            sgd.step(), adam.step()
        results.append((p.numpy(), q.numpy()))
    numpy.testing.assert_array_equal(results[0], results[1])
    assert all(type(v) is float for v in sgd.hyper.values()) and all(type(v) is float for v in adam.hyper.values())


@pytest.mark.parametrize("decay", [0.0, 0.05])
def test_adam_matches_the_formula(fused_device, decay):
    p = nn.Parameter(tensor([0.5, -1.5], device=fused_device))
    opt = optim.Adam([p], lr=0.1, weight_decay=decay)
    m = v = numpy.zeros(2)
    w = numpy.array([0.5, -1.5])
    for t in range(1, 4):
        opt.zero_grad()
        (p**3).sum().backward()
        g = 3 * w**2 + decay * w
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        w = w - 0.1 * (m / (1 - 0.9**t)) / (numpy.sqrt(v / (1 - 0.999**t)) + 1e-8)
        opt.step()
    numpy.testing.assert_allclose(p.numpy(), w, rtol=1e-5)


def test_a_fused_update_is_one_launch_per_parameter():
    from devcheck.machine.replay import seam, standin
    from tests.recordings import h100

    with seam.replay(h100()):
        params = [nn.Parameter(tensor(numpy.ones((4, 3)), device="cuda:0")) for _ in range(3)]
        for opt in (optim.SGD(params, lr=0.1, momentum=0.9), optim.Adam(params, lr=0.1)):
            for p in params:
                p.grad = tensor(numpy.ones((4, 3)), device="cuda:0")
            opt.step()  # the first step also allocates the state
            standin.COUNTS.clear()
            opt.step()
            assert standin.COUNTS["launches"] == len(params) and standin.COUNTS["to_host"] == 0


@pytest.mark.parametrize("lr", [0, -1, float("nan"), float("inf"), "0.1"])
def test_bad_learning_rates(lr):
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD(mlp().parameters(), lr=lr)


def test_optimizer_state_follows_the_model_to_another_device():
    model, _ = train("cpu", epochs=1)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = (tensor(a) for a in blobs(32))
    F.cross_entropy(model(x), y).backward()
    opt.step()
    model.to("sim")
    x, y = x.to("sim"), y.to("sim")
    F.cross_entropy(model(x), y).backward()
    opt.step()
    assert all(p.device.name == "sim" for p in model.parameters())
    assert all(p.device.owns(opt.state[p]["momentum_buffer"]) for p in model.parameters())
    for p in model.parameters():  # state set by hand, from host arrays: placed at the next step
        opt.state[p] = {"momentum_buffer": numpy.zeros(p.shape, "float32")}
    F.cross_entropy(model(x), y).backward()
    opt.step()
    assert all(p.device.owns(opt.state[p]["momentum_buffer"]) for p in model.parameters())
    model.to("cpu")  # and back: the state follows again
    F.cross_entropy(model(x.to("cpu")), y.to("cpu")).backward()
    opt.step()
    assert all(isinstance(opt.state[p]["momentum_buffer"], numpy.ndarray) for p in model.parameters())


def test_dataloader_batches_shuffle_drop_last_and_workers(device):
    data = TensorDataset(numpy.arange(10), numpy.arange(10) * 2)
    assert [len(x) for x, _ in DataLoader(data, batch_size=4)] == [4, 4, 2]
    assert len(DataLoader(data, batch_size=4, drop_last=True)) == 2
    manual_seed(7)
    order = [x.tolist() for x, _ in DataLoader(data, batch_size=3, shuffle=True)]
    manual_seed(7)
    threaded = [x.tolist() for x, _ in DataLoader(data, batch_size=3, shuffle=True, num_workers=2, device=device)]
    assert order == threaded and sorted(sum(order, [])) == list(range(10))
    x, y = next(iter(DataLoader(data, batch_size=5, device=device)))
    assert x.device.name == device and y.tolist() == [0, 2, 4, 6, 8]
    sampler = RandomSampler(10, generator=numpy.random.default_rng(0))
    assert list(sampler) != list(sampler)  # a new permutation each epoch


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"batch_size": 0}, "batch_size=0"), ({"num_workers": -1}, "num_workers")]
)
def test_dataloader_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(TensorDataset(numpy.arange(3)), **kwargs)


def test_checkpoint_round_trip_across_devices(tmp_path):
    model, _ = train("cpu", epochs=1)
    opt = optim.Adam(model.parameters(), lr=0.01)
    x, y = (tensor(a) for a in blobs(32))
    F.cross_entropy(model(x), y).backward()
    opt.step()
    path = tmp_path / "ckpt.npz"
    save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3, "losses": [0.5, 0.25]}, path)
    state = load(path, device="sim")
    assert state["epoch"] == 3 and state["losses"] == [0.5, 0.25]
    restored = mlp("sim", seed=9)
    restored.load_state_dict(state["model"])
    assert numpy.array_equal(restored(x.to("sim")).numpy(), model(x).numpy())
    opt2 = optim.Adam(restored.parameters(), lr=0.01)
    opt2.load_state_dict(state["optim"])
    first = next(iter(restored.parameters()))
    assert opt2.state[first]["step"] == 1 and first.device.owns(opt2.state[first]["m"])
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary file left behind


def test_bad_checkpoints_are_clear_errors_and_never_run_code(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load(tmp_path / "missing.npz")
    good = tmp_path / "good.npz"
    save({"w": tensor([1.0, 2.0])}, good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(os.urandom(300))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load(garbage)
    pickled = tmp_path / "pickled.npz"
    numpy.savez(
        pickled,
        __devcheck_tree__=numpy.array('{"array": "a0", "tensor": true}'),
        a0=numpy.array([{"evil": 1}], dtype=object),
    )
    with pytest.raises(CheckpointError, match="holds pickled objects; refusing to load it"):
        load(pickled)


def test_a_failed_save_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    save({"w": tensor([1.0])}, path)
    before = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(numpy, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save({"w": tensor([2.0])}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.npz"]


def test_save_removes_stale_temporaries_and_keeps_live_ones(tmp_path, null_device):
    """kill -9 during save() leaves `.NAME.*.tmp` behind: the next save() of the same target removes the
    ones no process holds locked, and never one a live writer holds (its flock) or another target's."""
    import fcntl

    path = tmp_path / "ckpt.npz"
    stale = [tmp_path / ".ckpt.npz.4242.abcdefgh.tmp", tmp_path / ".ckpt.npz.x1y2z3w4.tmp"]
    live, other = tmp_path / ".ckpt.npz.4243.livelive.tmp", tmp_path / ".other.npz.4242.abcdefgh.tmp"
    for f in [*stale, live, other]:
        f.write_bytes(b"half a checkpoint")
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a save() in progress in another process
        save({"w": tensor([1.0])}, path)
        assert sorted(os.listdir(tmp_path)) == sorted(
            [".ckpt.npz.4243.livelive.tmp", ".other.npz.4242.abcdefgh.tmp", "ckpt.npz"]
        )
    assert load(path)["w"].numpy().tolist() == [1.0]
    with pytest.raises(ValueError, match="not a regular file"):
        save({"w": tensor([1.0])}, null_device)


class TanhOffBy1Percent(Tanh):
    """A user-written op whose backward is 1% off: what gradcheck exists to catch."""

    def backward(self, gy):
        return (gy * (1 - self.y * self.y) * 1.01,)


def test_gradcheck_catches_a_broken_backward(device):
    x = tensor(numpy.linspace(-1, 1, 5), dtype="float64", device=device, requires_grad=True)
    result = gradcheck(lambda x: TanhOffBy1Percent.apply(x).sum(), [x])
    assert not result.ok and "gradient differs" in result.message
    assert not gradcheck(lambda x: TanhOffBy1Percent.apply(x).sum(), [x], fast=True)
    assert gradcheck(lambda x: x.tanh().sum(), [x])


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps, lr=0.1)])
def test_the_optimizer_updates_a_parameter_on_its_own_gpu_not_the_current_one(make):
    """cuda:1 while cuda:0 is current: CuPy refuses an array of another device without peer access."""
    from devcheck.machine.replay import seam
    from tests.recordings import h100, two_gpus

    with seam.replay(two_gpus(h100())):
        p = nn.Parameter(tensor(numpy.ones(3), device="cuda:1"))
        opt = make([p])
        for _ in range(2):
            p.grad = tensor(numpy.ones(3), device="cuda:1")
            opt.step()
        assert all(v.device.id == 1 for v in opt.state[p].values() if hasattr(v, "shape"))
        assert p.data.device.id == 1 and (p.numpy() < 1).all()


def test_float16_adam_leaves_a_parameter_whose_gradient_is_0_alone(fused_device):
    """eps = 1e-8 is 0 in float16: an update in float16 is 0 / (0 + 0) = nan where a gradient has been 0.
    Computed in float32 and stored in float16 (PyTorch's fused Adam), it is 0 there and right elsewhere."""
    if fused_device == "sim":
        pytest.skip("the array API has no float16")
    p = nn.Parameter(tensor(numpy.array([0.5, -1.5, 2.0], numpy.float16), device=fused_device))
    opt = optim.Adam([p], lr=0.1)
    w = numpy.array([0.5, -1.5, 2.0])
    m = v = numpy.zeros(3)
    for t in range(1, 4):
        opt.zero_grad()
        (p[:2] ** 2).sum().backward()  # the third element's gradient is 0
        g = numpy.array([2 * w[0], 2 * w[1], 0.0])
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        w = w - 0.1 * (m / (1 - 0.9**t)) / (numpy.sqrt(v / (1 - 0.999**t)) + 1e-8)
        opt.step()
    got = p.numpy()
    assert got.dtype == numpy.float16 and got[2] == 2.0, got
    numpy.testing.assert_allclose(got, w, rtol=2e-3)  # float16 keeps 11 bits: a few of its ulps
