"""The oracle reward model: the true reward pushed through exactly the path r_hat takes.

A diagnostic, not a method (``reward_model.kind=oracle``). It separates the two ways RL from
preferences can fail: a reward model that ranks behaviour wrongly, or an optimizer that
cannot climb a reward delivered the way r_hat is delivered. The oracle is refitted at the
same moments as the ensemble (when new labels arrive), standardized on the same recent
steps (section 2.2.1: "zero mean and constant standard deviation"), handed to the learner
as a versioned state like the ensemble's, and then scaled and KL-penalized by the learner
exactly as r_hat is. Only the per-step values differ: r_t instead of r_hat(o_t, a_t).

So if a run on the oracle matches the true-reward run, the optimizer, the normalization and
the refit cadence are fine and any remaining gap is the reward model's; if it does not, the
path is at fault.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlhp.preference.config import RewardModelConfig
from rlhp.preference.dataset import PreferenceData
from rlhp.preference.ensemble import FitReport
from rlhp.preference.metrics import pairwise_accuracy


class OracleRewardModel:
    """True rewards, standardized per fit like r_hat: ``reward_std · (r - m) / s``."""

    reads_true_reward = True

    def __init__(self, cfg: RewardModelConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else RewardModelConfig(kind="oracle")
        self.mean = 0.0  # m: mean true reward per step on recent steps
        self.std = 1.0  # s
        self.reference_mean = 0.0
        self.version = 0
        self.fits = 0

    def relabel(self, true_rewards: np.ndarray) -> np.ndarray:
        """The reward the learner gets for steps with these true rewards, any shape."""
        r = np.asarray(true_rewards, np.float64)
        if self.cfg.output_normalization == "none":
            return r.astype(np.float32)
        return (self.cfg.reward_std * (r - self.mean) / self.std).astype(np.float32)

    def fit_normalization(self, true_rewards: np.ndarray) -> None:
        """Fit m and s on the last ``cfg.normalization_steps`` recent steps' true rewards."""
        r = np.asarray(true_rewards, np.float64).reshape(-1)[-self.cfg.normalization_steps :]
        if r.size >= 2:
            self.mean = float(r.mean())
            self.std = max(float(r.std()), 1e-8)
        self.version += 1

    def fit(self, data: PreferenceData, recent_true_rewards: np.ndarray | None) -> FitReport:
        """A "fit": refit the normalization (the only state), report label agreement.

        ``val_accuracy`` is the share of labelled pairs whose true returns order agrees with
        the label: 1.0 for the perfect oracle teacher, lower for noisy teachers.
        """
        self.fits += 1
        if recent_true_rewards is not None:
            self.fit_normalization(recent_true_rewards)
        else:
            self.version += 1
        report = FitReport(version=self.version, n_train=len(data), n_val=0)
        if data.true_return_1 is not None and data.true_return_2 is not None:
            d = (data.true_return_1 - data.true_return_2).numpy()
            p = 0.5 + 0.5 * np.sign(d)  # the oracle's "probability" that left is better
            report.val_accuracy = pairwise_accuracy(p, data.mu.numpy())
        return report

    def set_reference_from_returns(self, segment_returns: torch.Tensor, length: int) -> None:
        """Anchor: the mean relabelled reward per step of reference segments (their true
        returns and common length)."""
        per_step = float(segment_returns.double().mean()) / max(length, 1)
        self.reference_mean = float(self.relabel(np.array([per_step]))[0])

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "oracle",
            "config": self.cfg.model_dump(mode="json"),
            "mean": self.mean,
            "std": self.std,
            "reference_mean": self.reference_mean,
            "version": self.version,
            "fits": self.fits,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.std = float(state["mean"]), float(state["std"])
        self.reference_mean = float(state["reference_mean"])
        self.version, self.fits = int(state["version"]), int(state["fits"])
