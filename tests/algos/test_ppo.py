"""PPO's loss (eq. 7 and 9) against hand computations, and the update's mechanics."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlhp.algos.batch import Batch
from rlhp.algos.config import PPOConfig
from rlhp.algos.ppo import ppo_loss, ppo_update
from rlhp.nn import PolicyConfig, build_policy

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)
ACT = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def make_batch(policy, n=64, seed=0, logp_shift=None):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, 3, generator=g)
    with torch.no_grad():
        actions = policy.distribution(obs).sample()
        logp = policy.distribution(obs).log_prob(actions)
        values = policy.value(obs)
    if logp_shift is not None:
        logp = logp + logp_shift
    A = torch.randn(n, generator=g)
    return Batch(obs, actions, logp, A, values + A, values)


def test_clipped_surrogate_matches_hand_computation():
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(normalize_obs=False), OBS, ACT)
    # old log-probs shifted so that ratios spread across both sides of the clip range
    shift = torch.linspace(-0.5, 0.5, 64)
    mb = make_batch(policy, logp_shift=shift)
    cfg = PPOConfig(norm_adv=False, clip_value_loss=False, ent_coef=0.01, vf_coef=0.5)
    loss, stats = ppo_loss(policy, mb, cfg)

    with torch.no_grad():
        dist = policy.distribution(mb.obs)
        ratio = torch.exp(dist.log_prob(mb.actions) - mb.logp_old)
        expected_pg = 0.0
        for r, a in zip(ratio.tolist(), mb.A_hat.tolist(), strict=True):
            expected_pg += -min(r * a, min(max(r, 0.8), 1.2) * a)
        expected_pg /= 64
        v = policy.value(mb.obs)
        expected_v = 0.5 * ((v - mb.returns) ** 2).mean().item()
        expected_ent = dist.entropy().mean().item()
    assert stats["policy_loss"].item() == pytest.approx(expected_pg, rel=1e-5)
    assert stats["value_loss"].item() == pytest.approx(expected_v, rel=1e-5)
    assert loss.item() == pytest.approx(
        expected_pg - 0.01 * expected_ent + 0.5 * expected_v, rel=1e-5
    )
    assert 0.0 < stats["clip_frac"].item() < 1.0


def test_value_clipping_takes_the_pessimistic_loss():
    torch.manual_seed(1)
    policy = build_policy(PolicyConfig(normalize_obs=False), OBS, ACT)
    mb = make_batch(policy)
    mb.values_old = mb.values_old - 1.0  # new values are 1.0 away from old: outside the clip range
    clipped = ppo_loss(policy, mb, PPOConfig(clip_value_loss=True))[1]["value_loss"].item()
    with torch.no_grad():
        v = policy.value(mb.obs)
        v_clip = mb.values_old + (v - mb.values_old).clamp(-0.2, 0.2)
        expected = 0.5 * torch.max((v - mb.returns) ** 2, (v_clip - mb.returns) ** 2).mean().item()
    assert clipped == pytest.approx(expected, rel=1e-5)


def test_advantage_normalization_is_per_minibatch():
    torch.manual_seed(2)
    policy = build_policy(PolicyConfig(normalize_obs=False), OBS, ACT)
    mb = make_batch(policy)
    scaled = Batch(mb.obs, mb.actions, mb.logp_old, mb.A_hat * 100 + 7, mb.returns, mb.values_old)
    cfg = PPOConfig(norm_adv=True)
    assert ppo_loss(policy, mb, cfg)[1]["policy_loss"].item() == pytest.approx(
        ppo_loss(policy, scaled, cfg)[1]["policy_loss"].item(), rel=1e-4, abs=1e-6
    )


def test_gradient_norm_is_clipped():
    """With plain SGD (lr = 1) each step moves the parameters by the clipped gradient."""
    torch.manual_seed(3)
    policy = build_policy(PolicyConfig(normalize_obs=False), OBS, ACT)
    batch = make_batch(policy, n=32)
    before = torch.cat([p.detach().flatten().clone() for p in policy.parameters()])
    opt = torch.optim.SGD(policy.parameters(), lr=1.0)
    ppo_update(
        policy, opt, batch, PPOConfig(update_epochs=1, num_minibatches=1, max_grad_norm=1e-3)
    )
    after = torch.cat([p.detach().flatten() for p in policy.parameters()])
    assert (after - before).norm().item() == pytest.approx(1e-3, rel=1e-3)


def test_early_stop_on_target_kl():
    torch.manual_seed(4)
    policy = build_policy(PolicyConfig(normalize_obs=False), OBS, ACT)
    batch = make_batch(policy, n=256)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
    stats = ppo_update(policy, opt, batch, PPOConfig(update_epochs=10, target_kl=1e-6))
    assert stats["epochs"] == 1.0
    stats = ppo_update(policy, opt, batch, PPOConfig(update_epochs=3, target_kl=None))
    assert stats["epochs"] == 3.0


def test_update_improves_the_surrogate():
    torch.manual_seed(5)
    policy = build_policy(PolicyConfig(normalize_obs=False), OBS, ACT)
    batch = make_batch(policy, n=256)
    cfg = PPOConfig(norm_adv=False)
    before = ppo_loss(policy, batch, cfg)[1]["policy_loss"].item()
    ppo_update(policy, torch.optim.Adam(policy.parameters(), lr=3e-3), batch, cfg)
    after = ppo_loss(policy, batch, cfg)[1]["policy_loss"].item()
    assert after < before - 1e-3
    assert math.isfinite(after)
