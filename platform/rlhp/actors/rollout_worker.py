"""Rollout actor: one vector env and a copy of the policy; cuts segments for the buffer.

Thin shell around ``RolloutCollector`` and ``SegmentCutter``. Weights arrive with each call
(the newest the driver has, never waited for); segments go straight to the segment buffer
actor so that they outlive this worker.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import ray
import torch

from rlhp.algos.rollout import Rollout, RolloutCollector
from rlhp.config import RunConfig
from rlhp.envs import make_vector_env
from rlhp.envs.factory import segment_length
from rlhp.envs.segments import SegmentCutter
from rlhp.nn.acting import make_actor
from rlhp.nn.policies import build_policy


class RolloutWorker:
    """Collects ``rollout_steps`` per call with the given policy weights."""

    def __init__(
        self, cfg_data: dict[str, Any], index: int, run_id: str, buffer: Any | None
    ) -> None:
        cfg = RunConfig.model_validate(cfg_data)
        torch.set_num_threads(1)
        self.cfg, self.index, self.buffer = cfg, index, buffer
        seed = cfg.seed + 1_000 * (index + 1)
        self.env = make_vector_env(cfg.env, seed)
        self.policy = build_policy(
            cfg.policy, self.env.single_observation_space, self.env.single_action_space, cfg.env.id
        )
        self.collector = RolloutCollector(self.env, seed)
        self.rng = np.random.default_rng(seed)
        self.cutter = (
            SegmentCutter(
                env_id=cfg.env.id,
                run_id=run_id,
                worker=index,
                num_envs=cfg.env.num_envs,
                length=segment_length(cfg.env, self.env.dt),
            )
            if buffer is not None
            else None
        )

    def sample(self, policy_state: dict[str, torch.Tensor], policy_version: int) -> Rollout:
        self.policy.load_state_dict(policy_state)
        rollout = self.collector.collect(
            make_actor(self.policy, self.rng),
            self.cfg.learner.rollout_steps,
            self.cutter,
            policy_version,
        )
        if self.buffer is not None and rollout.segments:
            ray.get(self.buffer.add.remote(rollout.segments))  # stored before we report back
        rollout.segments = []
        return rollout

    def pid(self) -> int:
        return os.getpid()
