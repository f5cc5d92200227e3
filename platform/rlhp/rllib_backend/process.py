"""The policy process on RLlib: one ``RLlibPolicy`` per run, living in the driver.

``build_config`` maps a ``RunConfig`` onto RLlib's ``PPOConfig`` or, with
``learner.algo=appo``, its ``APPOConfig`` (``learner.appo``: V-trace, a target network, the
Learner updating in its own thread while the EnvRunners sample; Luo et al. 2020) on the new
API stack, keeping rlhp's hyperparameters where they overlap: rollout shape, GAE gamma /
lambda, PPO's clip, epochs, minibatch size, learning rate and its linear decay, entropy and
value coefficients, the gradient-norm clip; rlhp's own network (``module.RlhpActorCritic``) and reward shaping
(``connectors.LearnedReward``). Known differences from rlhp's PPO: RLlib normalizes
advantages over the whole batch (rlhp per minibatch) and clips the value *loss* at
``vf_clip_param`` (rlhp clips the value *change* by ``clip_coef``).

``RLlibPolicy.train`` is one driver iteration: hand a new reward model version to every
Learner, run ``Algorithm.train()`` (EnvRunners sample ``rollout_steps`` per env, the
Learners update; APPO: until that many more steps were sampled), and return what rlhp's
learner actor returns from ``update``.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any

import ray
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.appo import APPOConfig
from ray.rllib.algorithms.appo.torch.appo_torch_learner import APPOTorchLearner
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core import ALL_MODULES, DEFAULT_MODULE_ID
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.metrics import (
    AGGREGATOR_ACTOR_RESULTS,
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    EPISODE_RETURN_MEAN,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_TRAINED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)
from ray.tune.registry import register_env
from ray.util.placement_group import get_current_placement_group

from rlhp.config import RunConfig
from rlhp.envs.config import EnvConfig
from rlhp.envs.factory import make_vector_env
from rlhp.preference.networks import InputSpec
from rlhp.rllib_backend.connectors import STATS, LearnedReward
from rlhp.rllib_backend.module import RlhpActorCritic
from rlhp.rllib_backend.resources import learner_gpus
from rlhp.rllib_backend.segments import TRUE_RETURN, SegmentCallback, log_true_return

CHECKPOINT_DIR = "rllib"  # in the run directory: the Algorithm's own checkpoint
# RLlib's own timers of one training step (PPO's: sample, update, weights to the
# EnvRunners), logged as rllib/<name>: where an iteration's time goes inside train()
RLLIB_TIMERS = {
    ENV_RUNNER_SAMPLING_TIMER: "sampling_s",
    LEARNER_UPDATE_TIMER: "learner_update_s",
    SYNCH_WORKER_WEIGHTS_TIMER: "sync_weights_s",
}
RESTORE_TIMEOUT_S = 600.0  # how long train() waits for a killed EnvRunner to come back
ENV_NAME = "rlhp-vector-env"  # registered with Ray's registry (every EnvRunner finds it)


def make_env(ctx: dict[str, Any]) -> Any:
    """RLlib's vector-env creator: rlhp's env with the paper's changes, NEXT_STEP autoreset."""
    cfg = EnvConfig.model_validate(ctx["env"]).model_copy(update={"num_envs": ctx["num_envs"]})
    seed = int(ctx["seed"]) + 1_000 * (int(getattr(ctx, "worker_index", 0)) + 1)
    return make_vector_env(cfg, seed, next_step=True)


class RlhpPPOLearner(PPOTorchLearner):
    """RLlib's PPO learner; refreshes rlhp's observation statistics after each update."""

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        self.module[DEFAULT_MODULE_ID].commit_observations()


class RlhpAPPOLearner(APPOTorchLearner):
    """RLlib's APPO learner (updates in its Learner thread); the same refresh."""

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        self.module[DEFAULT_MODULE_ID].commit_observations()


def _lr(rate: float, anneal: bool, steps: int) -> Any:
    """A constant rate, or rlhp's linear decay to 0 at the budget's last step."""
    return [[0, rate], [steps, 0.0]] if anneal else rate


def build_config(
    cfg: RunConfig,
    spec: InputSpec,
    segment_length: int,
    segments: SegmentCallback | None,
    gpus_per_learner: int = 0,
) -> AlgorithmConfig:
    lc, rt = cfg.learner, cfg.runtime
    envs = max(1, rt.num_rollout_workers) * cfg.env.num_envs
    batch = lc.rollout_steps * envs
    steps = max(1, math.ceil(cfg.total_steps / batch)) * batch
    preferences = cfg.runtime.reward == "preferences"
    reward_shaping = {
        "spec": spec,
        "reward_model": cfg.reward_model.model_dump(mode="json") if preferences else None,
        "gamma": lc.gamma,
        "normalize": lc.normalize_reward,
        "clip": lc.reward_clip,
        "watch": preferences and cfg.teacher.kind != "human",  # true reward = the teacher's
        "segment_length": segment_length,
        "seed": cfg.seed,
    }
    if lc.algo == "appo":
        appo = lc.appo
        config: AlgorithmConfig = APPOConfig().training(
            train_batch_size_per_learner=appo.train_batch,
            lr=_lr(appo.learning_rate, appo.anneal_lr, steps),
            gamma=lc.gamma,
            clip_param=appo.clip_coef,
            vf_loss_coeff=appo.vf_coef,
            entropy_coeff=appo.ent_coef,
            grad_clip=appo.max_grad_norm,
            grad_clip_by="global_norm",
            use_kl_loss=False,
            circular_buffer_num_batches=appo.buffer_batches,
            circular_buffer_iterations_per_batch=appo.updates_per_batch,
            target_network_update_freq=appo.target_update_batches,
        )
        # one driver iteration = one batch sampled, not RLlib's 10 s minimum
        config = config.reporting(min_time_s_per_iteration=0,
                                  min_sample_timesteps_per_iteration=batch)  # fmt: skip
        learner_class: type = RlhpAPPOLearner
        fragment = max(1, appo.train_batch // cfg.env.num_envs)  # a sample: one train batch
    else:
        ppo = lc.ppo
        config = PPOConfig().training(
            train_batch_size_per_learner=batch,
            minibatch_size=max(1, batch // ppo.num_minibatches),
            num_epochs=ppo.update_epochs,
            lr=_lr(ppo.learning_rate, ppo.anneal_lr, steps),
            gamma=lc.gamma,
            lambda_=lc.gae_lambda,
            clip_param=ppo.clip_coef,
            vf_clip_param=float("inf") if not ppo.clip_value_loss else 10.0,
            vf_loss_coeff=ppo.vf_coef,
            entropy_coeff=ppo.ent_coef,
            grad_clip=ppo.max_grad_norm,
            grad_clip_by="global_norm",
            use_kl_loss=False,
            kl_coeff=0.0,
        )
        learner_class = RlhpPPOLearner
        fragment = lc.rollout_steps
    config = (
        config.environment(
            env=ENV_NAME,
            env_config={"env": cfg.env.model_dump(mode="json"), "seed": cfg.seed},
            normalize_actions=False,
            clip_actions=True,
        )
        .env_runners(
            num_env_runners=rt.num_rollout_workers,
            num_envs_per_env_runner=cfg.env.num_envs,
            num_cpus_per_env_runner=rt.rollout_worker_cpus,
            gym_env_vectorize_mode="vector_entry_point",
            rollout_fragment_length=fragment,
            batch_mode="truncate_episodes",
        )
        .learners(
            num_learners=lc.rllib.num_learners,
            num_gpus_per_learner=gpus_per_learner,
            num_cpus_per_learner=lc.rllib.num_cpus_per_learner,
            num_aggregator_actors_per_learner=lc.rllib.num_aggregator_actors_per_learner,
            learner_class=learner_class,
            learner_connector=lambda obs_space, act_space: LearnedReward(
                obs_space, act_space, **reward_shaping
            ),
        )
        .rl_module(
            rl_module_spec=RLModuleSpec(
                module_class=RlhpActorCritic,
                model_config={"policy": cfg.policy.model_dump(mode="json"), "env_id": cfg.env.id},
            )
        )
        .debugging(seed=cfg.seed, log_level="ERROR")
        .reporting(metrics_num_episodes_for_smoothing=100)
    )
    if segments is not None:
        config = config.callbacks(on_sample_end=segments)
    return config.callbacks(on_episode_end=log_true_return)


class RLlibPolicy:
    """The Algorithm of one run and the reward model version its Learners hold."""

    def __init__(self, cfg: RunConfig, run_id: str, segment_length: int, buffer: Any) -> None:
        spec = InputSpec.from_spaces(*_spaces(cfg))
        segments = (
            SegmentCallback(run_id=run_id, env_id=cfg.env.id, length=segment_length, buffer=buffer)
            if buffer is not None
            else None
        )
        self.cfg = cfg
        # PPO: any progress is its one batch; APPO: sample on to the driver's iteration size
        envs = cfg.runtime.num_rollout_workers * cfg.env.num_envs
        self._iteration_steps = (
            cfg.learner.rollout_steps * envs if cfg.learner.algo == "appo" else 1
        )
        self._learner_stats: dict[str, Any] = {}
        register_env(ENV_NAME, make_env)
        self.gpus_per_learner = learner_gpus(cfg, _gpus_for_learners(cfg))
        self.algo: Algorithm = build_config(
            cfg, spec, segment_length, segments, self.gpus_per_learner
        ).build_algo()
        self.reward_version = -1
        self.policy_version = 0
        self.global_step = 0
        self._untrained = 0  # steps sample_random() took (RLlib counts them as sampled)
        self._trained = 0.0  # env steps the Learners trained on, reuse counted (RLlib's)

    # -- what the driver calls -------------------------------------------------------------
    def policy_state(self) -> dict[str, Any]:
        """The first Learner's policy (data-parallel Learners hold the same weights), on
        the CPU."""

        def read(learner: Any) -> dict[str, Any]:
            lock = getattr(learner, "_model_io_lock", None)  # APPO's Learner thread holds it
            with lock if lock is not None else contextlib.nullcontext():
                state = learner.module[DEFAULT_MODULE_ID].policy_state()
            return {name: value.cpu() for name, value in state.items()}

        return self._on_learners(read)[0]

    def _on_learners(self, func: Any) -> list[Any]:
        """``func(learner)`` on every Learner (in this process or Learner actors)."""
        return _results(self.algo.learner_group.foreach_learner(func))

    def sample_random(self) -> None:
        """One more rollout of the initial policy on every EnvRunner: its segments reach
        the buffer, and it is not trained on."""
        group = self.algo.env_runner_group
        local = group.num_remote_env_runners() == 0

        def sample(runner: Any) -> int:
            return sum(len(episode) for episode in runner.sample())

        self._untrained += sum(group.foreach_env_runner(sample, local_env_runner=local))

    def env_runner_nodes(self) -> list[str]:
        """The Ray node id of every remote EnvRunner (where sampling runs)."""
        return self._ask_env_runners(lambda context: context.get_node_id())

    def env_runner_placement_groups(self) -> list[str | None]:
        """The placement group id of every remote EnvRunner (a sweep trial's, or None)."""
        return self._ask_env_runners(lambda context: context.get_placement_group_id())

    def _ask_env_runners(self, ask: Any) -> list[Any]:
        """``ask(runtime context)`` on every remote EnvRunner, in runner order."""
        return self.algo.env_runner_group.foreach_env_runner(
            lambda runner: ask(ray.get_runtime_context()), local_env_runner=False
        )

    def train(self, reward_ref: ray.ObjectRef | None) -> dict[str, Any]:
        """One iteration on the newest reward model: PPO samples one batch and updates on
        it; APPO's EnvRunners and Learner run on until a batch's worth more was sampled."""
        t0 = time.perf_counter()
        if reward_ref is not None:
            self._set_reward(reward_ref)
        deadline = time.monotonic() + RESTORE_TIMEOUT_S
        progress = self.global_step
        while True:
            result = self.algo.train()
            sampled = int(result[ENV_RUNNER_RESULTS].get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0))
            learner = result.get(LEARNER_RESULTS, {}).get(DEFAULT_MODULE_ID, {})
            self._learner_stats = learner or self._learner_stats  # APPO: every few updates
            everything = result.get(LEARNER_RESULTS, {}).get(ALL_MODULES, {})
            self._trained = float(everything.get(NUM_ENV_STEPS_TRAINED_LIFETIME, self._trained))
            if sampled - self._untrained >= self.global_step + self._iteration_steps:
                break
            if sampled - self._untrained > progress:
                progress = sampled - self._untrained
                deadline = time.monotonic() + RESTORE_TIMEOUT_S
                continue
            # no EnvRunner sampled: the only one died, and RLlib restores it on a later train()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"rllib backend: no EnvRunner sampled for {RESTORE_TIMEOUT_S:.0f} s; "
                    "see the run's train.log for why they fail"
                )
            time.sleep(1.0)
        self.policy_version += 1
        self.global_step = sampled - self._untrained  # steps trained on, as rlhp counts
        learner = self._learner_stats
        metrics = {
            "policy_loss": float(learner.get("policy_loss", math.nan)),
            "value_loss": float(learner.get("vf_loss", math.nan)),
            "entropy": float(learner.get("entropy", math.nan)),
            "approx_kl": float(learner.get("mean_kl_loss", math.nan)),
            "learner_update_s": time.perf_counter() - t0,
            "policy_lag": 0.0,
            "env_steps_trained": self._trained,
        }
        stats = (  # connectors.LearnedReward's: on the Learners, or APPO's aggregator actors
            result.get(LEARNER_RESULTS, {}).get(STATS)
            or result.get(AGGREGATOR_ACTOR_RESULTS, {}).get(STATS, {})
        )
        metrics |= {name.replace(".", "/"): float(value) for name, value in stats.items()
                    if name != "reward_version"}  # fmt: skip
        timers = result.get(TIMERS, {})  # RLlib's moving averages over its training steps
        metrics |= {f"rllib/{name}": float(timers[key]) for key, name in RLLIB_TIMERS.items()
                    if isinstance(timers.get(key), int | float)}  # fmt: skip
        return {
            "metrics": metrics,
            "policy_state": self.policy_state(),
            "policy_version": self.policy_version,
            "global_step": self.global_step,
            "reward_version": self.reward_version,
            "true_episode_return": float(
                result[ENV_RUNNER_RESULTS].get(
                    TRUE_RETURN, result[ENV_RUNNER_RESULTS].get(EPISODE_RETURN_MEAN, math.nan)
                )
            ),
        }

    def _set_reward(self, reward_ref: ray.ObjectRef) -> None:
        state = ray.get(reward_ref)
        if state["version"] == self.reward_version:
            return

        def load(holder: Any) -> int:
            """Into a Learner's connector, or an APPO aggregator actor's (with aggregator
            actors, the Learners have none: the batches reach them built)."""
            if holder._learner_connector is None:
                return 0
            piece = next(c for c in holder._learner_connector.connectors
                         if isinstance(c, LearnedReward))  # fmt: skip
            piece.set_reward_state(state)
            return 1

        loaded = sum(self._on_learners(load))
        aggregators = self.algo._aggregator_actor_manager
        if aggregators is not None:
            loaded += sum(_results(aggregators.foreach_actor(load)))
        if not loaded:
            raise RuntimeError("rllib backend: no Learner or aggregator runs LearnedReward")
        self.reward_version = int(state["version"])

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self, run_dir: Path) -> dict[str, Any]:
        """The run checkpoint's learner entry: the rlhp policy (``rlhp eval`` reads it) and
        where the Algorithm's own checkpoint (optimizer, EnvRunner state) was written."""
        path = (run_dir / CHECKPOINT_DIR).resolve()
        self.algo.save_to_path(str(path))
        return {
            "learner": {"policy": self.policy_state()},
            "backend": "rllib",
            "algorithm": str(path),
            "policy_version": self.policy_version,
            "global_step": self.global_step,
            "untrained_steps": self._untrained,
            "reward_version": self.reward_version,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the Algorithm (optimizer, counters, EnvRunners), then the policy exactly:
        RLlib's state round trip casts float64 tensors (the observation statistics) to
        float32."""
        self.algo.restore_from_path(state["algorithm"])
        policy = state["learner"]["policy"]

        def load(learner: Any) -> None:
            learner.module[DEFAULT_MODULE_ID].net.load_state_dict(policy)

        self._on_learners(load)
        self.algo.env_runner_group.sync_weights(
            from_worker_or_learner_group=self.algo.learner_group
        )
        self.policy_version = int(state["policy_version"])
        self.global_step = int(state["global_step"])
        self._untrained = int(state["untrained_steps"])

    def stop(self) -> None:
        self.algo.stop()


def _gpus_for_learners(cfg: RunConfig) -> int:
    """GPUs the Learners can take: the driver's own for the Learner in this process; for
    Learner actors, the GPU bundles a sweep trial reserved for them (``sweep.placement``:
    after the reward trainer's), or the cluster's GPUs the run's actors left free."""
    if cfg.learner.rllib.num_learners == 0:
        return torch.cuda.device_count()
    pg = get_current_placement_group()
    if pg is not None:
        return max(0, sum(b.get("GPU", 0) >= 1 for b in pg.bundle_specs) - 1)
    return int(ray.available_resources().get("GPU", 0))


def _results(calls: Any) -> list[Any]:
    """The values of RLlib's ``RemoteCallResults``; the first error, raised."""
    out = []
    for call in calls:
        if not call.ok:
            raise call.get()
        out.append(call.get())
    return out


def _spaces(cfg: RunConfig) -> tuple[Any, Any]:
    env = make_vector_env(cfg.env.model_copy(update={"num_envs": 1}), cfg.seed, next_step=True)
    try:
        return env.single_observation_space, env.single_action_space
    finally:
        env.close()
