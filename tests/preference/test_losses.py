"""The Bradley-Terry loss against hand computations (Christiano et al. eq. 1, section 2.2.3)."""

from __future__ import annotations

import math

import pytest
import torch

from rlhp.preference.losses import (
    bradley_terry_loss,
    preference_log_probs,
    preference_probability,
)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_loss_matches_hand_computation_with_random_responses() -> None:
    # Three pairs: left better, right better, tie; ε = 0.1 as in the paper.
    R_1 = torch.tensor([2.0, 0.5, -1.0], dtype=torch.float64)
    R_2 = torch.tensor([1.0, 1.5, 0.0], dtype=torch.float64)
    mu = torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64)
    eps = 0.1
    # by hand: P1 = 0.9 * sigmoid(R1 - R2) + 0.05
    p_a = 0.9 * sigmoid(1.0) + 0.05  # 0.70795...
    p_b = 0.9 * sigmoid(-1.0) + 0.05  # P1 of pair 2 (Δ = -1), right preferred
    p_c = 0.9 * sigmoid(-1.0) + 0.05
    expected = (
        -(math.log(p_a) + math.log(1 - p_b) + 0.5 * math.log(p_c) + 0.5 * math.log(1 - p_c)) / 3
    )
    assert abs(p_a - 0.7079527) < 1e-6
    got = bradley_terry_loss(R_1, R_2, mu, eps)
    assert float(got) == pytest.approx(expected, rel=1e-12)


def test_without_random_responses_loss_is_logistic() -> None:
    R_1, R_2 = torch.tensor([0.3]), torch.tensor([-0.2])
    got = bradley_terry_loss(R_1, R_2, torch.tensor([1.0]), 0.0)
    assert float(got) == pytest.approx(-math.log(sigmoid(0.5)), rel=1e-6)


def test_probabilities_sum_to_one_and_are_bounded_by_epsilon() -> None:
    delta = torch.linspace(-50, 50, 101, dtype=torch.float64)
    log_p1, log_p2 = preference_log_probs(delta, torch.zeros_like(delta), 0.1)
    assert torch.allclose(log_p1.exp() + log_p2.exp(), torch.ones_like(delta))
    p = preference_probability(delta, torch.zeros_like(delta), 0.1)
    assert torch.allclose(p, log_p1.exp())
    # with a 10% random answer, P never leaves [0.05, 0.95]
    assert float(p.min()) >= 0.05 - 1e-12 and float(p.max()) <= 0.95 + 1e-12


def test_loss_is_finite_and_bounded_for_huge_return_gaps() -> None:
    # confidently wrong: loss is -log(ε/2), not inf, thanks to the random-response term
    got = bradley_terry_loss(torch.tensor([1e4]), torch.tensor([-1e4]), torch.tensor([0.0]), 0.1)
    assert float(got) == pytest.approx(-math.log(0.05), rel=1e-6)


def test_gradient_pushes_preferred_return_up() -> None:
    R_1 = torch.zeros(1, requires_grad=True)
    R_2 = torch.zeros(1, requires_grad=True)
    bradley_terry_loss(R_1, R_2, torch.tensor([1.0]), 0.1).backward()
    assert R_1.grad is not None and R_2.grad is not None
    # d loss / d R_1 = -0.9 * sigmoid'(0) / P = -0.9 * 0.25 / 0.5
    assert float(R_1.grad) == pytest.approx(-0.45, rel=1e-6)
    assert float(R_2.grad) == pytest.approx(0.45, rel=1e-6)
