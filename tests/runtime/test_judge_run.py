"""A run labelled by an AI judge (``teacher.kind=judge``) on a real local Ray cluster: the
labelling actor loads the judge file and its answers are stored as labels."""

from pathlib import Path

import pytest

from rlhp.config import load_config
from rlhp.data.label_store import read_labels

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "judges.py"


@pytest.mark.slow
def test_a_run_labelled_by_a_judge_stores_its_labels(ray_cluster, isolated):
    from rlhp.runtime.loop import PreferenceRun

    cfg = load_config(
        "default",
        isolated(
            "total_steps=4096",
            "label_schedule.initial_labels=8",
            "label_schedule.total_labels=12",
            "teacher.kind=judge",
            f"teacher.judge={EXAMPLES}:pendulum_upright",
        ),
    )
    result = PreferenceRun(cfg).run()
    labels = read_labels(result.run_dir / "labels").to_pylist()
    assert len(labels) >= 8
    assert {r["source"] for r in labels} == {"judge:pendulum_upright"}
    assert {r["labeler"] for r in labels} == {"pendulum_upright"}


@pytest.mark.slow
def test_a_judge_that_fails_is_named_and_the_stored_labels_stay(ray_cluster, isolated, tmp_path):
    from rlhp.preference.labelers import LabelerError
    from rlhp.runtime.loop import PreferenceRun

    judge = tmp_path / "flaky.py"  # answers the first round (8 pairs), then fails
    judge.write_text(
        "calls = 0\n"
        "def judge(left, right):\n"
        "    global calls\n"
        "    calls += 1\n"
        "    if calls > 8:\n"
        "        raise TimeoutError('the judge service did not answer')\n"
        "    return 1.0\n"
    )
    cfg = load_config(
        "default",
        isolated(
            "total_steps=8192",
            "label_schedule.initial_labels=8",
            "label_schedule.total_labels=40",
            "teacher.kind=judge",
            f"teacher.judge={judge}:judge",
        ),
    )
    run = PreferenceRun(cfg)
    with pytest.raises(LabelerError) as err:
        run.run()
    message = str(err.value)
    assert message.startswith("teacher: labeler 'judge' (judge:judge) failed on ")
    assert "TimeoutError: the judge service did not answer" in message and "\n" not in message
    assert read_labels(run.run_dir / "labels").num_rows == 8  # acknowledged before: kept
