"""What a newcomer's terminal shows during ``rlhp train`` on its defaults, and where the run
is recorded.

One real short run (``rlhp train`` as a subprocess: local Ray, synthetic preferences on
Pendulum, the evaluation video rendered) with ``MLFLOW_TRACKING_URI`` set, as MLflow users
set it. The terminal gets rlhp's lines and the progress bar only: no ALSA / XDG_RUNTIME_DIR
errors, no Ray warnings or C++ log lines, no torch or MLflow warnings. The run's
``train.log`` has the full logs. The run goes to the store MLflow's convention names, and
the printed UI command opens that store.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from rlhp.config import load_config

NOISE = [
    "ALSA lib", "XDG_RUNTIME_DIR", "Token authentication is enabled", "core_worker",
    "constructor arguments", "not writable", "non-writable", "UserWarning", "Pickle",
    "pickle", "WARNING", "INFO", "Traceback", "(LearnerActor", "(RolloutWorker", "[36m",
]  # fmt: skip
TINY = ["total_steps=2048", "env.num_envs=2", "learner.rollout_steps=256",
        "label_schedule.total_labels=12", "label_schedule.initial_labels=6",
        "runtime.eval_episodes=1", "runtime.reward_fit_interval_s=0.5"]  # fmt: skip


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """``rlhp train`` on the default preset (tiny budget) in a fresh directory, with
    ``MLFLOW_TRACKING_URI`` pointing elsewhere; (process, work dir, store URI)."""
    tmp = tmp_path_factory.mktemp("newcomer")
    work, store = tmp / "work", tmp / "elsewhere"
    work.mkdir()
    store.mkdir()
    uri = f"sqlite:///{store}/mlflow.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "SDL_"))}
    env |= {"MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "rlhp.cli", "train"]
    for s in TINY:
        args += ["--set", s]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=work, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc, work, uri


@pytest.mark.slow
def test_the_terminal_shows_rlhp_lines_and_the_progress_bar_only(default_run):
    proc, work, _ = default_run
    for noise in NOISE:
        assert noise not in proc.stdout + proc.stderr, noise
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines and all(
        line.startswith(("rlhp: ", "      time: ", "      watch it: ")) for line in lines
    ), lines
    # the final summary says where the wall time went, phase by phase
    (timing,) = [line for line in lines if line.startswith("      time: ")]
    assert "ray_start" in timing and "learner_update" in timing and "; total " in timing
    for piece in re.split(r"[\r\n]+", proc.stderr):  # progress bar redraws, nothing else
        assert not piece.strip() or re.search(r"\d+/\d+ \[", piece), repr(piece)
    # the full logs are in the run directory, and the first line says where
    (log_path,) = re.findall(r"full log (\S+train\.log)", proc.stdout)
    log = (work / log_path).read_text()
    assert "Creating initial MLflow database tables" in log  # MLflow's own set-up
    assert "has constructor arguments in the object store" in log  # Ray's C++ core
    assert "(LearnerActor pid=" in log  # the actors' output Ray forwards to the driver
    pid_logs = [p for p in (work / "rlhp_runs").iterdir() if p.suffix == ".log"]
    assert not pid_logs  # the log lives in the run directory only


@pytest.mark.slow
def test_mlflow_tracking_uri_picks_the_store_and_the_ui_command_names_it(default_run):
    proc, work, uri = default_run
    assert not (work / "mlflow.db").exists()  # nothing written to ./mlflow.db
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("rlhp").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["tracking.uri"] == uri
    assert f"watch it: mlflow ui --backend-store-uri {uri}" in proc.stdout
    assert [a.path for a in client.list_artifacts(run.info.run_id, "videos")] == ["videos/eval.mp4"]


def test_mlflow_tracking_uri_is_the_default_and_tracking_uri_still_wins(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert load_config("default").tracking.uri == "http://mlflow.example:5000"
    chosen = load_config("default", ["tracking.uri=sqlite:////data/mlflow.db"]).tracking.uri
    assert chosen == "sqlite:////data/mlflow.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert load_config("default").tracking.uri == "sqlite:///mlflow.db"


def test_the_ui_command_matches_the_store():
    from rlhp.tracking.uri import ui_hint

    assert ui_hint("sqlite:////data/mlflow.db").startswith(
        "mlflow ui --backend-store-uri sqlite:////data/mlflow.db"
    )
    assert ui_hint("http://user:pw@mlflow:5000") == (
        "open http://mlflow:5000 in a browser (the MLflow server's UI)"
    )


@pytest.mark.slow
def test_sigterm_checkpoints_the_run_and_ends_it_killed(tmp_path):
    """``kill``, ``ray job stop`` and a pod's deletion send SIGTERM: ``rlhp train`` then saves
    a checkpoint where it is, ends the MLflow run KILLED, prints the resume command and exits
    143, as Ctrl-C does (130). No periodic checkpoint here: the file is the stop's."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "SDL_"))}
    env |= {"MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "rlhp.cli", "train"]
    for s in [*TINY[1:], "total_steps=200000", "runtime.checkpoint_every=100000"]:
        args += ["--set", s]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                            env=env)  # fmt: skip
    bar = b""
    while not re.search(rb"[1-9]\d*/200000 \[", bar):  # the progress bar past step 0
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk, "rlhp train ended before its first iteration"
        bar += chunk
    proc.terminate()
    out, _ = proc.communicate(timeout=300)
    text = out.decode()
    assert proc.returncode == 143, text
    (run_id,) = re.findall(
        r"rlhp: terminated \(SIGTERM\); checkpoint saved\. Resume with: rlhp train --resume (\w+)",
        text,
    )
    assert MlflowClient(uri).get_run(run_id).info.status == "KILLED"
    checkpoint = torch.load(tmp_path / "rlhp_runs" / run_id / "checkpoint.pt", weights_only=False)
    assert 0 < checkpoint["global_step"] < 200_000


@pytest.mark.slow
def test_sigterm_stops_a_ray_job_entry_point_the_same_way(tmp_path):
    """A job's entry point (``jobs/*.py``, what ``ray job stop`` signals) checkpoints and ends
    KILLED on SIGTERM too, and says where the checkpoint is."""
    root = Path(__file__).resolve().parents[1]
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "SDL_"))}
    env |= {"PYTHONUNBUFFERED": "1"}
    args = [sys.executable, str(root / "jobs" / "mujoco_synthetic.py")]
    for s in [*TINY[1:], "total_steps=200000", "runtime.checkpoint_every=100000",
              f"tracking.uri={uri}"]:  # fmt: skip
        args += ["--set", s]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp_path,
                            env=env, text=True)  # fmt: skip
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("job: step "):  # the first iteration is done
            break
    proc.terminate()
    out, _ = proc.communicate(timeout=300)
    text = "".join(seen) + out
    assert proc.returncode == 143, text
    (run_id,) = re.findall(r"job: run (\w+):", text)
    assert f"job: stopped (SIGTERM); checkpoint saved in rlhp_runs/{run_id};" in text, text
    assert MlflowClient(uri).get_run(run_id).info.status == "KILLED"
    checkpoint = torch.load(tmp_path / "rlhp_runs" / run_id / "checkpoint.pt", weights_only=False)
    assert 0 < checkpoint["global_step"] < 200_000
