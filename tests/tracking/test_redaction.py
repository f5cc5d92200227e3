"""Credentials in a tracking URI never reach MLflow's params, the logged config or the
terminal: a real MLflow tracking server, reached with ``http://user:password@host``, records
the run of ``rlhp train`` with the password masked (the run directory keeps the real URI,
which a resumed run needs)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
import requests
import yaml
from mlflow import MlflowClient

from rlhp.cli import main
from rlhp.tracking.config import TrackingConfig
from rlhp.tracking.mlflow_tracker import MlflowTracker
from rlhp.tracking.uri import redact_uri, ui_hint

SECRET = "hunter2-s3cret"


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (f"postgresql://mlflow:{SECRET}@db:5432/mlflow", "postgresql://mlflow:***@db:5432/mlflow"),
        (f"https://rlhp:{SECRET}@mlflow.example/", "https://rlhp:***@mlflow.example/"),
        (f"http://{SECRET}@mlflow:5000", "http://***@mlflow:5000"),
        (f"postgresql://db/mlflow?password={SECRET}&sslmode=require",
         "postgresql://db/mlflow?password=***&sslmode=require"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("http://mlflow:5000", "http://mlflow:5000"),
    ],
)  # fmt: skip
def test_uris_are_shown_with_credentials_masked(uri, shown):
    assert redact_uri(uri) == shown
    assert SECRET not in ui_hint(uri)


def test_params_logged_to_a_sqlite_store_hold_no_password(tmp_path):
    tracker = MlflowTracker(TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db"), "r")
    tracker.log_config(
        {"tracking": {"uri": f"postgresql://mlflow:{SECRET}@db/mlflow"}, "runtime": {"x": 1}}
    )
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    params = client.get_run(tracker.run_id).data.params
    assert params["tracking.uri"] == "postgresql://mlflow:***@db/mlflow"
    logged = client.download_artifacts(tracker.run_id, "config.yaml", str(tmp_path))
    assert SECRET not in Path(logged).read_text()


@pytest.fixture
def mlflow_server(tmp_path):
    """A real MLflow tracking server on a free loopback port (ended by this fixture)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "server.log").open("w")
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
           "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 180
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok:
                    break
            assert proc.poll() is None and time.time() < deadline, (
                tmp_path / "server.log"
            ).read_text()
            time.sleep(0.5)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers: our own group
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_rlhp_train_masks_the_password_of_its_tracking_uri(
    mlflow_server, tmp_path, monkeypatch, capsys
):
    from rlhp.runtime.loop import PreferenceRun

    uri = f"http://rlhp:{SECRET}@127.0.0.1:{mlflow_server}"
    started = []

    def stop_at_once(self, progress=None):  # the run is created and logged; stop before
        started.append(self)  # the loop
        raise KeyboardInterrupt

    monkeypatch.setattr(PreferenceRun, "run", stop_at_once)
    argv = ["train", "pendulum_true_reward", "--verbose", "--quiet",
            "--set", f"tracking.uri={uri}", "--set", f"runtime.runs_dir={tmp_path}/runs"]  # fmt: skip
    try:
        assert main(argv) == 130
    finally:
        ray.shutdown()  # `rlhp train` started Ray while it created the run, in this process
    out = capsys.readouterr()
    assert f"MLflow http://rlhp:***@127.0.0.1:{mlflow_server}" in out.out
    assert SECRET not in out.out + out.err

    (run,) = started
    client = MlflowClient(f"http://127.0.0.1:{mlflow_server}")
    recorded = client.get_run(run.run_id)
    assert recorded.data.params["tracking.uri"] == f"http://rlhp:***@127.0.0.1:{mlflow_server}"
    assert not [k for k, v in recorded.data.params.items() if SECRET in v]
    assert not [k for k, v in recorded.data.tags.items() if SECRET in v]
    logged = client.download_artifacts(run.run_id, "config.yaml", str(tmp_path))
    assert SECRET not in Path(logged).read_text()
    # the run directory keeps the real URI: `rlhp train --resume` must reach the server
    kept = yaml.safe_load((run.run_dir / "config.yaml").read_text())
    assert kept["tracking"]["uri"] == uri
