"""Does a reward that undervalues being upright trap PPO on Hopper-v5? (issue "learning
fidelity", item 3: the early phase).

A first reward model fitted on random-policy clips values being upright at about half of
what the true reward does, relative to forward velocity
(``benchmarks/initial_reward_model.py``). This trains PPO on the *true* reward with that
ratio built in, beside PPO on the full true reward, same seeds and budget, one process:
the upright bonus and the fixed-length episodes' penalty for not being upright are both
scaled by ``w`` (``env.make_kwargs.healthy_reward=w``, ``env.termination_penalty=w``), so
the gap between an upright and a fallen step is 2w while forward velocity counts as before.
Every policy is evaluated on the *unchanged* task (the ``mujoco_true_reward_ppo`` preset's env
in its binary form, as the presets had it when these rows ran)
every ``--eval-every`` steps and at the end, so the rows compare.

    python benchmarks/hopper_upright_weight.py --weights 1 0.5 --seeds 0 1 2
    python benchmarks/hopper_upright_weight.py --table      # print the table of the files

Each trial writes one JSON file to ``--out`` and is skipped when its file exists, so two
processes with disjoint ``--seeds`` share the work and a stopped run resumes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from rlhp.algos.trainer import OnPolicyTrainer
from rlhp.config import load_config
from rlhp.runtime import report

PRESET = "mujoco_true_reward_ppo"
# The presets' Hopper reward when these rows ran (before 2026-12-06): Hopper-v5's binary
# healthy term (bonus 1) plus the termination penalty 1, no torso-height term.
BINARY_HOPPER = ["env.height_reward=0", "env.termination_penalty=1", "env.make_kwargs={}"]


def common(steps: int, seed: int) -> list[str]:
    # The settings of benchmarks/sweeps/hopper_early.yaml's rows: 250k steps, constant rate.
    return [*BINARY_HOPPER, f"total_steps={steps}", f"seed={seed}", "learner.ppo.anneal_lr=false"]


def trial(w: float, seed: int, steps: int, eval_every: int, episodes: int) -> dict:
    """PPO on the true reward with the upright term scaled by ``w``; evaluations on the
    unchanged task."""
    cfg = load_config(
        PRESET,
        [
            *common(steps, seed),
            f"env.make_kwargs.healthy_reward={w}",
            f"env.termination_penalty={w}",
        ],
    )
    task = load_config(PRESET, common(steps, seed))  # the unchanged task, for evaluation
    trainer = OnPolicyTrainer(cfg)
    t0, evals, next_eval = time.time(), [], eval_every
    for stats in trainer.train():
        if stats.global_step >= next_eval or stats.global_step >= steps:
            returns = report.evaluate(task, trainer.policy.cpu().eval(), 5)
            trainer.policy.train()
            evals.append((stats.global_step, float(np.mean(returns))))
            print(
                f"w={w} seed={seed} step {stats.global_step}: eval {evals[-1][1]:.0f}", flush=True
            )
            next_eval += eval_every
    final = report.evaluate(task, trainer.policy.cpu().eval(), episodes)
    trainer.close()
    return {
        "w": w,
        "seed": seed,
        "steps": steps,
        "eval_return": float(np.mean(final)),
        "eval_returns": [float(r) for r in final],
        "evals_5_episodes": evals,
        "wall_s": time.time() - t0,
    }


def table(out: Path) -> None:
    rows: dict[float, list[dict]] = {}
    for f in sorted(out.glob("w*-seed*.json")):
        r = json.loads(f.read_text())
        rows.setdefault(r["w"], []).append(r)
    print(
        "| w (upright term) | eval return per seed | median | eval (5 ep.) at 50k / 100k / 150k / 200k per seed |"
    )
    print("| --- | --- | ---: | --- |")
    for w in sorted(rows, reverse=True):
        rs = sorted(rows[w], key=lambda r: r["seed"])
        finals = " ".join(f"{r['eval_return']:.0f}" for r in rs)
        curves = "; ".join(
            " / ".join(f"{v:.0f}" for s, v in r["evals_5_episodes"] if s <= 200_000 + 2048)
            for r in rs
        )
        median = np.median([r["eval_return"] for r in rs])
        print(
            f"| {w:g} | {finals} (seeds {' '.join(str(r['seed']) for r in rs)}) | {median:.0f} | {curves} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--weights", type=float, nargs="+", default=[1.0, 0.5])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=250_000)
    p.add_argument("--eval-every", type=int, default=50_000)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/upright_weight"))
    p.add_argument("--table", action="store_true", help="only print the table of --out's files")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table:
        torch.set_num_threads(1)
        for seed in args.seeds:  # a seed's rows side by side, so the machine's noise hits both
            for w in args.weights:
                path = args.out / f"w{w:g}-seed{seed}.json"
                if path.exists():
                    continue
                result = trial(w, seed, args.steps, args.eval_every, args.episodes)
                path.write_text(json.dumps(result, indent=1))
    table(args.out)


if __name__ == "__main__":
    main()
