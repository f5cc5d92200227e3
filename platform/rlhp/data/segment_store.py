"""Segment store: a ring of recent segments in Arrow record batches, plus pinned segments.

Rollout workers ``add`` segments; the oldest are evicted once ``capacity`` is exceeded. The
query side samples candidate pairs from the ring. Before a label naming a segment is
acknowledged, the segment is ``pin``-ned: written to an Arrow IPC file in the store
directory (atomically, fsynced) and kept retrievable forever, so labels never point at
evicted data (DESIGN.md, "Label"). Reopening the directory brings the pinned segments back.
Segments pinned for a question that no label will answer (a queue lost in a crash) are
released with ``unpin_except``, given every segment a label names or will name.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from rlhp.data._durable import fsync_dir, remove_stale_tmp, write_atomic
from rlhp.data.errors import DuplicateSegmentError, SchemaMismatchError, UnknownSegmentError
from rlhp.data.records import SegmentRecord
from rlhp.data.schemas import SegmentSpec, batch_to_records, check_schema, records_to_batch
from rlhp.errors import ConfigError

_PINNED_GLOB = "pinned-*.arrow"


class SegmentStore:
    """Recent segments (a ring of ``capacity``) and every segment a label names (pinned).

    Args:
        capacity: most segments kept in the ring (count); pinned segments do not count.
        directory: where pinned segments are persisted; ``None`` keeps them in memory only.
        spec: the segment shape; ``None`` takes it from the first segment added or from the
            files already in ``directory``.
        read_only: serve the pinned segments of ``directory`` (another run's) and write
            nothing: no stale-file clean-up, no ``add``, ``pin`` or ``adopt``.
    """

    def __init__(
        self,
        capacity: int,
        directory: str | Path | None = None,
        spec: SegmentSpec | None = None,
        read_only: bool = False,
    ) -> None:
        self.read_only = read_only
        if capacity < 1:
            raise ConfigError(f"segment_store.capacity: must be >= 1, got {capacity}")
        self.capacity = capacity
        self._spec = spec
        self._directory = Path(directory) if directory is not None else None
        # Ring: batches in arrival order; segment number p (global, increasing) of the first
        # row of each batch in _starts; id -> p in _ring_index.
        self._batches: list[pa.RecordBatch] = []
        self._starts: list[int] = []
        self._next_position = 0
        self._ring_index: dict[str, int] = {}
        # Pinned: id -> one-row record batch (memory-mapped from disk when persisted), and
        # id -> the file holding it.
        self._pinned: dict[str, pa.RecordBatch] = {}
        self._pinned_in: dict[str, Path] = {}
        self._next_file = 0
        if self._directory is not None:
            if not read_only:
                self._directory.mkdir(parents=True, exist_ok=True)
            elif not self._directory.is_dir():
                raise ConfigError(f"segment_store: no segment directory {self._directory}")
            self._load_pinned()

    # -- shape -------------------------------------------------------------------------

    @property
    def spec(self) -> SegmentSpec | None:
        """The shape every segment of this store has (None until the first segment)."""
        return self._spec

    def __len__(self) -> int:
        """Segments in the ring (pinned segments evicted from the ring not counted)."""
        return len(self._ring_index)

    def __contains__(self, segment_id: object) -> bool:
        return segment_id in self._ring_index or segment_id in self._pinned

    def missing(self, segment_ids: Iterable[str]) -> list[str]:
        """The ids among ``segment_ids`` this store cannot serve, sorted (none: all there)."""
        return sorted({s for s in segment_ids if s not in self})

    @property
    def pinned_ids(self) -> frozenset[str]:
        """Ids of the segments persisted because a label names them."""
        return frozenset(self._pinned)

    # -- writing -----------------------------------------------------------------------

    def add(self, segments: Sequence[SegmentRecord] | pa.RecordBatch) -> list[str]:
        """Add segments to the ring (evicting the oldest beyond capacity); return their ids.

        Raises SchemaMismatchError if a segment does not fit the store's spec and
        DuplicateSegmentError if an id is already held; nothing is added in either case.
        """
        self._writable()
        if isinstance(segments, pa.RecordBatch):
            batch = segments
            if self._spec is None and batch.num_rows:
                self._spec = SegmentSpec.from_schema(batch.schema)
            if self._spec is not None:
                check_schema(batch.schema, self._spec.schema(), "segment batch")
        else:
            if not segments:
                return []
            if self._spec is None:
                self._spec = SegmentSpec.from_record(segments[0])
            batch = records_to_batch(segments, self._spec)
        ids: list[str] = batch.column("segment_id").to_pylist()
        seen: set[str] = set()
        for segment_id in ids:
            if segment_id in self or segment_id in seen:
                raise DuplicateSegmentError(
                    f"segment_id {segment_id!r} is already in the store; segment ids must be "
                    "unique across a run (e.g. '<run>/<worker>/<t_start>')"
                )
            seen.add(segment_id)
        if batch.num_rows == 0:
            return []
        self._batches.append(batch)
        self._starts.append(self._next_position)
        for offset, segment_id in enumerate(ids):
            self._ring_index[segment_id] = self._next_position + offset
        self._next_position += batch.num_rows
        self._evict()
        return ids

    def _evict(self) -> None:
        excess = len(self._ring_index) - self.capacity
        while excess > 0:
            head = self._batches[0]
            drop = min(excess, head.num_rows)
            for segment_id in head.column("segment_id").slice(0, drop).to_pylist():
                del self._ring_index[segment_id]
            if drop == head.num_rows:
                self._batches.pop(0)
                self._starts.pop(0)
            else:
                self._batches[0] = head.slice(drop)  # zero-copy
                self._starts[0] += drop
            excess -= drop

    def pin(self, segment_ids: Iterable[str]) -> None:
        """Persist the named segments so they outlive eviction and restarts.

        Already pinned ids are skipped. All ids are checked first: an unknown id raises
        UnknownSegmentError and nothing is written. With a directory, the new segments go
        to one Arrow IPC file written atomically and fsynced before this returns.
        """
        self._writable()
        wanted = [s for s in dict.fromkeys(segment_ids) if s not in self._pinned]
        unknown = [s for s in wanted if s not in self._ring_index]
        if unknown:
            raise UnknownSegmentError(
                f"unknown segment ids {unknown[:5]}{' ...' if len(unknown) > 5 else ''}: "
                "never added to this store, or evicted before any label named them. Label "
                "only segments that are still in the ring (see SegmentStore.sample_pairs)"
            )
        if not wanted:
            return
        rows = [self._ring_row(s) for s in wanted]
        table = pa.Table.from_batches(rows)
        if self._directory is None:
            for segment_id, row in zip(wanted, rows, strict=True):
                self._pinned[segment_id] = row
            return
        path = self._directory / f"pinned-{self._next_file:08d}.arrow"
        write_atomic(path, _ipc_file(table))
        self._next_file += 1
        self._register_file(path)

    def adopt(self, segments: pa.Table) -> list[str]:
        """Pin segments that were never in this store's ring (another run's, for label
        reuse), in one atomic, fsynced file; ids already pinned are skipped. Returns the ids
        pinned now. The segments must fit this store's spec (SchemaMismatchError)."""
        self._writable()
        if self._spec is None and segments.num_rows:
            self._spec = SegmentSpec.from_schema(segments.schema)
        if self._spec is not None:
            check_schema(segments.schema, self._spec.schema(), "adopted segments")
        ids = segments.column("segment_id").to_pylist()
        new = [i for i, s in enumerate(ids) if s not in self._pinned and s not in self._ring_index]
        if not new:
            return []
        table = segments.take(pa.array(new, type=pa.int64()))
        if self._directory is None:
            for batch in table.to_batches(max_chunksize=1):
                self._pinned[batch.column("segment_id")[0].as_py()] = batch
            return [ids[i] for i in new]
        path = self._directory / f"pinned-{self._next_file:08d}.arrow"
        write_atomic(path, _ipc_file(table))
        self._next_file += 1
        self._register_file(path)
        return [ids[i] for i in new]

    def _writable(self) -> None:
        if self.read_only:
            raise ConfigError(
                f"segment_store: {self._directory} is opened read-only (another run's "
                "segments); open it without read_only to write"
            )

    def unpin(self, segment_ids: Iterable[str]) -> None:
        """Stop keeping the named segments (ids not pinned are skipped); those still in the
        ring stay there until evicted. Each file holding one is rewritten without it
        (atomically) or removed when nothing in it stays pinned; a crash in between leaves
        the segment pinned, never a file half written."""
        self._writable()
        drop = {s for s in segment_ids if s in self._pinned}
        files: set[Path] = set()
        for segment_id in drop:
            if segment_id in self._pinned_in:
                files.add(self._pinned_in[segment_id])
            else:  # in memory only
                del self._pinned[segment_id]
        for path in sorted(files):
            held = [s for s, p in self._pinned_in.items() if p == path]
            keep = [s for s in held if s not in drop]
            if keep:
                write_atomic(
                    path, _ipc_file(pa.Table.from_batches([self._pinned[s] for s in keep]))
                )
            else:
                os.unlink(path)
            for segment_id in held:
                del self._pinned[segment_id], self._pinned_in[segment_id]
            if keep:
                self._register_file(path)
        if files and self._directory is not None:
            fsync_dir(self._directory)

    def unpin_except(self, keep: Iterable[str]) -> list[str]:
        """Unpin every pinned segment not in ``keep`` (the segments some stored label names
        or some queued question will); returns the ids unpinned, sorted."""
        wanted = set(keep)
        drop = sorted(s for s in self._pinned if s not in wanted)
        self.unpin(drop)
        return drop

    # -- reading -----------------------------------------------------------------------

    def _ring_row(self, segment_id: str) -> pa.RecordBatch:
        position = self._ring_index[segment_id]
        i = bisect.bisect_right(self._starts, position) - 1
        return self._batches[i].slice(position - self._starts[i], 1)

    def _row(self, segment_id: str) -> pa.RecordBatch:
        if segment_id in self._pinned:
            return self._pinned[segment_id]
        if segment_id in self._ring_index:
            return self._ring_row(segment_id)
        raise UnknownSegmentError(
            f"unknown segment id {segment_id!r}: never added, or evicted and not pinned"
        )

    def table(self, segment_ids: Sequence[str]) -> pa.Table:
        """The named segments, in the order given, as one table of one chunk per column.

        The rows are copied into contiguous columns: a table of one chunk per segment
        crosses Ray's object store ~20x slower (its Arrow serializer walks every chunk in
        Python; ``benchmarks/segment_fetch.py``), and the reward trainer asks for every
        labelled segment at each fit."""
        if self._spec is None:
            raise UnknownSegmentError(f"unknown segment ids {list(segment_ids)[:5]}: store empty")
        rows = [self._row(s) for s in segment_ids]
        return pa.Table.from_batches(rows, schema=self._spec.schema()).combine_chunks()

    def get(self, segment_ids: Sequence[str]) -> list[SegmentRecord]:
        """The named segments as records (arrays are read-only views into Arrow memory)."""
        return [batch_to_records(self._row(s))[0] for s in segment_ids]

    def recent(self) -> pa.Table:
        """The ring, oldest first, as one table (zero-copy over the stored batches)."""
        if self._spec is None:
            raise UnknownSegmentError("segment store is empty: add segments first")
        return pa.Table.from_batches(self._batches, schema=self._spec.schema())

    def recent_ids(self) -> list[str]:
        """Ids in the ring, oldest first."""
        return sorted(self._ring_index, key=self._ring_index.__getitem__)

    def sample_pairs(
        self, n: int, rng: np.random.Generator, same_env_only: bool = True
    ) -> list[tuple[str, str]]:
        """``n`` candidate pairs of distinct segments drawn uniformly from the ring.

        With ``same_env_only`` both segments of a pair come from the same ``env_id``. Pairs
        may repeat when the ring is small; the left/right order is random.
        """
        ids = self.recent_ids()
        if len(ids) < 2:
            raise UnknownSegmentError(
                f"need at least 2 segments in the ring to sample pairs, have {len(ids)}"
            )
        groups: list[list[str]]
        if same_env_only:
            env = self.recent().column("env_id").to_pylist()
            by_env: dict[str, list[str]] = {}
            for segment_id, env_id in zip(ids, env, strict=True):
                by_env.setdefault(env_id, []).append(segment_id)
            groups = [g for g in by_env.values() if len(g) >= 2]
            if not groups:
                raise UnknownSegmentError("no env_id has 2 segments in the ring to pair")
        else:
            groups = [ids]
        sizes = np.array([len(g) for g in groups], dtype=np.float64)
        group_of_pair = rng.choice(len(groups), size=n, p=sizes / sizes.sum())
        pairs = []
        for g in group_of_pair:
            i, j = rng.choice(len(groups[g]), size=2, replace=False)
            pairs.append((groups[g][i], groups[g][j]))
        return pairs

    def sample_candidates(
        self, n: int, rng: np.random.Generator, same_env_only: bool = True
    ) -> list[tuple[SegmentRecord, SegmentRecord]]:
        """``sample_pairs`` as records, ready for a QuerySelector."""
        pairs = self.sample_pairs(n, rng, same_env_only)
        return [(self.get([a])[0], self.get([b])[0]) for a, b in pairs]

    # -- persistence -------------------------------------------------------------------

    def _load_pinned(self) -> None:
        assert self._directory is not None
        if not self.read_only:
            remove_stale_tmp(self._directory)
        files = sorted(self._directory.glob(_PINNED_GLOB))
        for path in files:  # check every file before registering any
            with pa.memory_map(str(path)) as source:
                schema = pa.ipc.open_file(source).schema
            if self._spec is None:
                self._spec = SegmentSpec.from_schema(schema)
            check_schema(schema, self._spec.schema(), str(path))
        for path in files:
            self._register_file(path)
        if files:
            self._next_file = int(files[-1].stem.split("-")[1]) + 1

    def _register_file(self, path: Path) -> None:
        table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
        for batch in table.to_batches():
            for i, segment_id in enumerate(batch.column("segment_id").to_pylist()):
                if segment_id in self._pinned:
                    raise SchemaMismatchError(
                        f"{path}: segment {segment_id!r} is pinned twice; the directory "
                        "mixes two stores. Move one of the files out"
                    )
                self._pinned[segment_id] = batch.slice(i, 1)
                self._pinned_in[segment_id] = path


def _ipc_file(table: pa.Table) -> bytes:
    """``table`` as the bytes of an Arrow IPC file, zstd-compressed (what a pinned file
    holds; readers decompress transparently)."""
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")  # frames and states compress well
    with pa.ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
