"""Which reward model a run uses: the paper's ensemble, or the oracle diagnostic."""

from __future__ import annotations

from rlhp.preference.config import RewardModelConfig
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.networks import InputSpec
from rlhp.preference.oracle import OracleRewardModel

RewardModel = RewardEnsemble | OracleRewardModel


def build_reward_model(spec: InputSpec, cfg: RewardModelConfig) -> RewardModel:
    """``RewardEnsemble`` for ``kind=ensemble``, ``OracleRewardModel`` for ``kind=oracle``."""
    if cfg.kind == "oracle":
        return OracleRewardModel(cfg)
    return RewardEnsemble(spec, cfg)
