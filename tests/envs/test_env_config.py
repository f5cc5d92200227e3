"""EnvConfig: paper switches default off, bad input gives ConfigError naming the field."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from pydantic import ValidationError

from rlhp.envs import EnvConfig, check_env_id, make_vector_env, segment_length
from rlhp.errors import ConfigError


def test_paper_switches_default_off() -> None:
    cfg = EnvConfig(id="InvertedPendulum-v5")
    assert not cfg.fixed_length_episodes
    assert not cfg.mask_score
    assert not cfg.remove_control_cost
    assert not cfg.reward_clipping
    assert not cfg.render_clips


def test_unknown_field_and_bad_values_rejected() -> None:
    with pytest.raises(ValidationError):
        EnvConfig(id="Hopper-v5", fixed_lenght_episodes=True)  # typo: extra="forbid"
    with pytest.raises(ValidationError, match="num_envs"):
        EnvConfig(num_envs=0)
    with pytest.raises(ValidationError, match="termination_penalty"):
        EnvConfig(termination_penalty=-1.0)
    with pytest.raises(ValidationError, match="fixed_length_episodes"):
        EnvConfig(termination_penalty=1.0)  # the penalty replaces termination: needs both


def test_unknown_env_id_names_field() -> None:
    with pytest.raises(ConfigError, match=r"env\.id.*Hoper-v5.*Hopper-v5"):
        check_env_id("Hoper-v5")


def test_defaults_behave_like_plain_gymnasium_env() -> None:
    """With the defaults, our vector env steps exactly like gymnasium's own env."""
    cfg = EnvConfig(id="InvertedPendulum-v5", num_envs=1)
    ours = make_vector_env(cfg, seed=3)
    plain = gym.make("InvertedPendulum-v5")
    obs, _ = ours.reset(seed=3)
    p_obs, _ = plain.reset(seed=3)
    np.testing.assert_allclose(obs[0], p_obs, rtol=1e-6, atol=1e-6)
    actions = np.random.default_rng(0).uniform(-3, 3, size=(300, 1, 1))
    ends = 0
    for a in actions:
        obs, r, term, trunc, infos = ours.step(a)
        p_obs, p_r, p_term, p_trunc, _ = plain.step(a[0])
        assert r[0] == p_r and term[0] == p_term and trunc[0] == p_trunc
        assert infos["true_reward"][0] == p_r
        if p_term or p_trunc:
            ends += 1
            np.testing.assert_allclose(infos["final_obs"][0], p_obs, rtol=1e-6, atol=1e-6)
            p_obs, _ = plain.reset()
        np.testing.assert_allclose(obs[0], p_obs, rtol=1e-6, atol=1e-6)
    assert ends >= 3  # random actions drop the pole often: the reset path was exercised
    ours.close()
    plain.close()


def test_segment_length_from_seconds_and_steps() -> None:
    hopper = make_vector_env(EnvConfig(id="Hopper-v5"), seed=0)
    assert segment_length(EnvConfig(id="Hopper-v5"), hopper.dt) == round(1.5 / hopper.dt)
    assert segment_length(EnvConfig(id="Hopper-v5", segment_steps=25), hopper.dt) == 25
    # appendix A.2: 25 agent steps in Atari
    assert segment_length(EnvConfig(id="ALE/Pong-v5"), 4 / 60) == 25
    assert segment_length(EnvConfig(id="ALE/Pong-v5", segment_steps=10), 4 / 60) == 10


def test_remove_control_cost() -> None:
    """Appendix A.1: the torque penalty is gone from the reward."""
    base = make_vector_env(EnvConfig(id="Hopper-v5"), seed=0)
    free = make_vector_env(EnvConfig(id="Hopper-v5", remove_control_cost=True), seed=0)
    action = np.full((1, 3), 0.9)
    _, r_base, *_ = base.step(action)
    _, r_free, *_ = free.step(action)
    ctrl_cost = 1e-3 * np.sum(np.square(action))  # Hopper-v5 ctrl_cost_weight default
    assert r_free[0] == pytest.approx(r_base[0] + ctrl_cost, rel=1e-9)
    with pytest.raises(ConfigError, match=r"env\.remove_control_cost"):
        make_vector_env(EnvConfig(id="InvertedPendulum-v5", remove_control_cost=True), 0)


def test_make_kwargs_reach_the_env_and_bad_ones_name_the_field() -> None:
    """env.make_kwargs are gymnasium.make's: Hopper's upright bonus halved, same physics."""
    base = make_vector_env(EnvConfig(id="Hopper-v5"), seed=0)
    half = make_vector_env(EnvConfig(id="Hopper-v5", make_kwargs={"healthy_reward": 0.5}), 0)
    action = np.full((1, 3), 0.1)
    obs_base, r_base, *_ = base.step(action)
    obs_half, r_half, *_ = half.step(action)
    np.testing.assert_array_equal(obs_half, obs_base)
    assert r_half[0] == pytest.approx(r_base[0] - 0.5, rel=1e-9)  # upright after one step
    with pytest.raises(ConfigError, match=r"env\.make_kwargs: 'Hopper-v5' does not take"):
        make_vector_env(EnvConfig(id="Hopper-v5", make_kwargs={"bogus": 1}), 0)
    with pytest.raises(ConfigError, match=r"env\.make_kwargs: 'ALE/Pong-v5' is an Atari game"):
        make_vector_env(EnvConfig(id="ALE/Pong-v5", make_kwargs={"x": 1}), 0)
