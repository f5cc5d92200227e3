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

import pytest
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
