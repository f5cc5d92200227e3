"""What a Hopper-v5 policy does, measured on its torso: for a run labelled only by an AI
judge (``teacher.kind=judge``, ``examples/judges.py:hopper_upright_and_forward``: "keep the
torso upright and move forward"), beside a true-reward run and the random policy.

For each run directory, the final policy acts deterministically for ``--episodes`` episodes
in the run's own env (fixed-length episodes, as trained) and we report, over every step:
the share of steps upright (torso height z > 0.8 and |angle| < 0.2, the judge's test), the
mean torso height and |angle|, the mean forward velocity, and the true return (Hopper's
reward, which the judge never sees). A judge run that learned its principle has a high
upright share and a positive forward velocity.

``--set KEY=VALUE`` changes the env the policies are scored in (not the policies), e.g.
``--set env.height_reward=0`` scores runs trained with the graded height term in the
preset's own reward units, so their true return compares with runs trained without it.

  python benchmarks/hopper_behaviour.py JUDGE_RUN_DIR TRUE_REWARD_RUN_DIR [...] [--episodes 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from rlhp.checkpoints import RunCheckpoint
from rlhp.config import apply_override, validate_config
from rlhp.envs import make_vector_env
from rlhp.errors import ConfigError
from rlhp.nn.acting import TorchPolicyActor
from rlhp.overrides import add_overrides_argument
from rlhp.runtime import report


def torso_statistics(cfg, act, episodes: int, seed: int) -> dict[str, float]:
    """Per-step torso statistics of sub-env 0 over ``episodes`` episodes of ``act``."""
    env = make_vector_env(cfg.env.model_copy(update={"num_envs": 1}), seed)
    obs, _ = env.reset(seed=seed)
    rows, returns, total = [], [], 0.0
    while len(returns) < episodes:
        rows.append(np.asarray(obs[0], dtype=np.float64)[[0, 1, 5]])  # z, angle, x velocity
        obs, reward, term, trunc, info = env.step(act(obs))
        total += float(info.get("true_reward", reward)[0])
        if term[0] or trunc[0]:
            returns.append(total)
            total = 0.0
    env.close()
    z, angle, vx = np.array(rows).T
    return {
        "upright_share": float(np.mean((z > 0.8) & (np.abs(angle) < 0.2))),
        "torso_height": float(np.mean(z)),
        "abs_angle": float(np.mean(np.abs(angle))),
        "forward_velocity": float(np.mean(vx)),
        "true_return": float(np.mean(returns)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dirs", type=Path, nargs="+")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=12345)
    add_overrides_argument(ap, help="change the scoring env, e.g. --set env.height_reward=0")
    args = ap.parse_args()
    rows = []
    for i, run_dir in enumerate(args.run_dirs):
        data = yaml.safe_load((run_dir / "config.yaml").read_text())
        for override in args.overrides:
            apply_override(data, override)
        cfg = validate_config(data)
        actor = TorchPolicyActor(report.load_policy(cfg, RunCheckpoint.load(run_dir).policy))
        space = make_vector_env(cfg.env.model_copy(update={"num_envs": 1}), 0).single_action_space

        def act(obs, actor=actor, space=space):
            return np.clip(actor.mode(obs), space.low, space.high)

        who = (
            f"{cfg.runtime.reward}/{cfg.teacher.kind}"
            if cfg.runtime.reward == "preferences"
            else "true_reward"
        )
        rows.append((run_dir.name[:8], who, torso_statistics(cfg, act, args.episodes, args.seed)))
        if i == 0:
            space.seed(args.seed)
            rows.append(("-", "random policy", torso_statistics(
                cfg, lambda obs, space=space: np.stack([space.sample()]), args.episodes, args.seed)))  # fmt: skip
    print(
        "| run | labelled by | upright share | torso height | abs angle | forward vel. | true return |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, who, s in rows:
        print(f"| {name} | {who} | {s['upright_share']:.2f} | {s['torso_height']:.2f} | "
              f"{s['abs_angle']:.3f} | {s['forward_velocity']:.2f} | {s['true_return']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    try:
        main()
    except ConfigError as err:  # a bad --set names the field, without a traceback
        raise SystemExit(f"hopper_behaviour.py: {err}") from None
