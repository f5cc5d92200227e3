"""``rlhp sweep``: a real Ray Tune grid of 2 envs x 2 seeds of short rlhp runs on a fresh
local Ray, one env's trials on each learner backend; MLflow holds one parent run with four
child runs and the summary artifacts. And a spec with an unknown key stops with one line
naming it."""

import csv
import json
import math
import os
import subprocess
import sys
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


@pytest.mark.slow
def test_stopped_sweep_resumes_without_redoing_finished_trials(tmp_path):
    """The paper-table layout (RL + label budgets per task) and resume: a trial whose result
    file is gone runs again; finished ones are kept; the parent run is the same."""
    spec = Path(__file__).with_name("sweep_resume.yaml")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = ("sweep", str(spec), "--address", "local", "--set", f"tracking.uri={uri}")
    first = rlhp(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert first.stdout.count("sweep: started ") == 3
    store = tmp_path / "rlhp_sweeps" / "resume-sweep"
    results = {p.name for p in (store / "trials").glob("*[0-9a-z].json")} - {
        p.name for p in (store / "trials").glob("*.started.json")
    }
    assert results == {"Pendulum-v1-seed0-rl.json", "Pendulum-v1-seed0-labels12.json",
                       "Pendulum-v1-seed0-labels20.json"}  # fmt: skip
    kept = json.loads((store / "trials" / "Pendulum-v1-seed0-rl.json").read_text())
    assert kept["reward"] == "true_reward" and kept["labels"] == 0 and kept["curve"]
    # as if the sweep had stopped inside this trial: its run continues from its checkpoint
    stopped = json.loads((store / "trials" / "Pendulum-v1-seed0-labels20.json").read_text())
    (store / "trials" / "Pendulum-v1-seed0-labels20.json").unlink()

    second = rlhp(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "resumed: 2 finished trials kept" in second.stdout
    assert second.stdout.count("sweep: started ") == 1
    assert "sweep: started Pendulum-v1-seed0-labels20" in second.stdout
    assert json.loads((store / "trials" / "Pendulum-v1-seed0-rl.json").read_text()) == kept
    parent = (store / "parent_run_id").read_text()
    assert parent in first.stdout and parent in second.stdout

    client = MlflowClient(uri)
    run = client.get_run(parent)
    assert run.info.status == "FINISHED"
    children = client.search_runs(
        [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'"
    )
    assert len(children) == 3  # the stopped trial continued its own run
    again = json.loads((store / "trials" / "Pendulum-v1-seed0-labels20.json").read_text())
    assert again["run_id"] == stopped["run_id"] and again["steps"] == stopped["steps"]
    assert again["settings"]["label_schedule.total_labels"] == 20  # recorded for the check
    local = Path(client.download_artifacts(parent, "summary", str(tmp_path)))
    table = (local / "paper_table.md").read_text()
    assert "| task | steps | random | RL | 12 labels | 20 labels |" in table
    assert "| Pendulum-v1 | 2,048 |" in table
    assert (local / "learning_curves.png").stat().st_size > 10_000
    assert any(k.startswith("normalized_ratio/Pendulum-v1/") for k in run.data.metrics)

    # the spec changed since: resuming would mix two configurations in one table
    third = rlhp(*args, "--set", "total_steps=4096", cwd=tmp_path, timeout=120)
    assert third.returncode == 2, third.stdout[-3000:] + third.stderr[-3000:]
    assert third.stderr.startswith("rlhp: error: sweep resume-sweep: trial Pendulum-v1-seed0-")
    assert "total_steps 2048 -> 4096" in third.stderr and "Traceback" not in third.stderr
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
