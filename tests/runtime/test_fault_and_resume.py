"""Fault tolerance and resume on a real local Ray cluster.

Kill a rollout worker and the reward trainer (SIGKILL of the actor processes) mid-run: the
run completes, the label store holds every acknowledged label exactly once, every labelled
segment is retrievable from the segment store, and the restarted trainer fitted on every
stored label. Stop a run, resume it: the learner's weights, optimizer and normalizers and
the reward model are exactly the checkpointed ones (written with fsync), and the run
continues from there in the same MLflow run.
"""

import os
import signal

import numpy as np
import pyarrow.compute as pc
import pytest
import ray
import torch
from mlflow import MlflowClient

from rlhp.checkpoints import RewardModelCheckpoint, reward_model_versions
from rlhp.config import load_config
from rlhp.data.label_store import read_labels
from rlhp.data.segment_store import SegmentStore
from rlhp.runtime.events import Progress
from rlhp.runtime.loop import PreferenceRun

# two rollout workers of one env each: 512 steps per iteration, rollouts stacked by the learner
SHORT = ["total_steps=8192", "env.num_envs=1", "runtime.num_rollout_workers=2", "learner.rollout_steps=256",
         "label_schedule.total_labels=60", "label_schedule.initial_labels=10",
         "runtime.checkpoint_every=2", "runtime.reward_fit_interval_s=0.2"]  # fmt: skip


def assert_same_state(a, b, where="state"):
    """``a`` and ``b`` hold the same values (nested dicts / lists of tensors and arrays;
    a numpy scalar and a 0-d array of the same value are the same)."""
    if isinstance(a, np.ndarray | np.generic) or isinstance(b, np.ndarray | np.generic):
        assert np.array_equal(np.asarray(a), np.asarray(b)), f"{where}: {a!r} != {b!r}"
        return
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same_state(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f"{where}: tensors differ"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.slow
@pytest.mark.parametrize("lockstep", ["false", "pipelined"])
def test_killed_worker_and_reward_trainer_lose_no_label(ray_cluster, isolated, lockstep):
    # every label is asked by half the run; the run's last fit takes the rest
    cfg = load_config(None, isolated(*SHORT, "label_schedule.total_timesteps=4096",
                                     "reward_model.keep_versions=true",
                                     f"runtime.lockstep={lockstep}"))  # fmt: skip
    run = PreferenceRun(cfg)
    killed, restarted = [], []

    def progress(m):
        if getattr(m, "iteration", None) == 4 and not killed:
            for actor in (run.workers[0], run.trainer):
                pid = ray.get(actor.pid.remote())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        if getattr(m, "iteration", None) == 12 and not restarted:
            restarted.append(ray.get(run.trainer.pid.remote()))

    result = run.run(progress)
    assert len(killed) == 2
    assert result.global_step == 8192
    labels = read_labels(run.run_dir / "labels")
    ids = labels.column("label_id").to_pylist()
    assert len(ids) == len(set(ids)), "a label was stored twice"
    assert len(ids) == result.labels >= 50  # each acknowledged label once; ~the whole budget
    # every labelled segment is retrievable from the segment store after the restarts
    segs = set(pc.unique(labels.column("left")).to_pylist()) | set(
        pc.unique(labels.column("right")).to_pylist()
    )
    segments = SegmentStore(1, run.run_dir / "segments")  # reopened: its pinned files only
    assert segs <= segments.pinned_ids
    assert segments.table(sorted(segs)).column("segment_id").to_pylist() == sorted(segs)
    # the reward trainer came back and kept fitting: its saved state has seen every label
    assert restarted and restarted[0] != killed[1]
    state = torch.load(run.run_dir / "reward_model.pt", weights_only=False)
    assert state["labels_fitted"] == len(ids)
    # every published version was kept, across the restart; the last is the trainer's state
    versions = reward_model_versions(run.run_dir)
    kept = [RewardModelCheckpoint.load(path) for path in versions.values()]
    assert len(kept) >= 3
    assert [k.model["version"] for k in kept] == list(versions)
    assert [k.labels_fitted for k in kept] == sorted(k.labels_fitted for k in kept)
    assert_same_state(kept[-1].model, state["model"], "last kept version")
    run_info = MlflowClient(cfg.tracking.uri).get_run(result.run_id)
    assert run_info.info.status == "FINISHED"


class CheckedRun(PreferenceRun):
    """A run that records, right after resuming, its learner's and reward trainer's state."""

    def _restore(self) -> None:
        super()._restore()
        self.restored_learner = ray.get(self.learner.state_dict.remote())
        self.restored_reward = ray.get(self.trainer.state.remote())


@pytest.mark.slow
def test_stopped_run_resumes_from_its_checkpoint(ray_cluster, isolated, monkeypatch):
    cfg = load_config(None, isolated(*SHORT))
    run = PreferenceRun(cfg)
    fsynced = []
    real_fsync = os.fsync

    def fsync(fd):  # the driver writes the checkpoint: record what it makes durable
        fsynced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    def stop_at_6(m):
        if getattr(m, "iteration", None) == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.run(stop_at_6)
    ckpt_path = run.run_dir / "checkpoint.pt"
    at = fsynced.index(f"{ckpt_path}.tmp")  # fsynced before the rename, dir fsynced after
    assert str(run.run_dir) in fsynced[at + 1 :]
    ckpt = torch.load(ckpt_path, weights_only=False)
    assert ckpt["iteration"] == 6 and ckpt["global_step"] == 6 * 512
    reward_file = RewardModelCheckpoint.load(run.run_dir / "reward_model.pt")
    labels_before = read_labels(run.run_dir / "labels").num_rows
    client = MlflowClient(cfg.tracking.uri)
    assert client.get_run(run.run_id).info.status == "KILLED"

    resumed = CheckedRun(cfg, resume_run_id=run.run_id)  # cfg: where to find runs_dir
    assert resumed.run_dir == run.run_dir
    steps = []
    result = resumed.run(lambda m: steps.append(m.global_step) if isinstance(m, Progress) else None)
    # weights, optimizer state, normalizers, RNG: exactly the checkpoint's (the learner's
    # reward model is not part of it: it is pulled again from the trainer, version -1 first)
    assert_same_state(resumed.restored_learner["learner"], ckpt["learner"]["learner"], "learner")
    assert_same_state(resumed.restored_reward, reward_file.model, "reward model")
    assert steps[0] == 7 * 512  # continues after the checkpoint, not from 0
    assert result.global_step == 8192 and result.run_id == run.run_id
    assert result.labels >= labels_before
    labels = read_labels(run.run_dir / "labels").column("label_id").to_pylist()
    assert len(labels) == len(set(labels)) == result.labels
    history = client.get_metric_history(run.run_id, "true_episode_return")
    assert [m.step for m in history] == sorted({m.step for m in history})  # one metric per step
    assert client.get_run(run.run_id).info.status == "FINISHED"
