"""Segment buffer actor: owns the Arrow segment store, so segments outlive their workers.

Thin shell around ``rlhp.data.SegmentStore``; segments named by a label are pinned and
persisted under the run directory, so a restarted buffer still serves every labelled pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from rlhp.data.records import SegmentRecord
from rlhp.data.schemas import tensor_column
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
        self, n: int, seed: Sequence[int], same_env_only: bool = True
    ) -> list[tuple[SegmentRecord, SegmentRecord]]:
        return self.store.sample_candidates(n, np.random.default_rng(list(seed)), same_env_only)

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
