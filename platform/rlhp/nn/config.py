"""Policy network section of the run config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PolicyConfig(BaseModel):
    """Which actor-critic network to build. ``kind="auto"`` picks from the spaces:
    Box actions -> MLP Gaussian; Discrete actions with image observations -> Nature CNN;
    other Discrete -> MLP categorical."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["auto", "mlp_gaussian", "mlp_categorical", "cnn_categorical"] = "auto"
    hidden_sizes: tuple[int, ...] = Field((64, 64), description="MLP layer widths (units)")
    activation: Literal["tanh", "relu", "elu"] = "tanh"
    init_log_std: float = Field(
        0.0, ge=-5.0, le=2.0, description="initial log std of Gaussian actions (continuous only)"
    )
    normalize_obs: bool = Field(True, description="running mean/std observation normalization")
    obs_clip: float = Field(10.0, gt=0.0, description="clip normalized observations (std units)")
    cnn_shared_trunk: bool = Field(
        True, description="CNN: actor and critic share the conv trunk (PPO only; TRPO needs False)"
    )
