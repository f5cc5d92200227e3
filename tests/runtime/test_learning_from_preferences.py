"""CI keeps learning from preferences honest, at small scale (minutes, marked slow).

A preference run on InvertedPendulum-v5 with the paper's fixed-length episodes (appendix
A.1: the termination condition becomes a penalty, so staying alive is not rewarded by the
episode's end) must reach an absolute evaluation return from synthetic labels alone, and a
control run with the same budget whose answers are shuffled (independent of the clips:
``teacher.kind=shuffled``) must not. Together they show that the policy learns from the
labels, not from a leak of the true reward into the policy process.

Why 50-step episodes: a fixed-length episode never resets early, and the pole cannot be
raised again once it has fallen, so each episode carries ~10 steps of signal. At a CI
budget, 1000-step episodes leave ~60 resets, too few even for PPO on the true reward
(measured: -896 of 1000 at 82k steps); 50-step episodes give 1,100. The return counts +1
per upright step and -1 per fallen one (``termination_penalty=1``); the bar, 40 of 50, is the issue's 80 % of the maximum (the
pole up for at least 45 of 50 steps); the random policy scores about -35.

Why ``runtime.lockstep``: in the asynchronous loop, which reward model each of the run's 56
updates reads depends on how fast the machine fits it, and at this scale that decides the
run. Measured on these settings with the learning rate annealed, seeds 0-5, after the
validation split stopped hashing the run id: asynchronous -10.4, 50, 24.8, 24.8, -42, 50;
lockstep 50, 50, 12, 38.4, 50, 50. Lockstep makes the check a function of the seed, not of
the CI machine's load; this check runs seed 0.

Why ``learner.ppo.anneal_lr=false``: a lockstep run repeats exactly on one installation,
not across installations (cause not pinned down): the same code whose annealed seed 0 gave
50 on an earlier install gave 30.8 on a fresh one and on CI, its training return still
rising at the budget's end, where the annealed learning rate reaches zero. With a constant
learning rate, lockstep, on that fresh install: oracle labels, seeds 0-3: 50, 50, 50, 50;
shuffled labels, seeds 0-1: -46, -46; the RLlib backend's check (seed 0): 50.
"""

import pytest

from rlhp.config import load_config
from rlhp.runtime.loop import PreferenceRun

BAR = 40.0  # of 50

SETTINGS = (
    "runtime.reward=preferences",
    "env.fixed_length_episodes=true",
    "env.termination_penalty=1.0",
    "env.episode_steps=50",
    "env.segment_steps=10",
    "reward_model.output_normalization=none",
    "total_steps=57344",
    "label_schedule.total_labels=150",
    "label_schedule.initial_labels=50",
    "runtime.eval_episodes=5",
    "runtime.lockstep=true",
    "learner.ppo.anneal_lr=false",
)


def _run(isolated, *extra):
    cfg = load_config("inverted_pendulum_true_reward", isolated(*SETTINGS, *extra))
    return PreferenceRun(cfg).run()


@pytest.mark.slow
def test_synthetic_labels_teach_the_task(ray_cluster, isolated):
    result = _run(isolated)
    print(f"oracle labels: eval return {result.eval_return:.1f} from {result.labels} labels")
    assert result.labels >= 100
    assert result.eval_return >= BAR


@pytest.mark.slow
def test_shuffled_labels_do_not(ray_cluster, isolated):
    result = _run(isolated, "teacher.kind=shuffled")
    print(f"shuffled labels: eval return {result.eval_return:.1f} from {result.labels} labels")
    assert result.labels >= 100
    assert result.eval_return < BAR
