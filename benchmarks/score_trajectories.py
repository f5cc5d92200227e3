"""Score rollouts of several policies with a run's learned reward, next to their true return.

Tells whether a preference run's reward model ranks behaviour correctly (then a weak policy
is an optimization problem) or not (then it is a reward-learning problem).

  python benchmarks/score_trajectories.py --reward-run RUN_DIR [--policy-run RUN_DIR ...]

Each RUN_DIR is an ``rlhp_runs/<RUN_ID>`` directory. Rollouts use the reward run's
environment (paper changes included), 1000 deterministic steps from the same seed; a random
policy is always scored too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import yaml

from rlhp.checkpoints import REWARD_MODEL, RewardModelCheckpoint, RunCheckpoint
from rlhp.config import validate_config
from rlhp.envs import make_vector_env
from rlhp.nn.acting import TorchPolicyActor
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.networks import InputSpec
from rlhp.runtime import report


def rollout(env, act, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    obs, _ = env.reset(seed=1)
    obs_seq, A, R = [], [], []
    for _ in range(steps):
        a = np.clip(act(obs), env.single_action_space.low, env.single_action_space.high)
        obs_seq.append(obs[0])
        A.append(a[0])
        obs, _, _, _, info = env.step(a)
        R.append(info["true_reward"][0])
    return np.array(obs_seq, np.float32), np.array(A, np.float32), np.array(R)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--reward-run", type=Path, required=True)
    p.add_argument("--policy-run", type=Path, action="append", default=[])
    p.add_argument("--steps", type=int, default=1000)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = validate_config(yaml.safe_load((args.reward_run / "config.yaml").read_text()))
    env = make_vector_env(cfg.env.model_copy(update={"num_envs": 1}), cfg.seed)
    ensemble = RewardEnsemble(
        InputSpec.from_spaces(env.single_observation_space, env.single_action_space),
        cfg.reward_model,
    )
    saved = RewardModelCheckpoint.load(args.reward_run / REWARD_MODEL)
    if saved is None:
        raise SystemExit(f"{args.reward_run}: no {REWARD_MODEL}; give a preference run's directory")
    ensemble.load_state_dict(saved.model)
    policies = {"random": lambda obs: env.action_space.sample()}
    for run in [args.reward_run, *args.policy_run]:
        run_cfg = validate_config(yaml.safe_load((run / "config.yaml").read_text()))
        checkpoint = RunCheckpoint.load(run)
        if checkpoint is None:
            raise SystemExit(f"{run}: no run checkpoint; give a finished run's directory")
        policy = report.load_policy(run_cfg, checkpoint.policy)

        policies[f"{run.name[:8]} ({run_cfg.runtime.reward})"] = TorchPolicyActor(policy).mode
    print(
        f"{'policy':28s} {'true return':>12s} {'sum r_hat':>10s} {'corr(r_hat, r) per step':>24s}"
    )
    for name, act in policies.items():
        obs_seq, A, R = rollout(env, act, args.steps)
        r_hat = ensemble.predict(obs_seq, A)
        print(f"{name:28s} {R.sum():12.1f} {r_hat.sum():10.1f} {np.corrcoef(r_hat, R)[0, 1]:24.2f}")


if __name__ == "__main__":
    main()
