"""``rlhp sweep``: a real Ray Tune grid of 2 envs x 2 seeds of short rlhp runs on a fresh
local Ray, one env's trials on each learner backend; MLflow holds one parent run with four
child runs and the summary artifacts. A spec with an unknown key stops with one line
naming it. Ctrl-C (a real SIGINT) stops a sweep at checkpoints, and the same command
continues it."""

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

SPEC = Path(__file__).with_name("sweep_small.yaml")
ROOT = Path(__file__).resolve().parents[2]


def rlhp(*args, cwd, timeout=600):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "rlhp.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


@pytest.mark.slow
def test_sweep_two_envs_two_seeds(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = rlhp(
        "sweep", str(SPEC), "--address", "local",  # a fresh local Ray, never another one
        "--set", f"tracking.uri={uri}", "--set", "tracking.experiment=sweeps",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "rlhp: sweep done: 4/4 trials finished" in proc.stdout
    assert proc.stdout.count("| FINISHED |") == 4  # the printed summary table

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("sweeps")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("rlhp.sweep") == "small-sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 5 and len(children) == 4
    assert parent.info.status == "FINISHED"
    assert parent.info.run_id in proc.stdout
    grid = {(r.data.params["env.id"], r.data.params["seed"]) for r in children}
    assert grid == {(e, s) for e in ("Pendulum-v1", "MountainCarContinuous-v0") for s in "01"}
    backend = {"Pendulum-v1": "rlhp", "MountainCarContinuous-v0": "rllib"}  # the spec's per_env
    # the actors of a run: buffer, labelling, reward trainer and the policy process's (rlhp:
    # a rollout worker and the learner; rllib: one EnvRunner, the Learner in the driver)
    actors = {"rlhp": "5/5", "rllib": "4/4"}
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.params["total_steps"] == "2048"  # the spec's set reached the trial
        assert child.data.params["learner.backend"] == backend[child.data.params["env.id"]]
        assert "true_episode_return" in child.data.metrics
        # each trial in its own placement group (driver + one rollout worker bundle), and
        # every actor of the run inside it
        bundles = json.loads(child.data.tags["rlhp.placement_group.bundles"])
        assert bundles == [{"CPU": 0.5}, {"CPU": 0.5}]
        inside = child.data.tags["rlhp.actors_in_placement_group"]
        assert inside == actors[child.data.params["learner.backend"]]
    assert len({c.data.tags["rlhp.placement_group"] for c in children}) == 4

    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "summary")}
    assert artifacts == {
        f"summary/{name}"
        for name in ("summary.csv", "summary.md", "results.md", "paper_table.md",
                     "learning_curves.png", "return_vs_labels.png")
    }  # fmt: skip
    local = Path(client.download_artifacts(parent.info.run_id, "summary", str(tmp_path)))
    rows = list(csv.DictReader((local / "summary.csv").open()))
    assert {r["run_id"] for r in rows} == {c.info.run_id for c in children}
    for row in rows:
        assert row["status"] == "FINISHED" and row["labels"] == "20"
        assert math.isfinite(float(row["final_true_return"]))
        assert math.isfinite(float(row["eval_return"]))
    assert (local / "return_vs_labels.png").stat().st_size > 10_000


def test_unknown_spec_key_is_one_line(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(SPEC.read_text().replace("  env: [", "  envs: ["))
    proc = rlhp("sweep", str(spec), cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"rlhp: error: grid.envs: unknown key in sweep spec {spec}; did you mean env? known "
        f"keys here: env, seed, labels, query_strategy, teacher, variant, true_reward_baseline; "
        f"grid.env: missing in sweep spec {spec}; "
        "add it"
    )
    assert not (tmp_path / "mlflow.db").exists()  # nothing was started

    # the same through the Ray job entrypoint, and a bad trial config names the trial
    spec.write_text(SPEC.read_text().replace("seed: [0, 1]", "seed: [0, 1]\n  labels: [0]"))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "sweep.py"), str(spec)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("rlhp: error: grid (Pendulum-v1-seed0-labels0): ")
    assert "label_schedule.total_labels" in proc.stderr and "Traceback" not in proc.stderr


def _start(args, cwd: Path, out: Path) -> subprocess.Popen:
    """``rlhp ARGS`` in its own process group (a terminal's Ctrl-C reaches the whole group),
    its output into ``out``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    with out.open("w") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "rlhp.cli", *args], stdout=sink, stderr=subprocess.STDOUT,
            cwd=cwd, env=env, start_new_session=True,
        )  # fmt: skip


def _wait_for(condition, proc, out: Path, timeout: float = 600):
    """Poll ``condition`` every half second while ``proc`` runs; its output on failure."""
    deadline = time.time() + timeout
    while not (value := condition()):
        assert proc.poll() is None, out.read_text()[-3000:]
        assert time.time() < deadline, out.read_text()[-3000:]
        time.sleep(0.5)
    return value


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_at_checkpoints_and_the_same_command_continues_it(tmp_path):
    """The paper-table layout (RL + label budgets per task), stop and resume. A real Ctrl-C
    (SIGINT to the command's process group, as a terminal sends it) inside the second trial:
    that trial saves a checkpoint and its MLflow run ends KILLED, the third never starts,
    rows say STOPPED, the parent ends KILLED, exit status 130. The same command then keeps
    the finished trial, continues the stopped trial's own run from its checkpoint, runs the
    third, and reopens the same parent run. Between the two, Ctrl-C twice stops at once: the
    resumed run and the parent end KILLED, and the checkpoint stays the one saved above."""
    from rlhp.checkpoints import RunCheckpoint

    spec = Path(__file__).with_name("sweep_resume.yaml")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = ("sweep", str(spec), "--address", "local", "--set", f"tracking.uri={uri}")
    store = tmp_path / "rlhp_sweeps" / "resume-sweep"
    out = tmp_path / "first.txt"
    first = _start(args, tmp_path, out)
    try:
        marker = store / "trials" / "Pendulum-v1-seed0-labels12.started.json"
        run_id = _wait_for(lambda: marker.exists() and json.loads(marker.read_text())["run_id"],
                           first, out)  # fmt: skip
        client = MlflowClient(uri)  # the store exists: the parent run is in it
        _wait_for(lambda: client.get_metric_history(run_id, "true_episode_return"), first, out)
        os.killpg(first.pid, signal.SIGINT)
        assert first.wait(timeout=300) == 130, out.read_text()[-3000:]
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    text = out.read_text()
    assert "sweep: stopping: each running trial saves a checkpoint" in text
    assert "sweep: Pendulum-v1-seed0-labels12 stopped at step " in text
    assert "sweep: started Pendulum-v1-seed0-labels20" not in text
    assert "rlhp: sweep stopped: 1/3 trials finished; the others continue with: rlhp sweep" in text
    assert text.count("| STOPPED |") == 2 and text.count("| FINISHED |") == 1
    stopped_at = RunCheckpoint.load(tmp_path / "rlhp_runs" / run_id)  # checkpoint_every: 100
    assert stopped_at is not None and 1024 <= stopped_at.global_step < 8192
    assert f"stopped at step {stopped_at.global_step:,}, checkpoint saved; run {run_id}" in text
    assert client.get_run(run_id).info.status == "KILLED"
    parent = (store / "parent_run_id").read_text()
    assert client.get_run(parent).info.status == "KILLED"
    assert not (store / "trials" / "Pendulum-v1-seed0-labels12.json").exists()
    kept = json.loads((store / "trials" / "Pendulum-v1-seed0-rl.json").read_text())
    assert kept["reward"] == "true_reward" and kept["labels"] == 0 and kept["curve"]

    # Ctrl-C twice: stop at once; the trial's run ends KILLED, its checkpoint is the one above
    out = tmp_path / "at_once.txt"
    at_once = _start(args, tmp_path, out)
    try:
        _wait_for(lambda: "sweep: started Pendulum-v1-seed0-labels12" in out.read_text(),
                  at_once, out)  # fmt: skip
        os.killpg(at_once.pid, signal.SIGINT)
        _wait_for(lambda: "sweep: stopping" in out.read_text(), at_once, out)
        os.killpg(at_once.pid, signal.SIGINT)
        assert at_once.wait(timeout=300) == 130, out.read_text()[-3000:]
    finally:
        if at_once.poll() is None:
            os.killpg(at_once.pid, signal.SIGKILL)
    assert "rlhp: sweep stopped at once; its trials continue from their last periodic" in (
        out.read_text()
    )
    assert client.get_run(run_id).info.status == "KILLED"
    assert client.get_run(parent).info.status == "KILLED"
    kept_checkpoint = RunCheckpoint.load(tmp_path / "rlhp_runs" / run_id)
    assert kept_checkpoint.global_step == stopped_at.global_step

    second = rlhp(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "resumed: 1 finished trials kept" in second.stdout
    assert second.stdout.count("sweep: started ") == 2
    assert "rlhp: sweep done: 3/3 trials finished" in second.stdout
    assert json.loads((store / "trials" / "Pendulum-v1-seed0-rl.json").read_text()) == kept
    assert parent in text and parent in second.stdout

    run = client.get_run(parent)
    assert run.info.status == "FINISHED"
    children = client.search_runs(
        [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'"
    )
    assert len(children) == 3  # the stopped trial continued its own run
    again = json.loads((store / "trials" / "Pendulum-v1-seed0-labels12.json").read_text())
    assert again["run_id"] == run_id and again["steps"] == 8192
    assert client.get_run(run_id).info.status == "FINISHED"
    # not restarted: the first start's points are kept and no step is logged twice (a restart
    # would log its first iterations again; the stop may land on the first iteration)
    steps = [step for step, _ in again["curve"]]
    assert min(steps) <= stopped_at.global_step and len(steps) == len(set(steps))
    assert max(steps) == 8192
    assert again["settings"]["label_schedule.total_labels"] == 12  # recorded for the check
    local = Path(client.download_artifacts(parent, "summary", str(tmp_path)))
    table = (local / "paper_table.md").read_text()
    assert "| task | steps | random | RL | 12 labels | 20 labels |" in table
    assert "| Pendulum-v1 | 8,192 |" in table
    assert (local / "learning_curves.png").stat().st_size > 10_000
    assert any(k.startswith("normalized_ratio/Pendulum-v1/") for k in run.data.metrics)

    # the spec changed since: resuming would mix two configurations in one table
    third = rlhp(*args, "--set", "total_steps=4096", cwd=tmp_path, timeout=120)
    assert third.returncode == 2, third.stdout[-3000:] + third.stderr[-3000:]
    assert third.stderr.startswith("rlhp: error: sweep resume-sweep: trial Pendulum-v1-seed0-")
    assert "total_steps 8192 -> 4096" in third.stderr and "Traceback" not in third.stderr
    assert "sweep: started" not in third.stdout


@pytest.mark.parametrize(
    "spec_path",
    sorted(
        str(p.relative_to(ROOT))
        for d in ("benchmarks/sweeps", "jobs/sweeps")
        for p in (ROOT / d).glob("*.yaml")
    ),
)
def test_every_shipped_sweep_spec_builds_valid_trial_configs(spec_path):
    from rlhp.cluster.sweep import base_overrides, load_spec, trial_configs

    spec = load_spec(ROOT / spec_path)
    configs = trial_configs(spec, base_overrides(spec, []))
    assert configs, spec_path
    for trial, cfg in configs.items():
        variant = spec.grid.variant.get(trial.variant, {}) if trial.variant else {}
        if variant.get("runtime.reward") == "true_reward":
            assert cfg.runtime.reward == "true_reward", trial


@pytest.mark.parametrize(
    ("scale", "gpu", "extra"),
    [
        ((), False, []),
        (
            ("learner.rllib.num_learners=2", "learner.rllib.num_cpus_per_learner=0.5"),
            True,
            [{"CPU": 1.0, "GPU": 1.0}, {"CPU": 0.5, "GPU": 1.0}, {"CPU": 0.5, "GPU": 1.0}],
        ),
        (
            ("learner.algo=appo", "learner.rllib.num_aggregator_actors_per_learner=2"),
            False,
            [{"CPU": 1.0}, {"CPU": 1.0}],
        ),
    ],
    ids=["learner-in-driver", "two-gpu-learner-actors", "appo-aggregators"],
)
def test_trial_placement_reserves_rllib_learners_and_aggregators(scale, gpu, extra):
    """A trial's placement group holds every actor RLlib creates for it: Learner actors (a
    GPU each when the trial has GPUs) and APPO's aggregator actors (1 CPU each)."""
    from rlhp.cluster.sweep import TrialResources, placement
    from rlhp.config import load_config

    cfg = load_config(None, ["learner.backend=rllib", "runtime.num_rollout_workers=2",
                             "runtime.rollout_worker_cpus=0.5", *scale])  # fmt: skip
    bundles = placement(cfg, TrialResources(driver_cpus=1.0, gpu=gpu))
    assert bundles == [{"CPU": 1.0}, {"CPU": 0.5}, {"CPU": 0.5}, *extra]
