"""Collect a fixed number of steps from a vector env with a policy (the rollout actor's inside).

Relies on SAME_STEP autoreset (``rlhp.envs.make_vector_env``): when an episode ends at step t,
``infos["final_obs"]`` holds its last observation, used to bootstrap V at a truncation.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from rlhp.nn.acting import NumpyMLPPolicy, TorchPolicyActor


@dataclass
class Rollout:
    """[T, N, ...] arrays of one collection phase, in time order."""

    obs: np.ndarray
    actions: np.ndarray
    logp: np.ndarray
    values: np.ndarray
    next_values: np.ndarray
    rewards: np.ndarray
    true_rewards: np.ndarray
    terminations: np.ndarray
    episode_ends: np.ndarray
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)

    @property
    def num_steps(self) -> int:
        return int(self.rewards.size)


class RolloutCollector:
    """Steps ``env`` with ``policy``; keeps the current observation and episode tallies."""

    def __init__(self, env: gym.vector.VectorEnv, seed: int) -> None:
        self.env = env
        self.num_envs = env.num_envs
        obs_space = env.single_observation_space
        self.obs_dtype = np.uint8 if obs_space.dtype == np.uint8 else np.float32
        act_space = env.single_action_space
        self.continuous = isinstance(act_space, gym.spaces.Box)
        if self.continuous:
            self.act_low, self.act_high = act_space.low, act_space.high
        self.obs, _ = env.reset(seed=seed)
        self.episode_return = np.zeros(self.num_envs)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self.finished_returns: deque[float] = deque(maxlen=100)

    def collect(self, actor: NumpyMLPPolicy | TorchPolicyActor, T: int) -> Rollout:
        """T steps of every env with ``actor`` (see ``rlhp.nn.acting.make_actor``)."""
        N = self.num_envs
        obs_shape = self.env.single_observation_space.shape
        act_shape = self.env.single_action_space.shape
        buf_obs = np.empty((T, N, *obs_shape), self.obs_dtype)
        buf_act = np.empty((T, N, *act_shape), np.float32 if self.continuous else np.int64)
        buf_logp = np.empty((T, N), np.float32)
        buf_val = np.empty((T, N), np.float32)
        next_val = np.empty((T, N), np.float32)
        rewards = np.empty((T, N), np.float32)
        true_rewards = np.empty((T, N), np.float32)
        terms = np.empty((T, N), bool)
        ends = np.empty((T, N), bool)
        bootstrap_obs: list[np.ndarray] = []  # final observations at truncations
        bootstrap_at: list[tuple[int, int]] = []
        ep_returns: list[float] = []
        ep_lengths: list[int] = []

        for t in range(T):
            buf_obs[t] = self.obs
            a, buf_logp[t], buf_val[t] = actor.act(buf_obs[t])
            buf_act[t] = a
            env_action = np.clip(a, self.act_low, self.act_high) if self.continuous else a
            self.obs, r, term, trunc, infos = self.env.step(env_action)
            rewards[t] = r
            true_rewards[t] = infos.get("true_reward", r)
            terms[t], ends[t] = term, term | trunc
            self.episode_return += true_rewards[t]
            self.episode_length += 1
            if ends[t].any():
                for i in np.flatnonzero(ends[t]):
                    ep_returns.append(float(self.episode_return[i]))
                    ep_lengths.append(int(self.episode_length[i]))
                    if trunc[i] and not term[i]:
                        bootstrap_obs.append(np.asarray(infos["final_obs"][i], self.obs_dtype))
                        bootstrap_at.append((t, int(i)))
                self.episode_return[ends[t]] = 0.0
                self.episode_length[ends[t]] = 0

        next_val[:-1] = buf_val[1:]
        next_val[-1] = actor.value(np.asarray(self.obs, self.obs_dtype))
        if bootstrap_obs:
            v_final = actor.value(np.stack(bootstrap_obs))
            for (t, i), v in zip(bootstrap_at, v_final, strict=True):
                next_val[t, i] = v
        self.finished_returns.extend(ep_returns)
        return Rollout(
            buf_obs,
            buf_act,
            buf_logp,
            buf_val,
            next_val,
            rewards,
            true_rewards,
            terms,
            ends,
            ep_returns,
            ep_lengths,
        )
