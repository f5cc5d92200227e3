"""What the Ray runtime costs: `rlhp train`'s loop against the single-process trainer, side
by side on the same settings (issue "end-to-end speed", item 5: at least 0.95x).

Both train PPO (or TRPO) on the true reward with the same config (default
``mujoco_true_reward_ppo``: Hopper-v5, one env, 2048-step rollouts); the runtime with its rollout
worker and learner actors (``rlhp.runtime.loop.PreferenceRun``), the single-process trainer
(``rlhp.algos.trainer.OnPolicyTrainer``) in this process. Each repeat runs both, alternating
which goes first, so the machine's load hits both alike. Reported per repeat and as the
median:

- *loop* env steps/s: steps over the time of the training loop only: for the runtime its
  phases ``first_rollout``, ``sampling``, ``learner_update``, ``driver`` and
  ``checkpoints`` (``rlhp.runtime.phases``), for the trainer the wall time of ``train()``;
- the runtime's phases, so that a gap can be located (waiting for the worker, the update
  in the learner actor, the driver's own work);
- *whole* env steps/s: steps over the whole run, start-up included (Ray start, actors).

  python benchmarks/runtime_overhead.py [--steps 40960] [--repeats 3] [--preset P]
      [--set key=value ...] [--out benchmarks/results/runtime_overhead.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rlhp.algos.trainer import OnPolicyTrainer
from rlhp.config import load_config
from rlhp.provenance import code_version
from rlhp.runtime.loop import PreferenceRun

LOOP_PHASES = ("first_rollout", "sampling", "learner_update", "driver", "checkpoints")


def runtime_trial(preset: str, overrides: list[str], scratch: Path) -> dict:
    cfg = load_config(preset, [f"tracking.uri=sqlite:///{scratch}/mlflow.db",
                               f"runtime.runs_dir={scratch}/runs", "runtime.eval_episodes=0",
                               *overrides])  # fmt: skip
    t0 = time.perf_counter()
    result = PreferenceRun(cfg).run()
    whole = time.perf_counter() - t0
    loop = sum(result.phases.get(p, 0.0) for p in LOOP_PHASES)
    return {
        "run_id": result.run_id,  # in the MLflow store under scratch
        "steps": result.global_step,
        "eval_return": result.eval_return,  # nan unless overrides ask for evaluation
        "final_true_return": result.mean_recent_return,
        "loop_sps": result.global_step / loop,
        "whole_sps": result.global_step / whole,
        "wall_s": whole,
        "phases": {p: round(result.phases.get(p, 0.0), 2) for p in LOOP_PHASES},
    }


def trainer_trial(preset: str, overrides: list[str]) -> dict:
    cfg = load_config(preset, overrides)
    t0 = time.perf_counter()
    trainer = OnPolicyTrainer(cfg)
    t1 = time.perf_counter()
    steps = 0
    for stats in trainer.train():
        steps = stats.global_step
    t2 = time.perf_counter()
    trainer.close()
    return {"steps": steps, "loop_sps": steps / (t2 - t1), "whole_sps": steps / (t2 - t0)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="mujoco_true_reward_ppo")
    p.add_argument("--steps", type=int, default=40_960)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/runtime_overhead.json"))
    args = p.parse_args()
    overrides = [f"total_steps={args.steps}", *args.overrides]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            order = ("runtime", "trainer") if repeat % 2 == 0 else ("trainer", "runtime")
            row: dict = {"repeat": repeat}
            for which in order:
                torch.set_num_threads(1)
                row[which] = (runtime_trial(args.preset, overrides, Path(scratch)) if which == "runtime"
                              else trainer_trial(args.preset, overrides))  # fmt: skip
            row["loop_ratio"] = row["runtime"]["loop_sps"] / row["trainer"]["loop_sps"]
            row["whole_ratio"] = row["runtime"]["whole_sps"] / row["trainer"]["whole_sps"]
            rows.append(row)
            print(f"repeat {repeat}: loop env steps/s runtime {row['runtime']['loop_sps']:.0f}, "
                  f"trainer {row['trainer']['loop_sps']:.0f} ({row['loop_ratio']:.3f}x); "
                  f"whole run {row['whole_ratio']:.3f}x; runtime phases "
                  f"{row['runtime']['phases']}", flush=True)  # fmt: skip
    summary = {
        "preset": args.preset,
        "overrides": overrides,
        "code_version": code_version(),
        "median_loop_ratio": float(np.median([r["loop_ratio"] for r in rows])),
        "median_whole_ratio": float(np.median([r["whole_ratio"] for r in rows])),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    print(f"median: loop {summary['median_loop_ratio']:.3f}x the single-process trainer's env "
          f"steps/s, whole run {summary['median_whole_ratio']:.3f}x; {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
