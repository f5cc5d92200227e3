"""Clips: rendered segments decode to the expected frames; bad input is a ConfigError."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

from rlhp.data.records import SegmentRecord
from rlhp.envs import EnvConfig, SegmentCutter, make_vector_env
from rlhp.envs.clips import encode_video, side_by_side, video_info
from rlhp.envs.render import ClipRenderer, record_policy_video
from rlhp.errors import ConfigError


def _segments(cfg: EnvConfig, length: int, count: int) -> list[SegmentRecord]:
    env = make_vector_env(cfg, seed=0)
    cutter = SegmentCutter(env_id=cfg.id, run_id="r", worker=0, num_envs=1, length=length)
    obs, infos = env.reset(seed=0)
    state = env.render_state(obs, infos)
    out: list[SegmentRecord] = []
    while len(out) < count:
        a = env.action_space.sample()
        nxt, _, term, trunc, infos = env.step(a)
        out += cutter.add(obs, a, infos["true_reward"], state, term | trunc, 0)
        obs, state = nxt, env.render_state(nxt, infos)
    env.close()
    return out


def test_mujoco_clip_decodes_to_expected_frames(tmp_path: Path) -> None:
    cfg = EnvConfig(
        id="Hopper-v5",
        render_clips=True,
        fixed_length_episodes=True,
        clip_width=160,
        clip_height=120,
    )
    renderer = ClipRenderer(cfg)
    length = 30
    left, right = _segments(cfg, length, 2)
    try:
        clip = renderer.render_clip(left, tmp_path)
        expected = renderer.num_frames(length)
        assert expected == -(-length // renderer.stride) and renderer.stride > 1
        info = video_info(clip.video)
        assert (info.frames, info.width, info.height) == (expected, 160, 120)
        assert info.fps == pytest.approx(renderer.fps, rel=1e-3)
        assert Image.open(clip.thumbnail).size == (160, 120)
        frames = renderer.frames(left)
        assert frames.std() > 1  # a real scene, not a blank frame
        # different states render differently
        assert np.abs(frames[0].astype(int) - renderer.frames(right)[-1]).mean() > 0.1
        pair = renderer.render_pair(left, right, tmp_path / "pair.webm")
        pair_info = video_info(pair.video)
        assert pair_info.frames == expected and pair_info.width == 2 * 160 + 8
    finally:
        renderer.close()


def test_atari_clip_decodes_to_expected_frames(tmp_path: Path) -> None:
    cfg = EnvConfig(id="ALE/Breakout-v5", mask_score=True, segment_steps=25, render_clips=True)
    (seg,) = _segments(cfg, 25, 1)
    renderer = ClipRenderer(cfg)
    clip = renderer.render_clip(seg, tmp_path)
    info = video_info(clip.video)
    assert info.frames == 25 and info.fps == pytest.approx(15.0)
    assert info.width == info.height == 84 * renderer._scale


@pytest.mark.parametrize(
    ("cfg", "action"),
    [
        (EnvConfig(id="InvertedPendulum-v5", clip_width=96, clip_height=64), np.zeros(1)),
        (EnvConfig(id="ALE/Pong-v5", mask_score=True), np.int64(0)),
    ],
)
def test_policy_evaluation_video(cfg: EnvConfig, action: np.ndarray, tmp_path: Path) -> None:
    steps = 40
    clip = record_policy_video(
        cfg,
        lambda obs: np.stack([action] * len(obs)),
        tmp_path / "eval.mp4",
        seed=0,
        num_steps=steps,
    )
    renderer = ClipRenderer(cfg)
    assert clip.frames == renderer.num_frames(steps)
    assert video_info(clip.video).frames == clip.frames
    assert clip.thumbnail.exists()


def test_encode_roundtrip_and_side_by_side(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(7, 33, 45, 3), dtype=np.uint8)  # odd sizes
    info = video_info(encode_video(frames, tmp_path / "x.mp4", fps=12.5))
    assert (info.frames, info.width, info.height) == (7, 46, 34)
    both = side_by_side(frames, frames[:3], gap=4)
    assert both.shape == (7, 33, 45 * 2 + 4, 3)
    np.testing.assert_array_equal(both[6, :, 49:], frames[2])  # shorter clip holds its end
    with pytest.raises(ValueError, match=r"\.mp4 or \.webm"):
        encode_video(frames, tmp_path / "x.gif", fps=10)


class _NoRender(gym.Env):
    """A real (tiny) env that declares no render modes."""

    metadata = {"render_modes": []}  # noqa: RUF012
    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):  # type: ignore[override]
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):  # type: ignore[override]
        return np.zeros(1, np.float32), 0.0, False, False, {}


def test_env_without_render_mode_asked_for_clips_is_a_config_error() -> None:
    gym.register("RlhpNoRender-v0", entry_point=_NoRender, max_episode_steps=10)
    try:
        with pytest.raises(ConfigError, match=r"env\.render_clips.*rgb_array"):
            make_vector_env(EnvConfig(id="RlhpNoRender-v0", render_clips=True), seed=0)
        with pytest.raises(ConfigError, match=r"env\.render_clips"):
            ClipRenderer(EnvConfig(id="RlhpNoRender-v0"))
        # without clips the env works
        env = make_vector_env(EnvConfig(id="RlhpNoRender-v0"), seed=0)
        assert env.step(np.zeros(1, np.int64))[0].shape == (1, 1)
    finally:
        gym.registry.pop("RlhpNoRender-v0")


def test_gl_backend_is_chosen_and_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    from rlhp.envs.render import ensure_gl_backend, gl_backend_works

    monkeypatch.delenv("MUJOCO_GL", raising=False)
    chosen = ensure_gl_backend()
    assert chosen in ("egl", "osmesa")
    assert gl_backend_works(chosen)
    assert not gl_backend_works("no-such-backend")
