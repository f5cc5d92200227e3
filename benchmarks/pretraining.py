"""Preference-model pre-training (Askell et al. 2021) on Hopper-v5: few target labels, with
and without pre-training on a cheap noisy-teacher run, side by side.

1. A source run: ``mujoco_synthetic`` labelled by B-Pref's mistake teacher (10 % of answers
   flipped), ``--source-labels`` labels; the cheap source.
2. For each seed, interleaved: ``--labels`` target labels (oracle teacher) from scratch, and
   the same with ``reward_model.pretrain_from=<source run>``.

Reported per run: the evaluation return (``--episodes`` deterministic episodes), the
reward model's accuracy on *held-out fresh on-policy pairs* (``watch/on_policy_accuracy``:
segments of the current policy answered by the oracle, never trained on; mean of the last
ten measurements), its validation accuracy on this run's labels, and, with pre-training,
the validation accuracy of the pre-training phase. One JSON per run in ``--out``; a rerun
skips finished runs, so the table can be filled over several sessions.

  python benchmarks/pretraining.py [--steps 500000] [--labels 150] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from mlflow import MlflowClient

from rlhp.config import load_config
from rlhp.provenance import code_version
from rlhp.runtime.loop import PreferenceRun

COMMON = ("runtime.eval_episodes={episodes}", "runtime.rollout_worker_cpus=0.5",
          "tracking.experiment=pretraining-benchmark")  # fmt: skip


def _run(out: Path, name: str, overrides: list[str], uri: str, runs_dir: Path) -> dict:
    path = out / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    cfg = load_config(
        "mujoco_synthetic",
        [f"tracking.uri={uri}", f"runtime.runs_dir={runs_dir}", f"tracking.run_name={name}",
         *overrides],
    )  # fmt: skip
    t0 = time.time()
    result = PreferenceRun(cfg).run()
    client = MlflowClient(uri)
    metrics = client.get_run(result.run_id).data.metrics

    def last(name: str, n: int = 10) -> float:
        history = client.get_metric_history(result.run_id, name)
        return float(np.mean([m.value for m in history[-n:]])) if history else float("nan")

    row = {
        "name": name,
        "run_id": result.run_id,
        "run_dir": str(result.run_dir),
        "eval_return": result.eval_return,
        "labels": result.labels,
        "on_policy_accuracy": last("watch/on_policy_accuracy"),
        "val_accuracy": metrics.get("reward_model/val_accuracy", float("nan")),
        "pretrain_val_accuracy": metrics.get("reward_model/pretrain/val_accuracy"),
        "pretrain_labels": metrics.get("reward_model/pretrain/labels"),
        "steps": result.global_step,
        "wall_s": time.time() - t0,
        "code_version": code_version(),
    }
    path.write_text(json.dumps(row, indent=1))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=500_000)
    ap.add_argument("--labels", type=int, default=150, help="target labels per run")
    ap.add_argument("--source-labels", type=int, default=700)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/pretraining"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{(args.out / 'mlflow.db').resolve()}"
    runs_dir = (args.out / "runs").resolve()
    common = [c.format(episodes=args.episodes) for c in COMMON] + [f"total_steps={args.steps}"]
    source = _run(args.out, "source-mistake", [*common, "teacher.kind=mistake",
                  f"label_schedule.total_labels={args.source_labels}",
                  f"label_schedule.initial_labels={args.source_labels // 4}"],
                  uri, runs_dir)  # fmt: skip
    target = [f"label_schedule.total_labels={args.labels}",
              f"label_schedule.initial_labels={max(1, args.labels // 4)}"]  # fmt: skip
    rows = [source]
    for seed in args.seeds:
        for variant, extra in (
            ("scratch", []),
            ("pretrained", [f"reward_model.pretrain_from=[{source['run_dir']}]"]),
        ):
            rows.append(_run(args.out, f"seed{seed}-{variant}",
                             [*common, *target, f"seed={seed}", *extra], uri, runs_dir))  # fmt: skip
    print("| run | labels | eval return | on-policy acc. | val acc. | pre-train val acc. |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        pre = r["pretrain_val_accuracy"]
        print(f"| {r['name']} | {r['labels']} | {r['eval_return']:.0f} | "
              f"{r['on_policy_accuracy']:.3f} | {r['val_accuracy']:.3f} | "
              f"{'' if pre is None else f'{pre:.3f}'} |")  # fmt: skip
    print(f"code {sorted({r['code_version'] for r in rows})}, {args.steps} steps per run")


if __name__ == "__main__":
    main()
