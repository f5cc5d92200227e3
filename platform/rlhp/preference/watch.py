"""Over-optimization watch: is the policy still climbing the true reward, or the model's?

A policy optimized against a learned reward can find behaviour that the reward model scores
highly and the teacher would not (reward-model over-optimization; Gao et al. 2022, and the
seed's section 2.3). Held-out accuracy cannot show it: held-out pairs come from the labelled
distribution, not from the policy of now. So every iteration, on the current rollout (the
current policy's own behaviour, never labelled, never trained on), this measures:

- ``on_policy_accuracy``: cut the rollout into segments of the labelled length, draw random
  pairs, and score how often the reward model orders them as the synthetic oracle does
  (sign of Σ r_hat against sign of Σ r; pairs with equal true returns are skipped);
- ``segment_return_pearson``: correlation of predicted with true segment returns;
- ``reward_pearson`` / ``reward_spearman``: correlation of r_hat with r per step.

A run whose policy exploits the model shows these falling while the predicted return rises.
Synthetic mode only: it reads the true reward, which exists only there. Pure numpy.
"""

from __future__ import annotations

import numpy as np

from rlhp.preference.metrics import pearson


def rank(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of a 1-D array, ties given their average rank (as Spearman's rho needs)."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks, minlength=len(values))
    return (sums / counts)[inverse]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson of average ranks); NaN if either is constant."""
    x, y = np.asarray(x).reshape(-1), np.asarray(y).reshape(-1)
    if len(x) < 2:
        return float("nan")
    return pearson(rank(x), rank(y))


def segment_returns(
    r_hat: np.ndarray, true_rewards: np.ndarray, episode_ends: np.ndarray, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """(Σ r_hat, Σ r) of consecutive ``length``-step segments of each env's column of a
    [T, N] rollout, never across an episode end (as the segment cutter cuts them)."""
    T, N = r_hat.shape
    pred, true = [], []
    for n in range(N):
        start = 0
        for t in range(T):
            if t + 1 - start == length:
                pred.append(float(r_hat[start : t + 1, n].sum()))
                true.append(float(true_rewards[start : t + 1, n].sum()))
                start = t + 1
            if episode_ends[t, n]:
                start = t + 1
    return np.asarray(pred), np.asarray(true)


def overoptimization_watch(
    r_hat: np.ndarray,
    true_rewards: np.ndarray,
    episode_ends: np.ndarray,
    segment_length: int,
    rng: np.random.Generator,
    max_pairs: int = 512,
) -> dict[str, float]:
    """The watch's metrics for one [T, N] rollout (see the module docstring); NaN where a
    rollout is too short to tell (fewer than 2 segments, constant rewards)."""
    out = {
        "watch/reward_pearson": pearson(r_hat.reshape(-1), true_rewards.reshape(-1)),
        "watch/reward_spearman": spearman(r_hat, true_rewards),
        "watch/on_policy_accuracy": float("nan"),
        "watch/segment_return_pearson": float("nan"),
    }
    pred, true = segment_returns(r_hat, true_rewards, episode_ends, segment_length)
    if len(pred) < 2:
        return out
    out["watch/segment_return_pearson"] = pearson(pred, true)
    i = rng.integers(0, len(pred), size=max_pairs)
    j = rng.integers(0, len(pred), size=max_pairs)
    strict = true[i] != true[j]  # the oracle ties (and i == j) carry no order
    if strict.any():
        agree = np.sign(pred[i] - pred[j]) == np.sign(true[i] - true[j])
        out["watch/on_policy_accuracy"] = float(agree[strict].mean())
    return out
