"""The labelling queue survives a SIGKILL of the service's process: the restarted service
hands out the same pairs under the same ids, accepts the leases people were holding, knows
the pairs already answered, and unpins the segments no label will name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
from feedback_helpers import TOKENS

from rlhp.data import LabelRecord, LabelStore, SegmentStore
from rlhp.feedback_app.config import FeedbackConfig
from rlhp.feedback_app.errors import AlreadyAnsweredError, NotYoursError
from rlhp.feedback_app.queue_journal import QueuedPair, answers_since
from rlhp.feedback_app.service import FeedbackService

CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import numpy as np
    from rlhp.data import LabelStore, SegmentRecord, SegmentStore
    from rlhp.feedback_app.config import FeedbackConfig
    from rlhp.feedback_app.service import FeedbackService

    base, tokens = Path(sys.argv[1]), json.loads(sys.argv[2])
    def seg(i):
        return SegmentRecord(f"s{i}", "run", "Env-v0", 0, 0, 4 * i,
                             np.full((4, 3), i, np.float32), np.zeros((4, 1), np.float32),
                             np.zeros(4, np.float32))
    segments = SegmentStore(100, base / "segments")
    segments.add([seg(i) for i in range(10)])
    service = FeedbackService(FeedbackConfig(), LabelStore(base / "labels"),
                              tokens, "run", "task", state_dir=base / "feedback",
                              segments=segments)
    s = segments.get([f"s{i}" for i in range(6)])
    segments.pin(["s8", "s9"])  # pinned for pairs whose enqueue the crash will cut short
    ids = service.enqueue([(s[0], s[1]), (s[2], s[3]), (s[4], s[5])], "random")
    alice = service.next_pair("alice")  # alice holds this one when the process dies
    bob = service.next_pair("bob")
    service.answer("bob", bob["pair_id"], bob["lease"], "right")
    print(json.dumps({"ids": ids, "alice": alice, "bob": bob}), flush=True)
    time.sleep(120)
    """
)


def restart(base: Path) -> FeedbackService:
    segments = SegmentStore(100, base / "segments")  # the ring is gone: pinned ones are back
    return FeedbackService(
        FeedbackConfig(),
        LabelStore(base / "labels"),
        dict(TOKENS),
        "run",
        "task",
        state_dir=base / "feedback",
        segments=segments,
    )


def test_a_killed_service_restarts_with_the_same_pairs(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), json.dumps(TOKENS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    before = json.loads(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    ids, alice, bob = before["ids"], before["alice"], before["bob"]

    service = restart(tmp_path)
    try:
        assert service.counts() == {"stored": 1, "pending": 2}
        assert service.restored == {"pairs": 2, "answered": 1, "dropped": 0, "unpinned": 2}
        assert service.segments.pinned_ids == {f"s{i}" for i in range(6)}  # s8, s9 released
        with pytest.raises(AlreadyAnsweredError):  # a replay is a conflict, not a 404
            service.answer("bob", bob["pair_id"], bob["lease"], "right")
        with pytest.raises(NotYoursError):  # an old lease is alice's only
            service.answer("bob", alice["pair_id"], alice["lease"], "left")
        out = service.answer("alice", alice["pair_id"], alice["lease"], "left")
        assert out["label_id"] == "run-0000001"
        third = service.next_pair("bob")
        assert third["pair_id"] in ids and third["pair_id"] not in (
            alice["pair_id"],
            bob["pair_id"],
        )
        service.answer("bob", third["pair_id"], third["lease"], "tie")
    finally:
        service.close()
        service.store.close()
    again = restart(tmp_path)  # every pair answered: nothing waits, the journal is empty
    try:
        assert again.counts() == {"stored": 3, "pending": 0}
        assert not list((tmp_path / "feedback").glob("pairs-*.json"))
        labelled = again.store.table()
        named = set(labelled.column("left").to_pylist()) | set(labelled.column("right").to_pylist())
        assert again.segments.pinned_ids == named  # every labelled segment, nothing else
    finally:
        again.close()
        again.store.close()


def label(i: int, left: str, right: str, who: str, source: str = "human") -> LabelRecord:
    return LabelRecord(f"l{i}", left, right, 1.0, source, who, "random")


def test_answers_are_matched_to_pairs_like_the_service_counts_them(tmp_path):
    with LabelStore(tmp_path) as store:
        store.append([label(0, "a", "b", "alice")])  # before the pairs were queued
        store.append([label(1, "a", "b", "alice"), label(2, "a", "b", "bob")])
        store.append([label(3, "a", "b", "carol"), label(4, "b", "a", "dan")])
        store.append([label(5, "c", "d", "alice", source="synthetic")])
        labels = store.table()
    pairs = [QueuedPair("p1", "a", "b", "random", 1), QueuedPair("p2", "a", "b", "random", 1)]
    pairs.append(QueuedPair("p3", "c", "d", "random", 0))
    got = answers_since(pairs, labels, overlap=2)
    assert got == {"p1": {"alice": 1.0, "bob": 1.0}, "p2": {"carol": 1.0}}
    assert answers_since(pairs, pa.Table.from_batches([], labels.schema), overlap=2) == {}
