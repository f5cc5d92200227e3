"""Proximal Policy Optimization, clipped surrogate (Schulman et al. 2017), CleanRL layout.

L^CLIP(theta) = E[min(r_t(theta) A_hat_t, clip(r_t(theta), 1-eps, 1+eps) A_hat_t)]   (eq. 7)
L(theta) = E[-L^CLIP + c1 (V_theta(s_t) - V_t^targ)^2 - c2 H[pi_theta](s_t)]          (eq. 9)
"""

from __future__ import annotations

import torch
from torch import nn

from rlhp.algos.batch import Batch
from rlhp.algos.config import PPOConfig
from rlhp.algos.lean_step import LeanFusedAdam, clip_grad_norm
from rlhp.algos.ppo_closed_form import normalized_batch, ppo_gradient, supports_closed_form
from rlhp.nn.policies import ActorCritic, MLPGaussianPolicy


def ppo_loss(
    policy: ActorCritic, mb: Batch, cfg: PPOConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 9 on one minibatch; also returns detached diagnostics."""
    dist, V = policy.distribution_and_value(mb.obs)  # one trunk pass when heads share it
    logp = dist.log_prob(mb.actions)
    log_ratio = logp - mb.logp_old
    ratio = log_ratio.exp()

    A_hat = mb.A_hat
    if cfg.norm_adv and A_hat.numel() > 1:
        A_hat = (A_hat - A_hat.mean()) / (A_hat.std() + 1e-8)
    policy_loss = torch.max(
        -A_hat * ratio, -A_hat * ratio.clamp(1.0 - cfg.clip_coef, 1.0 + cfg.clip_coef)
    ).mean()  # -L^CLIP, eq. 7

    if cfg.clip_value_loss:
        V_clipped = mb.values_old + (V - mb.values_old).clamp(-cfg.clip_coef, cfg.clip_coef)
        value_loss = 0.5 * torch.max((V - mb.returns) ** 2, (V_clipped - mb.returns) ** 2).mean()
    else:
        value_loss = 0.5 * ((V - mb.returns) ** 2).mean()

    entropy = dist.entropy().mean()
    loss = policy_loss - cfg.ent_coef * entropy + cfg.vf_coef * value_loss
    with torch.no_grad():
        stats = {
            "policy_loss": policy_loss.detach(),
            "value_loss": value_loss.detach(),
            "entropy": entropy.detach(),
            "approx_kl": ((ratio - 1.0) - log_ratio).mean(),  # k3 estimator of KL(old || new)
            "clip_frac": ((ratio - 1.0).abs() > cfg.clip_coef).float().mean(),
        }
    return loss, stats


def ppo_update(
    policy: ActorCritic,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    cfg: PPOConfig,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """``update_epochs`` passes of minibatch SGD on eq. 9; early stop on ``target_kl``.

    The gradient comes from autograd on ``ppo_loss``, or, with ``cfg.closed_form_gradient``
    and the MLP Gaussian policy, from ``ppo_gradient`` (the same gradient, written out)."""
    closed_form = cfg.closed_form_gradient and supports_closed_form(policy)
    if closed_form:
        assert isinstance(policy, MLPGaussianPolicy)
        batch = normalized_batch(policy, batch)
    B = len(batch)
    mb_size = max(1, B // cfg.num_minibatches)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    lean = LeanFusedAdam(optimizer) if LeanFusedAdam.supports(optimizer) else None
    totals: dict[str, torch.Tensor] = {}
    n_minibatches = 0
    epochs_run = 0
    for _epoch in range(cfg.update_epochs):
        epochs_run += 1
        perm = torch.randperm(B, generator=generator, device="cpu").to(batch.obs.device)
        epoch_kl = torch.zeros((), device=batch.obs.device)
        for start in range(0, B - mb_size + 1, mb_size):
            mb = batch[perm[start : start + mb_size]]
            if closed_form:
                stats = ppo_gradient(policy, mb, cfg)  # type: ignore[arg-type]
            else:
                loss, stats = ppo_loss(policy, mb, cfg)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            if lean is not None:  # the same kernels as the two calls below, called directly
                clip_grad_norm([p.grad for p in params], cfg.max_grad_norm)
                lean.step()
            else:
                nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v
            epoch_kl = stats["approx_kl"]
            n_minibatches += 1
        if cfg.target_kl is not None and float(epoch_kl) > cfg.target_kl:
            break
    out = {k: float(v) / n_minibatches for k, v in totals.items()}
    out["epochs"] = float(epochs_run)
    return out
