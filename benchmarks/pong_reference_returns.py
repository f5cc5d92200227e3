"""What the simplest policies score in one fixed-length Pong episode: the floor a Pong
return on the Atari presets is read against.

The Atari presets play fixed-length episodes (Christiano et al. 2017, section 3.2: no
game-over signal; 2,000 agent steps here), so an evaluation return counts points won minus
lost in 2,000 steps, not per game. This prints that return for the uniformly random policy
and for each constant action (a policy whose mode is one action whatever it sees), per
seed, on the preset's own vector env:

  python benchmarks/pong_reference_returns.py [--preset atari_synthetic] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np

from rlhp.config import load_config
from rlhp.envs import make_vector_env

Policy = Callable[[np.random.Generator, int, int], np.ndarray]


def episode_returns(env: Any, seed: int, policy: Policy) -> np.ndarray:
    """The true return of each of ``env``'s sub-envs over one fixed-length episode, from a
    reset with ``seed``. (``rlhp.runtime.report.random_policy_returns`` is the run's own
    random baseline; it plays one sub-env, this every one of the preset's.)"""
    env.reset(seed=seed)
    n, actions = env.num_envs, int(env.single_action_space.n)
    rng = np.random.default_rng(seed)
    total, ended = np.zeros(n), np.zeros(n, dtype=bool)
    while not ended.all():
        _, reward, terminated, truncated, infos = env.step(policy(rng, n, actions))
        total += np.where(ended, 0.0, infos.get("true_reward", reward))
        ended |= terminated | truncated
    return total


def policies(actions: int) -> dict[str, Policy]:
    """Uniformly random actions, and each of the ``actions`` discrete actions always."""
    named: dict[str, Policy] = {"random": lambda rng, n, k: rng.integers(0, k, n)}
    for a in range(actions):
        named[f"always action {a}"] = lambda rng, n, k, a=a: np.full(n, a)
    return named


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="atari_synthetic")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    cfg = load_config(args.preset).env
    envs = {seed: make_vector_env(cfg, seed=seed) for seed in args.seeds}
    actions = int(envs[args.seeds[0]].single_action_space.n)
    length = f"{cfg.episode_steps} steps" if cfg.episode_steps else "the game's own length"
    print(f"{cfg.id} ({args.preset}), {cfg.num_envs} envs per seed, episodes of {length}")
    print("| policy | mean return per episode | min | max | episodes |")
    print("|---|---:|---:|---:|---:|")
    for name, policy in policies(actions).items():
        returns = np.concatenate([episode_returns(envs[s], s, policy) for s in args.seeds])
        print(
            f"| {name} | {returns.mean():.1f} | {returns.min():.0f} | {returns.max():.0f} "
            f"| {returns.size} |"
        )
    for env in envs.values():
        env.close()


if __name__ == "__main__":
    main()
