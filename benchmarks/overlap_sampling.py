"""Sampling during the update against sampling and updating in turn, side by side (issue
"end-to-end speed", item 3: ``runtime.overlap_sampling``, on by default only if the returns
stay within noise).

Each repeat runs ``rlhp train``'s loop (``rlhp.runtime.loop.PreferenceRun``) twice on the same
preset, seed and budget: once with ``runtime.overlap_sampling=false`` (the paper's order: the
workers sample, then the learner updates) and once with ``true`` (the workers collect the
next rollout with the policy of the last iteration while the learner updates; PPO's and
TRPO's ratio against the behaviour log-probabilities corrects the one-version lag). The two
alternate which goes first, so the machine's load hits both alike. Per run:

- *loop* env steps/s (the loop's phases, as ``runtime_overhead.py`` counts them) and the
  whole run's wall time (actors, the loop and the end-of-run report; one local Ray is
  started before the first run and shared, so no run's time holds Ray's start);
- the phases ``sampling`` (waiting for the workers) and ``learner_update``;
- the eval return (``--eval-episodes`` deterministic episodes, 0 = none) and the mean
  training return of the last episodes.

Repeat r uses seed ``--seed + r`` for both modes, so each pair differs only in the mode.

  python benchmarks/overlap_sampling.py --preset mujoco_true_reward_ppo --steps 40960 --repeats 5
  python benchmarks/overlap_sampling.py --preset default --steps 125000 --repeats 3 \\
      --eval-episodes 20 --out benchmarks/results/overlap_default.json
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import torch

from rlhp.provenance import code_version
from rlhp.runtime.cluster import connect
from runtime_overhead import runtime_trial

MODES = ("in_turn", "overlap")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", default="mujoco_true_reward_ppo")
    p.add_argument("--steps", type=int, default=40_960)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-episodes", type=int, default=0)
    p.add_argument("--modes", default=",".join(MODES), help="comma list of in_turn, overlap: "
                   "one mode per process runs the two side by side as two processes")  # fmt: skip
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/overlap_sampling.json"))
    args = p.parse_args()
    modes = tuple(m for m in MODES if m in args.modes.split(","))
    rows: list[dict] = []
    connect(None)  # a local Ray for all runs, so that no run's wall time holds its start
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            row: dict = {"repeat": repeat, "seed": args.seed + repeat}
            for mode in modes if repeat % 2 == 0 else modes[::-1]:
                torch.set_num_threads(1)
                overrides = [f"total_steps={args.steps}", f"seed={args.seed + repeat}",
                             f"runtime.overlap_sampling={mode == 'overlap'}", *args.overrides,
                             f"runtime.eval_episodes={args.eval_episodes}"]  # fmt: skip
                row[mode] = runtime_trial(args.preset, overrides, Path(scratch))
            if len(modes) == 2:
                row["loop_ratio"] = row["overlap"]["loop_sps"] / row["in_turn"]["loop_sps"]
                row["wall_ratio"] = row["in_turn"]["wall_s"] / row["overlap"]["wall_s"]
            rows.append(row)
            print(f"repeat {repeat} (seed {row['seed']}): loop env steps/s "
                  + ", ".join(f"{m} {row[m]['loop_sps']:.0f}" for m in modes)
                  + f" ({row.get('loop_ratio', math.nan):.2f}x); wall "
                  + ", ".join(f"{m} {row[m]['wall_s']:.1f} s" for m in modes)
                  + "; eval return "
                  + ", ".join(f"{m} {row[m]['eval_return']:.0f}" for m in modes)
                  + "; phases " + "; ".join(f"{m} {row[m]['phases']}" for m in modes),
                  flush=True)  # fmt: skip

    def median(mode: str, key: str) -> float:
        return float(np.median([r[mode][key] for r in rows]))

    keys = ("loop_sps", "wall_s", "eval_return", "final_true_return")
    summary = {
        "preset": args.preset,
        "steps": args.steps,
        "overrides": args.overrides,
        "code_version": code_version(),
        "median_loop_ratio": float(np.median([r.get("loop_ratio", math.nan) for r in rows])),
        "median_wall_ratio": float(np.median([r.get("wall_ratio", math.nan) for r in rows])),
        "median": {m: {k: median(m, k) for k in keys} for m in modes},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    for m in modes:
        print(f"{m:8s} median: loop {summary['median'][m]['loop_sps']:.0f} env steps/s, wall "
              f"{summary['median'][m]['wall_s']:.1f} s, eval return "
              f"{summary['median'][m]['eval_return']:.1f}, training return "
              f"{summary['median'][m]['final_true_return']:.1f}")  # fmt: skip
    print(f"overlap / in turn: loop {summary['median_loop_ratio']:.2f}x, whole run "
          f"{summary['median_wall_ratio']:.2f}x faster; {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
