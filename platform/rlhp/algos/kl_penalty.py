"""KL penalty toward the initial policy (Bai et al. 2022, "Training a Helpful and Harmless
Assistant with RLHF", section 4.1; Ziegler et al. 2019).

The reward the optimizer sees is r_t - beta * (log pi(a_t|s_t) - log pi_0(a_t|s_t)): a
per-sample estimate of beta * KL(pi || pi_0) subtracted from the reward, so the same penalty
applies unchanged to PPO and TRPO.
"""

from __future__ import annotations

import numpy as np


def kl_penalized_rewards(
    rewards: np.ndarray, logp: np.ndarray, logp_initial: np.ndarray, beta: float
) -> np.ndarray:
    """r_t - beta * (log pi(a_t|s_t) - log pi_0(a_t|s_t)), elementwise."""
    return rewards - beta * (logp - logp_initial)
