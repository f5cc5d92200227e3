"""Segments: fixed length, inside one episode, with states that replay to the observations."""

from __future__ import annotations

import numpy as np
import pytest

from rlhp.data.records import SegmentRecord
from rlhp.data.segment_store import SegmentStore
from rlhp.envs import EnvConfig, SegmentCutter, make_vector_env, segment_length
from rlhp.envs.render import ClipRenderer, observations_from_states


def _collect(cfg: EnvConfig, steps: int, length: int) -> tuple[list[SegmentRecord], dict]:
    env = make_vector_env(cfg, seed=0)
    cutter = SegmentCutter(
        env_id=cfg.id, run_id="run", worker=3, num_envs=cfg.num_envs, length=length
    )
    obs, infos = env.reset(seed=0)
    state = env.render_state(obs, infos)
    stream: dict[str, list] = {"obs": [], "true_reward": [], "done": []}
    records: list[SegmentRecord] = []
    for t in range(steps):
        actions = env.action_space.sample()
        next_obs, _, term, trunc, infos = env.step(actions)
        records += cutter.add(obs, actions, infos["true_reward"], state, term | trunc, t // 50)
        stream["obs"].append(obs.copy())
        stream["true_reward"].append(infos["true_reward"].copy())
        stream["done"].append(term | trunc)
        obs, state = next_obs, env.render_state(next_obs, infos)
    env.close()
    return records, {k: np.stack(v) for k, v in stream.items()}


def test_mujoco_segments_cut_within_episodes_and_replay_exactly() -> None:
    cfg = EnvConfig(
        id="Hopper-v5",
        num_envs=2,
        render_clips=True,
        fixed_length_episodes=True,
        episode_steps=50,
    )
    length = 20
    records, stream = _collect(cfg, steps=150, length=length)
    # 3 episodes of 50 steps per sub-env, 2 whole segments each; the last 10 steps dropped
    assert len(records) == 2 * 3 * 2
    assert len({r.segment_id for r in records}) == len(records)
    for rec in records:
        assert rec.length == length
        assert rec.actions.shape == (length, 3)
        assert rec.true_rewards.shape == (length,) and rec.true_rewards.dtype == np.float32
        assert rec.render_state["qpos"].shape == (length, 6)
        assert rec.t_start % 50 in (0, 20)  # never spans an episode boundary
        assert rec.worker == 3 and rec.env_id == "Hopper-v5" and rec.run_id == "run"
    by_env: dict[int, list[SegmentRecord]] = {}
    for rec in records:
        t0 = rec.t_start
        env_idx = next(e for e in range(2) if np.array_equal(stream["obs"][t0, e], rec.obs[0]))
        by_env.setdefault(env_idx, []).append(rec)
        np.testing.assert_array_equal(rec.obs, stream["obs"][t0 : t0 + length, env_idx])
        np.testing.assert_allclose(
            rec.true_rewards, stream["true_reward"][t0 : t0 + length, env_idx], rtol=1e-6
        )
        # replaying the saved physics states reproduces the recorded observations
        replayed = observations_from_states(cfg, rec.render_state["qpos"], rec.render_state["qvel"])
        np.testing.assert_allclose(replayed, rec.obs, rtol=1e-6, atol=1e-6)
    assert sorted(by_env) == [0, 1]
    assert records[0].policy_version == 0 and records[-1].policy_version == 2


def test_atari_segments_keep_the_agent_frames() -> None:
    cfg = EnvConfig(id="ALE/Pong-v5", num_envs=2, mask_score=True)
    length = segment_length(cfg, 4 / 60)
    assert length == 25  # appendix A.2
    records, _ = _collect(cfg, steps=60, length=length)
    assert len(records) == 2 * 2
    for rec in records:
        frames = rec.render_state["frames"]
        assert frames.shape == (25, 84, 84) and frames.dtype == np.uint8  # grey, as the agent
        np.testing.assert_array_equal(frames, rec.obs[:, -1])
        assert rec.obs.shape == (25, 4, 84, 84)


def test_segment_length_must_be_positive() -> None:
    with pytest.raises(ValueError, match="segment length"):
        SegmentCutter(env_id="Hopper-v5", run_id="r", worker=0, num_envs=1, length=0)


def test_segments_never_span_a_termination() -> None:
    cfg = EnvConfig(id="InvertedPendulum-v5", num_envs=2, render_clips=True)
    length = 8
    records, stream = _collect(cfg, steps=200, length=length)
    assert stream["done"].sum() >= 4  # random actions drop the pole: episodes end early
    assert records
    for rec in records:
        t0 = rec.t_start
        env_idx = next(e for e in range(2) if np.array_equal(stream["obs"][t0, e], rec.obs[0]))
        np.testing.assert_array_equal(rec.obs, stream["obs"][t0 : t0 + length, env_idx])
        # an episode may end at the segment's last step, never inside it
        assert not stream["done"][t0 : t0 + length - 1, env_idx].any()


def test_classic_control_segments_keep_the_state_and_render_it_on_demand() -> None:
    cfg = EnvConfig(id="Pendulum-v1", num_envs=1, render_clips=True)
    records, _ = _collect(cfg, steps=40, length=20)
    rec = records[0]
    state = rec.render_state["state"]
    assert set(rec.render_state) == {"state"} and state.shape == (20, 2)  # θ, θ'
    np.testing.assert_allclose(np.cos(state[:, 0]), rec.obs[:, 0], atol=1e-6)  # obs: cos θ
    frames = ClipRenderer(cfg).frames(rec)
    assert frames.ndim == 4 and frames.shape[-1] == 3 and frames.dtype == np.uint8
    assert frames.std() > 0  # a drawn pendulum, not a blank canvas


@pytest.mark.parametrize(
    ("env_id", "length"), [("Pendulum-v1", 30), ("Hopper-v5", 50), ("ALE/Pong-v5", 25)]
)
def test_a_labelled_segment_costs_at_most_50_kb_on_disk(tmp_path, env_id, length) -> None:
    fixed = env_id == "Hopper-v5"  # as the MuJoCo presets: no early ends cut segments short
    cfg = EnvConfig(id=env_id, num_envs=1, render_clips=True, fixed_length_episodes=fixed)
    records, _ = _collect(cfg, steps=20 * length + 1, length=length)
    records = records[:20]
    store = SegmentStore(100, tmp_path)
    store.add(records)
    store.pin([r.segment_id for r in records])
    on_disk = sum(f.stat().st_size for f in tmp_path.glob("pinned-*.arrow"))
    assert on_disk / len(records) <= 50_000, f"{env_id}: {on_disk / len(records):.0f} B/segment"
    back = SegmentStore(100, tmp_path).get([records[3].segment_id])[0]  # compressed, read back
    np.testing.assert_array_equal(back.obs, records[3].obs)
