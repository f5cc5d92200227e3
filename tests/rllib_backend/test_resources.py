"""Where RLlib's Learners learn (``rlhp.rllib_backend.resources.learner_gpus``)."""

import pytest

from rlhp.config import load_config
from rlhp.errors import ConfigError
from rlhp.rllib_backend.resources import free_gpus_before_ray, learner_gpus


def _cfg(device: str, learners: int):
    return load_config(None, ["learner.backend=rllib", f"device={device}",
                              f"learner.rllib.num_learners={learners}"])  # fmt: skip


@pytest.mark.parametrize(
    ("device", "learners", "gpus", "per_learner"),
    [
        ("cpu", 2, 4, 0),  # device=cpu never takes a GPU
        ("auto", 0, 1, 1),  # the driver's Learner on this process's GPU
        ("auto", 2, 2, 1),  # one GPU per Learner actor
        ("auto", 2, 1, 0),  # too few GPUs: auto learns on CPUs
        ("auto", 0, 0, 0),
        ("cuda", 2, 2, 1),
    ],
)
def test_gpus_per_learner(device, learners, gpus, per_learner):
    assert learner_gpus(_cfg(device, learners), gpus) == per_learner


def test_cuda_with_too_few_gpus_names_the_field_and_the_fix():
    with pytest.raises(ConfigError, match=r"^learner\.rllib\.num_learners: 3 Learners .* "
                       r"2 are free for them .*; set learner\.rllib\.num_learners=2 or fewer"):  # fmt: skip
        learner_gpus(_cfg("cuda", 3), 2)
    with pytest.raises(ConfigError, match=r"^device: cuda was asked for"):
        learner_gpus(_cfg("cuda", 0), 0)


@pytest.mark.parametrize(
    ("learners", "preferences", "free"),
    [(0, True, 2), (1, True, 1), (1, False, 2)],  # the trainer's bundle holds one GPU
)
def test_gpus_a_local_cluster_leaves_for_learners(learners, preferences, free):
    assert free_gpus_before_ray(_cfg("auto", learners), 2, preferences) == free
