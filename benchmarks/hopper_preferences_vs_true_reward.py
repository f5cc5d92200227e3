"""The paper's claim on MuJoCo: RL from ~700 synthetic preference labels roughly matches RL
on the true reward (Christiano et al. 2017, section 3.1, figure 1). Same runtime, same PPO,
same environment changes (fixed-length episodes, termination as a penalty, no control cost):
``mujoco_synthetic`` against ``mujoco_true_reward``, one after the other in this script.

  python benchmarks/hopper_preferences_vs_true_reward.py [--steps 1000000] [--seed 0]

Prints the evaluation return (mean true return of 20 deterministic episodes, paper changes
on) of each run, their ratio and wall times, and writes benchmarks/results/hopper_parity.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rlhp.config import load_config
from rlhp.runtime.events import Progress
from rlhp.runtime.loop import PreferenceRun

RESULTS = Path(__file__).parent / "results"


def run(preset: str, steps: int, seed: int, work: Path) -> dict:
    cfg = load_config(
        preset,
        [f"total_steps={steps}", f"seed={seed}", "runtime.eval_episodes=20",
         f"tracking.uri=sqlite:///{work}/mlflow.db", f"runtime.runs_dir={work}/runs"],
    )  # fmt: skip
    t0 = time.perf_counter()

    def progress(event) -> None:
        if isinstance(event, Progress) and event.iteration % 50 == 0:
            print(f"  {preset} step {event.global_step}: true return {event.true_episode_return:.0f}"
                  f" labels {event.labels}", flush=True)  # fmt: skip

    result = PreferenceRun(cfg).run(progress)
    return {
        "preset": preset,
        "steps": result.global_step,
        "labels": result.labels,
        "eval_return": result.eval_return,
        "recent_train_return": result.mean_recent_return,
        "wall_s": time.perf_counter() - t0,
        "run_id": result.run_id,
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--presets", default="mujoco_true_reward,mujoco_synthetic",
        help="run only these (comma list); the ratio uses the newest result file of each",
    )  # fmt: skip
    args = p.parse_args()
    RESULTS.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rlhp-hopper-"))
    for preset in args.presets.split(","):
        result = run(preset, args.steps, args.seed, work)
        (RESULTS / f"hopper_parity_{preset}_seed{args.seed}.json").write_text(
            json.dumps(result, indent=2)
        )
    out = []
    for preset in ("mujoco_true_reward", "mujoco_synthetic"):
        path = RESULTS / f"hopper_parity_{preset}_seed{args.seed}.json"
        if path.exists():
            out.append(json.loads(path.read_text()))
    print(
        f"\n{'preset':20s} {'labels':>6s} {'eval return':>12s} {'train return':>13s} {'wall s':>7s}"
    )
    for r in out:
        print(
            f"{r['preset']:20s} {r['labels']:6d} {r['eval_return']:12.0f} {r['recent_train_return']:13.0f} {r['wall_s']:7.0f}"
        )
    if len(out) == 2:
        print(
            f"preferences / true reward (eval return): {out[1]['eval_return'] / out[0]['eval_return']:.2f}"
        )


if __name__ == "__main__":
    main()
