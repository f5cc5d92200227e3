"""The driver's training-return metrics: the 100-episode mean, and the unlagged mean of the
episodes that ended in the iteration (Pong's 100-episode window spans 200k steps)."""

import math
from types import SimpleNamespace

import pytest

from rlhp.runtime.metrics import IterationMetrics


def rollout(*returns: float) -> SimpleNamespace:
    return SimpleNamespace(episode_returns=list(returns))


def logged(metrics: IterationMetrics) -> dict[str, float]:
    return metrics.of({"metrics": {"learner_update_s": 1.0}}, started_at=0.0)


def test_latest_is_the_iterations_own_episodes_and_the_window_lags():
    metrics = IterationMetrics(steps_per_iteration=1024, window=4)
    metrics.add([rollout(-21.0, -21.0), rollout(-21.0)])
    first = logged(metrics)
    assert first["true_episode_return/latest"] == pytest.approx(-21.0)
    metrics.add([rollout(), rollout()])  # no episode ended: no latest, the window stays
    quiet = logged(metrics)
    assert "true_episode_return/latest" not in quiet
    assert quiet["true_episode_return"] == pytest.approx(-21.0)
    metrics.add([rollout(-5.0), rollout(-7.0)])
    now = logged(metrics)
    assert now["true_episode_return/latest"] == pytest.approx(-6.0)  # this iteration's
    assert now["true_episode_return"] == pytest.approx((-21.0 - 5.0 - 7.0 - 21.0) / 4)


def test_a_backends_own_mean_stands_through_iterations_without_an_ended_episode():
    """RLlib reports its 100-episode mean only in iterations where an episode ended (on
    Pong's fixed-length episodes, every 16th): the run's final return must not be NaN."""
    metrics = IterationMetrics(steps_per_iteration=1024)
    metrics.set_mean(math.nan)  # no episode has ended yet
    assert math.isnan(logged(metrics)["true_episode_return"])
    metrics.set_mean(-29.75)
    metrics.set_mean(math.nan)
    assert logged(metrics)["true_episode_return"] == pytest.approx(-29.75)
    assert metrics.mean_recent_return == pytest.approx(-29.75)
    metrics.set_mean(-27.0)
    assert metrics.mean_recent_return == pytest.approx(-27.0)
