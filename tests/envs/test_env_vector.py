"""The vector env contract: SAME_STEP autoreset, final_obs, terminations vs truncations."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, VectorEnv

from rlhp.envs import EnvConfig, make_vector_env


@pytest.mark.parametrize("env_id", ["Hopper-v5", "ALE/Breakout-v5", "CartPole-v1"])
def test_is_same_step_vector_env(env_id: str) -> None:
    env = make_vector_env(EnvConfig(id=env_id, num_envs=2), seed=0)
    assert isinstance(env, VectorEnv)
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, *env.single_observation_space.shape)
    assert env.observation_space.contains(obs)
    env.close()


def test_matches_gymnasium_sync_vector_env_step_for_step() -> None:
    """Our lean env against gymnasium's SyncVectorEnv (SAME_STEP): identical streams."""
    n = 3
    ours = make_vector_env(EnvConfig(id="Hopper-v5", num_envs=n, episode_steps=40), seed=7)
    ref = gym.make_vec(
        "Hopper-v5",
        num_envs=n,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        max_episode_steps=40,
    )
    obs, _ = ours.reset(seed=7)
    ref_obs, _ = ref.reset(seed=7)
    np.testing.assert_allclose(obs, ref_obs, rtol=1e-6, atol=1e-6)
    rng = np.random.default_rng(0)
    n_term = n_trunc = 0
    for _ in range(150):
        a = rng.uniform(-1, 1, size=(n, 3))
        obs, r, term, trunc, infos = ours.step(a)
        ref_obs, ref_r, ref_term, ref_trunc, ref_infos = ref.step(a)
        np.testing.assert_allclose(obs, ref_obs, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(r, ref_r)
        np.testing.assert_array_equal(term, ref_term)
        np.testing.assert_array_equal(trunc, ref_trunc)
        ended = term | trunc
        assert ("final_obs" in infos) == ended.any()
        if ended.any():
            np.testing.assert_array_equal(infos["_final_obs"], ref_infos["_final_obs"])
            for i in np.flatnonzero(ended):
                np.testing.assert_allclose(
                    infos["final_obs"][i], ref_infos["final_obs"][i], rtol=1e-6, atol=1e-6
                )
                # the returned obs is the next episode's first, not the final one
                assert not np.allclose(obs[i], infos["final_obs"][i])
        n_term += int(term.sum())
        n_trunc += int(trunc.sum())
    assert n_term > 0 and n_trunc > 0  # both kinds of episode end were exercised
    ours.close()
    ref.close()


def test_same_seed_same_stream() -> None:
    cfg = EnvConfig(id="ALE/Pong-v5", num_envs=2, atari_num_threads=1)
    streams = []
    for _ in range(2):
        env = make_vector_env(cfg, seed=11)
        obs, _ = env.reset(seed=11)
        actions = np.random.default_rng(1).integers(0, 6, size=(60, 2))
        frames = [obs]
        for a in actions:
            frames.append(env.step(a)[0])
        streams.append(np.stack(frames))
        env.close()
    np.testing.assert_array_equal(streams[0], streams[1])
    assert streams[0][-1].std() > 0  # real frames, not blank


@pytest.mark.parametrize("env_id", ["Hopper-v5", "ALE/Pong-v5"])
def test_returned_arrays_are_fresh(env_id: str) -> None:
    """Observations kept by the caller are not overwritten by later steps."""
    env = make_vector_env(EnvConfig(id=env_id, num_envs=2), seed=0)
    obs1, *_ = env.step(env.action_space.sample())
    keep = obs1.copy()
    for _ in range(30):
        obs2, *_ = env.step(env.action_space.sample())
    assert not np.array_equal(obs2, keep)  # the stream moved on
    np.testing.assert_array_equal(obs1, keep)
    env.close()


def test_reward_clipping_keeps_true_reward() -> None:
    env = make_vector_env(
        EnvConfig(id="ALE/Pong-v5", num_envs=2, reward_clipping=True, atari_num_threads=1),
        seed=0,
    )
    rng = np.random.default_rng(0)
    nonzero = 0
    for _ in range(400):
        _, r, _, _, infos = env.step(rng.integers(0, 6, size=2))
        np.testing.assert_array_equal(r, np.sign(infos["true_reward"]))
        nonzero += int(np.count_nonzero(infos["true_reward"]))
    assert nonzero > 0  # points were scored, so the comparison saw rewards
    env.close()


def test_next_step_env_matches_gymnasium_next_step_sync_vector_env() -> None:
    """The rllib backend's env (NEXT_STEP autoreset) against gymnasium's SyncVectorEnv in
    the same mode: the same observations, rewards and done flags, step for step, across
    terminations, time limits and the reset steps that follow them."""
    n = 3
    ours = make_vector_env(
        EnvConfig(id="Hopper-v5", num_envs=n, episode_steps=40), seed=7, next_step=True
    )
    assert ours.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    ref = gym.make_vec(
        "Hopper-v5",
        num_envs=n,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP},
        max_episode_steps=40,
    )
    obs, _ = ours.reset(seed=7)
    ref_obs, _ = ref.reset(seed=7)
    np.testing.assert_allclose(obs, ref_obs, rtol=1e-6, atol=1e-6)
    rng = np.random.default_rng(0)
    ends = resets = 0
    was_done = np.zeros(n, dtype=bool)
    for _ in range(150):
        actions = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
        obs, rew, term, trunc, info = ours.step(actions)
        r_obs, r_rew, r_term, r_trunc, _ = ref.step(actions)
        np.testing.assert_allclose(obs, r_obs, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(rew, r_rew, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(term, r_term)
        np.testing.assert_array_equal(trunc, r_trunc)
        np.testing.assert_array_equal(rew[was_done], 0.0)  # a reset step has no reward
        resets += int(was_done.sum())
        was_done = term | trunc
        ends += int(was_done.sum())
        if was_done.any():
            assert info["_final_obs"][was_done].all()
            assert np.isfinite(info["episode_return"][was_done]).all()
    assert ends > n and resets > n  # episodes ended and were reset several times
    ours.close()
    ref.close()


def test_next_step_env_keeps_the_paper_changes() -> None:
    """Fixed-length episodes in NEXT_STEP mode: never terminated, truncated only at the
    time limit, the termination penalty in the reward, as in SAME_STEP mode."""
    cfg = EnvConfig(
        id="InvertedPendulum-v5",
        num_envs=2,
        episode_steps=30,
        fixed_length_episodes=True,
        termination_penalty=1.0,
    )
    same = make_vector_env(cfg, seed=3)
    nxt = make_vector_env(cfg, seed=3, next_step=True)
    rng = np.random.default_rng(1)
    for t in range(30):
        actions = rng.uniform(-3, 3, size=(2, 1)).astype(np.float32)
        _, r_same, term_s, trunc_s, _ = same.step(actions)
        _, r_next, term_n, trunc_n, _ = nxt.step(actions)
        np.testing.assert_allclose(r_next, r_same)
        assert not term_n.any() and not term_s.any()
        np.testing.assert_array_equal(trunc_n, trunc_s)
        assert trunc_n.all() == (t == 29)
    assert (r_next == -1.0).all()  # the pole fell long ago: the penalty, every step


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed_length", "game_over_ends"])
def test_atari_next_step_env_is_the_same_step_env_with_a_noop_reset_step(fixed: bool) -> None:
    """What RLlib's EnvRunners get for Atari: the SAME_STEP env's games step for step, an
    ended row shows its last frame, and the next step of that row is a no-op that starts
    the next episode (reward 0, not done); the newest frame rides along for the segments."""
    cfg = EnvConfig(id="ALE/Breakout-v5", num_envs=2, fixed_length_episodes=fixed,
                    termination_penalty=1.0 if fixed else 0.0, episode_steps=30 if fixed else None,
                    atari_num_threads=1)  # fmt: skip
    same, nxt = make_vector_env(cfg, seed=0), make_vector_env(cfg, seed=0, next_step=True)
    assert nxt.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    rng = np.random.default_rng(0)
    resetting, ends, resets = np.zeros(2, dtype=bool), 0, 0
    for _ in range(100 if fixed else 800):
        actions = rng.integers(0, 4, size=2)
        o_n, r_n, term_n, trunc_n, i_n = nxt.step(actions)
        o_s, r_s, term_s, trunc_s, i_s = same.step(np.where(resetting, 0, actions))
        np.testing.assert_array_equal(i_n["frames"], o_n[:, -1])
        ended = term_s | trunc_s
        for i in range(2):
            if resetting[i]:  # the no-op step: the next episode's first frame, nothing else
                resets += 1
                np.testing.assert_array_equal(o_n[i], o_s[i])
                assert r_n[i] == 0 and i_n["true_reward"][i] == 0
                assert not term_n[i] and not trunc_n[i]
                continue
            last = i_s["final_obs"][i] if ended[i] else o_s[i]
            np.testing.assert_array_equal(o_n[i], last)
            assert r_n[i] == r_s[i] and i_n["true_reward"][i] == i_s["true_reward"][i]
            assert (term_n[i], trunc_n[i]) == (term_s[i], trunc_s[i])
            ends += int(ended[i])
        resetting = ended & ~resetting
    assert ends >= 2 and resets >= 2  # episodes ended (by cut or game over) and restarted
    same.close()
    nxt.close()
