"""Earlier runs as label sources from ``rlhp train`` (real local Ray cluster, real MLflow):
preference-model pre-training (``reward_model.pretrain_from``) and label reuse
(``label_schedule.reuse_from``)."""

import pytest
from mlflow.tracking import MlflowClient

from rlhp.config import load_config
from rlhp.data.label_store import read_labels
from rlhp.errors import ConfigError

SMALL = ("total_steps=4096", "label_schedule.initial_labels=8", "label_schedule.total_labels=12")


@pytest.fixture(scope="module")
def noisy_run(ray_cluster, tmp_path_factory):
    """A cheap source: B-Pref's mistake teacher (10 % of answers flipped)."""
    from rlhp.runtime.loop import PreferenceRun

    base = tmp_path_factory.mktemp("source")
    cfg = load_config("default", [f"tracking.uri=sqlite:///{base}/mlflow.db",
                                  f"runtime.runs_dir={base}/runs", "runtime.eval_episodes=0",
                                  *SMALL, "teacher.kind=mistake"])  # fmt: skip
    return PreferenceRun(cfg).run()


@pytest.mark.slow
def test_pretraining_on_an_earlier_run_shows_both_phases(noisy_run, isolated):
    from rlhp.runtime.loop import PreferenceRun

    source_labels = read_labels(noisy_run.run_dir / "labels").num_rows
    cfg = load_config(
        "default", isolated(*SMALL, f"reward_model.pretrain_from=[{noisy_run.run_dir}]")
    )
    result = PreferenceRun(cfg).run()
    metrics = MlflowClient(cfg.tracking.uri).get_run(result.run_id).data.metrics
    assert metrics["reward_model/pretrain/labels"] == source_labels
    assert 0.0 <= metrics["reward_model/pretrain/val_accuracy"] <= 1.0
    assert "reward_model/val_accuracy" in metrics  # the fine-tuning phase, on this run's
    own = read_labels(result.run_dir / "labels")
    assert set(own.column("source").to_pylist()) == {"synthetic"}  # nothing copied


@pytest.mark.slow
def test_a_run_starts_from_another_runs_labels(noisy_run, isolated):
    from rlhp.runtime.loop import PreferenceRun

    reused = read_labels(noisy_run.run_dir / "labels")
    reused_ids = set(
        reused.filter(reused.column("preference").is_valid()).column("label_id").to_pylist()
    )
    cfg = load_config(
        "default",
        isolated("total_steps=4096", "label_schedule.initial_labels=8",
                 "label_schedule.total_labels=20",
                 f"label_schedule.reuse_from=[{noisy_run.run_id}]",
                 f"runtime.runs_dir={noisy_run.run_dir.parent}"),
    )  # fmt: skip
    result = PreferenceRun(cfg).run()
    labels = read_labels(result.run_dir / "labels")
    ids = labels.column("label_id").to_pylist()
    assert reused_ids <= set(ids)  # the source's answered labels, same ids
    assert len(ids) <= 20  # they count toward this run's budget
    assert {"noisy:mistake", "synthetic"} == set(labels.column("source").to_pylist())
    metrics = MlflowClient(cfg.tracking.uri).get_run(result.run_id).data.metrics
    assert metrics["labels/reused"] == len(reused_ids)


def test_a_source_that_is_not_a_run_is_one_line(isolated):
    from rlhp.runtime.loop import PreferenceRun

    cfg = load_config("default", isolated("reward_model.pretrain_from=[no-such-run]"))
    with pytest.raises(ConfigError, match=r"^reward_model.pretrain_from: 'no-such-run' is not"):
        PreferenceRun(cfg)
