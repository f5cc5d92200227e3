"""The CI learning check over several seeds: the per-seed figures of its docstring.

Runs ``tests/runtime/test_learning_from_preferences.py``'s settings (InvertedPendulum-v5,
50-step fixed-length episodes, 150 labels, 57k steps, lockstep, constant learning rate) for
each seed, one after the other on one local Ray, with extra overrides for the row, and
prints eval return and labels per seed against the check's bar. Each run keeps its MLflow
store and run directory under ``--out``.

    python benchmarks/ci_check_seeds.py --seeds 0 1 2 3                  # oracle labels
    python benchmarks/ci_check_seeds.py --seeds 0 1 --set teacher.kind=shuffled
    python benchmarks/ci_check_seeds.py --seeds 0 --set learner.backend=rllib
    python benchmarks/ci_check_seeds.py --seeds 0 1 --set learner.ppo.anneal_lr=true

About 2.5 minutes per seed on 2 cores (lockstep: the result does not depend on the load).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.runtime.test_learning_from_preferences import BAR, SETTINGS

from rlhp.config import load_config
from rlhp.runtime.loop import PreferenceRun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override for every seed (repeatable)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="ci-check-seeds-"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    for seed in args.seeds:
        where = out / f"seed{seed}"
        overrides = [
            f"tracking.uri=sqlite:///{where}/mlflow.db",
            f"runtime.runs_dir={where}/runs",
            *SETTINGS,
            f"seed={seed}",
            *args.overrides,
        ]
        t0 = time.perf_counter()
        result = PreferenceRun(load_config("inverted_pendulum_true_reward", overrides)).run()
        row = {"seed": seed, "eval_return": result.eval_return, "labels": result.labels,
               "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\nsettings: the CI check's, plus {args.overrides or 'nothing'}; bar {BAR:.0f}")
    print("| seed | eval return | labels | reaches the bar |\n| ---: | ---: | ---: | --- |")
    for r in rows:
        reach = "yes" if r["eval_return"] >= BAR else "no"
        print(f"| {r['seed']} | {r['eval_return']:.1f} | {r['labels']} | {reach} |")
    print(f"\nruns kept in {out}")


if __name__ == "__main__":
    main()
