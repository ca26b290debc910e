"""Modules: parameters registered in the order they are assigned, with stable dotted names."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy

from devcheck.engine import backend, functional
from devcheck.engine.backend import FLOAT_DTYPES, get_device
from devcheck.engine.tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that a Module owns and an optimizer updates."""

    __slots__ = ()

    def __init__(self, data: Tensor):
        super().__init__(data.data, data.device, requires_grad=True)


class Module:
    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *args: Any) -> Any:
        return self.forward(*args)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, p in self._parameters.items():
            yield prefix + name, p
        for name, m in self._modules.items():
            yield from m.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def modules(self) -> Iterator[Module]:
        yield self
        for m in self._modules.values():
            yield from m.modules()

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def to(self, target: str) -> Module:
        """Move every parameter to a device, or convert it to a float dtype, in place (the same
        Parameter objects, so an optimizer built before keeps working)."""
        for p in self.parameters():
            if target in FLOAT_DTYPES:
                with p.device.context():
                    p.data = p.device.xp.astype(p.data, p.device.dtype(target))
            else:
                device = get_device(target)
                p.data, p.device = device.from_host(p.device.to_host(p.data)), device
            p.grad = None
        return self

    def state_dict(self) -> dict[str, Tensor]:
        return {name: p.detach() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy weights in, onto each parameter's own device; every mismatched key is named."""
        own = dict(self.named_parameters())
        problems = [f"missing key {k!r}" for k in own if k not in state]
        problems += [f"unexpected key {k!r}" for k in state if k not in own]
        for name, p in own.items():
            if name in state:
                value = state[name]
                host = value.numpy() if isinstance(value, Tensor) else numpy.asarray(value)
                if tuple(host.shape) != p.shape:
                    problems.append(f"{name!r}: shape {tuple(host.shape)} in the state, {p.shape} in the model")
                elif host.dtype.name != p.dtype:
                    problems.append(f"{name!r}: dtype {host.dtype.name} in the state, {p.dtype} in the model")
        if problems:
            raise ValueError("load_state_dict: " + "; ".join(problems))
        for name, p in own.items():
            value = state[name]
            host = value.numpy() if isinstance(value, Tensor) else numpy.asarray(value)
            p.data = p.device.from_host(numpy.array(host, copy=True))


class Linear(Module):
    """y = x W^T + b, initialised as PyTorch does: U(-1/sqrt(in), 1/sqrt(in)) for W and b."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device: str = "cpu", dtype: str = "float32"
    ):
        super().__init__()
        bound = 1 / math.sqrt(in_features)
        rng = backend.generator()
        target = get_device(device)

        def init(*shape: int) -> Parameter:
            host = rng.uniform(-bound, bound, size=shape).astype(dtype)
            return Parameter(Tensor(target.from_host(host), target))

        self.weight = init(out_features, in_features)
        self.bias = init(out_features) if bias else None
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x: Tensor) -> Tensor:
        return functional.linear(x, self.weight, self.bias)

    def __repr__(self) -> str:
        return f"Linear(in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None})"


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return functional.relu(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return functional.tanh(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return functional.sigmoid(x)


class Dropout(Module):
    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout(p={p}): expected 0 <= p < 1")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return functional.dropout(x, self.p, self.training)


class Sequential(Module):
    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self._modules.values():
            x = layer(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)
