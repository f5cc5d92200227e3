"""Config sections: paper defaults, unknown fields and bad values refused."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from rlhp.preference import QueryConfig, RewardModelConfig, TeacherConfig


def test_paper_defaults() -> None:
    cfg = RewardModelConfig()
    assert cfg.validation_fraction == pytest.approx(1 / math.e)
    assert cfg.l2_band == (1.1, 1.5)
    assert cfg.random_response_prob == 0.1
    assert cfg.hidden_sizes == (64, 64) and cfg.ensemble_size == 3
    assert TeacherConfig().is_perfect
    assert QueryConfig().strategy == "disagreement"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ensemble_size": 0}, "ensemble_size"),
        ({"l2_band": (1.5, 1.1)}, "l2_band"),
        ({"hidden_sizes": ()}, "hidden_sizes"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"random_response_prob": 1.0}, "random_response_prob"),
        ({"ensembel_size": 3}, "ensembel_size"),
    ],
)
def test_bad_reward_model_config_names_the_field(kwargs, field) -> None:
    with pytest.raises(ValidationError, match=field):
        RewardModelConfig(**kwargs)


def test_bad_teacher_config() -> None:
    with pytest.raises(ValidationError, match="epsilon"):
        TeacherConfig(epsilon=1.5)
    with pytest.raises(ValidationError, match="gamma"):
        TeacherConfig(gamma=0.0)
