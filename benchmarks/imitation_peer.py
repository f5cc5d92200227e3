"""The `imitation` side of ``benchmarks/preference_vs_imitation.py``: one seed of the
``imitation`` library's ``PreferenceComparisons`` (Deep RL from human preferences with
synthetic labels) on Pendulum-v1, then 20 deterministic episodes on the TRUE reward.

It runs in its own virtual environment (``.venv-imitation``, made by the main script),
because ``imitation`` pins gymnasium 0.29 and stable-baselines3 2.2, which conflict with
rlhp's gymnasium. It does not import rlhp. Everything it logs goes to stderr; stdout gets
exactly one JSON line with the figures.

The preference side follows imitation's documented quickstart for Pendulum
(docs/algorithms/preference_comparisons.rst): BasicRewardNet with RunningNorm input,
RandomFragmenter, SyntheticGatherer, PreferenceModel,
BasicRewardTrainer with CrossEntropyRewardLoss (10 epochs, 4x on the first round),
AgentTrainer with exploration_frac 0.05, hyperbolic query schedule, 10% of the
comparisons up front, 60 iterations (the doc's "set to 60 for better performance").

The SB3 PPO agent takes rlhp's ``default`` preset instead of the quickstart's tuned values:
4 envs x 256 steps, 10 epochs of 16 minibatches (64), gamma 0.95, GAE lambda 0.95,
Adam 1e-3 annealed linearly to 0 over the whole run, clip 0.2 (ratio and value),
entropy 0, value coefficient 0.5, gradient norm 0.5, 64x64 tanh actor and critic,
running observation normalization, rewards scaled by the running std of the
discounted return (clipped at 10).

    .venv-imitation/bin/python benchmarks/imitation_peer.py --seed 0 --steps 125000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import tempfile
import time

N_ENVS = 4
N_STEPS = 256  # per env per PPO iteration, as rlhp's learner.rollout_steps
BATCH = N_ENVS * N_STEPS
MAX_ITERATIONS = 60  # the quickstart's recommended num_iterations


def plan(steps: int) -> tuple[int, int]:
    """(num_iterations, PPO rollouts per agent-training call) for a budget of ``steps``.

    ``PreferenceComparisons.train`` trains the agent num_iterations + 1 times (once per
    entry of its query schedule, which has the initial comparisons in front), and SB3
    rounds each call up to whole rollouts of BATCH steps. Passing
    ``total_timesteps = num_iterations * k * BATCH`` makes every call exactly k rollouts,
    so the agent trains on (num_iterations + 1) * k * BATCH steps, the nearest whole
    number of rollouts to ``steps`` (with at most MAX_ITERATIONS iterations).
    """
    rollouts = max(2, round(steps / BATCH))
    k = math.ceil(rollouts / (MAX_ITERATIONS + 1))
    return max(1, round(rollouts / k) - 1), k


def run(args: argparse.Namespace) -> dict:
    t_import = time.time()
    import gymnasium as gym
    import numpy as np
    import torch
    from imitation.algorithms import preference_comparisons
    from imitation.policies.base import NormalizeFeaturesExtractor
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util import logger as imit_logger
    from imitation.util.networks import RunningNorm
    from imitation.util.util import make_vec_env
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    import_s = time.time() - t_import
    torch.set_num_threads(args.threads)

    class StepCounter(gym.Wrapper):
        """Counts every environment step, whoever takes it (agent training, sampling for
        fragments, exploration)."""

        steps = 0

        def step(self, action):
            StepCounter.steps += 1
            return super().step(action)

    num_iterations, rollouts_per_call = plan(args.steps)
    total_timesteps = num_iterations * rollouts_per_call * BATCH
    train_steps = (num_iterations + 1) * rollouts_per_call * BATCH  # PPO updates x BATCH

    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    venv = make_vec_env(
        "Pendulum-v1",
        rng=rng,
        n_envs=N_ENVS,
        post_wrappers=[lambda env, _i: StepCounter(env)],
    )
    logdir = tempfile.TemporaryDirectory(prefix="imitation-peer-")
    logger = imit_logger.configure(logdir.name, ["log", "csv"])

    # --- preference learning: imitation's quickstart -------------------------------------
    reward_net = BasicRewardNet(
        venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm
    )
    fragmenter = preference_comparisons.RandomFragmenter(warning_threshold=0, rng=rng)
    gatherer = preference_comparisons.SyntheticGatherer(rng=rng)
    preference_model = preference_comparisons.PreferenceModel(reward_net)
    reward_trainer = preference_comparisons.BasicRewardTrainer(
        preference_model=preference_model,
        loss=preference_comparisons.CrossEntropyRewardLoss(),
        epochs=10,
        rng=rng,
    )

    # --- the agent: SB3 PPO with rlhp's default-preset hyperparameters -------------------
    agent_ref: dict[str, PPO] = {}

    def learning_rate(_progress_remaining: float) -> float:
        """rlhp's annealing over the whole run: lr * (1 - updates done / updates planned).
        SB3's own progress restarts at every AgentTrainer.train call (reset_num_timesteps
        is False but the target moves), so the schedule reads the agent's step count."""
        agent = agent_ref.get("agent")
        done = 0 if agent is None else max(agent.num_timesteps - BATCH, 0)
        return args.learning_rate * max(1.0 - done / train_steps, 0.0)

    agent = PPO(
        "MlpPolicy",
        env=venv,
        n_steps=N_STEPS,
        batch_size=BATCH // 16,
        n_epochs=10,
        gamma=0.95,
        gae_lambda=0.95,
        learning_rate=learning_rate,
        clip_range=0.2,
        clip_range_vf=0.2,
        normalize_advantage=True,
        ent_coef=0.0,
        vf_coef=0.5,
        max_grad_norm=0.5,
        policy_kwargs=dict(
            net_arch=dict(pi=[64, 64], vf=[64, 64]),
            activation_fn=torch.nn.Tanh,
            log_std_init=0.0,
            features_extractor_class=NormalizeFeaturesExtractor,
            features_extractor_kwargs=dict(normalize_class=RunningNorm),
        ),
        seed=args.seed,
        device="cpu",
    )
    agent_ref["agent"] = agent

    trajectory_generator = preference_comparisons.AgentTrainer(
        algorithm=agent,
        reward_fn=reward_net,
        venv=venv,
        exploration_frac=0.05,
        rng=rng,
        custom_logger=logger,
    )
    # rlhp's learner.normalize_reward: the reward the optimizer sees (here the learned
    # reward from AgentTrainer's RewardVecEnvWrapper) is divided by the running std of the
    # discounted return and clipped at 10. Trajectories for the fragments are still
    # recorded by AgentTrainer's BufferingWrapper underneath, with the true reward.
    agent.set_env(
        VecNormalize(
            trajectory_generator.venv,
            norm_obs=False,
            norm_reward=True,
            clip_reward=10.0,
            gamma=0.95,
        )
    )

    pref_comparisons = preference_comparisons.PreferenceComparisons(
        trajectory_generator,
        reward_net,
        num_iterations=num_iterations,
        fragmenter=fragmenter,
        preference_gatherer=gatherer,
        reward_trainer=reward_trainer,
        initial_epoch_multiplier=4,
        initial_comparison_frac=0.1,
        query_schedule="hyperbolic",
        custom_logger=logger,
    )
    t_train = time.time()
    stats = pref_comparisons.train(total_timesteps=total_timesteps, total_comparisons=args.labels)
    train_s = time.time() - t_train
    env_steps = StepCounter.steps

    # --- evaluation on the TRUE reward ---------------------------------------------------
    t_eval = time.time()
    eval_env = DummyVecEnv([lambda: Monitor(gym.make("Pendulum-v1"))])
    eval_env.seed(args.seed + 10_000)
    returns, _lengths = evaluate_policy(
        agent,
        eval_env,
        n_eval_episodes=args.eval_episodes,
        deterministic=True,
        return_episode_rewards=True,
    )
    eval_s = time.time() - t_eval
    wall_s = time.time() - t0
    logdir.cleanup()

    import imitation
    import stable_baselines3

    return {
        "seed": args.seed,
        "wall_s": wall_s,
        "train_s": train_s,
        "eval_s": eval_s,
        "import_s": import_s,
        "eval_return": float(np.mean(returns)),
        "eval_return_std": float(np.std(returns)),
        "eval_returns": [float(r) for r in returns],
        "labels": len(pref_comparisons.dataset),
        "env_steps": env_steps,
        "agent_train_steps": int(agent.num_timesteps),
        "num_iterations": num_iterations,
        "total_timesteps_arg": total_timesteps,
        "reward_accuracy": stats["reward_accuracy"],
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "imitation": imitation.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "gymnasium": gym.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=125_000, help="environment step budget")
    p.add_argument("--labels", type=int, default=200, help="synthetic comparisons")
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = p.parse_args()
    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # library prints stay off the JSON line
        result = run(args)
    out.write(json.dumps(result) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
