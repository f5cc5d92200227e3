"""How good a reward model is on held-out pairs: accuracy, calibration, return correlation."""

from __future__ import annotations

import numpy as np


def pairwise_accuracy(p_1: np.ndarray, mu: np.ndarray) -> float:
    """Share of strict labels (μ(1) in {0, 1}) whose side has P_hat > 0.5; ties excluded.

    Returns NaN when there is no strict label.
    """
    strict = mu != 0.5
    if not strict.any():
        return float("nan")
    return float(np.mean((p_1[strict] > 0.5) == (mu[strict] == 1.0)))


def expected_calibration_error(p_1: np.ndarray, mu: np.ndarray, n_bins: int = 10) -> float:
    """ECE = Σ_b (n_b / N) |mean P_hat in bin b - mean μ(1) in bin b| (Guo et al. 2017).

    Bins are equal-width over [0, 1]; ties count as μ(1) = 0.5. NaN when there is no pair.
    """
    if len(p_1) == 0:
        return float("nan")
    bins = np.clip((p_1 * n_bins).astype(int), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(p_1[in_bin].mean() - mu[in_bin].mean())
    return float(ece)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two 1-D arrays; NaN if either is constant or too short."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


CONSTANT_MODEL_LOSS = float(np.log(2.0))  # eq. 1's loss when P_hat = 0.5 for every pair
UNTRAINED_LOSS_SHARE = 0.99


def untrained_warning(fit_metrics: dict[str, float]) -> str | None:
    """A warning when a fit left the reward model saying 0.5 to every pair, else None.

    A model whose outputs barely vary between steps has a training loss of ln 2 on its own
    labels, whatever the labels say (a tie or a random response costs the same). Its
    per-fit normalization (section 2.2.1) then scales those tiny, arbitrary differences to
    standard deviation 1, and the policy optimizes them: on Pong, A.2's reward network with
    dropout 0.5 after 20 pre-training epochs paid for one action, then for a paddle height
    (benchmarks/README.md, "Pong on this machine"). The loss stays within 1 % of ln 2 only
    when the model has learned nothing from its labels.
    """
    loss = fit_metrics.get("reward_model/train_loss", float("nan"))
    if not loss >= UNTRAINED_LOSS_SHARE * CONSTANT_MODEL_LOSS:
        return None
    return (
        f"warning: the reward model has not learned from its labels: its training loss is "
        f"{loss:.4f}, that of a model saying 0.5 to every pair (ln 2 = {CONSTANT_MODEL_LOSS:.4f}); "
        "the policy will chase noise. Give it more epochs (label_schedule.pretrain_epochs, "
        "reward_model.epochs_per_fit) or less regularization (reward_model.dropout, "
        "reward_model.l2_init); benchmarks/reward_fit.py RUN_DIR shows its fit epoch by epoch"
    )
