"""Learner section of the run config: PPO / TRPO over GAE.

Defaults follow the references the benchmarks compare against: PPO as in CleanRL's
``ppo_continuous_action.py`` (itself Schulman et al. 2017's MuJoCo setting), TRPO as in
OpenAI Baselines' MuJoCo setting, GAE as in Schulman et al. 2016.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rlhp.envs.config import EnvConfig
from rlhp.nn.config import PolicyConfig


class PPOConfig(BaseModel):
    """Clipped-surrogate PPO (Schulman et al. 2017, eq. 7 and 9)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: float = Field(3e-4, gt=0.0, description="Adam step size")
    anneal_lr: bool = Field(True, description="linearly decay the learning rate to 0")
    update_epochs: int = Field(10, ge=1, description="passes over each batch")
    num_minibatches: int = Field(32, ge=1, description="minibatches per epoch")
    clip_coef: float = Field(0.2, gt=0.0, description="epsilon of the clipped ratio")
    clip_value_loss: bool = Field(True, description="clip the value update like the ratio")
    norm_adv: bool = Field(True, description="normalize advantages per minibatch")
    ent_coef: float = Field(0.0, ge=0.0, description="entropy bonus coefficient")
    vf_coef: float = Field(0.5, ge=0.0, description="value loss coefficient")
    max_grad_norm: float = Field(0.5, gt=0.0, description="global gradient-norm clip")
    target_kl: float | None = Field(
        None, gt=0.0, description="stop the epochs early once approx KL exceeds this (nats)"
    )
    fused_adam: bool = Field(
        True,
        description="Adam's fused kernel: one op per step instead of a dozen, under half the "
        "step time on the CPU; false: the multi-tensor (foreach) path, which rounds "
        "differently in the last bits (runs before 2026-12-05 used it). A resumed run keeps "
        "the path its checkpoint was written with",
    )
    closed_form_gradient: bool = Field(
        True,
        description="for the MLP Gaussian policy (tanh or ReLU), eq. 9's gradient written "
        "out by hand (rlhp.algos.ppo_closed_form) instead of autograd: the same gradient to "
        "float rounding, without building a graph per minibatch; other policies always use "
        "autograd. false: autograd (runs before 2026-12-06 used it)",
    )


class TRPOConfig(BaseModel):
    """Trust-region policy optimization (Schulman et al. 2015), value fit of GAE section 5."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_kl: float = Field(0.01, gt=0.0, description="trust region: mean KL(old || new), nats")
    cg_iters: int = Field(10, ge=1, description="conjugate-gradient iterations")
    cg_damping: float = Field(0.1, ge=0.0, description="damping added to the Fisher matrix")
    backtrack_coef: float = Field(0.8, gt=0.0, lt=1.0, description="line-search shrink factor")
    backtrack_iters: int = Field(10, ge=1, description="line-search trials")
    accept_ratio: float = Field(
        0.1, ge=0.0, description="minimum actual/expected surrogate improvement to accept"
    )
    ent_coef: float = Field(
        0.0,
        ge=0.0,
        description="entropy bonus in the surrogate (Christiano et al. A.1: 0.01, swimmer 0.001)",
    )
    value_fit: Literal["trust_region", "adam"] = Field(
        "trust_region",
        description="trust_region: GAE paper section 5 (CG on the Gauss-Newton matrix); "
        "adam: plain regression epochs as in OpenAI Baselines",
    )
    value_max_kl: float = Field(
        0.01, gt=0.0, description="value trust region epsilon (GAE paper section 5)"
    )
    value_steps: int = Field(5, ge=1, description="value updates per iteration")
    value_lr: float = Field(1e-3, gt=0.0, description="Adam step size (value_fit=adam)")
    value_minibatch: int = Field(64, ge=1, description="minibatch size (value_fit=adam)")


class APPOConfig(BaseModel):
    """Asynchronous PPO on RLlib (``learner.backend=rllib``): IMPACT's clipped surrogate
    against a target network over V-trace (Luo et al. 2020; Espeholt et al. 2018). The
    EnvRunners keep sampling while the Learner updates; RLlib's APPO defaults, except the
    batch, which is rlhp's rollout shape."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learning_rate: float = Field(5e-4, gt=0.0, description="Adam step size")
    anneal_lr: bool = Field(False, description="linearly decay the learning rate to 0")
    clip_coef: float = Field(0.4, gt=0.0, description="epsilon of the clipped ratio")
    ent_coef: float = Field(0.0, ge=0.0, description="entropy bonus coefficient")
    vf_coef: float = Field(0.5, ge=0.0, description="value loss coefficient")
    max_grad_norm: float = Field(40.0, gt=0.0, description="global gradient-norm clip")
    train_batch: int = Field(
        256, ge=1, description="env steps per gradient step (RLlib's train batch per Learner)"
    )
    buffer_batches: int = Field(
        4, ge=1, description="train batches the Learner's circular buffer holds"
    )
    updates_per_batch: int = Field(
        4, ge=1, description="times each batch is drawn from the buffer (sample reuse)"
    )
    target_update_batches: int = Field(
        2, ge=1, description="target network sync every this many buffer turnovers"
    )


class RLlibLearnersConfig(BaseModel):
    """How ``learner.backend=rllib`` spreads learning over the cluster: RLlib's learner group
    (data-parallel Learner actors, each on a GPU when ``device`` gives them one) and, for
    APPO, aggregator actors that build train batches beside each Learner."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_learners: int = Field(
        0,
        ge=0,
        description="Learner actors, data-parallel (torch DDP); 0 = one Learner inside the "
        "run's driver process",
    )
    num_cpus_per_learner: float = Field(
        1.0, gt=0.0, description="CPUs each Learner actor reserves (num_learners >= 1)"
    )
    num_aggregator_actors_per_learner: int = Field(
        0,
        ge=0,
        description="APPO: actors (1 CPU each) that turn sampled episodes into train batches, "
        "learned reward included, so the Learner only updates",
    )


class LearnerConfig(BaseModel):
    """Policy optimizer, rollout shape, GAE and reward shaping shared by PPO and TRPO."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algo: Literal["ppo", "trpo", "appo"] = Field(
        "ppo", description="ppo | trpo (backend rlhp) | appo (backend rllib)"
    )
    backend: Literal["rlhp", "rllib"] = Field(
        "rlhp",
        description="policy process: rlhp's own rollout workers and learner, or an RLlib "
        "Algorithm on the new API stack (PPO or APPO)",
    )
    rollout_steps: int = Field(2048, ge=1, description="steps per env per iteration")
    gamma: float = Field(0.99, gt=0.0, le=1.0, description="discount gamma (GAE paper)")
    gae_lambda: float = Field(0.95, ge=0.0, le=1.0, description="GAE lambda (eq. 16)")
    normalize_reward: bool = Field(
        True, description="scale rewards by the running std of the discounted return"
    )
    reward_clip: float = Field(10.0, gt=0.0, description="clip scaled rewards (std units)")
    kl_to_initial_coef: float = Field(
        0.0,
        ge=0.0,
        description="beta of the KL penalty toward the initial policy (Bai et al. 2022)",
    )
    ppo: PPOConfig = PPOConfig()
    trpo: TRPOConfig = TRPOConfig()
    appo: APPOConfig = APPOConfig()
    rllib: RLlibLearnersConfig = RLlibLearnersConfig()

    @model_validator(mode="after")
    def _appo_runs_on_rllib(self) -> LearnerConfig:
        if self.algo == "appo" and self.backend != "rllib":
            raise ValueError(
                "learner.algo: APPO runs on RLlib; set learner.backend=rllib, or "
                "learner.algo=ppo for rlhp's own learner"
            )
        if self.algo == "appo" and self.trpo != TRPOConfig():
            raise ValueError(
                "learner.trpo: APPO does not use TRPO's settings; drop the learner.trpo "
                "overrides (or pick a preset without them), or set learner.algo=trpo and "
                "learner.backend=rlhp"
            )
        if self.rllib != RLlibLearnersConfig() and self.backend != "rllib":
            raise ValueError(
                "learner.rllib: these settings scale RLlib's Learners; set "
                "learner.backend=rllib, or leave learner.rllib at its defaults"
            )
        if self.rllib.num_aggregator_actors_per_learner and self.algo != "appo":
            raise ValueError(
                "learner.rllib.num_aggregator_actors_per_learner: only APPO uses aggregator "
                "actors; set it to 0, or learner.algo=appo"
            )
        return self


class TrainingConfig(BaseModel):
    """What policy optimization needs and nothing more: seed, step budget, devices, the env,
    the policy and the learner. ``rlhp.config.RunConfig`` extends it with the preference,
    runtime and tracking sections; the pure core (``Learner``, ``OnPolicyTrainer``) takes
    this, so it never depends on the runtime's or the tracking's settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(0, ge=0, description="fixes envs, networks and sampling")
    total_steps: int = Field(100_000, ge=1, description="environment steps (all envs together)")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="learner device; auto picks cuda when a GPU is visible"
    )
    torch_threads: int = Field(
        0, ge=0, description="torch intra-op threads; 0 = auto (1 for MLPs, all cores for CNNs)"
    )
    env: EnvConfig = EnvConfig()
    policy: PolicyConfig = PolicyConfig()
    learner: LearnerConfig = LearnerConfig()
