"""PPO (or TRPO) from scratch on a preference run's *final* reward model (or a kept earlier
version, ``--version``), frozen.

Separates "the learned reward is wrong" from "learning while it is learned goes wrong":
if the final r_hat trains a good policy from scratch, the reward model is fine and the
problem is in the online process (docs/preferences.md, "Why preferences fell short on
Hopper"). Same config as the run (env changes, learner, normalization), no labels, no Ray.

  python benchmarks/train_on_frozen_reward.py RUN_DIR [--steps 500000] [--episodes 20]
      [--seed N] [--out RESULT.json] [--version V]

``--seed`` trains with another seed than the run's, so that the reward model and the
policy's seed can be crossed; ``--out`` keeps the result (evaluation returns, training
curve) as one JSON file.

Prints the training return every 20 iterations and the evaluation return (mean true
return of deterministic episodes) at the end.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from rlhp.algos.trainer import OnPolicyTrainer
from rlhp.checkpoints import (
    REWARD_MODEL,
    RewardModelCheckpoint,
    reward_model_version_path,
    reward_model_versions,
)
from rlhp.config import RunConfig, load_config
from rlhp.envs import make_vector_env
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.networks import InputSpec
from rlhp.runtime import report


def frozen_reward(
    run_dir: Path,
    steps: int | None = None,
    seed: int | None = None,
    overrides: tuple[str, ...] | list[str] = (),
    version: int | None = None,
) -> tuple[RunConfig, RewardEnsemble]:
    """The run's config (``steps`` env steps and ``seed`` if given, then ``overrides``) and
    its final reward model, or the kept ``version`` of it (``reward_model.keep_versions``)."""
    path = run_dir / REWARD_MODEL
    if version is not None:
        path = reward_model_version_path(run_dir, version)
        if not path.exists():
            kept = list(reward_model_versions(run_dir))
            raise SystemExit(
                f"{run_dir}: no reward model version {version}; kept: "
                f"{kept or 'none (the run had reward_model.keep_versions=false)'}"
            )
    saved = RewardModelCheckpoint.load(path)
    if saved is None:
        raise SystemExit(f"{run_dir}: no {REWARD_MODEL}; give a preference run's directory")
    update = [f"total_steps={steps}"] if steps is not None else []
    update += [f"seed={seed}"] if seed is not None else []
    cfg = load_config(str(run_dir / "config.yaml"), [*update, *overrides])
    env = make_vector_env(cfg.env.model_copy(update={"num_envs": 1}), cfg.seed)
    spec = InputSpec.from_spaces(env.single_observation_space, env.single_action_space)
    env.close()
    ensemble = RewardEnsemble(spec, cfg.reward_model)
    ensemble.load_state_dict(saved.model)
    return cfg, ensemble


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("run_dir", type=Path, help="a finished preference run's directory")
    p.add_argument("--steps", type=int, default=500_000)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, help="policy seed (default: the run's)")
    p.add_argument("--out", type=Path, help="write the result here as JSON")
    p.add_argument("--version", type=int, help="a kept reward model version (default: final)")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg, ensemble = frozen_reward(args.run_dir, args.steps, args.seed, version=args.version)
    trainer = OnPolicyTrainer(cfg)
    trainer.learner.reward_fn = ensemble  # frozen: never refitted
    t0 = time.time()
    curve: list[tuple[int, float]] = []
    for stats in trainer.train():
        curve.append((stats.global_step, stats.mean_recent_return))
        if stats.iteration % 20 == 0:
            print(f"step {stats.global_step}: true return {stats.mean_recent_return:.1f} "
                  f"({time.time() - t0:.0f} s)", flush=True)  # fmt: skip
    returns = report.evaluate(cfg, trainer.policy.cpu().eval(), args.episodes)
    print(f"evaluation return {np.mean(returns):.1f} +- {np.std(returns):.1f} "
          f"({args.episodes} episodes, {args.steps} steps on the frozen final r_hat)")  # fmt: skip

    if args.out:
        result = {
            "reward_run": str(args.run_dir),
            "seed": cfg.seed,
            "steps": args.steps,
            "eval_returns": [float(r) for r in returns],
            "eval_return": float(np.mean(returns)),
            "curve": curve,
            "wall_s": time.time() - t0,
        }
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
