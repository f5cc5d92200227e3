"""One module owns the checkpoint layouts: run state and reward model round-trip through
``rlhp.checkpoints``, durably, and files written under the reward model's old key load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlhp.checkpoints import (
    REWARD_MODEL,
    RUN_CHECKPOINT,
    RewardModelCheckpoint,
    RunCheckpoint,
    UnsafeCheckpointError,
    save_torch,
)


def run_state() -> RunCheckpoint:
    learner = {
        "learner": {"policy": {"w": torch.ones(2)}, "obs_mean": np.zeros(3)},
        "reward_version": 4,
    }
    return RunCheckpoint(learner, iteration=6, global_step=3072, reward_version=4, run_id="r",
                         wall_s=12.5)  # fmt: skip


def test_run_checkpoint_round_trips_and_names_the_policy(tmp_path):
    assert RunCheckpoint.load(tmp_path) is None  # a new run: nothing to resume
    run_state().save(tmp_path)
    again = RunCheckpoint.load(tmp_path)
    assert again is not None and (again.iteration, again.global_step, again.wall_s) == (
        6,
        3072,
        12.5,
    )
    assert torch.equal(again.policy["w"], torch.ones(2))  # what `rlhp eval` loads
    assert (tmp_path / RUN_CHECKPOINT).exists() and not list(tmp_path.glob("*.tmp"))


def test_a_file_that_is_no_run_checkpoint_is_one_line(tmp_path):
    save_torch(tmp_path / RUN_CHECKPOINT, {"weights": torch.zeros(1)})
    with pytest.raises(UnsafeCheckpointError, match="not an rlhp run checkpoint") as err:
        RunCheckpoint.load(tmp_path)
    assert "\n" not in str(err.value)


def test_reward_model_checkpoint_round_trips_and_reads_the_old_key(tmp_path):
    path = tmp_path / REWARD_MODEL
    assert RewardModelCheckpoint.load(path) is None
    RewardModelCheckpoint({"version": 3}, labels_fitted=40, newest_label_time=1.5).save(path)
    saved = RewardModelCheckpoint.load(path)
    assert saved == RewardModelCheckpoint({"version": 3}, 40, 1.5)
    save_torch(path, {"ensemble": {"version": 2}, "labels_fitted": 9, "newest_label_time": 0.5})
    assert RewardModelCheckpoint.load(path) == RewardModelCheckpoint({"version": 2}, 9, 0.5)
