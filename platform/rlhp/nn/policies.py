"""Actor-critic networks: MLP Gaussian / categorical for state vectors, Nature CNN for Atari.

Every policy exposes the same small interface, which PPO, TRPO and the rollout loop use:
``distribution(obs)``, ``value(obs)``, both at once (``distribution_and_value(obs)``),
``act(obs)``, and the split of its parameters into ``policy_parameters()`` and
``value_parameters()`` (TRPO steps them separately).
"""

from __future__ import annotations

import abc
import math

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlhp.errors import ConfigError
from rlhp.nn.config import PolicyConfig
from rlhp.nn.distributions import ActionDistribution, Categorical, DiagGaussian
from rlhp.nn.layers import NatureCNN, mlp, orthogonal_
from rlhp.nn.normalization import ObservationNormalizer


class ActorCritic(nn.Module, abc.ABC):
    """Base class: subclasses define ``distribution`` and ``value`` and set ``obs_normalizer``
    (an :class:`ObservationNormalizer` applied to every input, or None)."""

    obs_normalizer: ObservationNormalizer | None  # set by each subclass's __init__

    @abc.abstractmethod
    def distribution(self, obs: torch.Tensor) -> ActionDistribution: ...

    @abc.abstractmethod
    def value(self, obs: torch.Tensor) -> torch.Tensor: ...

    @abc.abstractmethod
    def policy_parameters(self) -> list[nn.Parameter]: ...

    @abc.abstractmethod
    def value_parameters(self) -> list[nn.Parameter]: ...

    def distribution_and_value(self, obs: torch.Tensor) -> tuple[ActionDistribution, torch.Tensor]:
        """Both heads on one batch (PPO's loss, eq. 9, needs both); a policy whose heads share
        a trunk overrides it to run the trunk once."""
        return self.distribution(obs), self.value(obs)

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (or take the mode of) an action; return ``(action, log_prob, value)``."""
        dist = self.distribution(obs)
        action = dist.mode() if deterministic else dist.sample()
        return action, dist.log_prob(action), self.value(obs)

    def _norm(self, obs: torch.Tensor) -> torch.Tensor:
        return obs if self.obs_normalizer is None else self.obs_normalizer(obs)


class MLPGaussianPolicy(ActorCritic):
    """Separate tanh MLPs for the Gaussian mean and the value; state-independent log std."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: PolicyConfig) -> None:
        super().__init__()
        self.obs_normalizer = (
            ObservationNormalizer((obs_dim,), cfg.obs_clip) if cfg.normalize_obs else None
        )
        self.actor_mean = mlp(obs_dim, cfg.hidden_sizes, act_dim, cfg.activation, out_gain=0.01)
        self.actor_log_std = nn.Parameter(torch.full((act_dim,), cfg.init_log_std))
        self.critic = mlp(obs_dim, cfg.hidden_sizes, 1, cfg.activation, out_gain=1.0)

    def distribution(self, obs: torch.Tensor) -> DiagGaussian:
        return DiagGaussian(self.actor_mean(self._norm(obs)), self.actor_log_std)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self._norm(obs)).squeeze(-1)

    def policy_parameters(self) -> list[nn.Parameter]:
        return [*self.actor_mean.parameters(), self.actor_log_std]

    def value_parameters(self) -> list[nn.Parameter]:
        return list(self.critic.parameters())


class MLPCategoricalPolicy(ActorCritic):
    """Separate MLPs for action logits and the value."""

    def __init__(self, obs_dim: int, n_actions: int, cfg: PolicyConfig) -> None:
        super().__init__()
        self.obs_normalizer = (
            ObservationNormalizer((obs_dim,), cfg.obs_clip) if cfg.normalize_obs else None
        )
        self.actor = mlp(obs_dim, cfg.hidden_sizes, n_actions, cfg.activation, out_gain=0.01)
        self.critic = mlp(obs_dim, cfg.hidden_sizes, 1, cfg.activation, out_gain=1.0)

    def distribution(self, obs: torch.Tensor) -> Categorical:
        return Categorical(self.actor(self._norm(obs)))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self._norm(obs)).squeeze(-1)

    def policy_parameters(self) -> list[nn.Parameter]:
        return list(self.actor.parameters())

    def value_parameters(self) -> list[nn.Parameter]:
        return list(self.critic.parameters())


class CNNCategoricalPolicy(ActorCritic):
    """Nature-CNN trunk with linear policy and value heads (CleanRL's Atari PPO agent).

    With ``shared_trunk`` the heads share one trunk (PPO); otherwise each head has its own,
    so the policy and value parameters are disjoint as TRPO requires.
    """

    def __init__(self, in_channels: int, n_actions: int, cfg: PolicyConfig) -> None:
        super().__init__()
        self.shared = cfg.cnn_shared_trunk
        self.obs_normalizer = None  # pixels are scaled to [0, 1] by the trunk instead
        self.trunk = NatureCNN(in_channels)
        self.value_trunk = None if self.shared else NatureCNN(in_channels)
        self.actor = orthogonal_(nn.Linear(512, n_actions), gain=0.01)
        self.critic = orthogonal_(nn.Linear(512, 1), gain=1.0)

    def distribution(self, obs: torch.Tensor) -> Categorical:
        return Categorical(self.actor(self.trunk(obs)))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        trunk = self.trunk if self.value_trunk is None else self.value_trunk
        return self.critic(trunk(obs)).squeeze(-1)

    def distribution_and_value(self, obs: torch.Tensor) -> tuple[Categorical, torch.Tensor]:
        if not self.shared:
            return super().distribution_and_value(obs)
        hidden = self.trunk(obs)  # one trunk pass (forward and backward) for both heads
        return Categorical(self.actor(hidden)), self.critic(hidden).squeeze(-1)

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dist, value = self.distribution_and_value(obs)
        action = dist.mode() if deterministic else dist.sample()
        return action, dist.log_prob(action), value

    def policy_parameters(self) -> list[nn.Parameter]:
        return [*self.trunk.parameters(), *self.actor.parameters()]

    def value_parameters(self) -> list[nn.Parameter]:
        trunk = self.trunk if self.value_trunk is None else self.value_trunk
        return [*trunk.parameters(), *self.critic.parameters()]


def _is_image(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def resolve_policy_kind(
    cfg: PolicyConfig, obs_space: gym.Space, act_space: gym.Space, env_id: str
) -> str:
    """The concrete network kind for these spaces, or a ConfigError naming ``policy.*``."""
    continuous = isinstance(act_space, gym.spaces.Box)
    discrete = isinstance(act_space, gym.spaces.Discrete)
    if not (continuous or discrete):
        raise ConfigError(
            f"env.id: {env_id} has action space {act_space}; rlhp supports Box and Discrete"
        )
    kind = cfg.kind
    if kind == "auto":
        kind = (
            "mlp_gaussian"
            if continuous
            else "cnn_categorical"
            if _is_image(obs_space)
            else "mlp_categorical"
        )
    if kind == "mlp_gaussian" and not continuous:
        raise ConfigError(
            f"policy.kind: 'mlp_gaussian' needs a continuous (Box) action space, but {env_id} has "
            f"{act_space}; use policy.kind=auto"
        )
    if kind != "mlp_gaussian" and not discrete:
        raise ConfigError(
            f"policy.kind: {kind!r} needs a Discrete action space, but {env_id} has {act_space}; "
            "use policy.kind=auto"
        )
    # compared with the default, not model_fields_set: actors rebuild the config from a full
    # dump, where every field counts as set
    if discrete and cfg.init_log_std != type(cfg).model_fields["init_log_std"].default:
        raise ConfigError(
            f"policy.init_log_std: applies to continuous actions only, but {env_id} has "
            f"{act_space}; remove the setting"
        )
    if kind == "cnn_categorical" and not _is_image(obs_space):
        raise ConfigError(
            f"policy.kind: 'cnn_categorical' needs uint8 image observations, but {env_id} has "
            f"{obs_space}; use policy.kind=auto"
        )
    return kind


def build_policy(
    cfg: PolicyConfig, obs_space: gym.Space, act_space: gym.Space, env_id: str = "env"
) -> ActorCritic:
    """Construct the actor-critic for one environment's single-env spaces."""
    kind = resolve_policy_kind(cfg, obs_space, act_space, env_id)
    if kind == "mlp_gaussian":
        return MLPGaussianPolicy(int(math.prod(obs_space.shape)), int(act_space.shape[0]), cfg)
    if kind == "mlp_categorical":
        return MLPCategoricalPolicy(int(math.prod(obs_space.shape)), int(act_space.n), cfg)
    return CNNCategoricalPolicy(int(obs_space.shape[0]), int(act_space.n), cfg)
