"""Argument checks shared by the public functions.

Every public function of manifoldlib validates its input here, so that a wrong shape, a NaN
or a model that breaks the contract fails early with a message naming the argument, instead
of producing a silently wrong geometry.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import nn

__all__ = [
    "CHUNK",
    "check_finite",
    "check_input",
    "check_like",
    "check_model",
    "check_positive",
    "check_same_shape",
    "check_tensor",
    "eval_mode",
]

#: Default inputs per batched pass (forward pass or Jacobian) of every function that takes a
#: ``chunk`` argument: large enough to fill the cores, small enough for a CIFAR Jacobian.
CHUNK = 256

#: Smooth non-linearities: a network with one of them is outside Theorem 3.1's hypothesis.
_SMOOTH = (nn.GELU, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.ELU, nn.Softplus, nn.Mish, nn.CELU, nn.SELU)


def check_tensor(x: object, name: str, *, min_dim: int = 1) -> torch.Tensor:
    """Check that ``x`` is a floating tensor with at least ``min_dim`` dimensions.

    Args:
        x: the object to check.
        name: the argument's name, used in the message.
        min_dim: the smallest accepted number of dimensions.

    Returns:
        ``x`` itself.

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` has too few dimensions or an empty batch.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimensions (batch first: (B, *input_shape)), "
            f"got shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(x.shape)}); expected B >= 1")
    return x


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or infinite values.

    Args:
        x: tensor to check.
        name: the argument's name, used in the message.
    """
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} NaN or infinite values; expected finite numbers")


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape.

    Args:
        a: first tensor.
        b: second tensor.
        name_a: name of the first argument.
        name_b: name of the second argument.
    """
    if a.shape != b.shape:
        raise ValueError(
            f"{name_b} must have the same shape as {name_a}: {name_a} is {tuple(a.shape)}, "
            f"{name_b} is {tuple(b.shape)}"
        )


def check_positive(value: float, name: str, *, integer: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite positive number (or integer).

    Args:
        value: the number to check.
        name: the argument's name, used in the message.
        integer: require an ``int``.
    """
    if integer:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (value > 0 and value < float("inf")):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")


def check_model(model: object) -> nn.Module:
    """Check that ``model`` is a ``torch.nn.Module``.

    Args:
        model: the object to check.

    Returns:
        ``model`` itself.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module returning class scores of shape (B, C), "
            f"got {type(model).__name__}"
        )
    return model


def check_input(model: object, x: object, name: str = "x") -> None:
    """Check a model and a batch of inputs for it: types, dtype, device, finiteness.

    Args:
        model: must be a ``torch.nn.Module``.
        x: must be a finite floating tensor ``(B, *input_shape)`` with the dtype and device of
            the model's parameters.
        name: the argument's name, used in the messages.

    Raises:
        TypeError: wrong types, or ``x``'s dtype differs from the parameters'.
        ValueError: too few dimensions, an empty batch, another device, NaN or inf.
    """
    check_model(model)
    check_tensor(x, name, min_dim=2)
    param = next(iter(model.parameters()), None)
    if param is not None:
        if param.dtype != x.dtype:
            raise TypeError(
                f"{name} has dtype {x.dtype} but the model's parameters are {param.dtype}; "
                f"convert one of them (e.g. model.double() and {name}.double() for float64)"
            )
        if param.device != x.device:
            raise ValueError(
                f"{name} is on {x.device} but the model's parameters are on {param.device}; "
                f"move them to the same device"
            )
    check_finite(x, name)


def check_like(x: torch.Tensor, v: object, name_x: str, name_v: str) -> None:
    """Check that ``v`` is a finite floating tensor of the same shape as ``x``.

    For the second batch of a function, e.g. the vectors to project at the points ``x``, or
    the targets of paths from the points ``x``.

    Args:
        x: the checked reference batch ``(B, *input_shape)``.
        v: the batch to check.
        name_x: the name of ``x``, used in the messages.
        name_v: the name of ``v``, used in the messages.
    """
    check_tensor(v, name_v, min_dim=2)
    check_same_shape(x, v, name_x, name_v)
    check_finite(v, name_v)


def smooth_modules(model: nn.Module) -> list[str]:
    """Names of the submodules with a smooth (not piecewise-linear) non-linearity.

    Args:
        model: the network to scan.

    Returns:
        The qualified names of GELU, tanh, sigmoid, SiLU, ... modules. Functional calls in
        ``forward`` cannot be seen; this is a best-effort check.
    """
    return [name for name, m in model.named_modules() if isinstance(m, _SMOOTH)]


def warn_if_smooth(model: nn.Module, what: str) -> None:
    """Warn that ``what`` relies on Theorem 3.1, which needs a piecewise-linear network.

    Args:
        model: the network to scan.
        what: the name of the calling routine, used in the message.
    """
    smooth = smooth_modules(model)
    if smooth:
        warnings.warn(
            f"{what} relies on Theorem 3.1, which holds on each activation region of a "
            f"piecewise-linear network, but the model has smooth non-linearities "
            f"({', '.join(smooth[:3])}): D_x need not be integrable even locally, so there may "
            "be no leaf for the path to follow. (Even for ReLU networks, leaves are pieces, "
            "one per activation region.)",
            UserWarning,
            stacklevel=3,
        )


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in evaluation mode and restore its previous mode afterwards.

    The geometry is defined for a fixed function x -> p(y|x, w): dropout would make it random
    and batch-norm in training mode would couple the samples of a batch. So every routine
    computes in eval mode, and afterwards every submodule is put back in its own mode (a model
    in training mode with a frozen BatchNorm in eval mode comes back exactly so).

    Args:
        model: the network.

    Yields:
        The same model, in eval mode.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:  # each submodule's own mode (a frozen BatchNorm stays eval)
            m.training = training
