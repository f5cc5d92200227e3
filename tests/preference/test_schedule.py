"""Label schedule: initial batch, decay ∝ c / (T + c), total budget."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rlhp.preference import LabelSchedule, LabelScheduleConfig


def test_initial_batch_and_budget() -> None:
    cfg = LabelScheduleConfig(total_labels=700, initial_labels=175, total_timesteps=10**7)
    schedule = LabelSchedule(cfg)
    assert schedule.target(0) == 175
    assert schedule.target(10**7) == 700 and schedule.target(10**8) == 700
    targets = [schedule.target(T) for T in range(0, 10**7 + 1, 10**5)]
    assert targets == sorted(targets)


def test_rate_decays_as_c_over_t_plus_c() -> None:
    cfg = LabelScheduleConfig(
        total_labels=10_000, initial_labels=0, total_timesteps=10**8, decay_timesteps=2e6
    )
    schedule = LabelSchedule(cfg)
    c = cfg.decay_timesteps
    # "after twice as many timesteps have elapsed, we answer about half as many queries":
    # rate(T) / rate(0) = c / (T + c), so at T = c the rate has halved
    assert schedule.rate(c) / schedule.rate(0) == pytest.approx(0.5)
    # labels asked in equal windows shrink as c / (T + c)
    w = 10**6
    early = schedule.target(w) - schedule.target(0)
    late = schedule.target(int(3 * c) + w) - schedule.target(int(3 * c))
    assert late / early == pytest.approx((0 + c + w / 2) / (3 * c + c + w / 2), rel=0.02)
    # the rate is the derivative of the target
    T, h = 5 * 10**6, 10**5
    slope = (schedule.target(T + h) - schedule.target(T - h)) / (2 * h)
    assert slope == pytest.approx(schedule.rate(T), rel=0.01)


def test_due_counts_what_is_missing() -> None:
    schedule = LabelSchedule(LabelScheduleConfig(total_labels=100, initial_labels=10))
    assert schedule.due(0, 0) == 10
    assert schedule.due(0, 10) == 0
    assert schedule.due(0, 50) == 0  # never negative
    assert schedule.due(10**9, 60) == 40


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match="initial_labels"):
        LabelScheduleConfig(total_labels=10, initial_labels=20)
    with pytest.raises(ValidationError, match="extra"):
        LabelScheduleConfig(total_label=10)  # type: ignore[call-arg]
