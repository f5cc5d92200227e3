"""Build vectorized environments from a gymnasium id and the env config.

Two paths, one contract:

- Atari (``ale_py`` ids such as ``ALE/Pong-v5``): ``AtariPaperVectorEnv`` over the native
  C++ ``ale_py.AtariVectorEnv``.
- Every other registered env (MuJoCo ``*-v5`` and the rest): ``SameStepVectorEnv``, a lean
  synchronous vector env over the unwrapped sub-envs.

Contract: a gymnasium ``VectorEnv`` in SAME_STEP autoreset mode
(``env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP``): on a step where an episode
ends, ``infos["final_obs"][i]`` (mask ``infos["_final_obs"]``) holds its last observation
and the returned observation is the next episode's first; ``terminations`` and
``truncations`` are kept apart (time limits and fixed-length cuts are truncations).
``infos["true_reward"]`` always holds the task's true reward with the paper's changes
applied, which differs from the returned reward only under ``reward_clipping``.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec, load_env_creator
from gymnasium.vector import VectorEnv

from rlhp.envs.atari import ATARI_FPS, AtariNextStepVectorEnv, AtariPaperVectorEnv
from rlhp.envs.config import EnvConfig
from rlhp.envs.vector import NextStepVectorEnv, SameStepVectorEnv
from rlhp.errors import ConfigError

_CONTROL_COST_KWARGS = ("ctrl_cost_weight", "reward_control_weight")


def _register_optional_envs() -> None:
    try:
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:  # pragma: no cover - ale-py is a dependency, but keep MuJoCo usable
        pass


def check_env_id(env_id: str) -> None:
    """Raise ConfigError naming ``env.id`` if gymnasium does not know ``env_id``."""
    _register_optional_envs()
    if env_id in gym.envs.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.envs.registry.keys()), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(f"env.id: unknown environment {env_id!r}{hint}")


def is_atari(spec: EnvSpec) -> bool:
    """Whether ``spec`` is an ale-py Atari env."""
    return isinstance(spec.entry_point, str) and spec.entry_point.startswith("ale_py")


def env_render_modes(env_id: str) -> list[str]:
    """The render modes the env class of ``env_id`` declares (without building it)."""
    check_env_id(env_id)
    spec = gym.spec(env_id)
    if is_atari(spec):
        return ["rgb_array"]  # clips use the agent's frames (rlhp.envs.atari)
    try:
        creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else None
    except (ImportError, gym.error.DependencyNotInstalled) as err:
        raise ConfigError(f"env.id: {env_id!r} cannot be loaded here: {err}") from err
    metadata = getattr(creator, "metadata", None) or {}
    return list(metadata.get("render_modes", []))


def check_clips_supported(cfg: EnvConfig) -> None:
    """ConfigError naming ``env.render_clips`` if ``cfg.id`` cannot render RGB frames."""
    modes = env_render_modes(cfg.id)
    if "rgb_array" not in modes:
        raise ConfigError(
            f"env.render_clips: {cfg.id!r} has no 'rgb_array' render mode (it declares "
            f"{modes or 'none'}), so its segments cannot be shown as clips. Set "
            "env.render_clips=false (no human labelling) or choose an env that renders"
        )


ATARI_SEGMENT_STEPS = 25
"""Appendix A.2: "We compare trajectory segments of 25 timesteps (1.7 seconds at 15 fps with
frame skipping)"."""


def segment_length(cfg: EnvConfig, dt: float) -> int:
    """Agent steps per segment: ``segment_steps`` if set; else 25 for Atari (appendix A.2);
    else ``segment_seconds`` (1.5 s, appendix A.1) of game time, ``dt`` seconds per step.
    """
    if cfg.segment_steps is not None:
        return cfg.segment_steps
    check_env_id(cfg.id)
    if is_atari(gym.spec(cfg.id)):
        return ATARI_SEGMENT_STEPS
    return max(1, round(cfg.segment_seconds / dt))


def make_vector_env(cfg: EnvConfig, seed: int, *, next_step: bool = False) -> VectorEnv:
    """A vector env of ``cfg.num_envs`` copies, reset with ``seed`` (see the module docstring).

    ``next_step``: NEXT_STEP autoreset (``NextStepVectorEnv``, ``AtariNextStepVectorEnv``:
    what RLlib's EnvRunners expect) instead of SAME_STEP.

    The returned env has a ``dt`` attribute (game seconds per agent step) and a
    ``render_state(obs, infos)`` method that gives what segments keep to be shown later.
    """
    check_env_id(cfg.id)
    spec = gym.spec(cfg.id)
    if cfg.render_clips:
        check_clips_supported(cfg)
    env: VectorEnv
    if is_atari(spec):
        atari = _make_atari(cfg, spec)
        env = AtariNextStepVectorEnv(atari) if next_step else atari
    else:
        env = _make_python(cfg, spec, next_step)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def _make_atari(cfg: EnvConfig, spec: EnvSpec) -> AtariPaperVectorEnv:
    if cfg.remove_control_cost:
        raise ConfigError(
            f"env.remove_control_cost: {cfg.id!r} is an Atari game without a control cost; "
            "set env.remove_control_cost=false"
        )
    if cfg.make_kwargs:
        raise ConfigError(
            f"env.make_kwargs: {cfg.id!r} is an Atari game, whose settings are the env.atari_* "
            "fields; remove env.make_kwargs"
        )
    if cfg.height_reward:
        raise ConfigError(
            f"env.height_reward: {cfg.id!r} is an Atari game without a torso height; set "
            "env.height_reward=0"
        )
    kwargs = spec.kwargs
    max_frames = int(kwargs.get("max_num_frames_per_episode") or 108_000)
    episode_steps = cfg.episode_steps or max_frames // cfg.atari_frameskip
    rap = cfg.atari_repeat_action_probability
    if rap is None:
        rap = float(kwargs.get("repeat_action_probability", 0.25))
    return AtariPaperVectorEnv(
        game=str(kwargs["game"]),
        env_id=cfg.id,
        num_envs=cfg.num_envs,
        episode_steps=episode_steps,
        fixed_length=cfg.fixed_length_episodes,
        termination_penalty=cfg.termination_penalty,
        mask_score=cfg.mask_score,
        reward_clipping=cfg.reward_clipping,
        frameskip=cfg.atari_frameskip,
        frame_stack=cfg.atari_frame_stack,
        noop_max=cfg.atari_noop_max,
        repeat_action_probability=rap,
        full_action_space=bool(kwargs.get("full_action_space", False)),
        num_threads=cfg.atari_num_threads,
        max_num_frames_per_episode=max_frames,
    )


# The MuJoCo presets give Hopper rl-teacher's reward (height term, no healthy bonus, no
# penalty); other tasks take the paper's penalty for termination instead.
_BINARY_FORM_HINT = (
    "; the height term (the MuJoCo presets' Hopper reward) fits Hopper-v5 and Walker2d-v5 "
    "only, for other tasks --set env.height_reward=0 --set env.termination_penalty=1 "
    "--set 'env.make_kwargs={}'"
)


def _control_cost_kwargs(cfg: EnvConfig, spec: EnvSpec) -> dict[str, Any]:
    creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else None
    params = inspect.signature(creator).parameters if creator is not None else {}
    names = [name for name in _CONTROL_COST_KWARGS if name in params]
    if not names:
        raise ConfigError(
            f"env.remove_control_cost: {cfg.id!r} has no control-cost weight "
            f"({' or '.join(_CONTROL_COST_KWARGS)}) to set to 0; set "
            "env.remove_control_cost=false"
        )
    return {name: 0.0 for name in names}


def make_single_env(cfg: EnvConfig, render_mode: str | None = None, **extra: Any) -> gym.Env:
    """One unwrapped (no TimeLimit or checker) non-Atari env with the paper's reward changes.

    Used by the vector env and by the clip renderer, which replays recorded MuJoCo states
    in an env built the same way.
    """
    spec = gym.spec(cfg.id)
    if cfg.mask_score:
        raise ConfigError(
            f"env.mask_score: score masking exists only for Atari games, not {cfg.id!r}; "
            "set env.mask_score=false"
        )
    kwargs: dict[str, Any] = {**cfg.make_kwargs, **extra}
    if cfg.remove_control_cost:
        kwargs.update(_control_cost_kwargs(cfg, spec))
    try:
        env = gym.make(cfg.id, render_mode=render_mode, disable_env_checker=True, **kwargs)
    except TypeError as e:
        if not cfg.make_kwargs:
            raise
        raise ConfigError(
            f"env.make_kwargs: {cfg.id!r} does not take {sorted(cfg.make_kwargs)} ({e}); "
            f"use the keyword arguments of its constructor{_BINARY_FORM_HINT if cfg.height_reward else ''}"
        ) from None
    # Skip TimeLimit / OrderEnforcing / PassiveEnvChecker: the vector env keeps the time
    # limit itself. Envs registered with extra wrappers keep their wrapper stack.
    return env if spec.additional_wrappers else env.unwrapped


def has_replayable_state(env: gym.Env) -> bool:
    """Whether ``env`` draws its frames from a small ``state`` array one can set again
    (gymnasium's classic control: Pendulum, CartPole, Acrobot, MountainCar), so a clip is
    kept as that state per step and rendered only when shown, not as raw frames."""
    unwrapped = env.unwrapped
    if not type(unwrapped).__module__.startswith("gymnasium.envs.classic_control"):
        return False
    env.reset(seed=0)
    return isinstance(getattr(unwrapped, "state", None), np.ndarray | tuple)


def _check_reports_height(cfg: EnvConfig, env: gym.Env) -> None:
    """``env.height_reward`` reads ``z_distance_from_origin`` from the step info: refuse an
    env that does not report it, before any training starts."""
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.action_space.sample())
    if "z_distance_from_origin" not in info:
        raise ConfigError(
            f"env.height_reward: {cfg.id!r} does not report its torso height "
            f"(info['z_distance_from_origin'], as Hopper-v5 and Walker2d-v5 do){_BINARY_FORM_HINT}"
        )


def _make_python(cfg: EnvConfig, spec: EnvSpec, next_step: bool = False) -> SameStepVectorEnv:
    time_limit = cfg.episode_steps or spec.max_episode_steps
    if cfg.fixed_length_episodes and time_limit is None:
        raise ConfigError(
            f"env.episode_steps: fixed-length episodes need a length, and {cfg.id!r} "
            "registers no max_episode_steps; set env.episode_steps (agent steps)"
        )
    probe = make_single_env(cfg)
    # MuJoCo envs keep qpos/qvel per step and classic control its state vector, and render
    # only clips that are shown; other envs have no state to replay, so they render frames
    # while stepping when clips are wanted.
    physics = hasattr(probe.unwrapped, "data") and hasattr(probe.unwrapped, "set_state")
    state = not physics and has_replayable_state(probe)
    record_frames = cfg.render_clips and not physics and not state
    if record_frames:
        probe.close()
        probe = make_single_env(cfg, render_mode="rgb_array")
    render_mode = "rgb_array" if record_frames else None
    if cfg.height_reward:
        _check_reports_height(cfg, probe)
    envs = [probe] + [make_single_env(cfg, render_mode) for _ in range(cfg.num_envs - 1)]
    first = envs[0].unwrapped
    dt = float(getattr(first, "dt", 0.0)) or 1.0 / float(first.metadata.get("render_fps") or 30)
    return (NextStepVectorEnv if next_step else SameStepVectorEnv)(
        envs,
        time_limit=time_limit,
        fixed_length=cfg.fixed_length_episodes,
        termination_penalty=cfg.termination_penalty,
        height_reward=cfg.height_reward,
        record_physics=cfg.render_clips and physics,
        record_frames=record_frames,
        record_state=cfg.render_clips and state,
        dt=dt,
    )


__all__ = [
    "ATARI_FPS",
    "ATARI_SEGMENT_STEPS",
    "check_clips_supported",
    "check_env_id",
    "env_render_modes",
    "is_atari",
    "make_single_env",
    "make_vector_env",
    "segment_length",
]
