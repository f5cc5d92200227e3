"""A resumed sweep keeps a finished or started trial only if the spec still gives it the
settings it was made with (no Ray: the check runs before anything starts)."""

from dataclasses import replace

import pytest

from rlhp.cluster.sweep import (
    Trial,
    check_kept_trials,
    learning_settings,
)
from rlhp.cluster.sweep_store import SweepStore, TrialResult
from rlhp.config import load_config
from rlhp.errors import ConfigError

TRIAL = Trial("Hopper-v5", 0, labels=700)


def result(settings):
    return replace(
        TrialResult.unfinished(TRIAL.name, "Hopper-v5", 0, "", "preferences", 700, ""),
        status="FINISHED",
        settings=settings,
    )


def test_settings_leave_out_where_a_trial_runs():
    here = load_config("mujoco_synthetic", ["tracking.uri=sqlite:///a.db", "runtime.runs_dir=x"])
    there = load_config("mujoco_synthetic", ["runtime.ray_address=auto", "device=cuda"])
    assert learning_settings(here) == learning_settings(there)
    assert learning_settings(here)["env.height_reward"] == 1.0
    changed = load_config("mujoco_synthetic", ["env.height_reward=0.5"])
    assert learning_settings(changed) != learning_settings(here)


def test_settings_leave_out_the_optimizers_a_trial_does_not_use():
    trpo = learning_settings(load_config("mujoco_synthetic", []))
    ppo = learning_settings(load_config("mujoco_synthetic_ppo", ["learner.trpo.ent_coef=0.5"]))
    assert "learner.trpo.ent_coef" in trpo
    assert "learner.ppo.learning_rate" in ppo
    assert not any(k.startswith(("learner.trpo.", "learner.appo.")) for k in ppo)
    assert not any(k.startswith(("learner.ppo.", "learner.appo.")) for k in trpo)


def test_a_result_of_other_settings_stops_the_resume(tmp_path):
    store = SweepStore(tmp_path, "paper").ensure()
    before = learning_settings(load_config("mujoco_synthetic", []))
    now = {TRIAL: load_config("mujoco_synthetic", ["env.fixed_length_episodes=true",
                                                    "env.height_reward=0.5"])}  # fmt: skip
    with pytest.raises(ConfigError) as err:
        check_kept_trials(now, store, {TRIAL.name: result(before)})
    message = str(err.value)
    assert message.startswith(f"sweep paper: trial {TRIAL.name} finished with other settings")
    assert "env.height_reward 1.0 -> 0.5" in message
    assert str(store.trials / f"{TRIAL.name}.json") in message

    # the same settings, an older result without any, or a field added since: kept
    same = {TRIAL: load_config("mujoco_synthetic", [])}
    check_kept_trials(same, store, {TRIAL.name: result(before)})
    check_kept_trials(now, store, {TRIAL.name: result({})})
    older = {k: v for k, v in before.items() if k != "env.height_reward"}
    check_kept_trials(same, store, {TRIAL.name: result(older)})


def test_a_started_trial_of_other_settings_stops_the_resume(tmp_path):
    store = SweepStore(tmp_path, "paper").ensure()
    store.mark_started(TRIAL.name, "run1", learning_settings(load_config("mujoco_synthetic", [])))
    now = {TRIAL: load_config("mujoco_synthetic", ["label_schedule.total_labels=350"])}
    with pytest.raises(ConfigError, match=r"started with other settings .*total_labels 700 -> 350"):
        check_kept_trials(now, store, {})
    assert store.started_settings()[TRIAL.name]["label_schedule.total_labels"] == 700
