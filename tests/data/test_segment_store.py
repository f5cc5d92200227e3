"""SegmentStore: ring eviction, pinning survives eviction and restarts, sampling, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from rlhp.data import (
    DuplicateSegmentError,
    SchemaMismatchError,
    SegmentStore,
    UnknownSegmentError,
)
from rlhp.data.schemas import tensor_column


def snapshot(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_ring_keeps_the_most_recent_segments(make_segment) -> None:
    store = SegmentStore(capacity=7)
    store.add([make_segment(i) for i in range(5)])
    store.add([make_segment(i) for i in range(5, 9)])
    store.add([make_segment(9)])
    assert len(store) == 7
    assert store.recent_ids() == [f"run/0/{i}" for i in range(3, 10)]
    assert "run/0/2" not in store
    np.testing.assert_array_equal(store.get(["run/0/3"])[0].obs, make_segment(3).obs)
    assert store.recent().num_rows == 7
    with pytest.raises(UnknownSegmentError, match="run/0/1"):
        store.get(["run/0/1"])


def test_table_is_the_named_rows_in_order_in_one_chunk(make_segment) -> None:
    """One chunk per column, whatever the rows' batches: Ray's Arrow serializer walks
    chunks in Python, so the reward trainer's per-fit fetch depends on it."""
    store = SegmentStore(capacity=10)
    store.add([make_segment(i) for i in range(3)])
    store.add([make_segment(i) for i in range(3, 6)])
    store.pin(["run/0/1"])
    ids = ["run/0/4", "run/0/1", "run/0/0", "run/0/4"]
    table = store.table(ids)
    assert table.column("segment_id").to_pylist() == ids
    assert {table.column(name).num_chunks for name in table.column_names} == {1}
    want = np.stack([make_segment(int(i.rsplit("/", 1)[1])).obs for i in ids])
    np.testing.assert_array_equal(tensor_column(table, "obs"), want)
    assert store.table([]).num_rows == 0


def test_add_accepts_record_batches(make_segment) -> None:
    source = SegmentStore(capacity=10)
    source.add([make_segment(i) for i in range(3)])
    batch = source.recent().to_batches()[0]
    store = SegmentStore(capacity=10)
    assert store.add(batch) == [f"run/0/{i}" for i in range(3)]
    assert store.spec == source.spec


def test_duplicate_ids_are_refused_and_nothing_added(make_segment) -> None:
    store = SegmentStore(capacity=10)
    store.add([make_segment(0), make_segment(1)])
    with pytest.raises(DuplicateSegmentError, match="run/0/1"):
        store.add([make_segment(2), make_segment(1)])
    assert store.recent_ids() == ["run/0/0", "run/0/1"]


def test_pinned_segments_survive_eviction_and_restart(tmp_path, make_segment) -> None:
    store = SegmentStore(capacity=4, directory=tmp_path)
    store.add([make_segment(i) for i in range(4)])
    store.pin(["run/0/1", "run/0/2"])
    store.pin(["run/0/2"])  # already pinned: no second file
    assert len(list(tmp_path.glob("pinned-*.arrow"))) == 1
    store.add([make_segment(i) for i in range(4, 12)])  # evicts 0..7 from the ring
    assert "run/0/1" in store and "run/0/0" not in store
    np.testing.assert_array_equal(store.get(["run/0/1"])[0].obs, make_segment(1).obs)
    reopened = SegmentStore(capacity=4, directory=tmp_path)
    assert reopened.pinned_ids == {"run/0/1", "run/0/2"}
    got = reopened.get(["run/0/2"])[0]
    np.testing.assert_array_equal(got.render_state["qpos"], make_segment(2).render_state["qpos"])
    assert reopened.spec == store.spec
    assert reopened.table(["run/0/2", "run/0/1"]).column("segment_id").to_pylist() == [
        "run/0/2",
        "run/0/1",
    ]


def test_pinning_an_unknown_or_evicted_segment_writes_nothing(tmp_path, make_segment) -> None:
    store = SegmentStore(capacity=2, directory=tmp_path)
    store.add([make_segment(i) for i in range(4)])
    with pytest.raises(UnknownSegmentError, match="run/0/0"):
        store.pin(["run/0/3", "run/0/0"])
    assert list(tmp_path.glob("pinned-*")) == []
    assert store.pinned_ids == frozenset()


def test_schema_mismatch_on_load_leaves_files_untouched(tmp_path, make_segment) -> None:
    store = SegmentStore(capacity=4, directory=tmp_path)
    store.add([make_segment(i) for i in range(2)])
    store.pin(["run/0/0"])
    # a file of another store: observations of 12 floats instead of 11
    other = SegmentStore(capacity=4)
    seg = make_segment(50)
    other.add([dataclasses.replace(seg, obs=np.zeros((6, 12), np.float32))])
    with pa.ipc.new_file(str(tmp_path / "pinned-00000007.arrow"), other.recent().schema) as writer:
        writer.write_table(other.recent())
    before = snapshot(tmp_path)
    with pytest.raises(SchemaMismatchError, match="'obs'"):
        SegmentStore(capacity=4, directory=tmp_path)
    assert snapshot(tmp_path) == before


def test_sample_pairs_is_seeded_distinct_and_per_env(make_segment) -> None:
    store = SegmentStore(capacity=100)
    store.add([make_segment(i) for i in range(10)])
    store.add([make_segment(i, env_id="Walker2d-v5") for i in range(10, 14)])
    pairs = store.sample_pairs(500, np.random.default_rng(0))
    assert pairs == store.sample_pairs(500, np.random.default_rng(0))
    env = dict(zip(store.recent_ids(), store.recent().column("env_id").to_pylist(), strict=True))
    assert all(a != b and env[a] == env[b] for a, b in pairs)
    assert {env[a] for a, _ in pairs} == {"Hopper-v5", "Walker2d-v5"}
    mixed = store.sample_pairs(500, np.random.default_rng(1), same_env_only=False)
    assert any(env[a] != env[b] for a, b in mixed)
    candidates = store.sample_candidates(3, np.random.default_rng(2))
    assert len(candidates) == 3 and candidates[0][0].obs.shape == (6, 11)
    with pytest.raises(UnknownSegmentError, match="at least 2"):
        SegmentStore(capacity=3).sample_pairs(1, np.random.default_rng(0))


def test_unpin_releases_segments_on_disk_and_keeps_the_rest(tmp_path, make_segment) -> None:
    store = SegmentStore(capacity=2, directory=tmp_path)
    store.add([make_segment(i) for i in range(4)])
    store.pin(["run/0/2", "run/0/3"])  # one file holding both
    store.add([make_segment(i) for i in range(4, 6)])  # 2 and 3 leave the ring
    store.pin(["run/0/4"])
    assert store.unpin_except(["run/0/3", "run/0/5"]) == ["run/0/2", "run/0/4"]
    assert store.pinned_ids == {"run/0/3"} and "run/0/2" not in store and "run/0/4" in store
    assert len(list(tmp_path.glob("pinned-*.arrow"))) == 1  # one rewritten, one removed
    reopened = SegmentStore(capacity=2, directory=tmp_path)
    assert reopened.pinned_ids == {"run/0/3"}
    assert reopened.get(["run/0/3"])[0].t_start == make_segment(3).t_start
    reopened.unpin(["run/0/3", "never-pinned"])
    assert reopened.pinned_ids == frozenset() and not list(tmp_path.glob("pinned-*.arrow"))
