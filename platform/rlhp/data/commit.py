"""Acknowledging labels: pin the segments they name, then append the labels durably."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from rlhp.data.errors import UnknownSegmentError
from rlhp.data.label_store import LabelStore, validate_labels
from rlhp.data.records import LabelRecord, SegmentRecord


class PinnableSegments(Protocol):
    """What acknowledging a label needs of the segments: a ``SegmentStore``, or the segment
    buffer actor seen through ``rlhp.actors.segment_buffer.BufferClient``."""

    def missing(self, segment_ids: Iterable[str]) -> list[str]:
        """The ids it cannot serve, sorted."""
        ...

    def pin(self, segment_ids: Sequence[str]) -> None:
        """Persist the named segments (UnknownSegmentError if one is not there)."""
        ...


def pin_present_pairs(
    pairs: Sequence[tuple[SegmentRecord, SegmentRecord]], segments: PinnableSegments
) -> list[tuple[SegmentRecord, SegmentRecord]]:
    """Pin the pairs' segments; keep the pairs whose segments are all still there (a ring
    may have evicted one since the pairs were chosen). Dropped pairs are never labelled."""
    try:
        segments.pin([s.segment_id for pair in pairs for s in pair])
        return list(pairs)
    except UnknownSegmentError:
        kept = []
        for left, right in pairs:
            try:
                segments.pin([left.segment_id, right.segment_id])
            except UnknownSegmentError:
                continue
            kept.append((left, right))
        return kept


def commit_labels(
    labels: Sequence[LabelRecord], segments: PinnableSegments, store: LabelStore
) -> list[str]:
    """Make ``labels`` durable and return their ids (the acknowledgement).

    Order matters for the contract "a label never points at lost data": every label is
    validated and every segment id resolved first (UnknownSegmentError,
    InvalidPreferenceError, DuplicateLabelError; nothing is written), then the named
    segments are pinned (persisted and fsynced), then the labels are appended (fsynced).
    A crash between the two writes leaves pinned segments without labels: harmless.
    """
    validate_labels(labels, store.label_ids)
    named = [s for label in labels for s in (label.left, label.right)]
    unknown = segments.missing(named)
    if unknown:
        raise UnknownSegmentError(
            f"labels name unknown segment ids {unknown[:5]}: never added to the segment "
            "store, or evicted before being labelled. Label pairs drawn from the store"
        )
    segments.pin(named)
    return store.append(labels)
