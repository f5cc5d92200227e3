"""Labelling segments cut on RLlib's EnvRunners and pushed to rlhp's segment buffer actor.

An ``on_sample_end`` callback: each sample() returns episode chunks (an episode's next chunk
arrives with a later sample() under the same id), and every chunk is fed step by step to a
``SegmentCutter`` of its episode, so segments never span a reset and keep the same records
as rlhp's own rollout workers (obs, executed actions, true rewards, render state).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import ray
from gymnasium import spaces
from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

from rlhp.data.records import SegmentRecord
from rlhp.envs.segments import SegmentCutter

RENDER_KEYS = ("qpos", "qvel", "state", "frames")
_STALE_SAMPLES = 4  # an episode not continued for this many samples is forgotten


TRUE_RETURN = "rlhp_true_episode_return"  # the EnvRunners' metric: episodes' true returns


def log_true_return(*, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
    """RLlib's ``on_episode_end``: log the ended episode's true return, which rlhp's envs put
    in the last step's ``infos["episode_return"]`` (RLlib's own episode return sums the
    rewards the learner sees: Atari's clipped ones)."""
    info = episode.get_infos(-1) if len(episode) else {}
    if metrics_logger is not None and "episode_return" in info:
        metrics_logger.log_value(TRUE_RETURN, float(info["episode_return"]), window=100)


def true_rewards(ep: Any, n: int) -> np.ndarray:
    """The true reward of an episode chunk's first ``n`` steps: the env's
    ``infos["true_reward"]`` (the info returned after a step carries it), else its reward
    (they differ under ``env.reward_clipping``: Atari's scores, not their signs)."""
    after = ep.get_infos(slice(1, n + 1)) if n else []
    if n and all("true_reward" in info for info in after):
        return np.array([float(info["true_reward"]) for info in after], np.float64)
    return np.asarray(ep.get_rewards(slice(0, n)), np.float64)


class SegmentCallback:
    """Callable as RLlib's ``on_sample_end``; one copy lives in each EnvRunner."""

    def __init__(self, *, run_id: str, env_id: str, length: int, buffer: Any) -> None:
        self.run_id, self.env_id, self.length, self.buffer = run_id, env_id, length, buffer
        self._cutters: dict[str, tuple[SegmentCutter, int]] = {}  # episode id -> (cutter, seen)
        self._episodes = 0
        self._samples = 0
        self._prefix: str | None = None  # drawn in the EnvRunner: one per process, restarts too

    def __call__(self, *, env_runner: Any = None, samples: Any = None, **kwargs: Any) -> None:
        if self.buffer is None or not samples:
            return
        worker = int(getattr(env_runner, "worker_index", 0))
        act_space = getattr(env_runner.env, "single_action_space", None) if env_runner else None
        if self._prefix is None:
            self._prefix = os.urandom(4).hex()
        self._samples += 1
        records: list[SegmentRecord] = []
        for ep in samples:
            records += self._cut(ep, worker, act_space)
        for key in [k for k, (_, seen) in self._cutters.items()
                    if self._samples - seen > _STALE_SAMPLES]:  # fmt: skip
            del self._cutters[key]
        if records:
            ray.get(self.buffer.add.remote(records))  # stored before sample() returns

    def _cut(self, ep: Any, worker: int, act_space: Any) -> list[SegmentRecord]:
        n = len(ep)
        if n == 0:
            return []
        if ep.id_ in self._cutters:
            cutter = self._cutters[ep.id_][0]
        else:
            self._episodes += 1
            cutter = SegmentCutter(env_id=self.env_id, run_id=self.run_id, worker=worker,
                                   num_envs=1, length=self.length,
                                   id_prefix=f"{self._prefix}e{self._episodes}")  # fmt: skip
        self._cutters[ep.id_] = (cutter, self._samples)
        obs = np.asarray(ep.get_observations(slice(0, n)))
        actions = np.asarray(ep.get_actions(slice(0, n)))
        if isinstance(act_space, spaces.Box):
            actions = np.clip(actions, act_space.low, act_space.high)  # as executed
        rewards = true_rewards(ep, n)
        infos = ep.get_infos(slice(0, n))  # infos[t]: returned with obs[t]
        try:
            versions = np.asarray(ep.get_extra_model_outputs(WEIGHTS_SEQ_NO, slice(0, n)))
        except KeyError:
            versions = np.zeros(n, np.int64)
        out: list[SegmentRecord] = []
        for t in range(n):
            state = {k: np.asarray(infos[t][k])[None] for k in RENDER_KEYS if k in infos[t]}
            last = ep.is_done and t == n - 1
            out += cutter.add(obs[t][None], actions[t][None], rewards[t : t + 1], state,
                              np.array([last]), int(versions[t]))  # fmt: skip
        if ep.is_done:
            del self._cutters[ep.id_]
        return out
