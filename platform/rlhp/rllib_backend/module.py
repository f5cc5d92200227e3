"""rlhp's actor-critic network as an RLlib RLModule (PPO's ``ValueFunctionAPI``).

The RLModule holds an ``rlhp.nn.policies.ActorCritic`` as ``self.net``; its state dict *is*
the rlhp policy state (weights and observation statistics), so checkpoints, ``rlhp eval``
and videos need nothing RLlib-specific. The observation statistics are frozen during an
update and refreshed after it (``stage_observations`` / ``commit_observations``), as in
rlhp's own learner, so that PPO's ratio starts at exactly 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import (
    TorchCategorical,
    TorchDiagGaussian,
)
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from rlhp.nn.config import PolicyConfig
from rlhp.nn.policies import ActorCritic, MLPGaussianPolicy, build_policy


class RlhpActorCritic(TorchRLModule, ValueFunctionAPI):
    """``model_config``: ``{"policy": PolicyConfig fields, "env_id": str}``."""

    def setup(self) -> None:
        cfg = PolicyConfig.model_validate(self.model_config.get("policy", {}))
        env_id = str(self.model_config.get("env_id", "env"))
        self.net: ActorCritic = build_policy(cfg, self.observation_space, self.action_space, env_id)
        self._staged: np.ndarray | None = None

    def _dist_inputs(self, obs: torch.Tensor) -> torch.Tensor:
        dist = self.net.distribution(obs)
        if isinstance(self.net, MLPGaussianPolicy):
            return torch.cat([dist.mean, dist.log_std], dim=-1)  # TorchDiagGaussian's layout
        return dist.logits

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self._dist_inputs(batch[Columns.OBS])}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        return self.net.value(batch[Columns.OBS])

    def get_inference_action_dist_cls(self) -> type:
        return TorchDiagGaussian if isinstance(self.action_space, spaces.Box) else TorchCategorical

    def get_exploration_action_dist_cls(self) -> type:
        return self.get_inference_action_dist_cls()

    def get_train_action_dist_cls(self) -> type:
        return self.get_inference_action_dist_cls()

    # -- observation statistics, refreshed after each update -----------------------------
    def stage_observations(self, obs: np.ndarray) -> None:
        """Remember a batch's observations; ``commit_observations`` merges them."""
        self._staged = obs

    def commit_observations(self) -> None:
        if self._staged is not None and self.net.obs_normalizer is not None:
            device = next(self.net.parameters()).device
            self.net.obs_normalizer.update(torch.as_tensor(self._staged, device=device))
        self._staged = None

    def policy_state(self) -> dict[str, torch.Tensor]:
        """The rlhp policy state (what ``rlhp eval`` and the rollout workers load)."""
        return {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
