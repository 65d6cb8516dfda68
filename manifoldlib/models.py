"""Networks of the paper's experiments and small networks for the theory chapters.

Every model returns class **scores** ``(B, C)``: manifoldlib takes ``log_softmax`` itself.

Introduced in the chapter "Training and the trace of G" (book/05); the MLPs in "Foliations
you can see" (book/04).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLP", "MnistCNN", "VGG", "ACTIVATIONS", "build_model"]

#: Activations selectable by name; only ``relu`` satisfies Theorem 3.1.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}

_VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class MnistCNN(nn.Module):
    """The paper's MNIST classifier (PyTorch's MNIST example, without dropout).

    conv(1->32, 3) ReLU, conv(32->64, 3) ReLU, max-pool 2, flatten (9216), fc 128 ReLU, fc 10.
    Piecewise linear, so Theorem 3.1 applies. Input ``(B, 1, 28, 28)``, normalised.

    Args:
        num_classes: number of output scores.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``(B, C)`` for ``x`` of shape ``(B, 1, 28, 28)``."""
        return self.classifier(self.features(x))


class VGG(nn.Module):
    """VGG-11-like CIFAR-10 network with BatchNorm, as in the paper's Appendix C.

    Each convolution is followed by BatchNorm (an affine map in eval mode, so the network stays
    piecewise linear) and ReLU; then a linear layer from the last feature map to the classes.

    Args:
        width: channel multiplier; 1.0 is the paper's VGG-11 (64 ... 512 channels), 1/8 trains
            on a CPU in seconds per epoch.
        num_classes: number of output scores.
        in_channels: input channels.
    """

    def __init__(self, width: float = 1.0, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be positive, got {width!r}")
        layers: list[nn.Module] = []
        channels = in_channels
        for item in _VGG11:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                out = max(1, round(int(item) * width))
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
                channels = out
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``(B, C)`` for ``x`` of shape ``(B, 3, 32, 32)``."""
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """A small fully connected classifier with a selectable activation.

    Args:
        in_features: input dimension (inputs may have any shape; they are flattened).
        hidden: widths of the hidden layers.
        num_classes: number of output scores.
        activation: one of ``relu`` (piecewise linear: Theorem 3.1 holds), ``gelu``, ``tanh``,
            ``sigmoid`` (smooth: it need not hold).
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (64, 64),
        num_classes: int = 3,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``(B, C)``."""
        return self.net(x)


def build_model(arch: str, **kwargs: object) -> nn.Module:
    """Build a model by name: ``mnist_cnn``, ``vgg11`` or ``mlp``.

    Args:
        arch: the architecture's name.
        **kwargs: passed to the constructor.

    Returns:
        The untrained model.
    """
    table: dict[str, type[nn.Module]] = {"mnist_cnn": MnistCNN, "vgg11": VGG, "mlp": MLP}
    if arch not in table:
        raise ValueError(f"arch must be one of {sorted(table)}, got {arch!r}")
    return table[arch](**kwargs)
