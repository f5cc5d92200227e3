"""Acting interfaces for rollout loops: numpy in, numpy out.

``NumpyMLPPolicy`` is a numpy twin of the MLP policies.

Acting calls the policy once per environment step on a handful of observations; for 64-unit
MLPs torch's per-call dispatch costs several times the arithmetic. This twin copies the
weights once per policy version and evaluates the same function with numpy (float32), which
is what makes rollout collection cheap. Tests pin it to the torch policy's outputs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from rlhp.nn.policies import ActorCritic, MLPCategoricalPolicy, MLPGaussianPolicy

_ACT = {
    nn.Tanh: np.tanh,
    nn.ReLU: lambda x: np.maximum(x, 0.0),
    nn.ELU: lambda x: np.where(x > 0, x, np.expm1(x)),
}
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _layers(seq: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray, object]]:
    out: list[tuple[np.ndarray, np.ndarray, object]] = []
    mods = list(seq)
    for i, m in enumerate(mods):
        if isinstance(m, nn.Linear):
            act = _ACT[type(mods[i + 1])] if i + 1 < len(mods) else None
            out.append(
                (
                    m.weight.detach().cpu().numpy().T.copy(),
                    m.bias.detach().cpu().numpy().copy(),
                    act,
                )
            )
    return out


def _forward(layers: list[tuple[np.ndarray, np.ndarray, object]], x: np.ndarray) -> np.ndarray:
    for W, b, act in layers:
        x = x @ W + b
        if act is not None:
            x = act(x)  # type: ignore[operator]
    return x


class NumpyMLPPolicy:
    """``act(obs) -> (action, log_prob, value)`` of an MLP policy, in numpy."""

    def __init__(self, policy: ActorCritic, rng: np.random.Generator) -> None:
        self.rng = rng
        self.continuous = isinstance(policy, MLPGaussianPolicy)
        with torch.no_grad():
            norm = policy.obs_normalizer
            self.norm = (
                None
                if norm is None
                else (
                    norm.mean.cpu().numpy().astype(np.float32),
                    (norm.var + norm.eps).rsqrt().cpu().numpy().astype(np.float32),
                    np.float32(norm.clip),
                )
            )
            if self.continuous:
                assert isinstance(policy, MLPGaussianPolicy)
                self.actor = _layers(policy.actor_mean)
                self.log_std = policy.actor_log_std.detach().cpu().numpy().astype(np.float32)
            else:
                assert isinstance(policy, MLPCategoricalPolicy)
                self.actor = _layers(policy.actor)
            self.critic = _layers(policy.critic)

    @staticmethod
    def supports(policy: ActorCritic) -> bool:
        return isinstance(policy, MLPGaussianPolicy | MLPCategoricalPolicy)

    def _normalize(self, obs: np.ndarray) -> np.ndarray:
        x = obs.astype(np.float32, copy=False)
        if self.norm is None:
            return x
        mean, inv_std, clip = self.norm
        return np.clip((x - mean) * inv_std, -clip, clip)

    def value(self, obs: np.ndarray) -> np.ndarray:
        return _forward(self.critic, self._normalize(obs))[..., 0]

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = self._normalize(obs)
        out = _forward(self.actor, x)
        if self.continuous:
            std = np.exp(self.log_std)
            noise = self.rng.standard_normal(out.shape, dtype=np.float32)
            action = out + std * noise
            logp = (-0.5 * noise**2 - self.log_std - _LOG_SQRT_2PI).sum(-1)
        else:
            logits = out - out.max(-1, keepdims=True)
            log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
            u = self.rng.random((out.shape[0], 1), dtype=np.float32)
            action = (np.exp(log_probs).cumsum(-1) < u).sum(-1).clip(max=out.shape[-1] - 1)
            logp = np.take_along_axis(log_probs, action[:, None], -1)[:, 0]
        return action, logp.astype(np.float32), _forward(self.critic, x)[..., 0]


class TorchPolicyActor:
    """The same numpy interface over the torch policy itself (CNN policies)."""

    def __init__(self, policy: ActorCritic) -> None:
        self.policy = policy

    @staticmethod
    def _tensor(obs: np.ndarray) -> torch.Tensor:
        if not obs.flags.writeable:  # arrays from Ray's object store are read-only
            obs = obs.copy()
        return (
            torch.from_numpy(obs)
            if obs.dtype == np.uint8
            else torch.as_tensor(obs, dtype=torch.float32)
        )

    def value(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.policy.value(self._tensor(obs)).numpy()

    def mode(self, obs: np.ndarray) -> np.ndarray:
        """The most likely action for a batch of observations (evaluation, videos)."""
        with torch.no_grad():
            return self.policy.distribution(self._tensor(obs)).mode().numpy()

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a, logp, v = self.policy.act(self._tensor(obs))
        return a.numpy(), logp.numpy(), v.numpy()


def make_actor(policy: ActorCritic, rng: np.random.Generator) -> NumpyMLPPolicy | TorchPolicyActor:
    """The fastest acting interface for ``policy`` (a CPU policy; weights copied for MLPs)."""
    return (
        NumpyMLPPolicy(policy, rng) if NumpyMLPPolicy.supports(policy) else TorchPolicyActor(policy)
    )
