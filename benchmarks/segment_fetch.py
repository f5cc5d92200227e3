"""What one reward-model fit's segment fetch costs across Ray (issue "end-to-end speed").

The reward trainer asks the segment buffer actor for every labelled segment at each fit
(``SegmentBuffer.table``), about once per policy update in the default run. Ray's Arrow
serializer walks a table's chunks in Python, so a table of one chunk per segment (how the
store's rows are kept) crosses the object store far slower than the same rows in one chunk
per column (what ``SegmentStore.table`` returns since 2026-12-06). Both are timed here on a
real local Ray, the same buffer contents, interleaved; median of ``--repeats``:

    python benchmarks/segment_fetch.py [--segments 400] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa
import ray

from rlhp.actors.segment_buffer import SegmentBuffer
from rlhp.data.records import SegmentRecord


class ChunkedBuffer(SegmentBuffer):
    """The buffer as it answered before: one chunk per segment."""

    def table(self, segment_ids: list[str]) -> pa.Table:
        store = self.store
        rows = [store._row(s) for s in segment_ids]
        return pa.Table.from_batches(rows, schema=store.spec.schema())


def pendulum_like(i: int, rng: np.random.Generator) -> SegmentRecord:
    """A 30-step Pendulum-v1 segment with its render state (the default run's)."""
    return SegmentRecord(
        f"run/0/{i}", "run", "Pendulum-v1", 0, 0, 30 * i,
        rng.random((30, 3), dtype=np.float32), rng.random((30, 1), dtype=np.float32),
        rng.random(30, dtype=np.float32), {"state": rng.random((30, 2))}, float(i),
    )  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--segments", type=int, default=400, help="segments per fetch (2 per label)")
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rng = np.random.default_rng(0)
    segments = [pendulum_like(i, rng) for i in range(2 * args.segments)]
    ids = [s.segment_id for s in segments[: args.segments]]
    buffers = {}
    for name, cls in (
        ("one chunk per column", SegmentBuffer),
        ("one chunk per segment", ChunkedBuffer),
    ):
        buffers[name] = ray.remote(cls).remote(10 * args.segments, tempfile.mkdtemp())
        ray.get(buffers[name].add.remote(segments))
    times: dict[str, list[float]] = {name: [] for name in buffers}
    for _ in range(args.repeats):
        for name, buffer in buffers.items():
            t = time.perf_counter()
            table = ray.get(buffer.table.remote(ids))
            times[name].append(time.perf_counter() - t)
            assert table.column("segment_id").to_pylist() == ids
    ray.shutdown()
    print(f"{args.segments} Pendulum-v1 segments per fetch, median of {args.repeats}:")
    base = statistics.median(times["one chunk per segment"])
    for name, ts in times.items():
        median = statistics.median(ts)
        print(f"  {name:22s} {median * 1e3:8.1f} ms  ({base / median:.0f}x)")


if __name__ == "__main__":
    main()
