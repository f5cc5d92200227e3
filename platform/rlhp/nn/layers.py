"""Building blocks: orthogonally initialized MLPs and the Nature-DQN convolutional trunk."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}


def orthogonal_(layer: nn.Module, gain: float = math.sqrt(2.0), bias: float = 0.0) -> nn.Module:
    """Orthogonal weights and constant bias, the PPO/TRPO reference initialization."""
    assert isinstance(layer, nn.Linear | nn.Conv2d)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.constant_(layer.bias, bias)
    return layer


def mlp(
    in_dim: int,
    hidden_sizes: Sequence[int],
    out_dim: int,
    activation: str = "tanh",
    out_gain: float = 1.0,
) -> nn.Sequential:
    """``in_dim -> hidden... -> out_dim`` with ``activation`` between layers, none at the end."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden_sizes:
        layers += [orthogonal_(nn.Linear(width, h)), ACTIVATIONS[activation]()]
        width = h
    layers.append(orthogonal_(nn.Linear(width, out_dim), gain=out_gain))
    return nn.Sequential(*layers)


class NatureCNN(nn.Module):
    """Mnih et al. 2015 trunk: 4x84x84 uint8 frames -> 512 features (pixels scaled to [0, 1])."""

    def __init__(self, in_channels: int = 4, features: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(
            orthogonal_(nn.Conv2d(in_channels, 32, 8, stride=4)),
            nn.ReLU(),
            orthogonal_(nn.Conv2d(32, 64, 4, stride=2)),
            nn.ReLU(),
            orthogonal_(nn.Conv2d(64, 64, 3, stride=1)),
            nn.ReLU(),
            nn.Flatten(),
            orthogonal_(nn.Linear(64 * 7 * 7, features)),
            nn.ReLU(),
        )
        self.features = features
        # NHWC weights and inputs: oneDNN's CPU convolutions run a training step about 1.4x
        # faster in this layout (benchmarks/README.md, "Atari's networks on the CPU"); the
        # values agree with NCHW's to float rounding.
        self.net.to(memory_format=torch.channels_last)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(nhwc_pixels(frames))


def nhwc_pixels(frames: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] uint8 frames -> float32 in [0, 1], laid out channels-last (NHWC).

    One conversion into a new tensor, then an in-place scaling: half the time of
    ``(frames.float() / 255).contiguous(channels_last)``, with equal values."""
    x = frames.to(dtype=torch.float32, memory_format=torch.channels_last, copy=True)
    return x.div_(255.0)
