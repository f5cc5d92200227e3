"""A learned reward's falling-regime trap on Hopper-v5: local optimum or wrong ranking?
(issue "learning fidelity", item 3; ``benchmarks/README.md``, "The early phase").

PPO from scratch on a preference run's final reward model, frozen, can stay in the falling
regime with a seed that the true reward does not trap. This trains, with one seed and
budget, PPO on that frozen r_hat and PPO on the true reward (the run's own settings), rolls
both final policies out deterministically and scores every rollout with the same frozen
r_hat. If r_hat prefers the true-reward policy's rollouts, the trap is a local optimum of
r_hat that PPO does not leave; if it prefers the trapped policy's, r_hat ranks them wrongly.
It also says what each policy does: steps upright, forward speed while upright, and the
mean r_hat of an upright and of a fallen step.

    python benchmarks/reward_trap.py RUN_DIR --seed 2 [--steps 250000] [--out trap.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from initial_reward_model import is_upright
from rlhp.algos.trainer import OnPolicyTrainer
from rlhp.config import RunConfig
from rlhp.envs import make_vector_env
from rlhp.nn.acting import TorchPolicyActor
from rlhp.preference.ensemble import RewardEnsemble
from train_on_frozen_reward import frozen_reward


def trained(cfg: RunConfig, reward_fn: RewardEnsemble | None) -> torch.nn.Module:
    trainer = OnPolicyTrainer(cfg)
    trainer.learner.reward_fn = reward_fn  # None: the true reward
    for _ in trainer.train():
        pass
    trainer.close()
    return trainer.policy.cpu().eval()


def behaviour(
    cfg: RunConfig, policy: torch.nn.Module, r_hat: RewardEnsemble, episodes: int
) -> dict:
    """Deterministic episodes of ``policy`` in the run's env, scored with ``r_hat``."""
    env_cfg = cfg.env.model_copy(update={"num_envs": 1, "render_clips": True})
    env = make_vector_env(env_cfg, cfg.seed + 10_000)
    obs, infos = env.reset(seed=cfg.seed + 10_000)
    actor, space = TorchPolicyActor(policy), env.single_action_space
    rows = []
    for _ in range(episodes):
        obs_, act_, rew_, qpos, qvel = [], [], [], [], []
        while True:
            action = np.clip(actor.mode(obs), space.low, space.high)
            obs_.append(obs[0]), act_.append(action[0]), qpos.append(infos["qpos"][0])
            qvel.append(infos["qvel"][0])
            obs, r, term, trunc, infos = env.step(action)
            rew_.append(r[0])
            if term[0] or trunc[0]:
                break
        velocity = np.stack(qvel)
        up = is_upright(np.stack(qpos), velocity)
        r = r_hat.predict(np.stack(obs_), np.stack(act_))
        rows.append(
            {
                "true_return": float(np.sum(rew_)),
                "r_hat_return": float(r.sum()),
                "upright_steps": int(up.sum()),
                "first_fall": int(np.argmin(up)) if not up.all() else len(up),
                "speed_upright": float(velocity[up, 0].mean()) if up.any() else 0.0,
                "r_hat_upright": float(r[up].mean()) if up.any() else float("nan"),
                "r_hat_fallen": float(r[~up].mean()) if (~up).any() else float("nan"),
            }
        )
    env.close()
    return {k: float(np.nanmean([row[k] for row in rows])) for k in rows[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run_dir", type=Path, help="a finished preference run's directory")
    p.add_argument("--seed", type=int, help="policy seed (default: the run's)")
    p.add_argument("--steps", type=int, default=250_000)
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--out", type=Path, help="write the result here as JSON")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg, r_hat = frozen_reward(args.run_dir, args.steps, args.seed)
    result = {"reward_run": str(args.run_dir), "seed": cfg.seed, "steps": args.steps}
    for name, reward_fn in (("frozen_r_hat", r_hat), ("true_reward", None)):
        result[name] = behaviour(cfg, trained(cfg, reward_fn), r_hat, args.episodes)
        print(name, json.dumps({k: round(v, 3) for k, v in result[name].items()}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
