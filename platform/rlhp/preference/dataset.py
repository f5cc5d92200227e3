"""Labelled pairs as tensors: the data set D of (σ1, σ2, μ) triples (Christiano et al. 2.2.3).

Built from the label store's table and the segment store. Labels without a preference
("can't tell") are dropped here: they are recorded, never trained on (DESIGN.md). Each
label's membership of the validation split is a stable function of its id and a seed, so
the split does not move when new labels arrive or after a restart, and two runs with the
same seed split their labels alike (the run's own id is not part of the hash).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from rlhp.data.records import SegmentRecord
from rlhp.data.schemas import tensor_column
from rlhp.errors import ConfigError


class SegmentTables(Protocol):
    """Where labelled segments are read from: a ``SegmentStore`` or an actor proxy of one."""

    def table(self, segment_ids: Sequence[str]) -> pa.Table:
        """The named segments, in order, as one table of the segment schema."""
        ...


# A run's labels are named ``{run_id}-{n:07d}`` (32 hex digits: the MLflow run id).
_RUN_PREFIX = re.compile(r"^[0-9a-f]{32}-")


def split_key(label_id: str) -> str:
    """What the validation split hashes: the label id without its run's id, so that the
    split (and with it every fit) is a function of the seed, not of the random run id."""
    return _RUN_PREFIX.sub("", label_id)


def is_validation(label_id: str, fraction: float, seed: int) -> bool:
    """Stable split: hash (seed, ``split_key(label_id)``) to a uniform number in [0, 1),
    compare to fraction."""
    key = split_key(label_id)
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < fraction


@dataclass
class PreferenceData:
    """N labelled pairs. Segments are [N, L, ...] tensors (obs keep their dtype: uint8 frames
    stay uint8 until a network reads them); ``mu`` is μ(1), the weight on the left segment."""

    obs_1: torch.Tensor
    act_1: torch.Tensor
    obs_2: torch.Tensor
    act_2: torch.Tensor
    mu: torch.Tensor
    label_ids: list[str]
    sources: list[str]
    true_return_1: torch.Tensor | None = None
    true_return_2: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.label_ids)

    def subset(self, index: np.ndarray | Sequence[int]) -> PreferenceData:
        """The pairs at ``index`` (a copy), in that order."""
        i = torch.as_tensor(np.asarray(index, dtype=np.int64))
        pick = [int(k) for k in i]
        return PreferenceData(
            self.obs_1[i],
            self.act_1[i],
            self.obs_2[i],
            self.act_2[i],
            self.mu[i],
            [self.label_ids[k] for k in pick],
            [self.sources[k] for k in pick],
            None if self.true_return_1 is None else self.true_return_1[i],
            None if self.true_return_2 is None else self.true_return_2[i],
        )

    @classmethod
    def concat(cls, parts: Sequence[PreferenceData]) -> PreferenceData:
        """All pairs of ``parts``, in order (one segment length for all: ConfigError)."""
        if not parts:
            raise ConfigError("PreferenceData.concat: no parts")
        lengths = sorted({p.obs_1.shape[1] for p in parts})
        if len(lengths) > 1:
            raise ConfigError(
                f"preference data: segment lengths {lengths} differ; labels of one fit need "
                "one segment length (env.segment_steps)"
            )
        cat = torch.cat
        returns = all(p.true_return_1 is not None for p in parts)
        return cls(
            cat([p.obs_1 for p in parts]),
            cat([p.act_1 for p in parts]),
            cat([p.obs_2 for p in parts]),
            cat([p.act_2 for p in parts]),
            cat([p.mu for p in parts]),
            [i for p in parts for i in p.label_ids],
            [s for p in parts for s in p.sources],
            cat([p.true_return_1 for p in parts]) if returns else None,  # type: ignore[misc]
            cat([p.true_return_2 for p in parts]) if returns else None,  # type: ignore[misc]
        )

    def from_sources(self, *sources: str) -> PreferenceData:
        """Only the labels whose ``source`` is one of ``sources`` (e.g. 'synthetic')."""
        return self.subset([k for k, s in enumerate(self.sources) if s in sources])

    def split(self, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the training and validation pairs (``is_validation`` per label id)."""
        val = np.array([is_validation(i, fraction, seed) for i in self.label_ids], dtype=bool)
        return np.flatnonzero(~val), np.flatnonzero(val)

    @classmethod
    def from_labels(cls, labels: pa.Table, segments: SegmentTables) -> PreferenceData:
        """Pairs from a label table (``LabelStore.table()``), segments from the store."""
        labels = labels.filter(pc.is_valid(labels.column("preference")))
        left = labels.column("left").to_pylist()
        right = labels.column("right").to_pylist()
        t1, t2 = segments.table(left), segments.table(right)

        def tensor(table: pa.Table, name: str) -> torch.Tensor:
            return torch.from_numpy(np.array(tensor_column(table, name)))  # own, writable copy

        return cls(
            tensor(t1, "obs"),
            tensor(t1, "actions"),
            tensor(t2, "obs"),
            tensor(t2, "actions"),
            torch.tensor(labels.column("preference").to_pylist(), dtype=torch.float32),
            labels.column("label_id").to_pylist(),
            labels.column("source").to_pylist(),
            tensor(t1, "true_rewards").double().sum(dim=1),
            tensor(t2, "true_rewards").double().sum(dim=1),
        )

    @classmethod
    def from_pairs(
        cls,
        pairs: Sequence[tuple[SegmentRecord, SegmentRecord]],
        preferences: Sequence[float | None],
        source: str = "synthetic",
        id_prefix: str = "pair",
    ) -> PreferenceData:
        """Pairs and answers held in memory (answers of None are dropped)."""
        keep = [(p, m) for p, m in zip(pairs, preferences, strict=True) if m is not None]

        def stack(side: int, name: str) -> torch.Tensor:
            return torch.from_numpy(np.stack([np.asarray(getattr(p[side], name)) for p, _ in keep]))

        return cls(
            stack(0, "obs"),
            stack(0, "actions"),
            stack(1, "obs"),
            stack(1, "actions"),
            torch.tensor([m for _, m in keep], dtype=torch.float32),
            [f"{id_prefix}-{k}" for k in range(len(keep))],
            [source] * len(keep),
            stack(0, "true_rewards").double().sum(dim=1),
            stack(1, "true_rewards").double().sum(dim=1),
        )
