"""``runtime.overlap_sampling``: the workers collect the next rollout while the learner
updates, so every batch after the first is one policy version old (real local Ray cluster)."""

import pytest
from mlflow import MlflowClient

from rlhp.config import load_config
from rlhp.runtime.loop import PreferenceRun


@pytest.mark.slow
def test_batches_are_one_version_behind_when_overlapping(ray_cluster, isolated):
    overlap = True  # without it, every lag is 0: tests/runtime/test_preference_run.py
    cfg = load_config(
        "default",
        isolated("total_steps=4096", "label_schedule.initial_labels=8",
                 "label_schedule.total_labels=12", f"runtime.overlap_sampling={overlap}"),
    )  # fmt: skip
    result = PreferenceRun(cfg).run()
    assert result.global_step == 4096
    history = MlflowClient(cfg.tracking.uri).get_metric_history(result.run_id, "policy_lag")
    lags = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert len(lags) == 4096 // (cfg.learner.rollout_steps * cfg.env.num_envs)
    assert lags == [0.0] + [1.0] * (len(lags) - 1)
