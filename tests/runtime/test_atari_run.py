"""The Atari path of the distributed loop, end to end on a real local Ray: ALE Pong with
masked score, the Nature-CNN policy and the CNN reward ensemble, synthetic labels, on both
policy backends (rlhp's rollout workers and learner; an RLlib Algorithm whose EnvRunners
step ale-py's native vector env in NEXT_STEP mode)."""

import numpy as np
import pytest
from mlflow import MlflowClient

from rlhp.config import load_config
from rlhp.data.label_store import read_labels
from rlhp.data.schemas import RENDER_PREFIX, tensor_column
from rlhp.data.segment_store import SegmentStore
from rlhp.runtime.loop import PreferenceRun

SHORT = {
    "rlhp": ("total_steps=2048",),
    # one EnvRunner of 4 games: 512 steps per iteration
    "rllib": ("learner.backend=rllib", "runtime.num_rollout_workers=1", "total_steps=1024"),
}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["rlhp", "rllib"])
def test_atari_preferences_run_end_to_end(ray_cluster, isolated, backend):
    cfg = load_config(
        "atari_synthetic",
        isolated(
            *SHORT[backend],
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
    assert result.global_step == cfg.total_steps and 8 <= result.labels <= 16
    run = MlflowClient(cfg.tracking.uri).get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.params["env.id"] == "ALE/Pong-v5"
    assert run.data.params["learner.backend"] == backend
    # not val_accuracy: with 8 labels the hashed 1/e split can leave the validation set empty
    for name in ("reward_model/train_loss", "predicted_episode_return", "entropy"):
        assert name in run.data.metrics, name
    # the labelled clips are the agent's own masked frames, one per step
    labels = read_labels(result.run_dir / "labels")
    segments = SegmentStore(1, result.run_dir / "segments")
    table = segments.table(sorted(set(labels.column("left").to_pylist())))
    frames = tensor_column(table, RENDER_PREFIX + "frames")
    assert frames.shape[1:] == (cfg.env.segment_steps, 84, 84) and frames.dtype == np.uint8
    assert frames.any()  # real frames, not zeros
