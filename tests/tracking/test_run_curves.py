"""``benchmarks/run_curves.py``: a sweep's rows side by side from their MLflow metrics alone,
against a real MLflow SQLite store (the script runs as a user runs it, in its own process)."""

import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "run_curves.py"


def test_children_of_a_parent_are_binned_and_the_figure_is_logged_to_it(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    exp = client.create_experiment("sweep", artifact_location=str(tmp_path / "artifacts"))
    parent = client.create_run(exp, run_name="sweep").info.run_id
    rows = {}
    for name, offset in (("rl", 0.0), ("preferences", -10.0)):
        run = client.create_run(exp, run_name=name, tags={"mlflow.parentRunId": parent})
        rows[name] = run.info.run_id
        # two values in the first 50k bin, one in the second
        for step, value in ((10_000, -20.0), (40_000, -10.0), (60_000, -4.0)):
            client.log_metric(
                run.info.run_id, "true_episode_return/latest", value + offset, step=step
            )
    client.create_run(exp, run_name="unrelated")  # not a child: not in the table

    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--parent", parent, "--tracking-uri", uri,
         "--log-to", parent],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    assert "unrelated" not in out
    rl = out.split("### rl")[1].split("###")[0]
    prefs = out.split("### preferences")[1]
    assert "| 0-50k | -15.00 |" in rl and "| 50-100k | -4.00 |" in rl
    assert "| 0-50k | -25.00 |" in prefs and "| 50-100k | -14.00 |" in prefs
    assert "last step 60,000" in rl
    logged = {a.path for a in client.list_artifacts(parent, "run_curves")}
    assert logged == {"run_curves/run_curves.png", "run_curves/run_curves.md"}
