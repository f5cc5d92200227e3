"""TRPO: conjugate gradient, Fisher-vector products, the KL-enforcing line search, and the
trust-region value fit of the GAE paper (section 5)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.func import functional_call, hessian

from rlhp.algos.batch import Batch
from rlhp.algos.config import TRPOConfig
from rlhp.algos.trpo import (
    conjugate_gradient,
    flat_params,
    hessian_vector_product,
    trpo_policy_step,
    trpo_value_step_trust_region,
)
from rlhp.nn import PolicyConfig, build_policy
from rlhp.nn.distributions import DiagGaussian

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)
ACT = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


def small_policy(seed=0):
    torch.manual_seed(seed)
    return build_policy(PolicyConfig(normalize_obs=False, hidden_sizes=(8,)), OBS, ACT)


def make_batch(policy, n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, 3, generator=g)
    with torch.no_grad():
        dist = policy.distribution(obs)
        actions = dist.sample()
        logp = dist.log_prob(actions)
        values = policy.value(obs)
    # advantages correlated with the first action dimension: a direction to improve in
    A = actions[:, 0] + 0.1 * torch.randn(n, generator=g)
    returns = obs[:, 0] * 2.0 + 1.0
    return Batch(obs, actions, logp, A, returns, values)


def test_conjugate_gradient_solves_spd_system():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(10, 10, generator=g, dtype=torch.float64)
    A = M @ M.T + 10 * torch.eye(10, dtype=torch.float64)
    b = torch.randn(10, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: A @ v, b, iters=50, tol=1e-24)
    torch.testing.assert_close(A @ x, b)


def test_fisher_vector_product_equals_explicit_kl_hessian():
    """Pearlmutter's double backprop gives the same F v as the explicit Hessian of the mean KL."""
    policy = small_policy()
    batch = make_batch(policy, n=64)
    mean_net = policy.actor_mean
    shapes = [p.shape for p in mean_net.parameters()]
    names = [n for n, _ in mean_net.named_parameters()]
    with torch.no_grad():
        dist_old = policy.distribution(batch.obs).detach()

    def mean_kl(theta: torch.Tensor) -> torch.Tensor:
        params, i = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            n = int(np.prod(shape))
            params[name] = theta[i : i + n].view(shape)
            i += n
        mean = functional_call(mean_net, params, (batch.obs,))
        return dist_old.kl(DiagGaussian(mean, theta[i:])).mean()

    theta = flat_params(policy.policy_parameters())  # actor_mean weights, then log std
    H = hessian(mean_kl)(theta)
    Fvp = hessian_vector_product(
        lambda: dist_old.kl(policy.distribution(batch.obs)).mean(),
        policy.policy_parameters(),
        damping=0.0,
    )
    v = torch.randn_like(theta)
    torch.testing.assert_close(Fvp(v), H @ v, rtol=1e-4, atol=1e-5)


def test_policy_step_respects_trust_region_and_improves_surrogate():
    policy = small_policy(1)
    batch = make_batch(policy, seed=1)
    cfg = TRPOConfig(max_kl=0.01)
    stats = trpo_policy_step(policy, batch, cfg)
    assert stats["line_search_accepted"] == 1.0
    assert 0.0 < stats["kl"] <= cfg.max_kl
    assert stats["policy_improvement"] > 0.0
    with torch.no_grad():
        new_logp = policy.distribution(batch.obs).log_prob(batch.actions)
    # the step moved probability toward actions with positive advantage
    assert ((new_logp - batch.logp_old) * batch.A_hat).mean() > 0


def test_line_search_rejects_steps_that_violate_the_constraint():
    """With accept_ratio impossible to meet, no step is taken and the policy is unchanged."""
    policy = small_policy(2)
    batch = make_batch(policy, seed=2)
    before = flat_params(policy.policy_parameters()).clone()
    stats = trpo_policy_step(policy, batch, TRPOConfig(accept_ratio=1e9, backtrack_iters=3))
    assert stats["line_search_accepted"] == 0.0
    torch.testing.assert_close(flat_params(policy.policy_parameters()), before)


def test_value_step_stays_in_its_trust_region_and_lowers_the_loss():
    policy = small_policy(3)
    batch = make_batch(policy, seed=3)
    cfg = TRPOConfig(value_max_kl=0.01, value_steps=1)
    with torch.no_grad():
        V_old = policy.value(batch.obs)
        sigma2 = ((V_old - batch.returns) ** 2).mean()
    stats = trpo_value_step_trust_region(policy, batch, cfg)
    with torch.no_grad():
        V_new = policy.value(batch.obs)
    constraint = ((V_new - V_old) ** 2).mean() / (2 * sigma2)
    assert stats["value_loss"] < stats["value_loss_before"]
    # quadratic model of the constraint: allow slack for the network's curvature
    assert constraint.item() <= 0.01 * 1.5
    assert constraint.item() > 0.0
    assert stats["value_loss"] == pytest.approx(
        ((V_new - batch.returns) ** 2).mean().item(), rel=1e-5
    )


def test_entropy_bonus_widens_the_policy_when_advantages_carry_no_signal():
    """Christiano et al. A.1: the entropy bonus. With pure-noise advantages the bonus is the
    only signal, so the accepted step raises the policy's entropy; without it, it does not."""

    def entropy_after(ent_coef: float) -> tuple[float, float]:
        policy = small_policy()
        batch = make_batch(policy)
        g = torch.Generator().manual_seed(1)
        batch = Batch(batch.obs, batch.actions, batch.logp_old, torch.randn(512, generator=g),
                      batch.returns, batch.values_old)  # fmt: skip
        before = float(policy.distribution(batch.obs).entropy().mean())
        trpo_policy_step(policy, batch, TRPOConfig(ent_coef=ent_coef, accept_ratio=0.0))
        return before, float(policy.distribution(batch.obs).entropy().mean())

    before, with_bonus = entropy_after(1.0)
    _, without = entropy_after(0.0)
    assert with_bonus > before + 1e-3
    assert with_bonus > without
