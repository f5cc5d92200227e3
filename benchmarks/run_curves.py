"""Side-by-side learning curves of runs from their MLflow metrics, while they run or after.

A sweep's summary (``rlhp sweep``) is written when its trials finish; rows stopped at the
end of a session (Ctrl-C, resumed later from their checkpoints) have only their metrics.
This prints, for each run, the mean of its metrics in bins of env steps, and draws the
runs' training returns on one figure:

  python benchmarks/run_curves.py --parent PARENT_RUN_ID [--bin 50000] [--log-to PARENT_RUN_ID]
  python benchmarks/run_curves.py RUN_ID [RUN_ID ...] [--out curves.png]

``--parent``: every child run of that MLflow run (a sweep's trials). ``--log-to``: log the
figure and the tables as artifacts of that run (``run_curves/``), so the side-by-side curve
sits in MLflow beside the sweep. The tracking URI is ``MLFLOW_TRACKING_URI`` or
``--tracking-uri`` (default ``sqlite:///mlflow.db``, rlhp's default store).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

# The metrics a row of the table shows, in order; a run that lacks one shows "-".
COLUMNS = (
    "true_episode_return/latest",  # mean return of the episodes that ended in the bin
    "true_episode_return",  # the logged running mean (last 100 episodes)
    "entropy",
    "reward_model_version",
    "labels",
    "env_steps_per_s",
)
CURVE = "true_episode_return/latest"


def children(client: MlflowClient, parent: str) -> list[str]:
    """The run ids nested under ``parent`` (tag ``mlflow.parentRunId``), oldest first."""
    experiment = client.get_run(parent).info.experiment_id
    runs = client.search_runs(
        [experiment],
        filter_string=f"tags.mlflow.parentRunId = '{parent}'",
        order_by=["attributes.start_time ASC"],
    )
    return [r.info.run_id for r in runs]


def binned(history: list, width: int) -> dict[int, float]:
    """Bin start (env steps) -> mean of the metric's values logged in [start, start + width)."""
    groups: dict[int, list[float]] = defaultdict(list)
    for m in history:
        groups[(m.step // width) * width].append(m.value)
    return {start: float(np.mean(v)) for start, v in sorted(groups.items())}


def table(client: MlflowClient, run_id: str, width: int) -> tuple[str, str, dict[int, float]]:
    """The run's name, a markdown table of its binned metrics, and its binned training
    return."""
    histories = {key: client.get_metric_history(run_id, key) for key in COLUMNS}
    cols = {key: binned(h, width) for key, h in histories.items()}
    starts = sorted({s for c in cols.values() for s in c})
    last_step = max((m.step for m in histories[CURVE]), default=0)
    run = client.get_run(run_id)
    lines = [
        f"### {run.info.run_name} ({run_id}, {run.info.status}, last step {last_step:,})",
        "",
        "| env steps | " + " | ".join(COLUMNS) + " |",
        "| --- |" + " ---: |" * len(COLUMNS),
    ]
    k = width // 1000
    for s in starts:
        cells = [f"{cols[key][s]:.2f}" if s in cols[key] else "-" for key in COLUMNS]
        lines.append(f"| {s // 1000}-{s // 1000 + k}k | " + " | ".join(cells) + " |")
    return run.info.run_name, "\n".join(lines) + "\n", cols[CURVE]


def figure(curves: dict[str, dict[int, float]], width: int, path: Path) -> Path:
    """One line per run: its binned training return against env steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2))
    for name, curve in curves.items():
        steps = [s + width / 2 for s in curve]
        ax.plot(steps, list(curve.values()), marker="o", markersize=3, label=name)
    ax.set_xlabel("env steps")
    ax.set_ylabel(f"{CURVE} (mean per {width // 1000}k-step bin)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", help="MLflow run ids")
    p.add_argument("--parent", help="take every child run of this MLflow run")
    p.add_argument("--bin", type=int, default=50_000, help="bin width in env steps")
    p.add_argument(
        "--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db"
    )
    p.add_argument("--out", type=Path, default=None, help="where to write the figure (PNG)")
    p.add_argument("--log-to", default=None, help="log figure and tables to this MLflow run")
    args = p.parse_args()

    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    client = MlflowClient(uri)
    run_ids = list(args.runs) + (children(client, args.parent) if args.parent else [])
    if not run_ids:
        p.error("name run ids, or --parent RUN_ID for a sweep's trials")
    texts, curves = [], {}
    for rid in run_ids:
        name, text, curve = table(client, rid, args.bin)
        texts.append(text)
        curves[name] = curve
    report = "\n".join(texts)
    print(report)
    with tempfile.TemporaryDirectory() as tmp:
        png = figure(curves, args.bin, args.out or Path(tmp) / "run_curves.png")
        md = Path(tmp) / "run_curves.md"
        md.write_text(report)
        print(f"figure: {png}")
        if args.log_to:
            client.log_artifact(args.log_to, str(png), "run_curves")
            client.log_artifact(args.log_to, str(md), "run_curves")
            print(f"logged to MLflow run {args.log_to}, artifacts run_curves/")


if __name__ == "__main__":
    main()
