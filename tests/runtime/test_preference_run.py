"""The whole loop on a real local Ray cluster: a short synthetic-preference run on
Pendulum-v1 learns, and MLflow holds the run with its metrics and artifacts."""

import time

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from rlhp.checkpoints import REWARD_MODEL, RewardModelCheckpoint
from rlhp.config import load_config
from rlhp.runtime.events import Progress
from rlhp.runtime.loop import PreferenceRun
from rlhp.runtime.phases import PHASES


@pytest.mark.slow
def test_synthetic_preferences_beat_the_random_policy(ray_cluster, isolated, monkeypatch):
    cfg = load_config("default", isolated("total_steps=61440", "runtime.eval_episodes=10"))
    t0 = time.time()
    run = PreferenceRun(cfg, started_at=t0)
    first = []
    result = run.run(
        lambda m: first.append(m.true_episode_return) if isinstance(m, Progress) else None
    )
    wall = time.time() - t0
    random_return = first[0]  # episodes of the initial, random policy
    print(
        f"random policy {random_return:.0f}, after {result.global_step} steps: eval {result.eval_return:.0f}"
    )
    assert random_return < -900
    assert result.eval_return > random_return + 400

    client = MlflowClient(cfg.tracking.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", cfg.tracking.uri)  # for runs:/ URIs
    r = client.get_run(result.run_id)
    assert r.info.status == "FINISHED"
    for name in ("true_episode_return", "labels", "reward_model/val_accuracy", "reward_model/val_ece",
                 "query/disagreement", "entropy", "env_steps_per_s", "learner_updates_per_s",
                 "label_to_policy_latency_s", "predicted_reward_mean", "predicted_episode_return", "eval/true_return_mean",
                 "watch/on_policy_accuracy", "watch/reward_pearson", "watch/reward_spearman",
                 "watch/segment_return_pearson"):  # fmt: skip
        assert name in r.data.metrics, name
    assert 180 <= result.labels <= 200  # the schedule's budget, paced over the run
    # the run's saved reward model (the MLflow model below) was fitted on every label
    assert RewardModelCheckpoint.load(run.run_dir / REWARD_MODEL).labels_fitted == result.labels
    assert (
        r.data.params["env.id"] == "Pendulum-v1"
        and r.data.params["runtime.reward"] == "preferences"
    )
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config.yaml", "learning_curve.png", "checkpoints"} <= artifacts
    assert {"policy", "reward_model"} <= artifacts
    policy = mlflow.pytorch.load_model(f"runs:/{result.run_id}/policy")
    assert sum(p.numel() for p in policy.parameters()) > 0
    assert np.isfinite(result.eval_return)
    # every second accounted for: the phases add up to the wall time (actor shutdown aside)
    assert set(result.phases) == set(PHASES)
    assert all(result.phases[p] > 0 for p in ("ray_start", "actors", "sampling", "learner_update",
                                              "initial_labels", "final_fit", "evaluation", "mlflow_logging"))  # fmt: skip
    accounted = sum(result.phases.values())
    assert 0.9 * wall <= accounted <= wall, (accounted, wall, result.phases)
    assert r.data.metrics["time/total_s"] == pytest.approx(accounted)
    lags = {m.value for m in client.get_metric_history(result.run_id, "policy_lag")}
    assert lags == {0.0}  # sampling and updates in turn (runtime.overlap_sampling off)
