"""CI-sized learning checks: PPO and TRPO solve InvertedPendulum-v5 on its true reward."""

import gymnasium as gym
import numpy as np
import pytest

from rlhp.algos.trainer import OnPolicyTrainer, evaluate_policy
from rlhp.config import load_config


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "trpo"])
def test_inverted_pendulum_reaches_900_within_100k_steps(algo):
    # TRPO steps to the trust-region boundary every update. Once the pole stays up for the
    # whole 1000-step episode, a 1024-step batch holds one episode and its advantages are
    # noise, so those steps are a random walk: on the install of 2026-12-05 seeds 0 and 1
    # collapsed (eval 406 and 11 of 1000; seeds 2-5 reached 1000). With 2048-step batches
    # seeds 0-7 all reached 1000. The TRPO papers use batches of thousands of steps.
    batch = ["learner.rollout_steps=2048"] if algo == "trpo" else []
    cfg = load_config(
        "inverted_pendulum_true_reward", [f"learner.algo={algo}", "device=cpu", *batch]
    )
    assert cfg.total_steps == 100_000 and cfg.seed == 0
    trainer = OnPolicyTrainer(cfg)
    for _ in trainer.train():
        pass
    assert trainer.global_step <= 100_000 + trainer.steps_per_iteration
    returns = evaluate_policy(
        trainer.policy, gym.make("InvertedPendulum-v5"), episodes=10, seed=123
    )
    print(f"{algo}: mean return {np.mean(returns):.1f} after {trainer.global_step} steps")
    assert np.mean(returns) >= 900
