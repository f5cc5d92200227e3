"""Arrow schemas: round trips, fixed-shape tensor columns without copies, mismatches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from rlhp.data import (
    LabelRecord,
    SchemaMismatchError,
    SegmentRecord,
    SegmentSpec,
    batch_to_records,
    label_schema,
    records_to_batch,
    tensor_column,
)
from rlhp.data.schemas import labels_to_batch, table_to_labels


def test_segment_round_trip(make_segment) -> None:
    records = [make_segment(i) for i in range(5)]
    spec = SegmentSpec.from_record(records[0])
    batch = records_to_batch(records, spec)
    assert batch.schema.equals(spec.schema(), check_metadata=True)
    assert isinstance(batch.schema.field("obs").type, pa.FixedShapeTensorType)
    assert batch.schema.field("obs").type.shape == [6, 11]
    back = batch_to_records(batch)
    for a, b in zip(records, back, strict=True):
        for f in dataclasses.fields(SegmentRecord):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, y)
            elif isinstance(x, dict):
                assert x.keys() == y.keys()
                for key in x:
                    np.testing.assert_array_equal(x[key], y[key])
            else:
                assert x == y
    assert SegmentSpec.from_schema(batch.schema) == spec


def test_tensor_columns_are_zero_copy(make_segment) -> None:
    records = [make_segment(i) for i in range(4)]
    batch = records_to_batch(records, SegmentSpec.from_record(records[0]))
    obs = tensor_column(batch, "obs")
    assert obs.shape == (4, 6, 11) and obs.dtype == np.float32
    values = batch.column("obs").storage.values
    assert obs.__array_interface__["data"][0] == values.buffers()[1].address
    # the view is read-only: Arrow memory is immutable
    assert not obs.flags.writeable
    # slices (ring eviction) stay zero-copy and correct
    tail = tensor_column(batch.slice(1, 2), "obs")
    np.testing.assert_array_equal(tail[0], records[1].obs)
    assert np.shares_memory(tail, obs)


def test_atari_segments_with_discrete_actions() -> None:
    rng = np.random.default_rng(0)
    record = SegmentRecord(
        "pong/0",
        "run",
        "ALE/Pong-v5",
        0,
        0,
        0,
        rng.integers(0, 256, size=(25, 4, 84, 84), dtype=np.uint8),
        rng.integers(0, 6, size=25),
        np.zeros(25, np.float32),
        {"frames": rng.integers(0, 256, size=(25, 210, 160, 3), dtype=np.uint8)},
    )
    spec = SegmentSpec.from_record(record)
    batch = records_to_batch([record], spec)
    assert batch.schema.field("obs").type.value_type == pa.uint8()
    assert batch.schema.field("actions").type.shape == [25]
    back = batch_to_records(batch)[0]
    np.testing.assert_array_equal(back.obs, record.obs)
    np.testing.assert_array_equal(back.render_state["frames"], record.render_state["frames"])


def test_record_that_does_not_fit_names_the_field(make_segment) -> None:
    good = make_segment(0)
    spec = SegmentSpec.from_record(good)
    wrong_obs = dataclasses.replace(good, obs=np.zeros((6, 12), np.float32))
    with pytest.raises(SchemaMismatchError, match="'obs'"):
        records_to_batch([good, wrong_obs], spec)
    wrong_dtype = dataclasses.replace(good, actions=good.actions.astype(np.float64))
    with pytest.raises(SchemaMismatchError, match="'actions'"):
        records_to_batch([wrong_dtype], spec)
    short = dataclasses.replace(
        good,
        obs=good.obs[:5],
        actions=good.actions[:5],
        true_rewards=good.true_rewards[:5],
        render_state={k: v[:5] for k, v in good.render_state.items()},
    )
    with pytest.raises(SchemaMismatchError, match="'length'"):
        records_to_batch([short], spec)


def test_label_round_trip() -> None:
    labels = [
        LabelRecord("a", "s1", "s2", 1.0, "synthetic", "oracle", "random", 1.0),
        LabelRecord("b", "s2", "s3", None, "human", "alice", "disagreement", 2.0),
    ]
    batch = labels_to_batch(labels)
    assert batch.schema.equals(label_schema(), check_metadata=True)
    assert table_to_labels(batch) == labels
