"""Query selection: disagreement picks the largest member variance; entropy; random."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlhp.data import SegmentStore
from rlhp.errors import ConfigError
from rlhp.preference import (
    DisagreementSelector,
    EntropySelector,
    InputSpec,
    PreferenceData,
    QueryConfig,
    QuerySelector,
    RandomSelector,
    RewardEnsemble,
    RewardModelConfig,
    make_selector,
    select_queries,
)
from rlhp.preference.losses import preference_probability

SPEC = InputSpec((4,), (2,))


@pytest.fixture
def trained(make_segments, make_oracle_pairs) -> RewardEnsemble:
    pairs, prefs = make_oracle_pairs(make_segments(80, seed=7))
    ensemble = RewardEnsemble(SPEC, RewardModelConfig(ensemble_size=4, seed=3))
    ensemble.fit(PreferenceData.from_pairs(pairs, prefs), epochs=3)
    return ensemble


def member_variance_by_hand(ensemble: RewardEnsemble, pairs) -> np.ndarray:
    """Var_k P_k computed member by member, straight from each network's forward pass."""
    out = []
    for left, right in pairs:
        p = []
        for member in ensemble.members:
            member.eval()
            with torch.no_grad():
                R_1 = member(torch.from_numpy(left.obs), torch.from_numpy(left.actions)).sum()
                R_2 = member(torch.from_numpy(right.obs), torch.from_numpy(right.actions)).sum()
            p.append(float(preference_probability(R_1, R_2, 0.1)))
        out.append(np.var(p))
    return np.array(out)


def test_disagreement_picks_largest_member_variance(trained, make_segments) -> None:
    segments = make_segments(60, seed=8)
    candidates = [(segments[i], segments[i + 30]) for i in range(30)]
    candidates += [(segments[i], segments[i]) for i in range(5)]  # identical: variance 0
    variance = member_variance_by_hand(trained, candidates)
    chosen = DisagreementSelector().select(candidates, trained, k=6)
    expected = [candidates[i] for i in np.argsort(-variance, kind="stable")[:6]]
    assert [(a.segment_id, b.segment_id) for a, b in chosen] == [
        (a.segment_id, b.segment_id) for a, b in expected
    ]
    assert all(a.segment_id != b.segment_id for a, b in chosen)
    assert min(variance[:30]) > 0 and max(variance[30:]) < 1e-12
    np.testing.assert_allclose(
        DisagreementSelector().scores(candidates, trained).numpy(), variance, rtol=1e-4, atol=1e-9
    )


def test_entropy_picks_pairs_closest_to_even_odds(trained, make_segments) -> None:
    segments = make_segments(40, seed=9)
    candidates = [(segments[i], segments[i + 20]) for i in range(20)]
    p = (
        trained.member_probabilities(
            np.stack([a.obs for a, _ in candidates]),
            np.stack([a.actions for a, _ in candidates]),
            np.stack([b.obs for _, b in candidates]),
            np.stack([b.actions for _, b in candidates]),
        )
        .mean(0)
        .numpy()
    )
    chosen = EntropySelector().select(candidates, trained, k=3)
    expected = [candidates[i] for i in np.argsort(np.abs(p - 0.5), kind="stable")[:3]]
    assert [c[0].segment_id for c in chosen] == [c[0].segment_id for c in expected]


def test_random_selection_is_seeded_and_needs_no_model(make_segments) -> None:
    segments = make_segments(40, seed=10)
    candidates = [(segments[i], segments[i + 20]) for i in range(20)]
    a = RandomSelector(seed=1).select(candidates, None, k=5)
    b = RandomSelector(seed=1).select(candidates, None, k=5)
    assert [x[0].segment_id for x in a] == [x[0].segment_id for x in b]
    assert len({x[0].segment_id for x in a}) == 5
    assert len(RandomSelector().select(candidates, None, k=100)) == 20


def test_make_selector_and_protocol() -> None:
    for strategy in ("random", "disagreement", "entropy"):
        selector = make_selector(QueryConfig(strategy=strategy))
        assert isinstance(selector, QuerySelector) and selector.name == strategy
    with pytest.raises(ConfigError, match=r"query\.strategy='random'"):
        DisagreementSelector().select([], None, k=1)


def test_select_queries_scores_a_pool_from_the_store(trained, make_segments) -> None:
    store = SegmentStore(capacity=100)
    store.add(make_segments(50, seed=11))
    cfg = QueryConfig(strategy="disagreement", candidate_multiplier=10)
    chosen = select_queries(
        store, DisagreementSelector(), trained, 4, cfg, np.random.default_rng(0)
    )
    assert len(chosen) == 4
    # the chosen pairs are the top 4 of the same 40-candidate pool, drawn with the same seed
    pool = store.sample_candidates(40, np.random.default_rng(0))
    expected = DisagreementSelector().select(pool, trained, 4)
    assert [(a.segment_id, b.segment_id) for a, b in chosen] == [
        (a.segment_id, b.segment_id) for a, b in expected
    ]
