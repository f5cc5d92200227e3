"""Reward scaling by the running standard deviation of the discounted return.

The same transformation as Stable-Baselines3's ``VecNormalize`` and gymnasium's
``NormalizeReward``: r_t / sqrt(Var[R_t] + eps) with R_t = gamma R_{t-1} + r_t, reset at
episode ends; it keeps the value targets in a range the critic fits well.
"""

from __future__ import annotations

import numpy as np


class RunningMeanStd:
    """Running mean and variance of a stream of batches (Chan et al. parallel formula)."""

    def __init__(self, shape: tuple[int, ...] = (), eps: float = 1e-4) -> None:
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = eps

    def update(self, batch: np.ndarray) -> None:
        b_mean, b_var, b_count = batch.mean(0), batch.var(0), batch.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.mean = self.mean + delta * b_count / total
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict[str, np.ndarray | float]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def load_state_dict(self, state: dict[str, np.ndarray | float]) -> None:
        self.mean = np.asarray(state["mean"], np.float64).copy()
        self.var = np.asarray(state["var"], np.float64).copy()
        self.count = float(state["count"])  # type: ignore[arg-type]


class RewardScaler:
    """Divide rewards by the running std of the per-env discounted return, then clip."""

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8):
        self.gamma = gamma
        self.clip = clip
        self.eps = eps
        self.returns = np.zeros(num_envs, np.float64)
        self.rms = RunningMeanStd()

    def __call__(self, rewards: np.ndarray, episode_ends: np.ndarray) -> np.ndarray:
        """Scale a [T, N] block of rewards collected in time order; updates the statistics."""
        discounted = np.empty_like(rewards, dtype=np.float64)
        for t in range(rewards.shape[0]):
            self.returns = self.returns * self.gamma + rewards[t]
            discounted[t] = self.returns
            self.returns[episode_ends[t]] = 0.0
        self.rms.update(discounted.reshape(-1))
        scaled = rewards / np.sqrt(self.rms.var + self.eps)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, object]:
        return {"returns": self.returns.copy(), "rms": self.rms.state_dict()}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.returns = np.asarray(state["returns"], np.float64).copy()
        self.rms.load_state_dict(state["rms"])  # type: ignore[arg-type]
