"""The ``rlhp`` command.

``rlhp train [PRESET] [--set key=value ...]`` trains a policy; ``rlhp config`` prints the
resolved config; ``rlhp presets`` lists the presets. Bad input prints one line naming the
field and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rlhp.errors import ConfigError


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "preset", nargs="?", default=None, help="preset name or YAML path (default: default)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set learner.algo=trpo (repeatable)",
    )


def _cmd_presets(_: argparse.Namespace) -> int:
    from rlhp.config import preset_names

    print("\n".join(preset_names()))
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from rlhp.config import config_to_yaml, load_config

    print(config_to_yaml(load_config(args.preset, args.overrides)), end="")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import gymnasium as gym
    import numpy as np
    import torch
    from tqdm import tqdm

    from rlhp.algos.trainer import OnPolicyTrainer, evaluate_policy
    from rlhp.config import config_to_yaml, load_config

    cfg = load_config(args.preset, args.overrides)
    trainer = OnPolicyTrainer(cfg)
    run_dir = Path(args.out) / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(config_to_yaml(cfg))
    checkpoint = run_dir / "checkpoint.pt"
    every = max(1, trainer.num_iterations // 10)

    def save() -> None:
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({"config": cfg.model_dump(mode="json"), "trainer": trainer.state_dict()}, tmp)
        tmp.replace(checkpoint)  # atomic: a crash leaves the previous checkpoint intact

    print(
        f"rlhp: {cfg.learner.algo.upper()} on {cfg.env.id}, {cfg.total_steps} steps, true reward; run dir {run_dir}"
    )
    bar = tqdm(
        total=trainer.num_iterations * trainer.steps_per_iteration, unit="step", dynamic_ncols=True
    )
    try:
        for stats in trainer.train():
            bar.update(trainer.steps_per_iteration)
            bar.set_postfix(
                ret=f"{stats.mean_recent_return:.1f}", sps=f"{stats.env_steps_per_s:.0f}"
            )
            if stats.iteration % every == 0:
                save()
    except KeyboardInterrupt:
        bar.close()
        save()
        print(
            f"\nrlhp: interrupted at step {trainer.global_step}; checkpoint saved to {checkpoint}"
        )
        return 130
    bar.close()
    save()
    returns = evaluate_policy(
        trainer.policy, gym.make(cfg.env.id), args.eval_episodes, cfg.seed + 10_000
    )
    summary = {
        "env": cfg.env.id,
        "algo": cfg.learner.algo,
        "steps": trainer.global_step,
        "eval_return_mean": float(np.mean(returns)),
        "eval_return_std": float(np.std(returns)),
        "checkpoint": str(checkpoint),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"rlhp: done. {args.eval_episodes} evaluation episodes: return "
        f"{summary['eval_return_mean']:.1f} ± {summary['eval_return_std']:.1f}; checkpoint {checkpoint}"
    )
    trainer.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlhp", description="Deep RL from human preferences on Ray."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a policy")
    _add_config_args(train)
    train.add_argument(
        "--out", default="rlhp_runs", help="where run directories go (default rlhp_runs/)"
    )
    train.add_argument(
        "--eval-episodes", type=int, default=10, help="evaluation episodes at the end"
    )
    train.set_defaults(func=_cmd_train)
    config = sub.add_parser("config", help="print the resolved config as YAML")
    _add_config_args(config)
    config.set_defaults(func=_cmd_config)
    presets = sub.add_parser("presets", help="list the presets")
    presets.set_defaults(func=_cmd_presets)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:
        print(f"rlhp: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
