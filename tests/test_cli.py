"""``rlhp train`` and ``rlhp eval`` end to end on a tiny budget (real Ray, real MLflow)."""

import os
import subprocess
import sys

from mlflow import MlflowClient


def rlhp(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # the defaults
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "rlhp.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )


def test_train_then_eval(tmp_path):
    proc = rlhp(
        "train", "pendulum_true_reward", "--set", "total_steps=2048", "--set", "learner.algo=trpo",
        "--set", "runtime.eval_episodes=2", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "rlhp: done." in proc.stdout
        and "mlflow ui --backend-store-uri sqlite:///mlflow.db" in proc.stdout
    )
    # the embedded defaults: a local SQLite MLflow store and run directories in the cwd
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("rlhp").experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["learner.algo"] == "trpo"
    assert (tmp_path / "rlhp_runs" / run.info.run_id / "checkpoint.pt").exists()
    videos = [a.path for a in client.list_artifacts(run.info.run_id, "videos")]
    assert videos == ["videos/eval.mp4"]

    proc = rlhp("eval", run.info.run_id, "--episodes", "2", "--video-steps", "20", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 episodes of Pendulum-v1: true return" in proc.stdout
    out = proc.stdout
    assert (tmp_path / "rlhp_runs" / run.info.run_id / "report" / "eval-cli.mp4").exists()

    # in a changed environment: 50-step episodes return far less than 200-step ones
    proc = rlhp(
        "eval", run.info.run_id, "--episodes", "2", "--video-steps", "20",
        "--set", "env.episode_steps=50", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 episodes of Pendulum-v1 (env.episode_steps=50): true return" in proc.stdout
    short = float(proc.stdout.split("true return ")[1].split()[0])
    full = float(out.split("true return ")[1].split()[0])
    assert short > full / 2, (short, full)  # returns are negative: a quarter of the steps


def test_eval_changes_only_the_environment(tmp_path):
    proc = rlhp("eval", "any-run", "--set", "learner.algo=ppo", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "rlhp: error: --set learner.algo=ppo: eval changes only the environment (env.*), "
        "e.g. --set env.fixed_length_episodes=false to play whole games"
    )


def test_eval_of_unknown_run_is_one_line(tmp_path):
    proc = rlhp("eval", "no-such-run", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("rlhp: error: RUN_ID: no checkpoint at")
    assert "Traceback" not in proc.stderr


def test_the_command_exits_through_atexit_with_main_s_status(tmp_path):
    """``rlhp`` skips the interpreter's module teardown but not its exit steps: atexit
    handlers run (Ray's shutdown is one), buffered output is flushed, main's status is kept."""
    script = """
import atexit, sys
from rlhp.cli import console
atexit.register(lambda: sys.stdout.write("atexit handler ran"))  # no newline: stays buffered
sys.argv = ["rlhp", *sys.argv[1:]]
console()
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    ok = subprocess.run([sys.executable, "-c", script, "presets"], capture_output=True,
                        text=True, cwd=tmp_path, env=env)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "default" in ok.stdout.splitlines() and ok.stdout.endswith("atexit handler ran")
    bad = subprocess.run([sys.executable, "-c", script, "config", "--set", "seed=x"],
                         capture_output=True, text=True, cwd=tmp_path, env=env)  # fmt: skip
    assert bad.returncode == 2 and "seed" in bad.stderr, bad.stderr
    assert bad.stdout.endswith("atexit handler ran")
