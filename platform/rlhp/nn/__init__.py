"""Networks: MLP and Nature-CNN actor-critics, action distributions, normalization (no Ray)."""

from rlhp.nn.config import PolicyConfig
from rlhp.nn.policies import ActorCritic, build_policy

__all__ = ["ActorCritic", "PolicyConfig", "build_policy"]
