"""Generalized Advantage Estimation (Schulman et al. 2016, "High-Dimensional Continuous
Control Using Generalized Advantage Estimation").

Inputs are [T, N] blocks from N vectorized environments. ``next_values[t]`` is V(s_{t+1}) of
the state that actually followed s_t: at a time-limit truncation that is the episode's final
observation (we bootstrap from it), at a true termination it is ignored (the value of a
terminal state is 0). Truncation and termination both cut the lambda-return.
"""

from __future__ import annotations

import numpy as np


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminations: np.ndarray,
    episode_ends: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(A_hat, returns)`` with ``returns = A_hat + values`` (the TD(lambda) target).

    delta_t = r_t + gamma * (1 - term_t) * V(s_{t+1}) - V(s_t)        (eq. 10, TD residual)
    A_hat_t = delta_t + gamma * lambda * (1 - end_t) * A_hat_{t+1}     (eq. 16, recursively)
    """
    T = rewards.shape[0]
    not_terminal = 1.0 - terminations.astype(np.float32)
    not_end = 1.0 - episode_ends.astype(np.float32)
    delta = rewards + gamma * not_terminal * next_values - values
    A_hat = np.zeros_like(delta, dtype=np.float32)
    last = np.zeros(delta.shape[1:], dtype=np.float32)
    for t in reversed(range(T)):
        last = delta[t] + gamma * lam * not_end[t] * last
        A_hat[t] = last
    return A_hat, A_hat + values
