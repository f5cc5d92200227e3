"""Appendix A: fixed-length episodes really are fixed, and termination leaks no signal."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlhp.config import load_config
from rlhp.envs import EnvConfig, make_vector_env
from rlhp.errors import ConfigError


def test_mujoco_episodes_are_fixed_and_termination_becomes_penalty() -> None:
    steps, penalty = 80, 5.0
    cfg = EnvConfig(
        id="Hopper-v5",
        num_envs=2,
        fixed_length_episodes=True,
        termination_penalty=penalty,
        episode_steps=steps,
    )
    env = make_vector_env(cfg, seed=0)
    plain = gym.make("Hopper-v5")  # the unmodified task, to know when it would terminate
    env.reset(seed=0)
    plain.reset(seed=0)
    rng = np.random.default_rng(0)
    lengths, penalized = [], 0
    plain_alive = True
    for t in range(3 * steps):
        a = rng.choice([-1.0, 1.0], size=(2, 3))  # bang-bang actions topple Hopper fast
        _, r, term, trunc, infos = env.step(a)
        assert not term.any()
        if plain_alive and t < steps:
            # sub-env 0 runs in lockstep with the plain env until that one terminates
            _, p_r, p_term, _, _ = plain.step(a[0])
            if p_term:
                # the step the plain task would end on: same dynamics, reward minus penalty
                assert r[0] == pytest.approx(p_r - penalty)
                plain_alive = False
            else:
                assert r[0] == pytest.approx(p_r)
        penalized += int(np.sum(infos["true_reward"] < -penalty / 2))
        if "final_obs" in infos:
            assert np.array_equal(infos["_final_obs"], trunc)
            lengths.extend(infos["episode_length"][trunc].tolist())
    assert not plain_alive  # the plain task did terminate within the first episode
    assert penalized > 0
    assert lengths == [steps] * 6


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Walker2d-v5"])
def test_height_reward_adds_the_torso_height_above_its_start(env_id: str) -> None:
    base = dict(id=env_id, fixed_length_episodes=True, termination_penalty=1.0, episode_steps=200)
    plain = make_vector_env(EnvConfig(**base), seed=3)
    graded = make_vector_env(EnvConfig(**base, height_reward=2.0), seed=3)
    plain.reset(seed=3)
    graded.reset(seed=3)
    torso = graded.envs[0].unwrapped
    rng = np.random.default_rng(0)
    heights = []
    for _ in range(250):  # past one episode end, where the height restarts from the reset
        a = rng.uniform(-1, 1, size=(1, plain.single_action_space.shape[0]))
        _, r_plain, _, trunc, _ = plain.step(a)
        _, r_graded, _, _, infos = graded.step(a)
        assert infos["true_reward"][0] == r_graded[0]
        if trunc[0]:
            continue  # the sub-env was reset: its torso is no longer the one rewarded
        height = torso.data.qpos[1] - torso.init_qpos[1]
        assert r_graded[0] == pytest.approx(r_plain[0] + 2.0 * height)
        heights.append(height)
    assert min(heights) < -0.3  # random actions topple it: the term does vary


def test_height_reward_is_refused_where_it_cannot_apply() -> None:
    with pytest.raises(ValueError, match=r"env\.height_reward only applies"):
        EnvConfig(id="Hopper-v5", height_reward=1.0)
    cfg = EnvConfig(id="HalfCheetah-v5", fixed_length_episodes=True, height_reward=1.0)
    with pytest.raises(ConfigError, match=r"env\.height_reward: .HalfCheetah-v5. does not report"):
        make_vector_env(cfg, seed=0)


def test_the_presets_hopper_reward_on_another_task_names_the_binary_form() -> None:
    """The MuJoCo presets' Hopper reward on a task without a torso height: one error that
    gives every override of the binary form, whichever of its fields fails first."""
    fix = "--set env.height_reward=0 --set env.termination_penalty=1 --set 'env.make_kwargs={}'"
    for overrides in (["env.id=HalfCheetah-v5"], ["env.id=HalfCheetah-v5", "env.make_kwargs={}"]):
        cfg = load_config("mujoco_synthetic", overrides)
        with pytest.raises(ConfigError) as err:
            make_vector_env(cfg.env, seed=0)
        assert str(err.value).startswith(("env.make_kwargs: ", "env.height_reward: "))
        assert str(err.value).endswith(fix)


def test_mujoco_without_switch_terminates_early() -> None:
    env = make_vector_env(EnvConfig(id="Hopper-v5", episode_steps=60), seed=0)
    rng = np.random.default_rng(0)
    terms = sum(bool(env.step(rng.uniform(-1, 1, size=(1, 3)))[2][0]) for _ in range(180))
    assert terms > 0


def _run_breakout(fixed: bool, steps: int = 1200) -> dict[str, list]:
    cfg = EnvConfig(
        id="ALE/Breakout-v5",
        num_envs=2,
        fixed_length_episodes=fixed,
        termination_penalty=1.0 if fixed else 0.0,
        episode_steps=400,
        atari_num_threads=1,
    )
    env = make_vector_env(cfg, seed=0)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    out: dict[str, list] = {"term": [], "lengths": [], "game_over": [], "lives_key": []}
    for _ in range(steps):
        _, _, term, _, infos = env.step(rng.integers(0, 4, size=2))
        out["term"].append(term.copy())
        out["game_over"].append(infos["game_over"].copy())
        out["lives_key"].append("lives" in infos)
        if "final_obs" in infos:
            out["lengths"].extend(infos["episode_length"][infos["_final_obs"]].tolist())
        if fixed and infos["game_over"].any():
            # the game-over penalty reaches the true reward only (appendix A.2)
            i = int(np.flatnonzero(infos["game_over"])[0])
            assert infos["true_reward"][i] <= -1.0
    env.close()
    return out


def test_atari_fixed_length_hides_game_over_and_life_loss() -> None:
    fixed = _run_breakout(fixed=True)
    assert np.any(fixed["game_over"])  # games really ended (random Breakout loses fast)
    assert not np.any(fixed["term"])  # ...but no termination reached the agent
    assert not any(fixed["lives_key"])  # nor the life counter
    assert fixed["lengths"] == [400] * 6
    plain = _run_breakout(fixed=False)
    assert np.any(plain["term"])  # same seed, switch off: the game over is reported
