"""The tracker against a real MLflow SQLite store, read back with MlflowClient."""

import pytest
from mlflow import MlflowClient

from rlhp.errors import ConfigError
from rlhp.tracking import MlflowTracker, TrackingConfig, flatten


def test_flatten_nests_sections_as_dotted_names():
    assert flatten({"a": {"b": 1, "c": {"d": "x"}}, "e": [1, 2]}) == {
        "a.b": "1",
        "a.c.d": "x",
        "e": "[1, 2]",
    }


def test_log_and_resume_into_the_same_run(tmp_path):
    cfg = TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="t")
    tracker = MlflowTracker(cfg, run_name="r")
    tracker.log_params(
        {"learner": {"algo": "ppo", "gamma": 0.99}, **{f"p{i}": i for i in range(150)}}
    )
    tracker.log_metrics({"true_return": 1.0, "nan_is_dropped": float("nan")}, step=100)
    tracker.log_metrics({"true_return": 2.0}, step=200)
    (tmp_path / "note.txt").write_text("hi")
    tracker.log_artifact(tmp_path / "note.txt", "extra")
    tracker.finish("KILLED")

    resumed = MlflowTracker(cfg, run_name="ignored", run_id=tracker.run_id)
    resumed.log_metrics({"true_return": 3.0}, step=300)
    resumed.finish()

    client = MlflowClient(cfg.uri)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["learner.algo"] == "ppo" and run.data.params["p149"] == "149"
    history = client.get_metric_history(tracker.run_id, "true_return")
    assert [(m.step, m.value) for m in history] == [(100, 1.0), (200, 2.0), (300, 3.0)]
    assert "nan_is_dropped" not in run.data.metrics
    assert [a.path for a in client.list_artifacts(tracker.run_id, "extra")] == ["extra/note.txt"]


def test_resume_unknown_run_is_a_config_error(tmp_path):
    cfg = TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db")
    with pytest.raises(ConfigError, match=r"^--resume: no MLflow run 'deadbeef'"):
        MlflowTracker(cfg, run_name="x", run_id="deadbeef")
