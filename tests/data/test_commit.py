"""commit_labels: unknown segments and bad preferences are refused before any write."""

from __future__ import annotations

import pytest

from rlhp.data import (
    InvalidPreferenceError,
    LabelStore,
    SegmentStore,
    UnknownSegmentError,
    commit_labels,
    read_labels,
)


def test_labels_pin_their_segments(tmp_path, make_segment, make_label) -> None:
    segments = SegmentStore(capacity=3, directory=tmp_path / "segments")
    segments.add([make_segment(i) for i in range(3)])
    with LabelStore(tmp_path / "labels") as labels:
        acked = commit_labels([make_label(0, "run/0/0", "run/0/1")], segments, labels)
    assert acked == ["label-0"]
    segments.add([make_segment(i) for i in range(3, 9)])  # the labelled ones leave the ring
    reopened = SegmentStore(capacity=3, directory=tmp_path / "segments")
    for label in read_labels(tmp_path / "labels").to_pylist():
        assert label["left"] in reopened and label["right"] in reopened


def test_unknown_segment_is_refused_and_nothing_stored(tmp_path, make_segment, make_label):
    segments = SegmentStore(capacity=3, directory=tmp_path / "segments")
    segments.add([make_segment(i) for i in range(3)])
    with LabelStore(tmp_path / "labels") as labels:
        commit_labels([make_label(0, "run/0/0", "run/0/1")], segments, labels)
        batch = [make_label(1, "run/0/1", "run/0/2"), make_label(2, "run/0/2", "run/0/9")]
        with pytest.raises(UnknownSegmentError, match="run/0/9"):
            commit_labels(batch, segments, labels)
        assert len(labels) == 1
        assert segments.pinned_ids == {"run/0/0", "run/0/1"}  # run/0/2 was not pinned
        with pytest.raises(InvalidPreferenceError):
            commit_labels([make_label(3, "run/0/1", "run/0/2", 0.7)], segments, labels)
        assert segments.pinned_ids == {"run/0/0", "run/0/1"}
    assert read_labels(tmp_path / "labels").num_rows == 1
