"""The Bradley-Terry preference model and its cross-entropy loss (Christiano et al. 2.2.3).

Eq. 1:  P_hat[σ1 ≻ σ2] = exp R_1 / (exp R_1 + exp R_2) = sigmoid(R_1 - R_2),
        with R_i = Σ_t r_hat(o^i_t, a^i_t) the predicted return of segment σi.
Section 2.2.3 then assumes "a 10% chance that the human responds uniformly at random":
        P_hat = (1 - ε) sigmoid(R_1 - R_2) + ε / 2.
Loss:   loss(r_hat) = - Σ_(σ1, σ2, μ) μ(1) log P_hat[σ1 ≻ σ2] + μ(2) log P_hat[σ2 ≻ σ1],
with μ(1) = 1, 0 or 0.5 (tie) and μ(2) = 1 - μ(1). We average over the batch instead of
summing, which only rescales the L2 coefficient.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def preference_log_probs(
    R_1: torch.Tensor, R_2: torch.Tensor, epsilon: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """log P_hat[σ1 ≻ σ2] and log P_hat[σ2 ≻ σ1] (eq. 1 with random responses, 2.2.3).

    Computed in log space: log((1 - ε) sigmoid(Δ) + ε/2) = logaddexp(log(1 - ε) +
    logsigmoid(Δ), log(ε/2)), stable for any segment-return difference Δ.
    """
    log_random = math.log(epsilon / 2) if epsilon > 0 else -math.inf
    log_keep = math.log1p(-epsilon)
    delta = R_1 - R_2
    random = torch.full_like(delta, log_random)
    log_p1 = torch.logaddexp(log_keep + F.logsigmoid(delta), random)
    log_p2 = torch.logaddexp(log_keep + F.logsigmoid(-delta), random)
    return log_p1, log_p2


def preference_probability(R_1: torch.Tensor, R_2: torch.Tensor, epsilon: float) -> torch.Tensor:
    """P_hat[σ1 ≻ σ2] = (1 - ε) sigmoid(R_1 - R_2) + ε/2 (eq. 1, section 2.2.3)."""
    return (1.0 - epsilon) * torch.sigmoid(R_1 - R_2) + epsilon / 2


def bradley_terry_loss(
    R_1: torch.Tensor, R_2: torch.Tensor, mu_1: torch.Tensor, epsilon: float
) -> torch.Tensor:
    """Mean cross-entropy between the labels μ and P_hat (section 2.2.3), soft targets.

    Args:
        R_1, R_2: [B] predicted returns Σ_t r_hat of the left and right segments.
        mu_1: [B] μ(1), the label's weight on the left segment (1, 0 or 0.5 for a tie).
        epsilon: chance of a uniformly random answer (0.1 in the paper).
    """
    log_p1, log_p2 = preference_log_probs(R_1, R_2, epsilon)
    mu_2 = 1.0 - mu_1
    return -(mu_1 * log_p1 + mu_2 * log_p2).mean()
