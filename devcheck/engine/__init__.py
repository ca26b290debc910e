"""devcheck's own small tensor/autograd engine, PyTorch-shaped: NumPy on the CPU, CuPy on each
NVIDIA GPU. It knows nothing of the CLI and can be used on its own:

    from devcheck.engine import tensor, grad
    a, b, c = (tensor(v, requires_grad=True) for v in (1.0, 2.0, 3.0))
    x = tensor(1.0)
    y = a**2 * x + b * x + c
    grad(y, [a, b, c])   # (tensor(2.), tensor(1.), tensor(1.))
"""

from devcheck.engine import functional, methods, nn, optim  # noqa: F401 (methods gives Tensor its operators)
from devcheck.engine.backend import get_device, manual_seed
from devcheck.engine.creation import arange, ones, ones_like, rand, randn, tensor, zeros, zeros_like
from devcheck.engine.gradcheck import GradcheckResult, gradcheck
from devcheck.engine.io import CheckpointError, load, save
from devcheck.engine.methods import argmax, concatenate, isfinite, isinf, isnan, stack, where
from devcheck.engine.tensor import Tensor, grad, is_grad_enabled, no_grad

float16, float32, float64 = "float16", "float32", "float64"

__all__ = [
    "Tensor",
    "tensor",
    "zeros",
    "ones",
    "zeros_like",
    "ones_like",
    "randn",
    "rand",
    "arange",
    "grad",
    "no_grad",
    "is_grad_enabled",
    "manual_seed",
    "get_device",
    "save",
    "load",
    "CheckpointError",
    "gradcheck",
    "GradcheckResult",
    "concatenate",
    "stack",
    "where",
    "isnan",
    "isinf",
    "isfinite",
    "argmax",
    "functional",
    "nn",
    "optim",
    "float16",
    "float32",
    "float64",
]
