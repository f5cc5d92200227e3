"""AI judges for ``teacher.kind=judge``: a judge reads two clips and says which is better.

Each is ``fn(left, right) -> P(left better)`` over two ``rlhp.data.records.SegmentRecord``s
(``obs`` [L, obs_dim], ``actions``, ``render_state``), or None to abstain. They read the
observations only, never ``true_rewards``, the way a vision-language judge reads frames:

    rlhp train --preset mujoco_synthetic \\
        --set teacher.kind=judge --set teacher.judge=examples/judges.py:hopper_upright_and_forward

Swap in a call to any model or service with the same signature.
"""

from __future__ import annotations

import math

import numpy as np

from rlhp.data.records import SegmentRecord


def _prefer(score_left: float, score_right: float, temperature: float = 1.0) -> float:
    """Bradley-Terry over two scores: P(left better) = sigmoid((s_l - s_r) / temperature)."""
    return 1.0 / (1.0 + math.exp(-(score_left - score_right) / temperature))


def _hopper_score(segment: SegmentRecord) -> float:
    """Hopper-v5 observations: obs[0] torso height z, obs[1] torso angle, obs[5] forward
    velocity. Upright (z > 0.8, |angle| < 0.2) and moving forward is good."""
    obs = np.asarray(segment.obs, dtype=np.float64)
    upright = (obs[:, 0] > 0.8) & (np.abs(obs[:, 1]) < 0.2)
    return float(np.mean(upright) + np.mean(obs[:, 5]))


def hopper_upright_and_forward(left: SegmentRecord, right: SegmentRecord) -> float:
    """Hopper: the clip that stays upright and hops forward more is better."""
    return _prefer(_hopper_score(left), _hopper_score(right), temperature=0.1)


def _hopper_graded_score(segment: SegmentRecord) -> float:
    """The same principle as a graded score, so that it ranks two tilted clips too: mean
    forward velocity, minus the mean |torso angle| (rad), plus the mean torso height (capped
    at Hopper's standing height, 1.25). A threshold share ("upright" or not) is 0 for both of
    two clips that lean, and then only the speed decides (benchmarks/README.md, "What a
    judge teaches")."""
    obs = np.asarray(segment.obs, dtype=np.float64)
    return float(
        np.mean(obs[:, 5]) - np.mean(np.abs(obs[:, 1])) + np.mean(np.minimum(obs[:, 0], 1.25))
    )


def hopper_graded_upright_and_forward(left: SegmentRecord, right: SegmentRecord) -> float:
    """Hopper: the clip whose torso is less tilted, higher and moving forward faster is
    better; graded, so that a clip leaning less beats one leaning more."""
    return _prefer(_hopper_graded_score(left), _hopper_graded_score(right), temperature=0.1)


def pendulum_upright(left: SegmentRecord, right: SegmentRecord) -> float | None:
    """Pendulum-v1 (obs cos θ, sin θ, θ'): the clip nearer the top (cos θ = 1) is better;
    abstains when the two are too close to tell."""
    up_left = float(np.mean(np.asarray(left.obs)[:, 0]))
    up_right = float(np.mean(np.asarray(right.obs)[:, 0]))
    if abs(up_left - up_right) < 1e-3:
        return None
    return _prefer(up_left, up_right, temperature=0.05)
