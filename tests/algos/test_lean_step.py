"""The lean clip and fused Adam step: torch's numbers, bit for bit, on torch's own state."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from rlhp.algos.batch import Batch
from rlhp.algos.config import PPOConfig
from rlhp.algos.lean_step import LeanFusedAdam, clip_grad_norm
from rlhp.algos.ppo import ppo_update
from rlhp.nn import PolicyConfig, build_policy

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)
ACT = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 2))


def _set_grads(net: nn.Module, step: int, scale: float) -> None:
    g = torch.Generator().manual_seed(step)
    for p in net.parameters():
        p.grad = torch.randn(p.shape, generator=g) * scale


@pytest.mark.parametrize("scale", [0.01, 10.0])  # below and above the clip norm
def test_clip_and_step_equal_torch_s_bit_for_bit(scale: float) -> None:
    ours, theirs = _net(), _net()
    opt_ours = torch.optim.Adam(ours.parameters(), lr=3e-4, eps=1e-5, fused=True)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=3e-4, eps=1e-5, fused=True)
    assert LeanFusedAdam.supports(opt_ours)
    for step in range(6):
        if step == 3:  # an annealed learning rate reaches both
            for opt in (opt_ours, opt_theirs):
                opt.param_groups[0]["lr"] = 1e-4
        lean = LeanFusedAdam(opt_ours)  # one per update, as ppo_update builds it
        _set_grads(ours, step, scale)
        _set_grads(theirs, step, scale)
        norm = clip_grad_norm([p.grad for p in ours.parameters()], 0.5)
        assert torch.equal(norm, nn.utils.clip_grad_norm_(theirs.parameters(), 0.5))
        lean.step()
        opt_theirs.step()
        for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
            assert torch.equal(a, b) and torch.equal(a.grad, b.grad)
    mine, torch_s = opt_ours.state_dict(), opt_theirs.state_dict()
    assert mine["param_groups"] == torch_s["param_groups"]
    for k, state in torch_s["state"].items():
        for name, value in state.items():
            assert torch.equal(mine["state"][k][name], value), name


def test_other_optimizers_take_torch_s_path() -> None:
    net = _net()
    params = list(net.parameters())
    assert not LeanFusedAdam.supports(torch.optim.Adam(params, foreach=True))
    assert not LeanFusedAdam.supports(torch.optim.Adam(params, fused=True, amsgrad=True))
    assert not LeanFusedAdam.supports(torch.optim.Adam(params, fused=True, weight_decay=0.1))
    assert not LeanFusedAdam.supports(torch.optim.AdamW(params, fused=True))
    two_groups = [{"params": params[:2]}, {"params": params[2:], "lr": 1e-2}]
    assert not LeanFusedAdam.supports(torch.optim.Adam(two_groups, fused=True))


def test_ppo_update_is_unchanged_by_the_lean_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole update (closed-form gradient, fused Adam: the learner's default) lands on the
    same weights as with torch's clip and step."""
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(), OBS, ACT)
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(256, 3, generator=g)
    with torch.no_grad():
        actions = policy.distribution(obs).sample()
        logp = policy.distribution(obs).log_prob(actions)
        values = policy.value(obs)
    A = torch.randn(256, generator=g)
    batch = Batch(obs, actions, logp, A, values + A, values)
    cfg = PPOConfig(update_epochs=3, num_minibatches=4)
    results = []
    for lean in (True, False):
        if not lean:
            monkeypatch.setattr(LeanFusedAdam, "supports", staticmethod(lambda _: False))
        p = copy.deepcopy(policy)
        opt = torch.optim.Adam(p.parameters(), lr=1e-3, eps=1e-5, fused=True)
        stats = ppo_update(p, opt, batch, cfg, torch.Generator().manual_seed(2))
        results.append((p.state_dict(), stats))
    (lean_state, lean_stats), (torch_state, torch_stats) = results
    assert lean_stats == torch_stats
    for name, value in torch_state.items():
        assert torch.equal(lean_state[name], value), name
