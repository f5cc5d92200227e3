"""A lean synchronous vector env with same-step autoreset, for MuJoCo and other Python envs.

gymnasium's ``SyncVectorEnv`` builds per-step info dicts by merging every sub-env's info,
and each sub-env runs behind ``TimeLimit``, ``OrderEnforcing`` and ``PassiveEnvChecker``.
For a few MuJoCo envs that overhead is a sizeable share of a step. This class steps the
unwrapped envs directly, keeps the time limit itself, and returns only the arrays the
learner needs, while honouring the gymnasium ``VectorEnv`` API in SAME_STEP autoreset mode.

It also implements the paper's fixed-length episodes for tasks with termination
conditions (Christiano et al. 2017, appendix A): "In the Gym versions of our robotics
tasks, the episode ends when certain parameters go outside of a prescribed range ... We
replaced these termination conditions by a penalty which encourages the parameters to
remain in the range (and which the agent must learn)." Here: the sub-env's ``terminated``
flag is read as "the termination condition holds in this step", never reported, and
``termination_penalty`` is subtracted from the reward of every such step; episodes end
only at the time limit. (The paper gives no penalty size.) ``height_reward`` adds a graded
form of that penalty, ``height_reward * z_distance_from_origin`` per step (the torso's height
above its height at reset, which Hopper-v5 and Walker2d-v5 report in their step info), as
rl-teacher, OpenAI's public implementation of the paper, adds the torso height to Hopper's
and Walker's rewards.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space


def _float32_box(space: gym.Space) -> gym.Space:
    if isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.floating):
        return spaces.Box(
            low=space.low.astype(np.float32),
            high=space.high.astype(np.float32),
            shape=space.shape,
            dtype=np.float32,
        )
    return space


class SameStepVectorEnv(VectorEnv):
    """Steps ``envs`` in one process; SAME_STEP autoreset; fixed-length episodes optional.

    ``step`` returns ``(obs, rewards, terminations, truncations, infos)`` with fresh arrays.
    ``infos`` always holds:

    - ``true_reward`` [N] float64: the task's reward with the paper's changes applied
      (equal to ``rewards`` here; the key exists so that every rlhp env offers it),
    - ``final_obs`` [N, ...] (rows valid where ``_final_obs``): the last observation of each
      episode that ended in this step; the returned ``obs`` row is the next episode's first,
    - ``episode_return`` / ``episode_length`` [N] (valid where ``_final_obs``): the true
      return and length of each episode that ended,

    and, when ``record_physics`` is on (MuJoCo clips), ``qpos`` [N, nq] and ``qvel`` [N, nv]
    of the state that produced the returned ``obs``; when ``record_state`` is on (classic
    control clips), ``state`` [N, k], the env's own state vector its renderer draws; when
    ``record_frames`` is on (other envs' clips), ``frames`` [N, H, W, 3] uint8 rendered from
    that state.
    """

    def __init__(
        self,
        envs: list[gym.Env],
        *,
        time_limit: int | None,
        fixed_length: bool = False,
        termination_penalty: float = 0.0,
        height_reward: float = 0.0,
        record_physics: bool = False,
        record_frames: bool = False,
        record_state: bool = False,
        dt: float,
    ) -> None:
        if not envs:
            raise ValueError("SameStepVectorEnv needs at least one env")
        self.envs = envs
        self.num_envs = len(envs)
        self.time_limit = time_limit
        self.fixed_length = fixed_length
        self.termination_penalty = float(termination_penalty)
        self.height_reward = float(height_reward)
        self.record_physics = record_physics
        self.record_frames = record_frames
        self.record_state = record_state
        self.dt = dt
        first = envs[0]
        self.single_observation_space = _float32_box(first.observation_space)
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {
            "autoreset_mode": AutoresetMode.SAME_STEP,
            "render_modes": list(first.metadata.get("render_modes", [])),
        }
        self.render_mode = first.render_mode
        self.spec = first.spec
        self._obs_dtype = self.single_observation_space.dtype
        self._obs_shape = self.single_observation_space.shape
        self._batch_shape = (self.num_envs, *self._obs_shape)
        self._t = [0] * self.num_envs
        self._ret = [0.0] * self.num_envs
        self._record = record_physics or record_frames or record_state
        self._step_fns = [env.step for env in envs]
        if record_physics:
            self._datas = [env.unwrapped.data for env in envs]  # type: ignore[attr-defined]
            self._nq = self._datas[0].qpos.shape[0]
            self._nv = self._datas[0].qvel.shape[0]

    # -- gymnasium VectorEnv API --------------------------------------------------------------
    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-env; an int ``seed`` seeds env i with ``seed + i``."""
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, int):
            seeds = [seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
        obs = np.empty(self._batch_shape, dtype=self._obs_dtype)
        for i, env in enumerate(self.envs):
            obs[i], _ = env.reset(seed=seeds[i], options=options)
        self._t = [0] * self.num_envs
        self._ret = [0.0] * self.num_envs
        infos: dict[str, Any] = {}
        self._add_render_state(infos)
        return obs, infos

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env once; episodes that end are reset in the same step."""
        n = self.num_envs
        obs, rewards, terminations, truncations, ended = self._step_arrays()
        for i in range(n):
            o, rewards[i], terminated, truncated = self._advance(i, actions[i])
            if terminated or truncated:
                ended.add(i, o, self._ret[i], self._t[i])
                terminations[i], truncations[i] = terminated, truncated
                o, _ = self.envs[i].reset()
                self._t[i], self._ret[i] = 0, 0.0
            obs[i] = o
        return obs, rewards, terminations, truncations, self._step_infos(rewards, ended)

    def _step_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, _Ended]:
        """Fresh (obs, rewards, terminations, truncations, ended) for one step."""
        n = self.num_envs
        return (
            np.empty(self._batch_shape, dtype=self._obs_dtype),
            np.zeros(n, dtype=np.float64),
            np.zeros(n, dtype=np.bool_),
            np.zeros(n, dtype=np.bool_),
            _Ended(n, self._batch_shape, self._obs_dtype),
        )

    def _step_infos(self, rewards: np.ndarray, ended: _Ended) -> dict[str, Any]:
        infos: dict[str, Any] = {"true_reward": rewards.copy(), **ended.infos()}
        if self._record:
            self._add_render_state(infos)
        return infos

    def _advance(self, i: int, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        """Step sub-env ``i`` with the paper's changes and the time limit; count its step
        and return; ``(obs, reward, terminated, truncated)``."""
        o, r, terminated, truncated, info = self._step_fns[i](action)
        if self.fixed_length:
            if terminated:
                # appendix A.1: the termination condition becomes a penalty
                r = r - self.termination_penalty
            if self.height_reward:
                r = r + self.height_reward * info["z_distance_from_origin"]
            terminated = truncated = False
        self._t[i] += 1
        if self._t[i] == self.time_limit:
            truncated = True
        self._ret[i] += r
        return o, r, bool(terminated), bool(truncated)

    def _add_render_state(self, infos: dict[str, Any]) -> None:
        if self.record_physics:
            qpos = np.empty((self.num_envs, self._nq))
            qvel = np.empty((self.num_envs, self._nv))
            for i, data in enumerate(self._datas):
                qpos[i] = data.qpos
                qvel[i] = data.qvel
            infos["qpos"] = qpos
            infos["qvel"] = qvel
        if self.record_state:  # classic control: the few numbers its renderer draws from
            infos["state"] = np.stack(
                [np.asarray(env.unwrapped.state, dtype=np.float64) for env in self.envs]  # type: ignore[attr-defined]
            )
        if self.record_frames:
            infos["frames"] = np.stack([env.render() for env in self.envs])

    def render_state(self, obs: np.ndarray, infos: dict[str, Any]) -> dict[str, np.ndarray]:
        """What a segment keeps per step to be shown later, for the state behind ``obs``."""
        del obs
        state: dict[str, np.ndarray] = {}
        for key in ("qpos", "qvel", "state", "frames"):
            if key in infos:
                state[key] = infos[key]
        return state

    def render(self) -> tuple[np.ndarray, ...] | None:
        """Frames of every sub-env (needs render_mode 'rgb_array')."""
        if self.render_mode != "rgb_array":
            return None
        return tuple(env.render() for env in self.envs)

    def close_extras(self, **kwargs: Any) -> None:
        """Close the sub-envs."""
        for env in self.envs:
            env.close()


class _Ended:
    """The ``final_obs`` / ``episode_return`` / ``episode_length`` infos of the episodes that
    ended in one step (allocated only when one did)."""

    def __init__(self, n: int, batch_shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.n, self.batch_shape, self.dtype = n, batch_shape, dtype
        self.arrays: dict[str, np.ndarray] | None = None

    def add(self, i: int, final_obs: np.ndarray, ret: float, length: int) -> None:
        if self.arrays is None:
            self.arrays = {
                "final_obs": np.zeros(self.batch_shape, dtype=self.dtype),
                "_final_obs": np.zeros(self.n, dtype=np.bool_),
                "episode_return": np.zeros(self.n, dtype=np.float64),
                "episode_length": np.zeros(self.n, dtype=np.int64),
            }
        a = self.arrays
        a["final_obs"][i], a["_final_obs"][i] = final_obs, True
        a["episode_return"][i], a["episode_length"][i] = ret, length

    def infos(self) -> dict[str, np.ndarray]:
        return self.arrays or {}


class NextStepVectorEnv(SameStepVectorEnv):
    """The same env in NEXT_STEP autoreset mode (gymnasium's default, what RLlib's
    EnvRunners expect): the step that ends an episode returns its last observation, and the
    next step resets that sub-env (its action is ignored, reward 0, not done).

    ``infos`` as in SAME_STEP mode, per row: ``true_reward``, ``episode_return`` /
    ``episode_length`` where ``_final_obs`` (the last observation is ``obs`` itself), and the
    render state of the state behind each returned observation.
    """

    def __init__(self, envs: list[gym.Env], **kwargs: Any) -> None:
        super().__init__(envs, **kwargs)
        self.metadata["autoreset_mode"] = AutoresetMode.NEXT_STEP
        self._needs_reset = np.zeros(self.num_envs, dtype=np.bool_)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        self._needs_reset[:] = False
        return super().reset(seed=seed, options=options)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        n = self.num_envs
        obs, rewards, terminations, truncations, ended = self._step_arrays()
        for i in range(n):
            if self._needs_reset[i]:
                obs[i], _ = self.envs[i].reset()
                self._t[i], self._ret[i], self._needs_reset[i] = 0, 0.0, False
                continue
            obs[i], rewards[i], terminated, truncated = self._advance(i, actions[i])
            if terminated or truncated:
                ended.add(i, obs[i], self._ret[i], self._t[i])
                terminations[i], truncations[i] = terminated, truncated
                self._needs_reset[i] = True
        return obs, rewards, terminations, truncations, self._step_infos(rewards, ended)
