"""Fault tolerance and resume on a real local Ray cluster.

Kill a rollout worker and the reward trainer (SIGKILL of the actor processes) mid-run: the
run completes and the label store holds every acknowledged label exactly once. Stop a run,
resume it: it continues from its checkpoint in the same MLflow run.
"""

import os
import signal

import pyarrow.compute as pc
import pytest
import ray
import torch
from mlflow import MlflowClient

from rlhp.config import load_config
from rlhp.data.label_store import read_labels
from rlhp.runtime.loop import PreferenceRun

# two rollout workers of one env each: 512 steps per iteration, rollouts stacked by the learner
SHORT = ["total_steps=8192", "env.num_envs=1", "runtime.num_rollout_workers=2", "learner.rollout_steps=256",
         "label_schedule.total_labels=60", "label_schedule.initial_labels=10",
         "runtime.checkpoint_every=2", "runtime.reward_fit_interval_s=0.2"]  # fmt: skip


@pytest.mark.slow
def test_killed_worker_and_reward_trainer_lose_no_label(ray_cluster, isolated):
    cfg = load_config(None, isolated(*SHORT))
    run = PreferenceRun(cfg)
    killed = []

    def progress(m):
        if m.get("iteration") == 4 and not killed:
            for actor in (run.workers[0], run.trainer):
                pid = ray.get(actor.pid.remote())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    result = run.run(progress)
    assert len(killed) == 2
    assert result.global_step == 8192
    labels = read_labels(run.run_dir / "labels")
    ids = labels.column("label_id").to_pylist()
    assert len(ids) == len(set(ids)), "a label was stored twice"
    assert len(ids) == result.labels >= 50  # each acknowledged label once; ~the whole budget
    # every labelled segment is retrievable after the restarts
    segs = set(pc.unique(labels.column("left")).to_pylist()) | set(
        pc.unique(labels.column("right")).to_pylist()
    )
    stored = {p.name for p in (run.run_dir / "segments").glob("pinned-*.arrow")}
    assert stored and segs
    # the reward trainer came back and kept fitting: its saved state has seen all labels
    state = torch.load(run.run_dir / "reward_model.pt", weights_only=False)
    assert state["labels_fitted"] >= 10
    run_info = MlflowClient(cfg.tracking.uri).get_run(result.run_id)
    assert run_info.info.status == "FINISHED"


@pytest.mark.slow
def test_stopped_run_resumes_from_its_checkpoint(ray_cluster, isolated):
    cfg = load_config(None, isolated(*SHORT))
    run = PreferenceRun(cfg)

    def stop_at_6(m):
        if m.get("iteration") == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.run(stop_at_6)
    ckpt = torch.load(run.run_dir / "checkpoint.pt", weights_only=False)
    assert ckpt["iteration"] == 6 and ckpt["global_step"] == 6 * 512
    labels_before = read_labels(run.run_dir / "labels").num_rows
    client = MlflowClient(cfg.tracking.uri)
    assert client.get_run(run.run_id).info.status == "KILLED"

    resumed = PreferenceRun(cfg, resume_run_id=run.run_id)  # cfg: where to find runs_dir
    assert resumed.run_dir == run.run_dir
    steps = []
    result = resumed.run(
        lambda m: steps.append(int(m["global_step"])) if "global_step" in m else None
    )
    assert steps[0] == 7 * 512  # continues after the checkpoint, not from 0
    assert result.global_step == 8192 and result.run_id == run.run_id
    assert result.labels >= labels_before
    labels = read_labels(run.run_dir / "labels").column("label_id").to_pylist()
    assert len(labels) == len(set(labels)) == result.labels
    history = client.get_metric_history(run.run_id, "true_episode_return")
    assert [m.step for m in history] == sorted({m.step for m in history})  # one metric per step
    assert client.get_run(run.run_id).info.status == "FINISHED"
