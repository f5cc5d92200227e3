"""Eq. 9's gradient written out for the MLP Gaussian policy: the numbers of
``ppo_loss(...).backward()`` (to float rounding), without an autograd graph.

On the CPU a minibatch of 64 costs about a millisecond through autograd, nearly all of it
the per-op cost of building and walking the graph, not arithmetic (``benchmarks/README.md``,
"Where one PPO update's time goes"). Here a minibatch is one forward pass of the two MLPs,
the loss terms, and one hand-written backward pass. With n samples, z = (a - mu) / sigma,
r = exp(log pi - log pi_old) and A the (normalized) advantages:

    d log pi / d mu_j       = z_j / sigma_j
    d log pi / d log sigma_j = z_j^2 - 1
    d(-L^CLIP) / d r         = -A / n inside [1-eps, 1+eps], and outside where max() takes
                               the unclipped term; else 0
    d(c1 L^VF) / d V         = c1 (V - R) / n, or c1 (V_clip - R) / n where max() takes the
                               clipped term and |V - V_old| <= eps; else 0
    d(-c2 H) / d log sigma_j = -c2                  (H does not depend on the state)
    one layer y = h W^T + b:  dW = dy^T h,  db = sum_n dy,  dh = dy W

and through tanh dz = dh (1 - h^2), through ReLU dz = dh [h > 0]. Where max() ties, both
paths give the same gradient up to rounding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rlhp.algos.batch import Batch
from rlhp.algos.config import PPOConfig
from rlhp.nn.policies import ActorCritic, MLPGaussianPolicy

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_ACTIVATIONS = (nn.Tanh, nn.ReLU)
_aten = torch.ops.aten


def supports_closed_form(policy: ActorCritic) -> bool:
    """Whether ``policy`` is the MLP Gaussian policy with tanh or ReLU layers, the one whose
    gradient this module writes out (every other policy takes autograd)."""
    if not isinstance(policy, MLPGaussianPolicy):
        return False
    layers = [*policy.actor_mean, *policy.critic]
    return all(isinstance(m, (nn.Linear, *_ACTIVATIONS)) for m in layers)


def normalized_batch(policy: MLPGaussianPolicy, batch: Batch) -> Batch:
    """``batch`` with its observations normalized once for the whole update (the statistics
    are frozen during an update, so every minibatch would compute the same)."""
    if policy.obs_normalizer is None:
        return batch
    with torch.no_grad():
        obs = policy.obs_normalizer(batch.obs)
    return Batch(obs, batch.actions, batch.logp_old, batch.A_hat, batch.returns, batch.values_old)


def _forward(net: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Output of ``net`` and the input of each of its linear layers."""
    inputs: list[torch.Tensor] = []
    h = x
    for module in net:
        if isinstance(module, nn.Linear):
            inputs.append(h)
            h = F.linear(h, module.weight, module.bias)
        else:
            h = torch.tanh(h) if isinstance(module, nn.Tanh) else torch.relu(h)
    return h, inputs


def _backward(net: nn.Sequential, inputs: list[torch.Tensor], d_out: torch.Tensor) -> None:
    """Write into ``.grad`` of every linear layer of ``net`` the gradient given ``d_out``,
    the loss's gradient with respect to the network's output."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    relu = any(isinstance(m, nn.ReLU) for m in net)
    delta = d_out
    for i in range(len(linears) - 1, -1, -1):
        layer, h = linears[i], inputs[i]
        layer.weight.grad = torch.mm(delta.t(), h)
        layer.bias.grad = delta.sum(0)
        if i:  # h = act(z): dz = dh * act'(z), from the activation's output h
            d_h = torch.mm(delta, layer.weight)
            delta = _aten.threshold_backward(d_h, h, 0.0) if relu else _aten.tanh_backward(d_h, h)


def ppo_gradient(policy: MLPGaussianPolicy, mb: Batch, cfg: PPOConfig) -> dict[str, torch.Tensor]:
    """Set ``.grad`` of every parameter of ``policy`` to eq. 9's gradient on ``mb`` (whose
    observations are already normalized: ``normalized_batch``); return ``ppo_loss``'s
    diagnostics."""
    eps = cfg.clip_coef
    with torch.no_grad():
        n = mb.obs.shape[0]
        mean, actor_inputs = _forward(policy.actor_mean, mb.obs)
        log_std = policy.actor_log_std
        inv_std = torch.exp(-log_std)
        z = (mb.actions - mean) * inv_std
        zz = z * z
        log_norm = log_std.sum() + _LOG_SQRT_2PI * log_std.numel()
        log_ratio = zz.sum(-1).mul_(-0.5).sub_(log_norm).sub_(mb.logp_old)
        ratio = log_ratio.exp()

        A = mb.A_hat
        if cfg.norm_adv and A.numel() > 1:
            A = (A - A.mean()) / (A.std() + 1e-8)
        unclipped = -A * ratio
        clipped = -A * ratio.clamp(1.0 - eps, 1.0 + eps)
        policy_loss = torch.maximum(unclipped, clipped).mean()
        # Inside the clip range the two terms are equal and each takes half the gradient
        # (ratio's derivative through the clamp is 1 there); outside, only the unclipped
        # term carries one, and only where max() takes it.
        inside = (ratio >= 1.0 - eps) & (ratio <= 1.0 + eps)
        d_logp = torch.where(inside | (unclipped > clipped), unclipped / n, 0.0)

        V, critic_inputs = _forward(policy.critic, mb.obs)
        V = V.squeeze(-1)
        err = V - mb.returns
        if cfg.clip_value_loss:
            diff = V - mb.values_old
            err_clipped = mb.values_old + diff.clamp(-eps, eps) - mb.returns
            sq, sq_clipped = err * err, err_clipped * err_clipped
            value_loss = 0.5 * torch.maximum(sq, sq_clipped).mean()
            in_range = (diff >= -eps) & (diff <= eps)
            d_err = torch.where(sq >= sq_clipped, err, torch.where(in_range, err_clipped, 0.0))
        else:
            value_loss = 0.5 * (err * err).mean()
            d_err = err

        _backward(policy.actor_mean, actor_inputs, d_logp.unsqueeze(-1) * z * inv_std)
        policy.actor_log_std.grad = torch.mv((zz - 1.0).t(), d_logp) - cfg.ent_coef
        _backward(policy.critic, critic_inputs, d_err.unsqueeze(-1) * (cfg.vf_coef / n))

        return {
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": log_norm + 0.5 * log_std.numel(),
            "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
            "clip_frac": ((ratio - 1.0).abs() > eps).float().mean(),
        }
