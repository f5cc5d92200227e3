"""One labelling path: schedule -> select_queries -> a desk -> commit, for a labeler that
answers at once and for people behind the feedback app's queue (real stores, no Ray)."""

from __future__ import annotations

import pytest

from rlhp.data import LabelStore, SegmentStore
from rlhp.data.commit import commit_labels
from rlhp.data.errors import UnknownSegmentError
from rlhp.data.label_store import read_labels
from rlhp.feedback_app.config import FeedbackConfig
from rlhp.feedback_app.service import FeedbackService
from rlhp.preference import (
    InputSpec,
    LabelSchedule,
    LabelScheduleConfig,
    PreferenceData,
    QueryConfig,
    RewardEnsemble,
    RewardModelConfig,
    SimulatedTeacher,
)
from rlhp.preference.labelers import LabelerError, to_label_records
from rlhp.preference.labeling import ImmediateDesk, LabelingProcess, QueuedDesk

SCHEDULE = LabelScheduleConfig(total_labels=60, initial_labels=20, total_timesteps=1000)


def _process(tmp_path, segments, labeler=None, run_id="run") -> LabelingProcess:
    desk = ImmediateDesk(
        labeler or SimulatedTeacher(), LabelStore(tmp_path / "labels"), segments, run_id
    )
    return LabelingProcess(LabelSchedule(SCHEDULE), QueryConfig(), desk, segments)


def test_rounds_follow_the_schedule_and_continue_after_a_restart(tmp_path, make_segments):
    segments = SegmentStore(200, tmp_path / "segments")
    segments.add(make_segments(120, seed=0))
    process = _process(tmp_path, segments)
    first = process.round(0, None)  # no reward model yet: random pairs
    assert first["new"] == first["asked"] == 20
    assert "query/disagreement" not in first
    ensemble = RewardEnsemble(InputSpec((4,), (2,)), RewardModelConfig(seed=0))
    store = process.desk.store  # type: ignore[attr-defined]
    ensemble.fit(PreferenceData.from_labels(store.table(), segments), epochs=3)
    second = process.round(500, ensemble)
    assert second["new"] == process.schedule.target(500) - 20 > 0
    assert second["query/disagreement"] >= 0.0
    strategies = store.table().column("query_strategy").to_pylist()
    assert strategies[:20] == ["random"] * 20 and set(strategies[20:]) == {"disagreement"}
    # every label names segments that are pinned, so they outlive the ring
    table = store.table()
    named = set(table.column("left").to_pylist()) | set(table.column("right").to_pylist())
    assert named <= segments.pinned_ids
    store.close()

    # a restarted process sees the stored labels: nothing is due again, ids continue
    again = _process(tmp_path, SegmentStore(200, tmp_path / "segments"))
    assert again.round(500, None)["new"] == 0
    segments2 = again.segments
    segments2.add(make_segments(120, seed=1))  # type: ignore[attr-defined]
    out = again.round(1000, None)
    ids = again.desk.store.table().column("label_id").to_pylist()  # type: ignore[attr-defined]
    assert out["asked"] == len(ids) == len(set(ids)) == process.schedule.target(1000)
    assert ids[-1] == f"run-{len(ids) - 1:07d}"


def test_a_failing_labeler_is_one_line_and_keeps_the_stored_labels(tmp_path, make_segments):
    class Broken:
        name, source = "broken", "judge:broken"
        calls = 0

        def label(self, pairs):
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("service down\nsecond line")
            return SimulatedTeacher().label(pairs)

    segments = SegmentStore(200, tmp_path / "segments")
    segments.add(make_segments(120, seed=0))
    process = _process(tmp_path, segments, Broken())
    assert process.round(0, None)["new"] == 20
    with pytest.raises(LabelerError, match=r"'broken' \(judge:broken\).*service down$"):
        process.round(1000, None)
    assert read_labels(tmp_path / "labels").num_rows == 20


def test_a_pair_whose_segment_was_evicted_is_dropped_unlabelled(tmp_path, make_segments):
    segments = SegmentStore(50, tmp_path / "segments")
    segments.add(make_segments(50, seed=0))
    gone = tuple(segments.get(["s0-0", "s0-1"]))
    segments.add(make_segments(49, seed=1))  # s0-0 and s0-1 ... evicted, s0-49 still there
    kept = tuple(segments.get(["s0-49", "s1-0"]))
    desk = ImmediateDesk(SimulatedTeacher(), LabelStore(tmp_path / "labels"), segments, "run")
    assert desk.submit([gone, kept], "random") == 1  # the run goes on; the schedule asks again
    labels = read_labels(tmp_path / "labels")
    assert labels.column("left").to_pylist() == ["s0-49"]  # only the pair still there
    assert {"s0-49", "s1-0"} <= segments.pinned_ids
    with pytest.raises(UnknownSegmentError, match="s0-0"):  # commit_labels still refuses it
        commit_labels(to_label_records([gone], [1.0], SimulatedTeacher(), "random",
                                       make_id=lambda: "x"), segments, desk.store)  # fmt: skip


def test_people_get_pairs_through_the_queue_at_most_max_pending(tmp_path, make_segments):
    segments = SegmentStore(200, tmp_path / "segments")
    segments.add(make_segments(120, seed=0))
    store = LabelStore(tmp_path / "labels")
    service = FeedbackService(
        FeedbackConfig(max_pending=8), store, {"tok": "alice"}, "run", "task", segments=segments
    )
    process = LabelingProcess(
        LabelSchedule(SCHEDULE), QueryConfig(), QueuedDesk(service, 8), segments
    )
    out = process.round(0, None)
    assert out["new"] == 8 and out["asked"] == 0  # 20 due, 8 may wait
    assert process.round(0, None)["new"] == 0  # the queue is full
    for _ in range(3):
        offer = service.next_pair("alice")
        service.answer("alice", offer["pair_id"], offer["lease"], "left")
    out = process.round(0, None)
    assert out["asked"] == 3 and out["new"] == 3  # refilled to 8 waiting
    assert service.counts() == {"stored": 3, "pending": 8}
    # queued pairs' segments are pinned before anyone sees them
    queued = {s.segment_id for p in service._queue.values() for s in (p.left, p.right)}
    assert queued <= segments.pinned_ids
    service.close()
    store.close()
