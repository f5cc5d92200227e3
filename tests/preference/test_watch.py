"""The over-optimization watch: on-policy accuracy and reward correlations of a rollout."""

import numpy as np
import pytest

from rlhp.preference.watch import overoptimization_watch, rank, segment_returns, spearman


def test_rank_gives_ties_their_average_rank():
    assert rank(np.array([10.0, 30.0, 20.0, 20.0])).tolist() == [0.0, 3.0, 1.5, 1.5]


def test_spearman_is_one_for_any_increasing_map_and_minus_one_reversed():
    x = np.random.default_rng(0).normal(size=200)
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)
    assert spearman(x, -(x**3)) == pytest.approx(-1.0)


def test_segments_never_cross_an_episode_end():
    T, N, L = 10, 1, 3
    r = np.arange(T * N, dtype=np.float64).reshape(T, N)
    ends = np.zeros((T, N), bool)
    ends[4, 0] = True  # episode: steps 0-4, then 5-9
    pred, true = segment_returns(r, r, ends, L)
    # segments [0,1,2] and [5,6,7]; steps 3-4 and 8-9 are too short
    assert true.tolist() == [0 + 1 + 2, 5 + 6 + 7]
    assert pred.tolist() == true.tolist()


def _rollout(T=500, N=4, seed=0):
    rng = np.random.default_rng(seed)
    true = rng.normal(size=(T, N))
    return true, np.zeros((T, N), bool)


def test_a_faithful_model_scores_near_one_and_an_exploited_one_near_chance_or_below():
    true, ends = _rollout()
    rng = np.random.default_rng(1)
    faithful = overoptimization_watch(2.0 * true + 1.0, true, ends, 25, rng)
    assert faithful["watch/on_policy_accuracy"] == pytest.approx(1.0)
    assert faithful["watch/reward_pearson"] == pytest.approx(1.0)
    assert faithful["watch/reward_spearman"] == pytest.approx(1.0)
    noise = np.random.default_rng(2).normal(size=true.shape)
    unrelated = overoptimization_watch(noise, true, ends, 25, rng)
    assert 0.35 < unrelated["watch/on_policy_accuracy"] < 0.65
    exploited = overoptimization_watch(-true, true, ends, 25, rng)  # what r_hat loves, r hates
    assert exploited["watch/on_policy_accuracy"] == pytest.approx(0.0)
    assert exploited["watch/segment_return_pearson"] == pytest.approx(-1.0)


def test_too_short_a_rollout_reports_nan_not_a_number_it_cannot_know():
    true, ends = _rollout(T=10, N=1)
    out = overoptimization_watch(true, true, ends, 25, np.random.default_rng(0))
    assert np.isnan(out["watch/on_policy_accuracy"])
    assert np.isnan(out["watch/segment_return_pearson"])
