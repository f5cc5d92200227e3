"""rlhp's actor-critic network as an RLlib RLModule (``ValueFunctionAPI``, and APPO's
``TargetNetworkAPI``).

The RLModule holds an ``rlhp.nn.policies.ActorCritic`` as ``self.net``; its state dict *is*
the rlhp policy state (weights and observation statistics), so checkpoints, ``rlhp eval``
and videos need nothing RLlib-specific. The observation statistics are frozen during an
update and refreshed after it (``stage_observations`` / ``commit_observations``), as in
rlhp's own learner, so that PPO's ratio starts at exactly 1.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import (
    TorchCategorical,
    TorchDiagGaussian,
)
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import TARGET_NETWORK_ACTION_DIST_INPUTS, TargetNetworkAPI
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from rlhp.nn.config import PolicyConfig
from rlhp.nn.policies import ActorCritic, MLPGaussianPolicy, build_policy


class RlhpActorCritic(TorchRLModule, ValueFunctionAPI, TargetNetworkAPI):
    """``model_config``: ``{"policy": PolicyConfig fields, "env_id": str}``. The target
    network (a copy of the policy that APPO's surrogate is clipped against) exists only once
    a Learner asks for it (``make_target_networks``); PPO never does."""

    def setup(self) -> None:
        cfg = PolicyConfig.model_validate(self.model_config.get("policy", {}))
        env_id = str(self.model_config.get("env_id", "env"))
        self.net: ActorCritic = build_policy(cfg, self.observation_space, self.action_space, env_id)
        # filled by the Learner connector, drained after an update: with APPO that runs in
        # RLlib's Learner thread, so a deque (appends and pops are atomic), not a list
        self._staged: deque[np.ndarray] = deque()

    def _dist_inputs(self, obs: torch.Tensor, net: ActorCritic | None = None) -> torch.Tensor:
        net = self.net if net is None else net
        return _dist_params(net, net.distribution(obs))

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {Columns.ACTION_DIST_INPUTS: self._dist_inputs(batch[Columns.OBS])}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Both heads in one call: PPO's and APPO's losses ask ``compute_values`` for the
        same batch's values right after, passing ``EMBEDDINGS``; here those are the values
        themselves, so a CNN trunk shared by both heads runs once per minibatch."""
        net = self.net
        dist, values = net.distribution_and_value(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: _dist_params(net, dist), Columns.EMBEDDINGS: values}

    # -- APPO's target network (TargetNetworkAPI) ----------------------------------------
    def make_target_networks(self) -> None:
        self._target_net = make_target_network(self.net)

    def get_target_network_pairs(self) -> list[tuple[Any, Any]]:
        return [(self.net, self._target_net)]

    def forward_target(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        return {TARGET_NETWORK_ACTION_DIST_INPUTS: self._dist_inputs(obs, self._target_net)}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        if embeddings is not None:  # the values _forward_train computed on this batch
            return embeddings
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
        self._staged.append(obs)

    def commit_observations(self) -> None:
        while self._staged:
            obs = self._staged.popleft()
            if self.net.obs_normalizer is not None:
                device = next(self.net.parameters()).device
                self.net.obs_normalizer.update(torch.as_tensor(obs, device=device))

    def policy_state(self) -> dict[str, torch.Tensor]:
        """The rlhp policy state (what ``rlhp eval`` and the rollout workers load)."""
        return {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}


def _dist_params(net: ActorCritic, dist: Any) -> torch.Tensor:
    """RLlib's action-distribution inputs for one of ``net``'s distributions."""
    if isinstance(net, MLPGaussianPolicy):
        return torch.cat([dist.mean, dist.log_std], dim=-1)  # TorchDiagGaussian's layout
    return dist.logits
