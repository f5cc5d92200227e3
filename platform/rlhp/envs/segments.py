"""Cut fixed-length segments from vectorized rollouts (Christiano et al. 2017, section 2.2).

Segments are the unit people compare: ``length`` consecutive agent steps of one sub-env,
inside one episode (a segment never spans a reset), with the observations the reward model
sees, the actions, the true rewards (for synthetic teachers and evaluation only), and what it
takes to show the clip later: MuJoCo ``qpos``/``qvel`` per step (frames are rendered only for
clips that are shown) or Atari ``frames``. Consecutive segments of one episode do not
overlap; the steps after an episode's last full segment are dropped.

Typical rollout loop::

    env = make_vector_env(cfg, seed)
    cutter = SegmentCutter(env_id=cfg.id, run_id=run, worker=w, num_envs=cfg.num_envs,
                           length=segment_length(cfg, env.dt))
    obs, infos = env.reset(seed=seed)
    state = env.render_state(obs, infos)
    while ...:
        actions = policy(obs)
        next_obs, rewards, terms, truncs, infos = env.step(actions)
        done = terms | truncs
        records = cutter.add(obs, actions, infos["true_reward"], state, done, version)
        obs, state = next_obs, env.render_state(next_obs, infos)
"""

from __future__ import annotations

import os
import time

import numpy as np

from rlhp.data.records import SegmentRecord


class SegmentCutter:
    """Per-sub-env buffers that emit a ``SegmentRecord`` every ``length`` steps (section 2.2).

    Record fields set here: ``segment_id`` = ``{run_id}-w{worker}-{id_prefix}-{counter}``
    (unique within a run as long as each cutter incarnation has its own ``id_prefix``);
    ``t_start`` = the sub-env's step count since this cutter was created, at the segment's
    first step; ``policy_version`` = the version that chose the first action;
    ``true_rewards`` as float32; ``render_state`` keys as the env gives them (``qpos``,
    ``qvel`` or ``frames``), each [length, ...].
    """

    def __init__(
        self,
        *,
        env_id: str,
        run_id: str,
        worker: int,
        num_envs: int,
        length: int,
        id_prefix: str | None = None,
    ) -> None:
        """``id_prefix`` makes segment ids unique across restarts (default: random hex)."""
        if length < 1:
            raise ValueError(f"segment length must be >= 1, got {length}")
        self.env_id = env_id
        self.run_id = run_id
        self.worker = worker
        self.num_envs = num_envs
        self.length = length
        self.id_prefix = id_prefix if id_prefix is not None else os.urandom(4).hex()
        self._count = 0
        self._fill = np.zeros(num_envs, dtype=np.int64)
        self._t = np.zeros(num_envs, dtype=np.int64)
        self._t_start = np.zeros(num_envs, dtype=np.int64)
        self._version = np.zeros(num_envs, dtype=np.int64)
        self._bufs: dict[str, np.ndarray] | None = None

    def _allocate(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        true_rewards: np.ndarray,
        render_state: dict[str, np.ndarray],
    ) -> dict[str, np.ndarray]:
        n, L = self.num_envs, self.length
        arrays = {"obs": obs, "actions": actions, "true_rewards": true_rewards}
        arrays.update({f"render:{k}": v for k, v in render_state.items()})
        return {
            k: np.empty((n, L, *np.asarray(v).shape[1:]), np.asarray(v).dtype)
            for k, v in arrays.items()
        }

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        true_rewards: np.ndarray,
        render_state: dict[str, np.ndarray],
        episode_over: np.ndarray,
        policy_version: int,
    ) -> list[SegmentRecord]:
        """Record step t of every sub-env; return the segments completed by it.

        ``obs`` and ``render_state`` describe the state *before* ``actions``;
        ``true_rewards`` and ``episode_over`` (terminated or truncated) come from the step
        that ``actions`` caused. ``policy_version`` is the version that chose ``actions``;
        a segment records the version at its first step.
        """
        if self._bufs is None:
            self._bufs = self._allocate(obs, actions, true_rewards, render_state)
        bufs = self._bufs
        out: list[SegmentRecord] = []
        columns = {"obs": obs, "actions": actions, "true_rewards": true_rewards}
        columns.update({f"render:{k}": v for k, v in render_state.items()})
        for i in range(self.num_envs):
            k = self._fill[i]
            if k == 0:
                self._t_start[i] = self._t[i]
                self._version[i] = policy_version
            for name, column in columns.items():
                bufs[name][i, k] = column[i]
            self._fill[i] = k + 1
            self._t[i] += 1
            if k + 1 == self.length:
                out.append(self._emit(i))
                self._fill[i] = 0
            if episode_over[i]:
                self._fill[i] = 0  # never span a reset; drop the partial segment
        return out

    def _emit(self, i: int) -> SegmentRecord:
        assert self._bufs is not None
        bufs = self._bufs
        segment_id = f"{self.run_id}-w{self.worker}-{self.id_prefix}-{self._count:08d}"
        self._count += 1
        return SegmentRecord(
            segment_id=segment_id,
            run_id=self.run_id,
            env_id=self.env_id,
            worker=self.worker,
            policy_version=int(self._version[i]),
            t_start=int(self._t_start[i]),
            obs=bufs["obs"][i].copy(),
            actions=bufs["actions"][i].copy(),
            true_rewards=bufs["true_rewards"][i].astype(np.float32),
            render_state={
                name.removeprefix("render:"): bufs[name][i].copy()
                for name in bufs
                if name.startswith("render:")
            },
            created_at=time.time(),
        )
