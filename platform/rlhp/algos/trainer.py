"""Single-process on-policy trainer: collect, (relabel), GAE, PPO or TRPO update.

``Learner`` is the learner actor's inside: it owns the policy, the optimizers, the
normalizers and the counters. ``OnPolicyTrainer`` pairs it with a rollout collector in one
process and yields one ``IterationStats`` per iteration. Neither does I/O or makes logging
decisions; callers print or track the stats.

Rewards come from the environment (true-reward mode, the paper's RL baseline) or from a
``RewardFn`` such as the reward-model ensemble, which relabels every batch before GAE.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from rlhp.algos.batch import Batch
from rlhp.algos.config import TrainingConfig
from rlhp.algos.gae import compute_gae
from rlhp.algos.kl_penalty import kl_penalized_rewards
from rlhp.algos.normalizers import RewardScaler
from rlhp.algos.ppo import ppo_update
from rlhp.algos.rollout import Rollout, RolloutCollector
from rlhp.algos.trpo import trpo_policy_step, trpo_value_step_adam, trpo_value_step_trust_region
from rlhp.envs import make_vector_env
from rlhp.errors import ConfigError
from rlhp.nn.acting import TorchPolicyActor, make_actor
from rlhp.nn.policies import ActorCritic, build_policy, resolve_policy_kind


class RewardFn(Protocol):
    """Relabels a rollout: [T, N, ...] observations and actions -> [T, N] rewards."""

    def __call__(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray: ...


class TrueRewardRelabeler(Protocol):
    """A diagnostic reward that transforms the true reward instead of reading (o, a)
    (``rlhp.preference.oracle.OracleRewardModel``); marked by ``reads_true_reward``."""

    reads_true_reward: bool

    def relabel(self, true_rewards: np.ndarray) -> np.ndarray: ...


@dataclass
class IterationStats:
    """What one iteration did; every number a caller may want to print or track."""

    iteration: int
    global_step: int
    episode_returns: list[float]
    mean_recent_return: float
    env_steps_per_s: float
    metrics: dict[str, float] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' was asked for but no GPU is visible; use device=auto")
    return torch.device(name)


class Learner:
    """Owns the policy, its optimizer, the normalizers and the update counters.

    ``update(rollout)`` turns one rollout (from one or many workers, stacked along the env
    axis) into one PPO or TRPO update. The learner actor wraps exactly this object.
    """

    def __init__(
        self,
        cfg: TrainingConfig,
        obs_space: gym.Space,
        act_space: gym.Space,
        num_envs: int,
        reward_fn: RewardFn | TrueRewardRelabeler | None = None,
    ) -> None:
        self.cfg = cfg
        lc = cfg.learner
        self.reward_fn = reward_fn
        self.device = resolve_device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        kind = resolve_policy_kind(cfg.policy, obs_space, act_space, cfg.env.id)
        if lc.algo == "trpo" and kind == "cnn_categorical" and cfg.policy.cnn_shared_trunk:
            raise ConfigError(
                "policy.cnn_shared_trunk: TRPO steps policy and value separately; "
                "set policy.cnn_shared_trunk=false"
            )
        # before building: initialization (QR) differs in the last ulp with the thread count
        cnn = kind == "cnn_categorical"
        torch.set_num_threads(cfg.torch_threads or ((os.cpu_count() or 1) if cnn else 1))
        self.policy: ActorCritic = build_policy(cfg.policy, obs_space, act_space, cfg.env.id)
        self.policy.to(self.device)
        # pi_0: for the KL penalty (Bai et al. 2022) and the kl_to_initial metric
        self.initial_policy: ActorCritic = copy.deepcopy(self.policy).eval()
        if lc.algo == "ppo":
            adam_path = {"fused": True} if lc.ppo.fused_adam else {"foreach": True}
            self.optimizer = torch.optim.Adam(
                self.policy.parameters(), lr=lc.ppo.learning_rate, eps=1e-5, **adam_path
            )
        else:
            self.optimizer = torch.optim.Adam(self.policy.value_parameters(), lr=lc.trpo.value_lr)
        self.reward_scaler = RewardScaler(num_envs, lc.gamma, lc.reward_clip)
        self.steps_per_iteration = lc.rollout_steps * num_envs
        self.num_iterations = max(1, math.ceil(cfg.total_steps / self.steps_per_iteration))
        self.iteration = 0
        self.global_step = 0
        self.policy_version = 0

    def model_rewards(self, rollout: Rollout) -> np.ndarray:
        """[T, N] rewards before shaping: the env's, or the reward model's r_hat(o_t, a_t)."""
        if self.reward_fn is None:
            return np.asarray(rollout.rewards, np.float32)
        if getattr(self.reward_fn, "reads_true_reward", False):  # the oracle diagnostic
            return np.asarray(self.reward_fn.relabel(rollout.true_rewards), np.float32)  # type: ignore[union-attr]
        # actions as executed (clipped), as the segments the reward model learns from hold
        return np.asarray(self.reward_fn(rollout.obs, rollout.env_actions), np.float32)  # type: ignore[operator]

    def rewards_for(self, rollout: Rollout, model_rewards: np.ndarray | None = None) -> np.ndarray:
        """The reward the optimizer sees: env or reward model, KL penalty, scaling.

        ``model_rewards`` (from ``model_rewards(rollout)``) saves a second forward pass when
        the caller needs r_hat too."""
        lc = self.cfg.learner
        r = self.model_rewards(rollout) if model_rewards is None else model_rewards
        if lc.kl_to_initial_coef > 0:
            r = kl_penalized_rewards(
                r, rollout.logp, self._initial_logp(rollout), lc.kl_to_initial_coef
            )
        if lc.normalize_reward:
            r = self.reward_scaler(r, rollout.episode_ends)
        return r

    @torch.no_grad()
    def _initial_logp(self, rollout: Rollout) -> np.ndarray:
        T, N = rollout.logp.shape
        obs = TorchPolicyActor._tensor(rollout.obs.reshape(T * N, *rollout.obs.shape[2:])).to(
            self.device
        )
        actions = rollout.actions.reshape(T * N, *rollout.actions.shape[2:])
        if not actions.flags.writeable:  # arrays from Ray's object store are read-only
            actions = actions.copy()
        acts = torch.from_numpy(actions).to(self.device)
        return self.initial_policy.distribution(obs).log_prob(acts).cpu().numpy().reshape(T, N)

    def make_batch(self, rollout: Rollout, rewards: np.ndarray) -> Batch:
        lc = self.cfg.learner
        A_hat, returns = compute_gae(
            rewards,
            rollout.values,
            rollout.next_values,
            rollout.terminations,
            rollout.episode_ends,
            lc.gamma,
            lc.gae_lambda,
        )
        B = rollout.num_steps

        def flat(x: np.ndarray) -> torch.Tensor:
            x = np.ascontiguousarray(x).reshape(B, *x.shape[2:])
            return torch.from_numpy(x if x.flags.writeable else x.copy())  # Ray hands read-only

        obs = flat(rollout.obs)
        return Batch(
            obs if obs.dtype == torch.uint8 else obs.float(),
            flat(rollout.actions),
            flat(rollout.logp),
            flat(A_hat),
            flat(returns),
            flat(rollout.values),
        ).to(self.device)

    def optimize(self, batch: Batch) -> dict[str, float]:
        """One PPO or TRPO update on ``batch``."""
        lc = self.cfg.learner
        if lc.algo == "ppo":
            if lc.ppo.anneal_lr:
                frac = 1.0 - self.iteration / self.num_iterations
                for group in self.optimizer.param_groups:
                    group["lr"] = frac * lc.ppo.learning_rate
            return ppo_update(self.policy, self.optimizer, batch, lc.ppo, self.generator)
        metrics = trpo_policy_step(self.policy, batch, lc.trpo)
        if lc.trpo.value_fit == "trust_region":
            metrics |= trpo_value_step_trust_region(self.policy, batch, lc.trpo)
        else:
            metrics |= trpo_value_step_adam(
                self.policy, self.optimizer, batch, lc.trpo, self.generator
            )
        return metrics

    def update(
        self, rollout: Rollout, model_rewards: np.ndarray | None = None
    ) -> tuple[np.ndarray, dict[str, float]]:
        """Relabel, GAE, optimize; then refresh the observation statistics.

        The statistics change only after the update: the batch was collected and is trained
        on with the same normalization, so the PPO ratio starts at exactly 1.
        """
        rewards = self.rewards_for(rollout, model_rewards)
        metrics = self.optimize(self.make_batch(rollout, rewards))
        # k1 estimate of KL(pi || pi_0) on the batch (the states and actions of pi)
        metrics["kl_to_initial"] = float(np.mean(rollout.logp - self._initial_logp(rollout)))
        if self.policy.obs_normalizer is not None:
            flat_obs = rollout.obs.reshape(-1, *rollout.obs.shape[2:])
            self.policy.obs_normalizer.update(torch.from_numpy(flat_obs).to(self.device))
        self.iteration += 1
        self.policy_version += 1
        self.global_step += rollout.num_steps
        metrics["reward_mean"] = float(rewards.mean())
        return rewards, metrics

    def policy_state(self) -> dict[str, torch.Tensor]:
        """The policy's weights and normalizer statistics on the CPU, for rollout workers."""
        return {k: v.detach().cpu().clone() for k, v in self.policy.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "initial_policy": self.initial_policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "reward_scaler": self.reward_scaler.state_dict(),
            "iteration": self.iteration,
            "global_step": self.global_step,
            "policy_version": self.policy_version,
            "torch_rng": torch.get_rng_state(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.initial_policy.load_state_dict(state["initial_policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.reward_scaler.load_state_dict(state["reward_scaler"])
        self.iteration = state["iteration"]
        self.global_step = state["global_step"]
        self.policy_version = state["policy_version"]
        torch.set_rng_state(state["torch_rng"])
        self.generator.set_state(state["generator"])


class OnPolicyTrainer:
    """PPO or TRPO with GAE on one vector env, in one process: a collector and a learner."""

    def __init__(
        self,
        cfg: TrainingConfig,
        reward_fn: RewardFn | None = None,
        env: gym.vector.VectorEnv | None = None,
    ) -> None:
        self.cfg = cfg
        self.env = env if env is not None else make_vector_env(cfg.env, cfg.seed)
        self.learner = Learner(
            cfg,
            self.env.single_observation_space,
            self.env.single_action_space,
            self.env.num_envs,
            reward_fn,
        )
        self.np_rng = np.random.default_rng(cfg.seed)
        self.collector = RolloutCollector(self.env, cfg.seed)
        # rollouts run on the CPU; with a GPU learner they act with a CPU copy of the policy
        self.acting_policy = (
            self.policy if self.learner.device.type == "cpu" else copy.deepcopy(self.policy).cpu()
        )

    # the learner's state, read through the trainer for convenience
    policy = property(lambda self: self.learner.policy)
    optimizer = property(lambda self: self.learner.optimizer)
    reward_scaler = property(lambda self: self.learner.reward_scaler)
    iteration = property(lambda self: self.learner.iteration)
    global_step = property(lambda self: self.learner.global_step)
    policy_version = property(lambda self: self.learner.policy_version)
    num_iterations = property(lambda self: self.learner.num_iterations)
    steps_per_iteration = property(lambda self: self.learner.steps_per_iteration)

    def rewards_for(self, rollout: Rollout) -> np.ndarray:
        return self.learner.rewards_for(rollout)

    def step(self) -> IterationStats:
        """Collect one rollout with the current policy, then update it."""
        t0 = time.perf_counter()
        actor = make_actor(self.acting_policy, self.np_rng)
        rollout = self.collector.collect(actor, self.cfg.learner.rollout_steps)
        _, metrics = self.learner.update(rollout)
        if self.acting_policy is not self.policy:
            self.acting_policy.load_state_dict(self.learner.policy_state())
        recent = self.collector.finished_returns
        return IterationStats(
            iteration=self.iteration,
            global_step=self.global_step,
            episode_returns=rollout.episode_returns,
            mean_recent_return=float(np.mean(recent)) if recent else float("nan"),
            env_steps_per_s=rollout.num_steps / (time.perf_counter() - t0),
            metrics=metrics,
        )

    def train(self) -> Iterator[IterationStats]:
        """Iterate until ``cfg.total_steps`` environment steps have been collected."""
        while self.iteration < self.num_iterations:
            yield self.step()

    def state_dict(self) -> dict[str, Any]:
        return {"learner": self.learner.state_dict(), "np_rng": self.np_rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        if self.acting_policy is not self.policy:
            self.acting_policy.load_state_dict(self.learner.policy_state())
        self.np_rng.bit_generator.state = state["np_rng"]

    def close(self) -> None:
        self.env.close()


def evaluate_policy(
    policy: ActorCritic, env: gym.Env, episodes: int, seed: int, deterministic: bool = True
) -> list[float]:
    """Undiscounted returns of ``episodes`` full episodes in a single (non-vector) env."""
    returns = []
    actor = TorchPolicyActor(copy.deepcopy(policy).cpu())
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        done, total = False, 0.0
        while not done:
            batch = np.asarray(obs)[None]
            a = actor.mode(batch)[0] if deterministic else actor.act(batch)[0][0]
            if isinstance(env.action_space, gym.spaces.Box):
                a = np.clip(a, env.action_space.low, env.action_space.high)
            obs, r, term, trunc, info = env.step(a)
            total += float(info.get("true_reward", r))
            done = term or trunc
        returns.append(total)
    return returns
