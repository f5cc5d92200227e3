"""``runtime.lockstep=pipelined`` on a real local Ray cluster: the labelling round and the
reward-model fit run during the learner's update, and the run is still a function of its
seed. Two runs of one seed store the same labels, save the same reward model and end with
the same policy, one of them beside a process that keeps a core busy (so that the actors'
relative speed differs between the runs).

Why ``reward_model.epochs_per_fit=60``: a fit then takes about as long as a learner update,
so in the asynchronous loop which model an update reads depends on the machine's timing; the
same test with ``runtime.lockstep=false`` fails ("the runs asked for different labels",
twice in two tries). At 4096 or 6144 steps the asynchronous runs still matched; hence 8192.
"""

import subprocess
import sys

import pytest
import torch

from rlhp.checkpoints import REWARD_MODEL, RewardModelCheckpoint, RunCheckpoint
from rlhp.config import ConfigError, load_config
from rlhp.data.label_store import read_labels
from rlhp.runtime.loop import PreferenceRun

SHORT = ["total_steps=8192", "env.num_envs=1", "learner.rollout_steps=512", "seed=3",
         "label_schedule.total_labels=40", "label_schedule.initial_labels=10",
         "runtime.lockstep=pipelined", "reward_model.epochs_per_fit=60"]  # fmt: skip


def _labels_and_models(run: PreferenceRun) -> tuple[list, dict, dict]:
    labels = read_labels(run.run_dir / "labels").sort_by("created_at")
    step = lambda ids: [s.rsplit("-", 1)[1] for s in ids]  # noqa: E731 (ids carry the run id)
    rows = list(zip(step(labels.column("left").to_pylist()),
                    step(labels.column("right").to_pylist()),
                    labels.column("preference").to_pylist(), strict=True))  # fmt: skip
    reward = RewardModelCheckpoint.load(run.run_dir / REWARD_MODEL).model
    policy = RunCheckpoint.load(run.run_dir).policy
    return rows, reward, policy


def _assert_same_tensors(a: dict, b: dict, where: str) -> None:
    for key, value in a.items():
        if isinstance(value, dict):
            _assert_same_tensors(value, b[key], f"{where}.{key}")
        elif isinstance(value, torch.Tensor):
            assert torch.equal(value, b[key]), f"{where}.{key} differs"


@pytest.mark.slow
def test_a_pipelined_run_repeats_exactly_under_load(ray_cluster, isolated):
    quiet = PreferenceRun(load_config(None, isolated(*SHORT)))
    quiet.run(lambda m: None)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        loaded = PreferenceRun(load_config(None, isolated(*SHORT)))
        result = loaded.run(lambda m: None)
    finally:
        hog.kill()
    first, second = _labels_and_models(quiet), _labels_and_models(loaded)
    assert len(first[0]) == result.labels >= 30
    assert first[0] == second[0], "the runs asked for different labels"
    assert first[1]["version"] == second[1]["version"]
    _assert_same_tensors(first[1], second[1], "reward model")
    _assert_same_tensors(first[2], second[2], "policy")


@pytest.mark.parametrize("conflict", ["runtime.overlap_sampling=true", "learner.backend=rllib"])
def test_pipelined_lockstep_refuses_what_would_race_it(conflict):
    with pytest.raises(ConfigError, match=r"runtime\.(lockstep|overlap_sampling)"):
        load_config(None, ["runtime.lockstep=pipelined", conflict])


def test_lockstep_takes_true_false_or_pipelined():
    assert load_config(None, ["runtime.lockstep=pipelined"]).runtime.lockstep == "pipelined"
    assert load_config(None, ["runtime.lockstep=true"]).runtime.lockstep is True
    with pytest.raises(ConfigError, match=r"runtime\.lockstep"):
        load_config(None, ["runtime.lockstep=sometimes"])
