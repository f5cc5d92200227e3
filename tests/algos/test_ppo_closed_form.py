"""The closed-form PPO gradient equals autograd's on eq. 9, in every branch of the loss."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlhp.algos.batch import Batch
from rlhp.algos.config import PPOConfig
from rlhp.algos.ppo import ppo_loss, ppo_update
from rlhp.algos.ppo_closed_form import normalized_batch, ppo_gradient, supports_closed_form
from rlhp.nn import PolicyConfig, build_policy

OBS = gym.spaces.Box(-np.inf, np.inf, (5,), np.float64)
ACT = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)


def policy_and_batch(policy_cfg: PolicyConfig, n: int = 64, seed: int = 0):
    """A policy whose normalizer has seen data, and a batch whose old log-probs and values
    are spread so that ratios and values fall on both sides of both clip ranges."""
    torch.manual_seed(seed)
    policy = build_policy(policy_cfg, OBS, ACT)
    g = torch.Generator().manual_seed(seed)
    obs = 2.0 + 3.0 * torch.randn(n, 5, generator=g)
    if policy.obs_normalizer is not None:
        policy.obs_normalizer.update(obs)
    with torch.no_grad():
        dist = policy.distribution(obs)
        actions = dist.sample()
        logp = dist.log_prob(actions) + torch.linspace(-0.6, 0.6, n)
        values = policy.value(obs) + torch.linspace(-0.5, 0.5, n)
    A = torch.randn(n, generator=g)
    return policy, Batch(obs, actions, logp, A, values + A, values)


def autograd_grads(policy, mb, cfg):
    policy.zero_grad(set_to_none=True)
    loss, stats = ppo_loss(policy, mb, cfg)
    loss.backward()
    return [p.grad.clone() for p in policy.parameters()], stats


CASES = [
    (PolicyConfig(), PPOConfig()),
    (PolicyConfig(activation="relu"), PPOConfig(ent_coef=0.01)),
    (PolicyConfig(normalize_obs=False), PPOConfig(clip_value_loss=False, norm_adv=False)),
    (PolicyConfig(hidden_sizes=(32, 16, 8)), PPOConfig(clip_coef=0.1, vf_coef=1.0, ent_coef=0.1)),
]


@pytest.mark.parametrize(("policy_cfg", "cfg"), CASES)
def test_closed_form_gradient_equals_autograd(policy_cfg, cfg) -> None:
    policy, batch = policy_and_batch(policy_cfg)
    assert supports_closed_form(policy)
    expected, expected_stats = autograd_grads(policy, batch, cfg)
    policy.zero_grad(set_to_none=True)
    stats = ppo_gradient(policy, normalized_batch(policy, batch), cfg)
    for p, g in zip(policy.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)
    for key, value in expected_stats.items():
        torch.testing.assert_close(stats[key], value, rtol=1e-5, atol=1e-6)
    # the batch did exercise every branch: clipped and unclipped ratios and values
    assert 0.0 < stats["clip_frac"].item() < 1.0


def test_a_whole_update_matches_autograd() -> None:
    policy, batch = policy_and_batch(PolicyConfig(), n=256, seed=1)
    twin = copy.deepcopy(policy)
    start = [p.detach().clone() for p in policy.parameters()]
    runs = []
    for net, closed in ((policy, True), (twin, False)):
        cfg = PPOConfig(update_epochs=3, num_minibatches=4, closed_form_gradient=closed)
        opt = torch.optim.Adam(net.parameters(), lr=3e-4, eps=1e-5)
        runs.append(ppo_update(net, opt, batch, cfg, torch.Generator().manual_seed(0)))
    for a, b in zip(policy.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert runs[0].keys() == runs[1].keys()
    for key in runs[0]:
        assert runs[0][key] == pytest.approx(runs[1][key], rel=1e-3, abs=1e-6)
    moved = [(a - b).abs().max().item() for a, b in zip(policy.parameters(), start, strict=True)]
    assert min(moved) > 1e-5  # every parameter took the steps: the update did something


def test_other_policies_take_autograd() -> None:
    discrete = build_policy(PolicyConfig(), OBS, gym.spaces.Discrete(4))
    elu = build_policy(PolicyConfig(activation="elu"), OBS, ACT)
    assert not supports_closed_form(discrete)
    assert not supports_closed_form(elu)
