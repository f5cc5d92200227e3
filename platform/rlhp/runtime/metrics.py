"""The driver's own metrics per learner iteration, beside the learner's: training return on
the true reward (never seen by the learner in preference mode), throughput."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from rlhp.algos.rollout import Rollout


class IterationMetrics:
    """Keeps the last ``window`` finished training episodes' true returns.

    ``true_episode_return`` is their mean: smooth, but late where episodes are long (on
    Atari's fixed 2,000-step episodes with 8 envs, 100 episodes are 200k steps of play), and
    a resumed run starts its window afresh. ``true_episode_return/latest`` is the mean of the
    episodes that ended in this iteration alone: logged only when some did, never late."""

    def __init__(self, steps_per_iteration: int, window: int = 100) -> None:
        self.steps_per_iteration = steps_per_iteration
        self.recent: deque[float] = deque(maxlen=window)
        self.latest: list[float] = []  # episodes finished in the rollouts added last
        self._mean: float | None = None  # set_mean: a backend that keeps its own window

    def add(self, rollouts: Sequence[Rollout]) -> None:
        self.latest = [float(g) for r in rollouts for g in r.episode_returns]
        self.recent.extend(self.latest)

    def set_mean(self, mean: float) -> None:
        """The backend's own mean over its last ``window`` episodes (RLlib's). RLlib reports
        none (NaN) in an iteration where no episode ended, as in 15 of every 16 on Pong's
        fixed-length episodes: the last mean stands, as rlhp's own window does."""
        if math.isfinite(mean):
            self._mean = mean

    @property
    def mean_recent_return(self) -> float:
        if self._mean is not None:
            return self._mean
        return float(np.mean(self.recent)) if self.recent else float("nan")

    def of(self, update: dict[str, Any], started_at: float) -> dict[str, float]:
        """The learner's metrics of ``update`` and the driver's, for an iteration begun at
        ``started_at`` (time.time())."""
        learner = update["metrics"]
        latest = {"true_episode_return/latest": float(np.mean(self.latest))} if self.latest else {}
        return (
            dict(learner)
            | latest
            | {
                "true_episode_return": self.mean_recent_return,
                "env_steps_per_s": self.steps_per_iteration / (time.time() - started_at),
                "learner_updates_per_s": 1.0 / max(learner["learner_update_s"], 1e-9),
            }
        )
