"""The Atari path of the distributed loop, end to end on a real local Ray: ALE Pong with
masked score, the Nature-CNN policy and the CNN reward ensemble, synthetic labels."""

import pytest
from mlflow import MlflowClient

from rlhp.config import load_config
from rlhp.runtime.loop import PreferenceRun


@pytest.mark.slow
def test_atari_preferences_run_end_to_end(ray_cluster, isolated):
    cfg = load_config(
        "atari_synthetic",
        isolated(
            "total_steps=2048",
            "env.num_envs=4",
            "env.episode_steps=200",
            "learner.rollout_steps=128",
            "label_schedule.total_labels=16",
            "label_schedule.initial_labels=8",
            "label_schedule.pretrain_epochs=2",
            "runtime.eval_episodes=1",
        ),
    )
    result = PreferenceRun(cfg).run()
    assert result.global_step == 2048 and 8 <= result.labels <= 16
    run = MlflowClient(cfg.tracking.uri).get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.params["env.id"] == "ALE/Pong-v5"
    # not val_accuracy: with 8 labels the hashed 1/e split can leave the validation set empty
    for name in ("reward_model/train_loss", "predicted_episode_return", "entropy"):
        assert name in run.data.metrics, name
