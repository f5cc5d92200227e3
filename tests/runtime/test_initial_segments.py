"""``label_schedule.initial_segments_per_label``: the initial labels are drawn from more
random-policy segments than the first rollout holds (extra rollouts of the initial policy,
not trained on), so 25 % of the budget does not ask about the same few clips again and
again."""

import pytest

from rlhp.config import load_config
from rlhp.data.label_store import read_labels
from rlhp.data.segment_store import SegmentStore
from rlhp.runtime import preferences
from rlhp.runtime.events import Notice
from rlhp.runtime.loop import PreferenceRun

ROLLOUT_STEPS = 256  # the default preset's: one rollout is steps 0-255 of every sub-env


@pytest.mark.slow
def test_initial_labels_come_from_extra_random_policy_rollouts(ray_cluster, isolated):
    cfg = load_config(
        "default",
        isolated(
            "total_steps=2048",
            "label_schedule.initial_labels=20",
            "label_schedule.total_labels=20",
            "label_schedule.initial_segments_per_label=6",  # 120 segments: 4 rollouts of 32
            "query.strategy=random",
        ),
    )
    result = PreferenceRun(cfg).run()
    assert result.global_step == 2048  # the extra rollouts are not trained on
    labels = read_labels(result.run_dir / "labels").to_pylist()
    named = sorted({s for r in labels for s in (r["left"], r["right"])})
    segments = SegmentStore(1, result.run_dir / "segments").table(named).to_pylist()
    assert len(labels) == 20 and len(segments) == len(named)
    assert {s["policy_version"] for s in segments} == {0}  # all from the random policy
    assert max(s["t_start"] for s in segments) >= ROLLOUT_STEPS  # beyond the first rollout


def _notices_of_a_short_run(isolated, *extra: str) -> list[str]:
    """The notices of a default-preset run of 1,024 steps with 50 labels, all initial."""
    cfg = load_config(
        "default",
        isolated(
            "total_steps=1024",
            "label_schedule.initial_labels=50",
            "label_schedule.total_labels=50",
            *extra,
        ),
    )
    notices: list[str] = []
    PreferenceRun(cfg).run(lambda e: notices.append(e.message) if isinstance(e, Notice) else None)
    return notices


@pytest.mark.slow
@pytest.mark.parametrize(("learning_rate", "warned"), [(1e-9, 1), (None, 0)])
def test_a_first_fit_that_learned_nothing_is_announced(
    ray_cluster, isolated, learning_rate, warned
):
    """A pre-training fit that leaves r_hat at the loss of a constant model (a learning rate
    of 1e-9) is announced before RL starts, with the settings to change (on Pong this went
    unseen for hours, benchmarks/README.md); the default preset's fit is not."""
    extra = [] if learning_rate is None else [f"reward_model.learning_rate={learning_rate}"]
    notices = _notices_of_a_short_run(isolated, *extra)
    found = [m for m in notices if "has not learned from its labels" in m]
    assert len(found) == warned, notices
    assert all("reward_model.dropout" in m for m in found)


@pytest.mark.slow
def test_a_long_pre_training_is_announced_epoch_by_epoch(ray_cluster, isolated, monkeypatch):
    """The first fit (A.2's pre-training) is told as it goes, every tenth of its epochs with
    the time left, then its result, before RL starts: on Atari it is minutes to hours of a
    bar at step 0 otherwise. The driver asks the trainer mid-fit (its ``status`` thread);
    polled every 50 ms here so that a fit of a second is long."""
    monkeypatch.setattr(preferences, "FIT_POLL_S", 0.05)
    notices = _notices_of_a_short_run(
        isolated,
        "label_schedule.initial_segments_per_label=2",
        "label_schedule.pretrain_epochs=200",
    )
    assert notices[0].startswith("initial labels: collecting 100 random-policy segments")
    start = notices.index("pre-training the reward model on 50 labels: 200 epochs")
    epochs = [int(m.split("epoch ")[1].split("/")[0]) for m in notices if ": epoch " in m]
    tenths = [e * 10 // 200 for e in epochs]  # one line per tenth of the epochs, at most
    assert len(epochs) >= 2 and tenths == sorted(set(tenths)) and epochs[-1] <= 200, notices
    assert all("left" in m for m in notices if ": epoch " in m)
    done = [i for i, m in enumerate(notices) if m.startswith("reward model pre-trained in")]
    assert len(done) == 1 and done[0] > start and "held-out accuracy" in notices[done[0]]


def test_durations_read_as_a_person_reads_them() -> None:
    assert [preferences.duration(s) for s in (4.4, 59.6, 580, 3600, 11_100)] == [
        "4 s",
        "1 min 0 s",
        "9 min 40 s",
        "1 h 00 min",
        "3 h 05 min",
    ]
