"""rlhp's own policy process against RLlib's, side by side in one script (issue "cluster-scale
Atari", item 5): return and env steps/s on the true reward, same hyperparameters where they
overlap (``rlhp.rllib_backend.process`` maps rlhp's PPO settings onto RLlib's and lists the
two places the losses differ).

Rows, each a full ``rlhp train`` run (``rlhp.runtime.loop.PreferenceRun``) on the true reward:

- ``hopper``: ``mujoco_true_reward_ppo`` (Hopper-v5, PPO), ``--hopper-steps`` (default 1M), on
  ``learner.backend=rlhp`` and ``learner.backend=rllib``;
- ``pong``: ``runtime.reward=true_reward``, ``--pong-steps`` (default 500k): rlhp PPO and
  RLlib PPO on ``atari_synthetic`` (Pong, CleanRL's Atari PPO), RLlib APPO on
  ``atari_synthetic_appo`` (as ``gpu_atari.sh``: RLlib's tuned Pong example).

Per row (``runtime_overhead.runtime_trial``): eval return (``--eval-episodes``), the
training return at the end, and env steps/s over the training loop (the run's phases
``first_rollout``, ``learner_update``, ``sampling``, ``driver``, ``checkpoints``) and over
the whole run (start-up included); for the RLlib rows also the medians of RLlib's own
timers of a training step (sampling, Learner update, weight sync). For each seed the rows of a task run one after another
in an order that alternates by seed, so the machine's load hits them alike; every finished row persists as one JSON file under
``--out`` and a rerun skips it (long runs fill the table over several sessions).

  python benchmarks/backends.py [--tasks hopper pong] [--seeds 0 1 2]
      [--hopper-steps 1000000] [--pong-steps 500000] [--out benchmarks/results/backends]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from rlhp.provenance import code_version
from runtime_overhead import runtime_trial

# task -> (overrides every row shares, row -> (preset, the row's own overrides))
TASKS: dict[str, tuple[list[str], dict[str, tuple[str, list[str]]]]] = {
    "hopper": ([], {
        "rlhp-ppo": ("mujoco_true_reward_ppo", ["learner.backend=rlhp"]),
        "rllib-ppo": ("mujoco_true_reward_ppo", ["learner.backend=rllib"]),
    }),
    "pong": (["runtime.reward=true_reward"], {
        "rlhp-ppo": ("atari_synthetic", ["learner.backend=rlhp"]),
        "rllib-ppo": ("atari_synthetic", ["learner.backend=rllib"]),
        "rllib-appo": ("atari_synthetic_appo", []),
    }),
}  # fmt: skip


def rllib_timers(scratch: Path, run_id: str) -> dict[str, float]:
    """Median over a run's iterations of RLlib's own timers of one training step (seconds:
    EnvRunner sampling, Learner update, weights to the EnvRunners); empty for rlhp rows."""
    from mlflow import MlflowClient

    from rlhp.rllib_backend.process import RLLIB_TIMERS

    client = MlflowClient(f"sqlite:///{scratch}/mlflow.db")
    names = [f"rllib/{name}" for name in RLLIB_TIMERS.values()]
    histories = {name: client.get_metric_history(run_id, name) for name in names}
    return {name: statistics.median(m.value for m in history)
            for name, history in histories.items() if history}  # fmt: skip


def table(out: Path) -> str:
    """The markdown table of every finished row under ``out``: medians over seeds."""
    rows: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(out.glob("*.json")):
        r = json.loads(path.read_text())
        rows.setdefault((r["task"], r["row"]), []).append(r)
    lines = ["| task | policy process | seeds | eval return per seed | median | loop env steps/s "
             "(median) | whole-run env steps/s (median) | code |", "|---|---|---|---|---:|---:|---:|---|"]  # fmt: skip
    for (task, row), rs in sorted(rows.items()):
        rs.sort(key=lambda r: r["seed"])
        evals = [r["eval_return"] for r in rs]
        lines.append(
            f"| {task} | {row} | {' '.join(str(r['seed']) for r in rs)} | "
            f"{' '.join(f'{e:.1f}' for e in evals)} | {statistics.median(evals):.1f} | "
            f"{statistics.median(r['loop_sps'] for r in rs):.0f} | "
            f"{statistics.median(r['whole_sps'] for r in rs):.0f} | "
            f"{' '.join(sorted({r['code_version'][:7] for r in rs}))} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=["hopper", "pong"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--hopper-steps", type=int, default=1_000_000)
    p.add_argument("--pong-steps", type=int, default=500_000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an override for every row (e.g. runtime.num_rollout_workers=2)",
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/backends"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    steps = {"hopper": args.hopper_steps, "pong": args.pong_steps}
    with tempfile.TemporaryDirectory() as scratch:
        for task in args.tasks:
            shared, rows = TASKS[task]
            for seed in args.seeds:
                order = list(rows) if seed % 2 == 0 else list(reversed(rows))
                for row in order:
                    path = args.out / f"{task}-{row}-seed{seed}.json"
                    if path.exists():
                        continue
                    preset, own = rows[row]
                    overrides = [*shared, *own, f"seed={seed}",
                                 f"total_steps={steps[task]}",
                                 f"runtime.eval_episodes={args.eval_episodes}",
                                 *args.overrides]  # fmt: skip
                    result = runtime_trial(preset, overrides, Path(scratch))
                    result["rllib_timers"] = rllib_timers(Path(scratch), result["run_id"])
                    record = {"task": task, "row": row, "seed": seed, "preset": preset,
                              "overrides": overrides, "code_version": code_version(),
                              **result}  # fmt: skip
                    path.write_text(json.dumps(record, indent=1))
                    print(f"{task} {row} seed {seed}: eval {result['eval_return']:.1f}, loop "
                          f"{result['loop_sps']:.0f} env steps/s, whole run "
                          f"{result['whole_sps']:.0f}; {path}", flush=True)  # fmt: skip
    print(table(args.out))


if __name__ == "__main__":
    main()
