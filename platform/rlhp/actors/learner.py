"""Learner actor: PPO or TRPO with GAE; relabels each batch with the newest reward model.

Thin shell around ``rlhp.algos.trainer.Learner``. Rollouts from all workers are stacked
along the env axis into one batch. Runs on the GPU when its placement gave it one.
"""

from __future__ import annotations

import os
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlhp.algos.rollout import Rollout, concat_rollouts
from rlhp.algos.trainer import Learner
from rlhp.config import RunConfig
from rlhp.preference.networks import InputSpec
from rlhp.preference.reward_models import build_reward_model
from rlhp.preference.watch import overoptimization_watch


class LearnerActor:
    """Owns the Learner and, in preference mode, an inference copy of the reward model.

    With synthetic labels it also runs the over-optimization watch on every rollout
    (``rlhp.preference.watch``): the current policy's own segments, scored by the reward
    model and by the true reward, never trained on.
    """

    def __init__(
        self,
        cfg_data: dict[str, Any],
        obs_space: gym.Space,
        act_space: gym.Space,
        num_envs: int,
        preferences: bool,
        segment_length: int = 1,
    ) -> None:
        cfg = RunConfig.model_validate(cfg_data)
        self.reward_model = (
            build_reward_model(InputSpec.from_spaces(obs_space, act_space), cfg.reward_model)
            if preferences
            else None
        )
        self.watch = preferences and cfg.teacher.kind != "human"  # true reward = the teacher's
        self.segment_length = segment_length
        self.watch_rng = np.random.default_rng([cfg.seed, 7])
        self.reward_version = -1
        self.predicted_return = np.zeros(num_envs)  # running sum of r_hat per env's episode
        self.learner = Learner(cfg, obs_space, act_space, num_envs, reward_fn=self.reward_model)

    def update(
        self,
        rollouts: list[Rollout],
        reward_state: dict[str, Any] | None,
        with_state: bool = False,
    ) -> dict[str, Any]:
        """One iteration on the stacked rollouts; returns metrics and the new weights and,
        ``with_state``, the whole state for a checkpoint (taken in the same call: a learner
        that dies and is restarted between an update and a separate ``state_dict`` call
        would hand back its fresh state instead)."""
        t0 = time.perf_counter()
        new_reward = reward_state is not None and reward_state["version"] != self.reward_version
        if self.reward_model is not None and new_reward:
            self.reward_model.load_state_dict(reward_state)
            self.reward_version = reward_state["version"]
        rollout = concat_rollouts(rollouts)
        lag = self.learner.policy_version - rollout.policy_version  # 1: runtime.overlap_sampling
        r_model = self.learner.model_rewards(rollout)  # r_hat, computed once
        _, metrics = self.learner.update(rollout, r_model)
        metrics["policy_lag"] = float(lag)
        metrics["learner_update_s"] = time.perf_counter() - t0
        if self.reward_model is not None:
            metrics |= self._predicted_returns(rollout, r_model)
            if self.watch and self.reward_version >= 0:
                metrics |= overoptimization_watch(
                    r_model,
                    rollout.true_rewards,
                    rollout.episode_ends,
                    self.segment_length,
                    self.watch_rng,
                )
        out = {
            "metrics": metrics,
            "policy_state": self.learner.policy_state(),
            "policy_version": self.learner.policy_version,
            "global_step": self.learner.global_step,
            "reward_version": self.reward_version,
        }
        return out | ({"learner_state": self.state_dict()} if with_state else {})

    def _predicted_returns(self, rollout: Rollout, r_hat: np.ndarray) -> dict[str, float]:
        """Mean r_hat per step, and the mean predicted return of the episodes that ended.

        The predicted return is measured from the model's reference (its mean reward per
        step on the initial random-policy segments), so it reads as "how much better than
        the random policy, under the current model" and keeps its meaning across refits,
        which re-centre r_hat on the current policy's own steps (section 2.2.1).
        """
        assert self.reward_model is not None
        anchored = r_hat - self.reward_model.reference_mean
        finished: list[float] = []
        for t in range(r_hat.shape[0]):
            self.predicted_return += anchored[t]
            ends = rollout.episode_ends[t]
            if ends.any():
                finished += self.predicted_return[ends].tolist()
                self.predicted_return[ends] = 0.0
        out = {"predicted_reward_mean": float(r_hat.mean())}
        if finished:
            out["predicted_episode_return"] = float(np.mean(finished))
        return out

    def policy_state(self) -> dict[str, torch.Tensor]:
        return self.learner.policy_state()

    def state_dict(self) -> dict[str, Any]:
        return {"learner": self.learner.state_dict(), "reward_version": self.reward_version}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])

    def pid(self) -> int:
        return os.getpid()
