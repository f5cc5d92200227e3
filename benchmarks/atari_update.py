"""The CPU cost of Atari's two networks: one PPO update and one reward-model epoch, rlhp's
code against its code before commit 1e42fd3 (issue "cluster-scale Atari", items 3 and 5: where
a Pong run's time goes on this 2-core machine).

Rows, each timed on the same weights and data, ``--repeats`` times interleaved (medians):

- ``PPO update``: one ``ppo_update`` of the ``atari_synthetic`` preset on a 1,024-step batch
  (8 envs x 128 steps; 4 epochs x 4 minibatches of 256; Nature CNN, trunk shared by both
  heads), with the learner's thread count (all cores).
  - rlhp: ``distribution_and_value`` runs the trunk once per minibatch; weights and inputs
    channels-last (``rlhp.nn.layers.nhwc_pixels``);
  - before: the loss called ``distribution`` and ``value``, each running the trunk, NCHW.
- ``reward epoch``: one epoch of ``RewardEnsemble.fit`` (3 members, A.2's network with
  batch norm and dropout 0.5) on ``--pairs`` pairs of 25-step clips, one thread as the
  reward trainer runs it; the same two layouts (the trunk ran once there already).

  python benchmarks/atari_update.py [--repeats 5] [--pairs 64]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import types
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from rlhp.algos.batch import Batch
from rlhp.algos.config import PPOConfig
from rlhp.algos.ppo import ppo_update
from rlhp.nn import PolicyConfig, build_policy
from rlhp.nn.policies import ActorCritic
from rlhp.preference.config import RewardModelConfig
from rlhp.preference.dataset import PreferenceData
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.networks import InputSpec, RewardCNN

FRAMES = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
ACTIONS = gym.spaces.Discrete(6)
# the atari_synthetic preset's learner.ppo
PPO = PPOConfig(
    learning_rate=2.5e-4,
    update_epochs=4,
    num_minibatches=4,
    clip_coef=0.1,
    ent_coef=0.01,
    clip_value_loss=True,
    max_grad_norm=0.5,
)


def _nchw_pixels_forward(net: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The forward of a trunk before 1e42fd3: NCHW, ``float() / 255``."""
    net.to(memory_format=torch.contiguous_format)
    return lambda frames: net(frames.float() / 255.0)


def before_policy(policy: ActorCritic) -> ActorCritic:
    """A copy of ``policy`` that runs as the code before: two trunk passes, NCHW."""
    old = copy.deepcopy(policy)
    old.trunk.forward = _nchw_pixels_forward(old.trunk.net)  # type: ignore[union-attr]
    two_passes = lambda obs: (old.distribution(obs), old.value(obs))  # noqa: E731
    old.distribution_and_value = two_passes  # type: ignore[method-assign]
    return old


def before_ensemble(ensemble: RewardEnsemble) -> RewardEnsemble:
    """A copy of ``ensemble`` whose members run NCHW with ``float() / 255``."""
    old = copy.deepcopy(ensemble)
    for member in old.members:
        assert isinstance(member, RewardCNN)
        trunk = _nchw_pixels_forward(member.trunk)

        def forward(
            self: RewardCNN, obs: torch.Tensor, actions: torch.Tensor, t=trunk
        ) -> torch.Tensor:
            x = t(obs)
            if self.use_actions:
                x = torch.cat([x, self.spec.encode_actions(actions)], dim=1)
            return self.head(x).squeeze(-1)

        member.forward = types.MethodType(forward, member)  # type: ignore[method-assign]
    return old


def time_ppo(policy: ActorCritic, batch: Batch, seed: int) -> float:
    """One update from the policy's weights, which are then put back (deepcopy would not do:
    the before-variants' forwards are closures over their own modules)."""
    state = copy.deepcopy(policy.state_dict())
    optimizer = torch.optim.Adam(policy.parameters(), lr=PPO.learning_rate, eps=1e-5, fused=True)
    start = time.perf_counter()
    ppo_update(policy, optimizer, batch, PPO, torch.Generator().manual_seed(seed))
    elapsed = time.perf_counter() - start
    policy.load_state_dict(state)
    return elapsed


def time_epoch(ensemble: RewardEnsemble, data: PreferenceData) -> float:
    """One fit epoch from the ensemble's state, which is then put back."""
    state = copy.deepcopy(ensemble.state_dict())
    start = time.perf_counter()
    ensemble.fit(data, epochs=1)
    elapsed = time.perf_counter() - start
    ensemble.load_state_dict(state)
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--pairs", type=int, default=64, help="labelled pairs in the reward epoch")
    args = p.parse_args()
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)

    B = 1024
    batch = Batch(
        torch.randint(0, 256, (B, 4, 84, 84), dtype=torch.uint8, generator=g),
        torch.randint(0, 6, (B,), generator=g),
        torch.full((B,), -float(np.log(6))),
        torch.randn(B, generator=g),
        torch.randn(B, generator=g),
        torch.randn(B, generator=g),
    )
    policy = build_policy(PolicyConfig(), FRAMES, ACTIONS)
    old_policy = before_policy(policy)

    N, L = args.pairs, 25

    def clips() -> torch.Tensor:
        return torch.randint(0, 256, (N, L, 4, 84, 84), dtype=torch.uint8, generator=g)

    def acts() -> torch.Tensor:
        return torch.randint(0, 6, (N, L), generator=g)

    data = PreferenceData(
        clips(),
        acts(),
        clips(),
        acts(),
        torch.randint(0, 2, (N,), generator=g).float(),
        [str(i) for i in range(N)],
        ["synthetic"] * N,
    )
    ensemble = RewardEnsemble(
        InputSpec((4, 84, 84), (), 6), RewardModelConfig(network="cnn", dropout=0.5)
    )
    old_ensemble = before_ensemble(ensemble)

    cores = torch.get_num_threads()
    times: dict[str, list[float]] = {k: [] for k in ("ppo", "ppo_before", "epoch", "epoch_before")}
    for r in range(args.repeats):
        torch.set_num_threads(cores)
        times["ppo"].append(time_ppo(policy, batch, r))
        times["ppo_before"].append(time_ppo(old_policy, batch, r))
        torch.set_num_threads(1)
        times["epoch"].append(time_epoch(ensemble, data))
        times["epoch_before"].append(time_epoch(old_ensemble, data))
        print(
            f"repeat {r}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True
        )
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"\nmedians of {args.repeats} interleaved repeats ({cores} threads for PPO, 1 for r_hat):"
    )
    print("| row | rlhp (s) | before (s) | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    rows = {"PPO update, 1,024 steps": "ppo", f"reward epoch, {N} pairs": "epoch"}
    for name, key in rows.items():
        now, before = med[key], med[f"{key}_before"]
        print(f"| {name} | {now:.2f} | {before:.2f} | {before / now:.2f}x |")
    per_pair = med["epoch"] / N * 1000
    print(f"\nreward model: {per_pair:.0f} ms per labelled pair per epoch (3 members, one thread)")


if __name__ == "__main__":
    main()
