"""Runtime section of the run config: what runs where, and how often state is saved."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RuntimeConfig(BaseModel):
    """Actors, placement, checkpoints. Defaults fit a 2-core laptop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reward: Literal["preferences", "true_reward"] = Field(
        "preferences",
        description="preferences: learn r_hat from labels (the paper); true_reward: the env's "
        "reward, the paper's RL baseline, on the same runtime",
    )
    ray_address: str | None = Field(
        None, description="Ray cluster to join (None: RAY_ADDRESS, else start a local one)"
    )
    num_rollout_workers: int = Field(1, ge=1, description="rollout actors (each one vector env)")
    rollout_worker_cpus: float = Field(1.0, gt=0.0, description="CPUs reserved per rollout actor")
    segment_buffer_capacity: int = Field(
        5000, ge=2, description="recent segments kept in the ring (count)"
    )
    reward_fit_interval_s: float = Field(
        2.0, ge=0.0, description="pause between reward-model fits when no new label arrived (s)"
    )
    checkpoint_every: int = Field(10, ge=1, description="learner iterations between checkpoints")
    runs_dir: str = Field("rlhp_runs", description="where run directories go")
    max_actor_restarts: int = Field(
        3, ge=0, description="times Ray restarts a failed actor before the run fails"
    )
    eval_episodes: int = Field(10, ge=0, description="evaluation episodes at the end (0 = none)")
