"""Reward predictor networks r_hat(o, a) -> scalar per step (Christiano et al. appendix A).

- ``RewardMLP`` (A.1, MuJoCo): flattened observation, concatenated with the action (a
  vector, or one-hot for a discrete action), two hidden layers of 64 with leaky ReLU.
- ``RewardCNN`` (A.2, Atari): uint8 [C, H, W] frames scaled to [0, 1]; the paper's trunk is
  four conv layers 7x7/3, 5x5/2, 3x3/1, 3x3/1 with 16 filters each, batch norm and dropout,
  leaky ReLU (α = 0.01), then a dense layer of 64 and the scalar output. It is smaller than
  the Nature DQN trunk (Mnih et al. 2015: 8x8/4 32, 4x4/2 64, 3x3/1 64), offered as
  ``cnn_arch='nature'``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rlhp.errors import ConfigError
from rlhp.nn.layers import nhwc_pixels
from rlhp.preference.config import RewardModelConfig

# (out_channels, kernel, stride) per conv layer.
CONV_ARCHS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "christiano2017": ((16, 7, 3), (16, 5, 2), (16, 3, 1), (16, 3, 1)),  # appendix A.2
    "nature": ((32, 8, 4), (64, 4, 2), (64, 3, 1)),  # Mnih et al. 2015
}


@dataclass(frozen=True)
class InputSpec:
    """What the reward model reads per step.

    ``obs_shape``: one observation (``(11,)`` for Hopper, ``(4, 84, 84)`` for Atari).
    ``action_shape``: one action (``(3,)`` continuous, ``()`` discrete).
    ``n_actions``: number of discrete actions (one-hot encoded), ``None`` when continuous.
    """

    obs_shape: tuple[int, ...]
    action_shape: tuple[int, ...]
    n_actions: int | None = None

    @classmethod
    def from_spaces(cls, observation_space: object, action_space: object) -> InputSpec:
        """From gymnasium spaces (Box observations; Box or Discrete actions)."""
        n = getattr(action_space, "n", None)
        return cls(
            tuple(int(d) for d in observation_space.shape),  # type: ignore[attr-defined]
            () if n is not None else tuple(int(d) for d in action_space.shape),  # type: ignore[attr-defined]
            int(n) if n is not None else None,
        )

    @property
    def action_features(self) -> int:
        """Width of the encoded action fed to the network."""
        if self.n_actions is not None:
            return self.n_actions
        return int(np.prod(self.action_shape)) if self.action_shape else 1

    def encode_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """[B, *action_shape] -> [B, action_features] floats (one-hot if discrete)."""
        if self.n_actions is not None:
            return F.one_hot(actions.long().reshape(-1), self.n_actions).float()
        return actions.reshape(actions.shape[0], -1).float()


def _dense(in_dim: int, hidden: tuple[int, ...], slope: float, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.LeakyReLU(slope)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = h
    layers.append(nn.Linear(in_dim, 1))
    return nn.Sequential(*layers)


class RewardMLP(nn.Module):
    """r_hat(o, a) for vector observations (appendix A.1)."""

    def __init__(self, spec: InputSpec, cfg: RewardModelConfig) -> None:
        super().__init__()
        self.spec = spec
        self.use_actions = cfg.use_actions
        obs_dim = int(np.prod(spec.obs_shape))
        in_dim = obs_dim + (spec.action_features if cfg.use_actions else 0)
        self.net = _dense(in_dim, cfg.hidden_sizes, cfg.leaky_relu_slope, cfg.dropout)
        # input standardization (identity until set_obs_statistics)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))

    @torch.no_grad()
    def set_obs_statistics(self, obs: torch.Tensor) -> None:
        """Standardize observations with the mean and std of ``obs`` [M, *obs_shape]."""
        x = obs.reshape(obs.shape[0], -1).double()
        self.obs_mean.copy_(x.mean(0).float())
        self.obs_std.copy_(x.std(0).clamp_min(1e-6).float())

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """[B, *obs_shape], [B, *action_shape] -> [B] per-step rewards."""
        x = (obs.reshape(obs.shape[0], -1).float() - self.obs_mean) / self.obs_std
        if self.use_actions:
            x = torch.cat([x, self.spec.encode_actions(actions)], dim=1)
        return self.net(x).squeeze(-1)


class RewardCNN(nn.Module):
    """r_hat(o, a) for uint8 frame stacks [C, H, W] (appendix A.2)."""

    def __init__(self, spec: InputSpec, cfg: RewardModelConfig) -> None:
        super().__init__()
        if len(spec.obs_shape) != 3:
            raise ConfigError(
                f"reward_model.network: 'cnn' needs [C, H, W] observations, got shape "
                f"{spec.obs_shape}; use network='mlp' for vector observations"
            )
        self.spec = spec
        self.use_actions = cfg.use_actions
        layers: list[nn.Module] = []
        channels = spec.obs_shape[0]
        for out_channels, kernel, stride in CONV_ARCHS[cfg.cnn_arch]:
            layers.append(nn.Conv2d(channels, out_channels, kernel, stride))
            if cfg.cnn_batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.LeakyReLU(cfg.leaky_relu_slope))
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            channels = out_channels
        layers.append(nn.Flatten())
        self.trunk = nn.Sequential(*layers)
        with torch.no_grad():
            n_flat = self.trunk(torch.zeros(1, *spec.obs_shape)).shape[1]
        in_dim = n_flat + (spec.action_features if cfg.use_actions else 0)
        self.head = _dense(in_dim, cfg.hidden_sizes, cfg.leaky_relu_slope, cfg.dropout)
        # NHWC, as the policy's trunk (rlhp.nn.layers.NatureCNN): a training step on the CPU
        # runs about 1.4x faster; the values agree with NCHW's to float rounding.
        self.trunk.to(memory_format=torch.channels_last)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] uint8 (or floats in [0, 255]), [B, *action_shape] -> [B] rewards."""
        x = self.trunk(nhwc_pixels(obs))
        if self.use_actions:
            x = torch.cat([x, self.spec.encode_actions(actions)], dim=1)
        return self.head(x).squeeze(-1)


def build_reward_net(spec: InputSpec, cfg: RewardModelConfig) -> nn.Module:
    """One ensemble member for ``cfg.network``."""
    if cfg.network == "cnn":
        return RewardCNN(spec, cfg)
    return RewardMLP(spec, cfg)
