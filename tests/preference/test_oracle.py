"""The oracle reward model: the true reward through the path r_hat takes (a diagnostic)."""

import numpy as np
import pytest
import torch

from rlhp.preference import InputSpec, PreferenceData, RewardEnsemble, RewardModelConfig
from rlhp.preference.oracle import OracleRewardModel
from rlhp.preference.reward_models import build_reward_model


def test_factory_builds_the_kind_asked_for():
    spec = InputSpec((4,), (2,), None)
    assert isinstance(build_reward_model(spec, RewardModelConfig()), RewardEnsemble)
    oracle = build_reward_model(spec, RewardModelConfig(kind="oracle"))
    assert isinstance(oracle, OracleRewardModel)


def test_relabel_standardizes_like_r_hat_on_the_recent_steps():
    oracle = OracleRewardModel(RewardModelConfig(kind="oracle", reward_std=0.5))
    recent = np.random.default_rng(0).normal(3.0, 2.0, size=5000)
    oracle.fit_normalization(recent)
    r = oracle.relabel(recent)
    assert r.mean() == pytest.approx(0.0, abs=1e-6)
    assert r.std() == pytest.approx(0.5, rel=1e-4)
    # an affine map of the true reward: the order of every pair of steps is kept
    assert np.all(np.diff(oracle.relabel(np.sort(recent))) >= 0)
    assert oracle.version == 1


def test_none_normalization_passes_the_true_reward_through():
    oracle = OracleRewardModel(RewardModelConfig(kind="oracle", output_normalization="none"))
    oracle.fit_normalization(np.array([5.0, 7.0, 9.0]))
    assert oracle.relabel(np.array([1.0, -2.0])).tolist() == [1.0, -2.0]


def test_fit_reports_agreement_with_the_labels_and_round_trips_its_state(
    make_segments, make_oracle_pairs
):
    pairs, prefs = make_oracle_pairs(make_segments(40, seed=0))
    data = PreferenceData.from_pairs(pairs, prefs)
    oracle = OracleRewardModel(RewardModelConfig(kind="oracle"))
    report = oracle.fit(data, np.random.default_rng(1).normal(size=1000))
    assert report.val_accuracy == 1.0  # perfect teacher, perfect oracle
    flipped = PreferenceData.from_pairs(pairs, [1.0 - p for p in prefs])
    assert oracle.fit(flipped, None).val_accuracy == 0.0
    oracle.set_reference_from_returns(torch.tensor([10.0, 20.0]), length=10)
    copy = OracleRewardModel(RewardModelConfig(kind="oracle"))
    copy.load_state_dict(oracle.state_dict())
    assert copy.state_dict() == oracle.state_dict()
    assert copy.reference_mean == pytest.approx(float(oracle.relabel(np.array([1.5]))[0]))
