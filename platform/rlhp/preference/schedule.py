"""The label schedule: how many labels to have asked for by env step T (Christiano et al.).

Appendix A: labels come at a rate proportional to c / (T + c) ("after twice as many
timesteps have elapsed, we answer about half as many queries per unit time"), after an
initial batch from a randomly initialized policy (A.1: 25% of the budget; A.2: 500 labels
and 200 epochs of reward-model pre-training). Integrating the rate and fixing the constant
so that the budget B is reached at the run's last step T_total gives the cumulative target

    N(T) = N_0 + (B - N_0) · ln(1 + T / c) / ln(1 + T_total / c),    0 <= T <= T_total,

whose derivative is ∝ c / (T + c). N(0) = N_0 is the initial batch.
"""

from __future__ import annotations

import math

from rlhp.preference.config import LabelScheduleConfig


class LabelSchedule:
    """Cumulative label targets over env steps, and how many labels are due now."""

    def __init__(self, cfg: LabelScheduleConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else LabelScheduleConfig()

    @property
    def initial_labels(self) -> int:
        """N_0: labels asked from random-policy segments before RL starts."""
        return self.cfg.initial_labels

    @property
    def pretrain_epochs(self) -> int:
        """Reward-model epochs on the initial labels before RL starts (A.2: 200 on Atari)."""
        return self.cfg.pretrain_epochs

    def target(self, T: int) -> int:
        """N(T), the labels that should have been asked for by env step T (rounded down)."""
        cfg = self.cfg
        if T <= 0:
            return cfg.initial_labels
        c, T_total = cfg.decay_timesteps, cfg.total_timesteps
        if T >= T_total:  # noqa: SIM300 - T is the paper's time step, not a constant
            return cfg.total_labels
        share = math.log1p(T / c) / math.log1p(T_total / c)
        return cfg.initial_labels + int((cfg.total_labels - cfg.initial_labels) * share)

    def rate(self, T: float) -> float:
        """dN/dT at step T (labels per env step), ∝ c / (T + c)."""
        cfg = self.cfg
        c, T_total = cfg.decay_timesteps, cfg.total_timesteps
        scale = (cfg.total_labels - cfg.initial_labels) / math.log1p(T_total / c)
        return scale / (T + c) if T < T_total else 0.0  # noqa: SIM300

    def due(self, T: int, labels_so_far: int) -> int:
        """Labels to ask for now: N(T) minus those already asked, never negative."""
        return max(0, self.target(T) - labels_so_far)
