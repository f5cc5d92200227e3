"""Synthetic oracle, B-Pref teachers (statistics over 10k queries), the judge adapter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlhp.data.errors import InvalidPreferenceError
from rlhp.data.records import SegmentRecord
from rlhp.errors import ConfigError
from rlhp.preference import (
    CallableJudgeLabeler,
    Labeler,
    SimulatedTeacher,
    TeacherConfig,
    bpref_teacher,
    to_label_records,
)
from rlhp.preference.teachers import discounted_return

N = 10_000


def segment(rewards, name: str) -> SegmentRecord:
    r = np.asarray(rewards, dtype=np.float32)
    L = len(r)
    return SegmentRecord(
        name, "run", "E", 0, 0, 0, np.zeros((L, 1), np.float32), np.zeros((L, 1), np.float32), r
    )


def random_pairs(n: int, seed: int, L: int = 5) -> list[tuple[SegmentRecord, SegmentRecord]]:
    rng = np.random.default_rng(seed)
    return [
        (segment(rng.normal(size=L), f"a{i}"), segment(rng.normal(size=L), f"b{i}"))
        for i in range(n)
    ]


def returns(pairs) -> tuple[np.ndarray, np.ndarray]:
    R_1 = np.array([a.true_rewards.sum(dtype=np.float64) for a, _ in pairs])
    R_2 = np.array([b.true_rewards.sum(dtype=np.float64) for _, b in pairs])
    return R_1, R_2


def test_oracle_prefers_higher_true_return() -> None:
    pairs = random_pairs(2000, seed=0)
    teacher = SimulatedTeacher()
    assert isinstance(teacher, Labeler) and teacher.source == "synthetic"
    answers = np.array(teacher.label(pairs))
    R_1, R_2 = returns(pairs)
    np.testing.assert_array_equal(answers, np.where(R_1 > R_2, 1.0, 0.0))
    assert teacher.label([(segment([1, 1], "x"), segment([2, 0], "y"))]) == [0.5]


def test_mistake_teacher_flips_at_rate_epsilon() -> None:
    pairs = random_pairs(N, seed=1)
    answers = np.array(bpref_teacher("mistake", seed=1).label(pairs))
    R_1, R_2 = returns(pairs)
    rate = np.mean(answers != np.where(R_1 > R_2, 1.0, 0.0))
    # binomial std at p = 0.1, n = 10k is 0.003; allow 4 sigma
    assert rate == pytest.approx(0.1, abs=0.012)


def test_stochastic_teacher_follows_bradley_terry() -> None:
    # every pair has the same return gap Δ = 1: P(left) = sigmoid(β Δ) = sigmoid(1)
    pairs = [(segment([0.5, 0.5], f"a{i}"), segment([0.0, 0.0], f"b{i}")) for i in range(N)]
    answers = np.array(bpref_teacher("stoc", seed=2).label(pairs))
    expected = 1 / (1 + math.exp(-1.0))
    assert np.mean(answers == 1.0) == pytest.approx(expected, abs=0.018)  # 4 sigma
    sharp = SimulatedTeacher(TeacherConfig(beta=10.0, name="sharp", seed=2)).label(pairs[:2000])
    assert np.mean(np.array(sharp) == 1.0) > 0.999


def test_skip_teacher_drops_queries_with_both_returns_below_threshold() -> None:
    pairs = random_pairs(N, seed=3)
    R_1, R_2 = returns(pairs)
    mean_return = 2.0
    teacher = bpref_teacher("skip", mean_segment_return=mean_return, seed=3)
    answers = teacher.label(pairs)
    threshold = 0.1 * mean_return
    skipped = np.array([a is None for a in answers])
    np.testing.assert_array_equal(skipped, np.maximum(R_1, R_2) < threshold)
    assert 0.2 < skipped.mean() < 0.8  # the test exercises both branches
    kept = ~skipped
    assert np.all(np.array(answers, dtype=object)[kept] == np.where(R_1 > R_2, 1.0, 0.0)[kept])


def test_equal_teacher_ties_close_returns() -> None:
    pairs = random_pairs(N, seed=4)
    R_1, R_2 = returns(pairs)
    answers = np.array(bpref_teacher("equal", mean_segment_return=5.0, seed=4).label(pairs))
    close = np.abs(R_1 - R_2) < 0.5
    np.testing.assert_array_equal(answers == 0.5, close)
    assert 0.05 < close.mean() < 0.5
    np.testing.assert_array_equal(answers[~close], np.where(R_1 > R_2, 1.0, 0.0)[~close])


def test_myopic_teacher_weighs_the_end_of_the_segment() -> None:
    assert discounted_return(np.array([1.0, 1.0, 1.0]), 0.5) == pytest.approx(0.25 + 0.5 + 1.0)
    early = segment([3.0, 0.0, 0.0, 0.0], "early")  # R = 3, R^γ = 0.9^3 * 3 = 2.19
    late = segment([0.0, 0.0, 0.0, 2.5], "late")  # R = 2.5, R^γ = 2.5
    assert SimulatedTeacher().label([(early, late)]) == [1.0]
    myopic = bpref_teacher("myopic")
    assert myopic.source == "noisy:myopic"
    assert myopic.label([(early, late)]) == [0.0]
    # statistically: it agrees with the discounted, not the plain, return
    pairs = random_pairs(N, seed=5)
    answers = np.array(myopic.label(pairs))
    Rg_1 = np.array([discounted_return(a.true_rewards, 0.9) for a, _ in pairs])
    Rg_2 = np.array([discounted_return(b.true_rewards, 0.9) for _, b in pairs])
    np.testing.assert_array_equal(answers, np.where(Rg_1 > Rg_2, 1.0, 0.0))


def test_teachers_are_seeded() -> None:
    pairs = random_pairs(500, seed=6)
    assert bpref_teacher("stoc", seed=9).label(pairs) == bpref_teacher("stoc", seed=9).label(pairs)


def test_bpref_thresholds_need_a_scale() -> None:
    with pytest.raises(ConfigError, match="mean_segment_return"):
        bpref_teacher("skip")
    with pytest.raises(ConfigError, match="unknown B-Pref teacher"):
        bpref_teacher("lazy")  # type: ignore[arg-type]


def test_callable_judge_adapter() -> None:
    pairs = random_pairs(4, seed=7)
    scores = iter([0.9, 0.1, 0.52, None])
    judge = CallableJudgeLabeler(lambda a, b: next(scores), name="clip-judge", tie_margin=0.05)
    assert isinstance(judge, Labeler) and judge.source == "judge:clip-judge"
    assert judge.label(pairs) == [1.0, 0.0, 0.5, None]
    # a judge built from true returns agrees with the oracle
    by_return = CallableJudgeLabeler(
        lambda a, b: float(a.true_rewards.sum() > b.true_rewards.sum())
    )
    many = random_pairs(200, seed=8)
    assert by_return.label(many) == SimulatedTeacher().label(many)
    bad = CallableJudgeLabeler(lambda a, b: 1.7, name="broken")
    with pytest.raises(InvalidPreferenceError, match=r"judge 'broken' answered 1\.7"):
        bad.label(pairs[:1])


def test_label_records_keep_provenance() -> None:
    pairs = random_pairs(3, seed=10)
    teacher = bpref_teacher("mistake", seed=0)
    records = to_label_records(pairs, teacher.label(pairs), teacher, "disagreement", lambda: 5.0)
    assert [r.left for r in records] == ["a0", "a1", "a2"]
    assert {r.source for r in records} == {"noisy:mistake"}
    assert {r.query_strategy for r in records} == {"disagreement"}
    assert len({r.label_id for r in records}) == 3 and records[0].created_at == 5.0
    with pytest.raises(ConfigError, match="must answer every pair"):
        to_label_records(pairs, [1.0], teacher, "random")


def test_kind_names_bpref_teachers_and_keeps_explicit_knobs():
    from rlhp.preference.config import TeacherConfig

    assert TeacherConfig(kind="mistake").epsilon == 0.1
    assert TeacherConfig(kind="mistake", epsilon=0.3).epsilon == 0.3
    assert TeacherConfig(kind="stoc").beta == 1.0 and TeacherConfig(kind="myopic").gamma == 0.9
    assert TeacherConfig(kind="stoc").name == "stoc" and not TeacherConfig(kind="stoc").is_perfect
    with pytest.raises(ValueError, match=r"teacher\.skip_threshold"):
        TeacherConfig(kind="skip")


def test_shuffled_answers_carry_no_information_about_the_pair(make_segments):
    """The control labeler: same mix of answers as the oracle, independent of the clips."""
    from rlhp.preference.config import TeacherConfig
    from rlhp.preference.teachers import ShuffledTeacher, SimulatedTeacher, make_teacher

    segments = make_segments(4000, seed=3)
    pairs = [(segments[2 * i], segments[2 * i + 1]) for i in range(2000)]
    teacher = make_teacher(TeacherConfig(kind="shuffled"))
    assert isinstance(teacher, ShuffledTeacher) and teacher.source == "control:shuffled"
    truth = SimulatedTeacher().label(pairs)
    answers = [a for k in range(0, 2000, 100) for a in teacher.label(pairs[k : k + 100])]
    agreement = np.mean([a == t for a, t in zip(answers, truth, strict=True)])
    assert 0.45 < agreement < 0.55  # the oracle agrees with itself 100 %
    assert abs(np.mean(answers) - np.mean(truth)) < 0.05  # same marginal
