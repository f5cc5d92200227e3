"""Policy construction from spaces, the numpy acting twin, and the CNN policy."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlhp.errors import ConfigError
from rlhp.nn import PolicyConfig, build_policy
from rlhp.nn.acting import NumpyMLPPolicy, TorchPolicyActor, make_actor
from rlhp.nn.policies import CNNCategoricalPolicy, MLPCategoricalPolicy, MLPGaussianPolicy

BOX_OBS = gym.spaces.Box(-np.inf, np.inf, (7,), np.float64)
BOX_ACT = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
DISCRETE = gym.spaces.Discrete(4)
FRAMES = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)


def test_auto_picks_network_from_spaces():
    assert isinstance(build_policy(PolicyConfig(), BOX_OBS, BOX_ACT), MLPGaussianPolicy)
    assert isinstance(build_policy(PolicyConfig(), BOX_OBS, DISCRETE), MLPCategoricalPolicy)
    assert isinstance(build_policy(PolicyConfig(), FRAMES, DISCRETE), CNNCategoricalPolicy)


def test_continuous_only_settings_on_discrete_env_name_the_field():
    with pytest.raises(ConfigError, match=r"^policy\.kind: 'mlp_gaussian' needs a continuous"):
        build_policy(PolicyConfig(kind="mlp_gaussian"), BOX_OBS, DISCRETE, "CartPole-v1")
    with pytest.raises(ConfigError, match=r"^policy\.init_log_std"):
        build_policy(PolicyConfig(init_log_std=-1.0), BOX_OBS, DISCRETE, "CartPole-v1")
    with pytest.raises(ConfigError, match=r"^policy\.kind: 'cnn_categorical'"):
        build_policy(PolicyConfig(kind="cnn_categorical"), BOX_OBS, DISCRETE)


def test_a_discrete_config_rebuilt_from_its_dump_is_accepted():
    """Actors rebuild the config from ``model_dump``, where every field counts as set."""
    rebuilt = PolicyConfig.model_validate(PolicyConfig().model_dump(mode="json"))
    assert isinstance(build_policy(rebuilt, FRAMES, DISCRETE), CNNCategoricalPolicy)


@pytest.mark.parametrize("act_space", [BOX_ACT, DISCRETE])
def test_numpy_twin_matches_torch_policy(act_space):
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(), BOX_OBS, act_space)
    policy.obs_normalizer.update(torch.randn(100, 7) * 3 + 2)
    actor = make_actor(policy, np.random.default_rng(0))
    assert isinstance(actor, NumpyMLPPolicy)
    obs = np.random.default_rng(1).normal(size=(16, 7)).astype(np.float32)
    action, logp, value = actor.act(obs)
    with torch.no_grad():
        t_obs = torch.from_numpy(obs)
        ref_logp = policy.distribution(t_obs).log_prob(torch.as_tensor(action))
        ref_value = policy.value(t_obs)
    np.testing.assert_allclose(logp, ref_logp.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(value, ref_value.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(actor.value(obs), ref_value.numpy(), rtol=1e-4, atol=1e-5)


def test_numpy_twin_samples_from_the_policy_distribution():
    """Discrete sampling frequencies of the twin equal the torch policy's probabilities."""
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(normalize_obs=False), BOX_OBS, DISCRETE)
    with torch.no_grad():
        policy.actor[-1].weight.mul_(300.0)  # make the distribution far from uniform
    obs = np.tile(np.random.default_rng(2).normal(size=(1, 7)).astype(np.float32), (20000, 1))
    actions, _, _ = make_actor(policy, np.random.default_rng(3)).act(obs)
    with torch.no_grad():
        probs = policy.distribution(torch.from_numpy(obs[:1])).probs[0].numpy()
    freq = np.bincount(actions, minlength=4) / len(actions)
    np.testing.assert_allclose(freq, probs, atol=0.015)


def test_cnn_policy_shapes_and_separate_trunks():
    policy = build_policy(PolicyConfig(), FRAMES, DISCRETE)
    obs = np.random.default_rng(0).integers(0, 255, (2, 4, 84, 84), dtype=np.uint8)
    actor = make_actor(policy, np.random.default_rng(0))
    assert isinstance(actor, TorchPolicyActor)
    a, logp, v = actor.act(obs)
    assert a.shape == (2,) and logp.shape == (2,) and v.shape == (2,)
    separate = build_policy(PolicyConfig(cnn_shared_trunk=False), FRAMES, DISCRETE)
    policy_ids = {id(p) for p in separate.policy_parameters()}
    assert policy_ids.isdisjoint(id(p) for p in separate.value_parameters())


@pytest.mark.parametrize("shared", [True, False])
def test_one_trunk_pass_gives_the_two_heads_their_own_values_and_gradients(shared):
    """PPO's loss reads both heads through ``distribution_and_value``; with a shared trunk
    that runs the trunk once. Its logits, values and the loss gradient must equal those of
    the two separate calls."""
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(cnn_shared_trunk=shared), FRAMES, DISCRETE)
    obs = torch.randint(0, 255, (16, 4, 84, 84), dtype=torch.uint8)
    actions = torch.randint(0, 4, (16,))

    def grads(loss: torch.Tensor) -> list[torch.Tensor]:
        policy.zero_grad()
        loss.backward()
        return [p.grad.clone() for p in policy.parameters() if p.grad is not None]

    dist, value = policy.distribution_and_value(obs)
    one = grads((dist.log_prob(actions) * value).mean() + value.pow(2).mean())
    logits_one, value_one = dist.logits.detach(), value.detach()
    dist, value = policy.distribution(obs), policy.value(obs)
    two = grads((dist.log_prob(actions) * value).mean() + value.pow(2).mean())
    torch.testing.assert_close(logits_one, dist.logits.detach())
    torch.testing.assert_close(value_one, value.detach())
    assert len(one) == len(two) == len(list(policy.parameters()))
    for g1, g2 in zip(one, two, strict=True):
        torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-6)


def test_the_cnn_trunk_runs_channels_last_and_keeps_its_values():
    """The Nature trunk keeps NHWC weights (faster CPU convolutions); its output must equal
    the same weights' output in the default NCHW layout, to float rounding."""
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(), FRAMES, DISCRETE)
    assert policy.trunk.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    obs = torch.randint(0, 255, (8, 4, 84, 84), dtype=torch.uint8)
    nchw = copy.deepcopy(policy.trunk.net).to(memory_format=torch.contiguous_format)
    assert not nchw[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(policy.trunk(obs), nchw(obs.float() / 255.0), rtol=1e-4, atol=1e-5)
