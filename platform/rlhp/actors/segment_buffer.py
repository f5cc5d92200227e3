"""Segment buffer actor: owns the Arrow segment store, so segments outlive their workers.

Thin shell around ``rlhp.data.SegmentStore``; segments named by a label are pinned and
persisted under the run directory, so a restarted buffer still serves every labelled pair.
``BufferClient`` is the actor seen as a segment store by the other actors (the labelling
process, the reward trainer, the feedback app).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from rlhp.data.records import SegmentRecord
from rlhp.data.schemas import batch_to_records, tensor_column
from rlhp.data.segment_store import SegmentStore


class SegmentBuffer:
    def __init__(self, capacity: int, directory: str) -> None:
        self.store = SegmentStore(capacity, directory)

    def add(self, segments: Sequence[SegmentRecord]) -> int:
        self.store.add(segments)
        return len(self.store)

    def size(self) -> int:
        return len(self.store)

    def sample_candidates(
        self, n: int, rng: np.random.Generator, same_env_only: bool = True
    ) -> list[tuple[SegmentRecord, SegmentRecord]]:
        return self.store.sample_candidates(n, rng, same_env_only)

    def missing(self, segment_ids: Sequence[str]) -> list[str]:
        return self.store.missing(segment_ids)

    def pin(self, segment_ids: Sequence[str]) -> None:
        self.store.pin(segment_ids)

    def unpin_except(self, keep: Sequence[str]) -> list[str]:
        """Release the pinned segments no label names or will name (``keep`` holds those)."""
        return self.store.unpin_except(keep)

    def table(self, segment_ids: Sequence[str]) -> pa.Table:
        return self.store.table(segment_ids)

    def recent_steps(self, max_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(obs, actions, true rewards) of the newest segments' steps, flattened, at most
        ``max_steps`` (the true rewards serve only the oracle diagnostic)."""
        recent = self.store.recent()
        L = tensor_column(recent.slice(0, 1), "true_rewards").shape[1]
        recent = recent.slice(max(0, recent.num_rows - max(1, max_steps // L)))
        obs, act = tensor_column(recent, "obs"), tensor_column(recent, "actions")
        rewards = tensor_column(recent, "true_rewards")
        return obs.reshape(-1, *obs.shape[2:]), act.reshape(-1, *act.shape[2:]), rewards.reshape(-1)


class BufferClient:
    """The segment buffer actor as a segment store, for code written against
    ``SegmentStore`` (query selection, ``commit_labels``, ``PreferenceData.from_labels``,
    the feedback service). Calls block; the buffer's own errors (e.g. UnknownSegmentError)
    arrive unchanged rather than wrapped in a RayTaskError."""

    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer

    def _call(self, method: str, *args: Any) -> Any:
        import ray
        from ray.exceptions import RayTaskError

        try:
            return ray.get(getattr(self.buffer, method).remote(*args))
        except RayTaskError as err:
            raise err.cause from None

    def sample_candidates(
        self, n: int, rng: np.random.Generator, same_env_only: bool = True
    ) -> list[tuple[SegmentRecord, SegmentRecord]]:
        return self._call("sample_candidates", n, rng, same_env_only)

    def missing(self, segment_ids: Iterable[str]) -> list[str]:
        return self._call("missing", list(segment_ids))

    def pin(self, segment_ids: Sequence[str]) -> None:
        self._call("pin", list(segment_ids))

    def unpin_except(self, keep: Sequence[str]) -> list[str]:
        return self._call("unpin_except", list(keep))

    def table(self, segment_ids: Sequence[str]) -> pa.Table:
        return self._call("table", list(segment_ids))

    def get(self, segment_ids: Sequence[str]) -> list[SegmentRecord]:
        return batch_to_records(self.table(segment_ids))
