"""The phase clock books every block it times, refuses unknown phases, and the process start
time it measures is in the past."""

import time

import pytest

from rlhp.runtime.phases import PHASES, PhaseClock, process_start_time


def test_phases_add_up_and_unknown_ones_are_refused():
    clock = PhaseClock()
    with clock.phase("sampling"):
        time.sleep(0.02)
    clock.add("learner_update", 1.5)
    clock.add("driver", -0.1)  # clamped: rounding never books negative time
    assert clock.seconds["sampling"] >= 0.02 and clock.seconds["driver"] == 0.0
    assert clock.total == pytest.approx(clock.seconds["sampling"] + 1.5)
    assert clock.metrics()["time/learner_update_s"] == 1.5
    assert set(clock.metrics()) == {f"time/{p}_s" for p in PHASES} | {"time/total_s"}
    assert (
        PhaseClock.of({"sampling": 2.0, "video": 0.01}).summary() == "sampling 2.0 s; total 2.0 s"
    )
    assert PhaseClock.of(clock.seconds).total == pytest.approx(clock.total)
    with pytest.raises(KeyError, match="unknown phase 'lunch'"):
        clock.add("lunch", 1.0)


def test_the_process_started_before_now():
    started = process_start_time()
    assert 0.0 < time.time() - started < 24 * 3600
