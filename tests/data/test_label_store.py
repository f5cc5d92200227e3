"""LabelStore: durable appends, rotation, one table, resume, bad input leaves it intact."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest

from rlhp.data import (
    DuplicateLabelError,
    InvalidPreferenceError,
    LabelStore,
    SchemaMismatchError,
    read_labels,
)
from rlhp.data.label_store import ACTIVE_NAME
from rlhp.data.schemas import labels_to_batch
from rlhp.errors import ConfigError


def snapshot(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_append_rotate_and_read_as_one_table(tmp_path, make_label) -> None:
    with LabelStore(tmp_path, rotate_every=3) as store:
        for i in range(8):
            assert store.append([make_label(i, "a", "b")]) == [f"label-{i}"]
        store.append([make_label(8, "a", "b", None), make_label(9, "b", "c", 0.5)])
        table = store.table()
    assert table.num_rows == 10
    assert table.column("label_id").to_pylist() == [f"label-{i}" for i in range(10)]
    assert table.column("preference").to_pylist()[-2:] == [None, 0.5]
    assert len(list(tmp_path.glob("labels-*.arrows"))) == 3  # sealed after 3, 6, 10 rows
    assert read_labels(tmp_path).equals(table)


def test_reopen_resumes(tmp_path, make_label) -> None:
    with LabelStore(tmp_path, rotate_every=2) as store:
        store.append([make_label(i, "a", "b") for i in range(3)])
        store.append([make_label(3, "a", "b")])
    with LabelStore(tmp_path, rotate_every=2) as store:
        assert len(store) == 4 and "label-3" in store
        store.append([make_label(4, "a", "b")])
        with pytest.raises(DuplicateLabelError, match="label-2"):
            store.append([make_label(2, "a", "b")])
    assert read_labels(tmp_path).num_rows == 5


@pytest.mark.parametrize("bad", [2.0, -1.0, 0.3, float("nan"), True, "1"])
def test_preference_outside_the_three_values_is_refused(tmp_path, make_label, bad) -> None:
    with LabelStore(tmp_path) as store:
        store.append([make_label(0, "a", "b")])
        before = snapshot(tmp_path)
        with pytest.raises(InvalidPreferenceError, match="preference="):
            store.append([make_label(1, "a", "b"), make_label(2, "a", "b", bad)])
        assert snapshot(tmp_path) == before and len(store) == 1
        store.append([make_label(1, "a", "b")])  # the store still works
    assert read_labels(tmp_path).num_rows == 2


def test_other_bad_labels(tmp_path, make_label) -> None:
    with LabelStore(tmp_path) as store:
        with pytest.raises(ConfigError, match="two different segment ids"):
            store.append([make_label(0, "a", "a")])
        with pytest.raises(DuplicateLabelError):
            store.append([make_label(0, "a", "b"), make_label(0, "b", "c")])
        with pytest.raises(ConfigError, match="'labeler' is empty"):
            store.append([dataclasses.replace(make_label(0, "a", "b"), labeler="")])
        assert len(store) == 0


def test_torn_tail_is_cut_and_acknowledged_labels_kept(tmp_path, make_label) -> None:
    with LabelStore(tmp_path) as store:
        store.append([make_label(i, "a", "b") for i in range(3)])
    # a crash in the middle of writing a 4th message: half of it reached the disk
    message = labels_to_batch([make_label(3, "a", "b")]).serialize().to_pybytes()
    active = tmp_path / ACTIVE_NAME
    good_size = active.stat().st_size
    with open(active, "ab") as f:
        f.write(message[: len(message) // 2])
    assert read_labels(tmp_path).num_rows == 3  # readers skip the torn tail
    with LabelStore(tmp_path) as store:
        assert len(store) == 3
        assert active.stat().st_size == good_size
        store.append([make_label(3, "a", "b")])
    assert read_labels(tmp_path).column("label_id").to_pylist() == [f"label-{i}" for i in range(4)]


def test_crash_during_rotation(tmp_path, make_label) -> None:
    with LabelStore(tmp_path, rotate_every=2) as store:
        store.append([make_label(0, "a", "b"), make_label(1, "a", "b")])
    # crash after the rename, before the new active file appeared, with a stale temp file
    (tmp_path / ACTIVE_NAME).unlink()
    (tmp_path / (ACTIVE_NAME + ".tmp")).write_bytes(b"\x00\x01")
    with LabelStore(tmp_path, rotate_every=2) as store:
        assert len(store) == 2
        store.append([make_label(2, "a", "b")])
    assert not (tmp_path / (ACTIVE_NAME + ".tmp")).exists()
    assert read_labels(tmp_path).num_rows == 3


def test_schema_mismatch_on_load_is_refused_without_damage(tmp_path, make_label) -> None:
    with LabelStore(tmp_path) as store:
        store.append([make_label(0, "a", "b")])
    # a stream of another schema (preference as a string) dropped into the directory
    other = pa.schema([("label_id", pa.string()), ("preference", pa.string())])
    with pa.ipc.new_stream(str(tmp_path / "labels-00000005.arrows"), other) as writer:
        writer.write_batch(pa.record_batch([["x"], ["left"]], schema=other))
    before = snapshot(tmp_path)
    with pytest.raises(SchemaMismatchError, match="labels-00000005"):
        LabelStore(tmp_path)
    with pytest.raises(SchemaMismatchError):
        read_labels(tmp_path)
    assert snapshot(tmp_path) == before
    (tmp_path / "labels-00000005.arrows").write_bytes(b"not arrow at all")
    with pytest.raises(SchemaMismatchError, match="not an Arrow IPC stream"):
        LabelStore(tmp_path)


def test_one_writer_per_directory(tmp_path, make_label) -> None:
    store = LabelStore(tmp_path)
    with pytest.raises(ConfigError, match="one writer per directory"):
        LabelStore(tmp_path)
    store.append([make_label(0, "a", "b")])
    assert read_labels(tmp_path).num_rows == 1  # readers need no lock
    store.close()
    with LabelStore(tmp_path) as again:  # released on close
        assert len(again) == 1
