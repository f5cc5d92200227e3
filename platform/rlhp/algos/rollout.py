"""Collect a fixed number of steps from a vector env with a policy (the rollout actor's inside).

Relies on SAME_STEP autoreset (``rlhp.envs.make_vector_env``): when an episode ends at step t,
``infos["final_obs"]`` holds its last observation, used to bootstrap V at a truncation.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from rlhp.data.records import SegmentRecord
from rlhp.envs.segments import SegmentCutter
from rlhp.nn.acting import NumpyMLPPolicy, TorchPolicyActor


@dataclass
class Rollout:
    """[T, N, ...] arrays of one collection phase, in time order."""

    obs: np.ndarray
    actions: np.ndarray  # as sampled by the policy (what log-probs refer to)
    env_actions: np.ndarray  # as executed: clipped to the action bounds (what rewards refer to)
    logp: np.ndarray
    values: np.ndarray
    next_values: np.ndarray
    rewards: np.ndarray
    true_rewards: np.ndarray
    terminations: np.ndarray
    episode_ends: np.ndarray
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    segments: list[SegmentRecord] = field(default_factory=list)
    policy_version: int = 0  # of the policy that acted (the oldest, when stacked)

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
        self.obs, self.infos = env.reset(seed=seed)
        self.episode_return = np.zeros(self.num_envs)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self.finished_returns: deque[float] = deque(maxlen=100)

    def collect(
        self,
        actor: NumpyMLPPolicy | TorchPolicyActor,
        T: int,
        cutter: SegmentCutter | None = None,
        policy_version: int = 0,
    ) -> Rollout:
        """T steps of every env with ``actor`` (see ``rlhp.nn.acting.make_actor``).

        With a ``cutter``, also cut the steps into fixed-length segments (with their render
        state) for the preference side of the loop.
        """
        N = self.num_envs
        obs_shape = self.env.single_observation_space.shape
        act_shape = self.env.single_action_space.shape
        buf_obs = np.empty((T, N, *obs_shape), self.obs_dtype)
        buf_act = np.empty((T, N, *act_shape), np.float32 if self.continuous else np.int64)
        env_act = np.empty_like(buf_act)
        segments: list[SegmentRecord] = []
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
            env_act[t] = np.clip(a, self.act_low, self.act_high) if self.continuous else a
            state = self.env.render_state(self.obs, self.infos) if cutter is not None else None
            self.obs, r, term, trunc, infos = self.env.step(env_act[t])
            self.infos = infos
            rewards[t] = r
            true_rewards[t] = infos.get("true_reward", r)
            terms[t], ends[t] = term, term | trunc
            if cutter is not None:
                segments += cutter.add(
                    buf_obs[t], env_act[t], true_rewards[t], state, ends[t], policy_version
                )
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
            env_act,
            buf_logp,
            buf_val,
            next_val,
            rewards,
            true_rewards,
            terms,
            ends,
            ep_returns,
            ep_lengths,
            segments,
            policy_version,
        )


def concat_rollouts(rollouts: list[Rollout]) -> Rollout:
    """Stack rollouts of equal length T from several workers along the env axis."""
    if len(rollouts) == 1:
        return rollouts[0]
    arrays = {
        name: np.concatenate([getattr(r, name) for r in rollouts], axis=1)
        for name in (
            "obs", "actions", "env_actions", "logp", "values", "next_values", "rewards",
            "true_rewards", "terminations", "episode_ends",
        )
    }  # fmt: skip
    return Rollout(
        **arrays,
        episode_returns=[x for r in rollouts for x in r.episode_returns],
        episode_lengths=[x for r in rollouts for x in r.episode_lengths],
        segments=[s for r in rollouts for s in r.segments],
        policy_version=min(r.policy_version for r in rollouts),
    )
