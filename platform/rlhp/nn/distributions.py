"""Action distributions with the three things PPO and TRPO need: log-prob, entropy, KL.

Small hand-written classes instead of ``torch.distributions`` because the rollout loop calls
them once per environment step, where the generic classes' argument validation dominates.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class ActionDistribution(Protocol):
    """What the learner needs from a policy's action distribution."""

    def sample(self) -> torch.Tensor: ...
    def mode(self) -> torch.Tensor: ...
    def log_prob(self, actions: torch.Tensor) -> torch.Tensor: ...
    def entropy(self) -> torch.Tensor: ...
    def kl(self, other: ActionDistribution) -> torch.Tensor: ...
    def detach(self) -> ActionDistribution: ...


class DiagGaussian:
    """Factorized Gaussian over a continuous action vector; sums over action dimensions."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor) -> None:
        self.mean = mean
        self.log_std = log_std.expand_as(mean)

    def sample(self) -> torch.Tensor:
        return self.mean + self.log_std.exp() * torch.randn_like(self.mean)

    def mode(self) -> torch.Tensor:
        return self.mean

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        z = (actions - self.mean) * torch.exp(-self.log_std)
        return (-0.5 * z.pow(2) - self.log_std - _LOG_SQRT_2PI).sum(-1)

    def entropy(self) -> torch.Tensor:
        return (self.log_std + 0.5 + _LOG_SQRT_2PI).sum(-1)

    def kl(self, other: ActionDistribution) -> torch.Tensor:
        """KL(self || other), closed form for two diagonal Gaussians."""
        assert isinstance(other, DiagGaussian)
        var_ratio = torch.exp(2.0 * (self.log_std - other.log_std))
        mean_term = ((self.mean - other.mean) * torch.exp(-other.log_std)).pow(2)
        return 0.5 * (var_ratio + mean_term - 1.0).sum(-1) - (self.log_std - other.log_std).sum(-1)

    def detach(self) -> DiagGaussian:
        return DiagGaussian(self.mean.detach(), self.log_std.detach())


class Categorical:
    """Categorical over discrete actions, parameterized by logits."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits - logits.logsumexp(-1, keepdim=True)

    def sample(self) -> torch.Tensor:
        return torch.multinomial(self.logits.exp(), 1).squeeze(-1)

    def mode(self) -> torch.Tensor:
        return self.logits.argmax(-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.logits.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        return -(self.logits.exp() * self.logits).sum(-1)

    def kl(self, other: ActionDistribution) -> torch.Tensor:
        """KL(self || other) = sum_a p(a) (log p(a) - log q(a))."""
        assert isinstance(other, Categorical)
        return (self.logits.exp() * (self.logits - other.logits)).sum(-1)

    def detach(self) -> Categorical:
        return Categorical(self.logits.detach())

    @property
    def probs(self) -> torch.Tensor:
        return F.softmax(self.logits, -1)
