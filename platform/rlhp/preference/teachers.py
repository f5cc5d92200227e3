"""Labelers without a person: the synthetic oracle and B-Pref's simulated teachers.

Christiano et al. 2017 section 3.1 use a synthetic oracle that "prefers the trajectory
segment that has a higher reward". B-Pref (Lee et al. 2021, section 3.1) models irrational
people with one teacher whose knobs each give a named teacher:

    R_i   = Σ_t r_t of segment i                              (true, undiscounted)
    skip  : no answer when max(R_1, R_2) < δ_skip               ("Skip")
    R^γ_i = Σ_t γ^(L-1-t) r_t                                   ("Myopic": recent steps weigh more)
    P[σ1 ≻ σ2] = exp(β R^γ_1) / (exp(β R^γ_1) + exp(β R^γ_2))   ("Stoc"; β = ∞ is argmax)
    flip the answer with probability ε                          ("Mistake")
    tie (0.5) when |R_1 - R_2| < δ_equal                        ("Equal")

applied in this order, as in B-Pref's reference implementation. ``TeacherConfig`` holds the
knobs (defaults: the perfect oracle); ``bpref_teacher`` builds B-Pref's named teachers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from rlhp.data.records import PREFER_LEFT, PREFER_RIGHT, TIE, SegmentRecord
from rlhp.errors import ConfigError
from rlhp.preference.config import TeacherConfig
from rlhp.preference.judges import judge_labeler
from rlhp.preference.labelers import Labeler

Pair = tuple[SegmentRecord, SegmentRecord]
BPrefKind = Literal["oracle", "stoc", "mistake", "skip", "equal", "myopic"]


def discounted_return(rewards: np.ndarray, gamma: float) -> float:
    """R^γ = Σ_t γ^(L-1-t) r_t: the myopic teacher's return (the last step weighs 1)."""
    r = np.asarray(rewards, dtype=np.float64)
    L = len(r)
    return float(np.sum(gamma ** np.arange(L - 1, -1, -1) * r))


class SimulatedTeacher:
    """A Labeler answering from true rewards, with B-Pref's irrationalities."""

    def __init__(self, cfg: TeacherConfig | None = None) -> None:
        self.cfg = cfg = cfg if cfg is not None else TeacherConfig()
        self.name = cfg.name
        self.source = "synthetic" if cfg.is_perfect else f"noisy:{cfg.name}"
        self.rng = np.random.default_rng(cfg.seed)

    def answer(self, left: SegmentRecord, right: SegmentRecord) -> float | None:
        """One answer, μ(left) in {1.0, 0.0, 0.5} or None (skipped)."""
        cfg = self.cfg
        R_1 = float(np.sum(left.true_rewards, dtype=np.float64))
        R_2 = float(np.sum(right.true_rewards, dtype=np.float64))
        if cfg.skip_threshold is not None and max(R_1, R_2) < cfg.skip_threshold:
            return None
        R_1g = discounted_return(left.true_rewards, cfg.gamma)
        R_2g = discounted_return(right.true_rewards, cfg.gamma)
        if math.isinf(cfg.beta):
            if R_1g == R_2g:
                mu: float = TIE
            else:
                mu = PREFER_LEFT if R_1g > R_2g else PREFER_RIGHT
        else:
            # Bradley-Terry with rationality β: P = sigmoid(β (R^γ_1 - R^γ_2))
            p_left = 1.0 / (1.0 + math.exp(-min(max(cfg.beta * (R_1g - R_2g), -700.0), 700.0)))
            mu = PREFER_LEFT if self.rng.random() < p_left else PREFER_RIGHT
        if cfg.epsilon > 0 and self.rng.random() < cfg.epsilon:
            mu = 1.0 - mu
        if abs(R_1 - R_2) < cfg.equal_threshold:
            mu = TIE
        return mu

    def label(self, pairs: Sequence[Pair]) -> list[float | None]:
        """Answers for ``pairs``, in order (Labeler protocol)."""
        return [self.answer(left, right) for left, right in pairs]


def bpref_teacher(
    kind: BPrefKind, mean_segment_return: float = 0.0, seed: int = 0
) -> SimulatedTeacher:
    """B-Pref's named teachers with its default knobs (Lee et al. 2021, section 3.1).

    β = 1 (Stoc), ε = 0.1 (Mistake), γ = 0.9 (Myopic); the Skip and Equal thresholds are
    0.1 times the average segment return, as B-Pref scales them to the task
    (``mean_segment_return``: true return of an average segment, e.g. over the store's ring).
    """
    knobs: dict[str, object]
    if kind == "oracle":
        knobs = {}
    elif kind == "stoc":
        knobs = {"beta": 1.0}
    elif kind == "mistake":
        knobs = {"epsilon": 0.1}
    elif kind == "myopic":
        knobs = {"gamma": 0.9}
    elif kind in ("skip", "equal"):
        if mean_segment_return <= 0:
            raise ConfigError(
                f"teacher: B-Pref's {kind!r} teacher scales its threshold by the average "
                f"segment return, got mean_segment_return={mean_segment_return}; pass a "
                "positive average, or set TeacherConfig.skip_threshold/equal_threshold"
            )
        threshold = 0.1 * mean_segment_return
        knobs = {"skip_threshold": threshold} if kind == "skip" else {"equal_threshold": threshold}
    else:
        raise ConfigError(
            f"teacher: unknown B-Pref teacher {kind!r}; choose oracle, stoc, mistake, skip, "
            "equal or myopic"
        )
    return SimulatedTeacher(TeacherConfig(name=kind, seed=seed, **knobs))  # type: ignore[arg-type]


class ShuffledTeacher:
    """A control labeler whose answers are independent of the clips it is shown.

    Each answer is the perfect oracle's answer to a uniformly random query among all the
    queries asked so far (this one included): the answers keep the oracle's mix of left,
    right and tie, but carry no information about the pair they are attached to. A run
    labelled this way must not learn the task; if it does, the true reward leaks into the
    learner some other way (``tests/runtime/test_learning_from_preferences.py``).
    """

    def __init__(self, cfg: TeacherConfig | None = None) -> None:
        cfg = cfg if cfg is not None else TeacherConfig(kind="shuffled")
        self.name = cfg.name if cfg.name != "oracle" else "shuffled"
        self.source = "control:shuffled"
        self.oracle = SimulatedTeacher(TeacherConfig(seed=cfg.seed))
        self.rng = np.random.default_rng([cfg.seed, 1])
        self.pool: list[float | None] = []

    def label(self, pairs: Sequence[Pair]) -> list[float | None]:
        """Answers for ``pairs``, each drawn from the pool of the oracle's answers."""
        self.pool += self.oracle.label(pairs)
        return [self.pool[int(i)] for i in self.rng.integers(0, len(self.pool), len(pairs))]


def make_teacher(cfg: TeacherConfig) -> Labeler:
    """The labeler without a person that ``cfg`` (the ``teacher`` section) describes: a
    simulated teacher, the shuffled control, or an AI judge (``teacher.kind=judge``)."""
    if cfg.kind == "human":
        raise ConfigError("teacher.kind=human: people label through the feedback app, not here")
    if cfg.kind == "judge":
        return judge_labeler(cfg)
    if cfg.kind == "shuffled":
        return ShuffledTeacher(cfg)
    return SimulatedTeacher(cfg)
