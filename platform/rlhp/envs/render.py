"""Turn segments into clips: MuJoCo offscreen replay of qpos/qvel, Atari frame upscaling.

MuJoCo renders offscreen through ``MUJOCO_GL``: EGL where ``libEGL`` loads, else OSMesa
(software). ``ensure_gl_backend`` picks one before the first render if the user set none.
"""

from __future__ import annotations

import ctypes.util
import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from rlhp.data.records import SegmentRecord
from rlhp.envs.atari import ATARI_FPS, FRAME_SIZE
from rlhp.envs.clips import encode_video, side_by_side, upscale, write_thumbnail
from rlhp.envs.config import EnvConfig
from rlhp.envs.factory import (
    check_clips_supported,
    is_atari,
    make_single_env,
    make_vector_env,
)
from rlhp.errors import ConfigError

# Classic-control envs (Pendulum) draw with pygame, whose SDL opens a sound card and a display
# when it renders; headless, that prints ALSA and XDG_RUNTIME_DIR errors. rlhp renders
# offscreen and plays no sound: SDL's dummy drivers, unless the user chose others.
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

_PROBE = (
    "import mujoco\n"
    "m = mujoco.MjModel.from_xml_string(\"<mujoco><worldbody><geom size='1'/></worldbody>"
    '</mujoco>")\n'
    "d = mujoco.MjData(m); mujoco.mj_forward(m, d)\n"
    "r = mujoco.Renderer(m, 16, 16); r.update_scene(d); r.render(); r.close()\n"
)


def gl_backend_works(name: str, timeout_s: float = 60.0) -> bool:
    """Whether MuJoCo can render offscreen with ``MUJOCO_GL=name`` (tried in a subprocess).

    A subprocess, because PyOpenGL fixes its platform at first import: a failed try in this
    process would leave it unable to switch to the fallback.
    """
    env = dict(os.environ, MUJOCO_GL=name, PYOPENGL_PLATFORM=name)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE],
            env=env,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def ensure_gl_backend() -> str:
    """Set ``MUJOCO_GL`` (and ``PYOPENGL_PLATFORM``) to egl, else osmesa, unless already set.

    EGL (GPU or Mesa) is tried first, then OSMesa (software); each is tried once in a
    subprocess so that a broken EGL falls back cleanly.
    """
    backend = os.environ.get("MUJOCO_GL")
    if backend:
        return backend
    for name, lib in (("egl", "EGL"), ("osmesa", "OSMesa")):
        if ctypes.util.find_library(lib) and gl_backend_works(name):
            os.environ["MUJOCO_GL"] = name
            os.environ.setdefault("PYOPENGL_PLATFORM", name)
            return name
    raise ConfigError(
        "env.render_clips: no offscreen OpenGL for MuJoCo clips; install libEGL "
        "(apt-get install libegl1) or OSMesa (apt-get install libosmesa6), or set "
        "env.render_clips=false"
    )


def _fast_rendering(env: gym.Env) -> None:
    """No multisampling, shadows or reflections: ~7x faster in software GL, same scene.

    Must run before the first render (the GL context reads ``offsamples`` when it is made).
    Uses gymnasium's MuJoCo renderer internals; if they change, rendering stays correct,
    only slower.
    """
    import mujoco

    base = env.unwrapped
    base.model.vis.quality.offsamples = 0  # type: ignore[attr-defined]
    try:
        viewer = base.mujoco_renderer._get_viewer("rgb_array")  # type: ignore[attr-defined]
    except AttributeError:
        return
    viewer.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    viewer.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0


@dataclass(frozen=True)
class ClipFiles:
    """A rendered clip: the video and its thumbnail."""

    video: Path
    thumbnail: Path
    frames: int


class ClipRenderer:
    """Renders segments of ``cfg.id`` to frames and browser-playable videos.

    One renderer per process: it holds an offscreen GL context for MuJoCo. Steps are
    subsampled by ``stride`` so the clip plays in real time at ``fps`` <= ``cfg.clip_fps``.
    """

    def __init__(self, cfg: EnvConfig) -> None:
        check_clips_supported(cfg)
        self.cfg = cfg
        self._env: gym.Env | None = None
        spec = gym.spec(cfg.id)
        if is_atari(spec):
            self.dt = cfg.atari_frameskip / ATARI_FPS
            self._scale = max(1, math.ceil(cfg.clip_height / FRAME_SIZE))
        else:
            probe = make_single_env(cfg)
            self._physics = hasattr(probe, "set_state") and hasattr(probe, "data")
            self.dt = float(getattr(probe, "dt", 0.0)) or 1.0 / float(
                probe.metadata.get("render_fps") or 30
            )
            probe.close()
            self._scale = 1
        self.stride = max(1, round(1.0 / (self.dt * cfg.clip_fps)))
        self.fps = 1.0 / (self.dt * self.stride)

    def _replay_env(self) -> gym.Env:
        if self._env is None:
            if self._physics:
                ensure_gl_backend()
            size = {"width": self.cfg.clip_width, "height": self.cfg.clip_height}
            self._env = make_single_env(  # classic control draws at its own fixed size
                self.cfg, render_mode="rgb_array", **(size if self._physics else {})
            )
            self._env.reset(seed=0)
            if self._physics and not self.cfg.clip_high_quality:
                _fast_rendering(self._env)
        return self._env

    def num_frames(self, length: int) -> int:
        """Frames in the clip of a segment of ``length`` steps."""
        return math.ceil(length / self.stride)

    def frames(self, record: SegmentRecord) -> np.ndarray:
        """RGB frames [T, H, W, 3] uint8 of a segment, one per ``stride`` steps."""
        state = record.render_state
        if "qpos" in state and "qvel" in state:
            env = self._replay_env()
            out = []
            for qpos, qvel in zip(
                state["qpos"][:: self.stride], state["qvel"][:: self.stride], strict=True
            ):
                env.unwrapped.set_state(qpos, qvel)  # type: ignore[attr-defined]
                out.append(env.render())
            return np.stack(out).astype(np.uint8, copy=False)
        if "state" in state:  # classic control: its renderer draws from unwrapped.state
            env = self._replay_env()
            out = []
            for s in state["state"][:: self.stride]:
                env.unwrapped.state = np.array(s)  # type: ignore[attr-defined]
                out.append(env.render())
            return np.stack(out).astype(np.uint8, copy=False)
        if "frames" in state:
            frames = state["frames"][:: self.stride]
            if frames.ndim == 3:
                frames = np.repeat(frames[..., None], 3, axis=-1)
            return upscale(frames.astype(np.uint8, copy=False), self._scale)
        raise ConfigError(
            f"env.render_clips: segment {record.segment_id!r} has no render state "
            "(qpos/qvel, state or frames); collect segments with env.render_clips=true"
        )

    def render_clip(
        self, record: SegmentRecord, directory: str | Path, suffix: str = ".mp4"
    ) -> ClipFiles:
        """Write ``<segment_id>.mp4`` (or .webm) and ``<segment_id>.png`` into ``directory``."""
        frames = self.frames(record)
        directory = Path(directory)
        video = encode_video(frames, directory / f"{record.segment_id}{suffix}", self.fps)
        thumb = write_thumbnail(frames[len(frames) // 2], directory / f"{record.segment_id}.png")
        return ClipFiles(video, thumb, len(frames))

    def render_pair(self, left: SegmentRecord, right: SegmentRecord, path: str | Path) -> ClipFiles:
        """One video with ``left`` and ``right`` side by side, plus its thumbnail."""
        frames = side_by_side(self.frames(left), self.frames(right))
        path = Path(path)
        video = encode_video(frames, path, self.fps)
        thumb = write_thumbnail(frames[len(frames) // 2], path.with_suffix(".png"))
        return ClipFiles(video, thumb, len(frames))

    def close(self) -> None:
        """Free the GL context."""
        if self._env is not None:
            self._env.close()
            self._env = None


def observations_from_states(cfg: EnvConfig, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
    """Observations [L, ...] that MuJoCo env ``cfg.id`` computes from recorded states.

    Uses gymnasium's MuJoCo env convention ``set_state`` + ``_get_obs``; envs whose
    observation includes quantities that ``mj_forward`` does not recompute from qpos/qvel
    (e.g. Ant's contact forces) may differ from the recorded observations.
    """
    env = make_single_env(cfg)
    env.reset(seed=0)
    out = []
    for p, v in zip(qpos, qvel, strict=True):
        env.set_state(p, v)  # type: ignore[attr-defined]
        out.append(np.asarray(env._get_obs(), dtype=np.float32))  # type: ignore[attr-defined]
    env.close()
    return np.stack(out)


def record_policy_video(
    cfg: EnvConfig,
    policy: Callable[[np.ndarray], np.ndarray],
    path: str | Path,
    *,
    seed: int,
    num_steps: int,
) -> ClipFiles:
    """Run ``policy`` (batched obs -> batched actions) in one env and write a video.

    For policy evaluation videos (logged to MLflow by the tracking layer). The env is
    built from ``cfg`` with one copy and ``render_clips`` on; episodes that end restart.
    """
    eval_cfg = cfg.model_copy(update={"num_envs": 1, "render_clips": True})
    env = make_vector_env(eval_cfg, seed)
    renderer = ClipRenderer(eval_cfg)
    try:
        obs, infos = env.reset(seed=seed)
        states: dict[str, list[np.ndarray]] = {}
        for _ in range(num_steps):
            for key, value in env.render_state(obs, infos).items():  # type: ignore[attr-defined]
                states.setdefault(key, []).append(value[0])
            obs, _, _, _, infos = env.step(policy(obs))
        record = SegmentRecord(
            segment_id=Path(path).stem,
            run_id="eval",
            env_id=cfg.id,
            worker=0,
            policy_version=0,
            t_start=0,
            obs=np.zeros((num_steps, 0), np.float32),
            actions=np.zeros((num_steps, 0), np.float32),
            true_rewards=np.zeros(num_steps, np.float32),
            render_state={k: np.stack(v) for k, v in states.items()},
        )
        frames = renderer.frames(record)
        path = Path(path)
        video = encode_video(frames, path, renderer.fps)
        thumb = write_thumbnail(frames[len(frames) // 2], path.with_suffix(".png"))
        return ClipFiles(video, thumb, len(frames))
    finally:
        renderer.close()
        env.close()
