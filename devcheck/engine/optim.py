"""SGD (momentum, weight decay) and Adam, as PyTorch defines them. State is keyed by parameter
and follows it when the model moves to another device."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy

from devcheck.engine.nn import Parameter
from devcheck.engine.tensor import Tensor, no_grad


class Optimizer:
    def __init__(self, params: Iterable[Parameter], lr: float, **hyper: Any):
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimizer got no parameters")
        if not (isinstance(lr, int | float) and lr > 0 and lr == lr and lr != float("inf")):
            raise ValueError(f"learning rate lr={lr!r}: expected a positive finite number")
        # floats, as lr: a 0-d NumPy array is no argument of a GPU's fused kernel (CuPy: "Unsupported type")
        self.hyper = {"lr": float(lr), **{name: float(value) for name, value in hyper.items()}}
        self.state: dict[Parameter, dict[str, Any]] = {p: {} for p in self.params}
        self._placed: dict[Parameter, tuple] = {}  # (device, id(state dict)) when a parameter's state was last placed

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        with no_grad():
            for p in self.params:
                if p.grad is not None:
                    state = self.state[p]
                    if self._placed.get(p) != (p.device, id(state)):  # new or replaced state, or a moved model
                        self._follow(p, state)
                    with p.device.context():  # new state and the kernel on the parameter's GPU, not the current one
                        self.update(p, p.grad.data, state)

    def _follow(self, p: Parameter, state: dict[str, Any]) -> None:
        for name, value in state.items():
            if hasattr(value, "shape") and not p.device.owns(value):
                state[name] = p.device.from_host(numpy.asarray(_host(value)))
        self._placed[p] = (p.device, id(state))

    def update(self, p: Parameter, g: Any, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {
            "hyper": dict(self.hyper),
            "state": {
                str(i): {k: (Tensor(v, p.device) if hasattr(v, "shape") else v) for k, v in self.state[p].items()}
                for i, p in enumerate(self.params)
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("state", {})
        if len(saved) > len(self.params) or any(int(k) >= len(self.params) for k in saved):
            raise ValueError(f"optimizer state has {len(saved)} parameters, this optimizer {len(self.params)}")
        self.hyper.update({name: float(value) for name, value in state.get("hyper", {}).items()})
        for key, entries in saved.items():
            p = self.params[int(key)]
            restored = {}
            for name, value in entries.items():
                if isinstance(value, Tensor) or hasattr(value, "shape") and getattr(value, "ndim", 0):
                    host = value.numpy() if isinstance(value, Tensor) else numpy.asarray(value)
                    if tuple(host.shape) != p.shape:
                        raise ValueError(f"optimizer state {key}.{name}: shape {host.shape}, parameter {p.shape}")
                    restored[name] = p.device.from_host(numpy.array(host, copy=True))
                else:
                    restored[name] = value.item() if hasattr(value, "item") else value
            self.state[p] = restored


def _host(value: Any) -> Any:
    from devcheck.engine.backend import device_of

    return device_of(value).to_host(value)


class SGD(Optimizer):
    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0):
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"momentum={momentum}, weight_decay={weight_decay}: expected >= 0")
        super().__init__(params, lr, momentum=momentum, weight_decay=weight_decay)

    def update(self, p, g, state):
        lr, momentum, decay = self.hyper["lr"], self.hyper["momentum"], self.hyper["weight_decay"]
        kernel = p.device.fused.get("sgd_momentum" if momentum else "sgd")
        if momentum and "momentum_buffer" not in state:
            state["momentum_buffer"] = p.device.xp.zeros_like(p.data)  # momentum * 0 + d: PyTorch's first step
        if kernel is not None:  # one fused launch (engine/fused.py)
            args = (g, lr, decay, momentum, p.data, state["momentum_buffer"]) if momentum else (g, lr, decay, p.data)
            kernel(*args)
            return
        if decay:
            g = g + decay * p.data
        if momentum:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += g
            g = buf
        p.data -= lr * g


class Adam(Optimizer):
    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        if not all(0 <= b < 1 for b in betas) or eps <= 0:
            raise ValueError(f"betas={betas}, eps={eps}: expected 0 <= beta < 1 and eps > 0")
        super().__init__(params, lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay)

    def update(self, p, g, state):
        h, xp = self.hyper, p.device.xp
        if "m" not in state:
            state["step"], state["m"], state["v"] = 0, xp.zeros_like(p.data), xp.zeros_like(p.data)
        state["step"] += 1
        m, v, t = state["m"], state["v"], state["step"]
        step, bc2 = h["lr"] / (1 - h["beta1"] ** t), 1 - h["beta2"] ** t
        # float16 is computed in float32, as PyTorch does: eps = 1e-8 is 0 in float16 (the array API has none)
        half = p.data.dtype == getattr(xp, "float16", None)
        kernel = p.device.fused.get("adam_half" if half else "adam")
        if kernel is not None:  # one fused launch (engine/fused.py)
            kernel(g, step, h["beta1"], h["beta2"], h["eps"], bc2, h["weight_decay"], p.data, m, v)
            return
        if h["weight_decay"]:  # a device with no fused kernels: the array API's, which has no float16
            g = g + h["weight_decay"] * p.data
        m *= h["beta1"]
        m += (1 - h["beta1"]) * g
        v *= h["beta2"]
        v += (1 - h["beta2"]) * (g * g)
        p.data -= step * (m / (xp.sqrt(v / bc2) + h["eps"]))
