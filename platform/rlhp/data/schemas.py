"""Arrow schemas of segments and labels (DESIGN.md, "Data contracts").

Per-step tensors are ``arrow.fixed_shape_tensor`` columns whose tensor shape is
``[L, *step_shape]``: a column of N segments converts to one numpy array ``[N, L, ...]``
without a copy (``tensor_column``), and from there to torch with ``torch.from_numpy``.
Schemas carry ``rlhp.schema`` metadata (kind and version) so that files written by another
version are refused with a clear message instead of being misread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rlhp.data.errors import SchemaMismatchError
from rlhp.data.records import LabelRecord, SegmentRecord

SEGMENT_SCHEMA_ID = "rlhp.segment/1"
LABEL_SCHEMA_ID = "rlhp.label/1"
_SCHEMA_KEY = b"rlhp.schema"
RENDER_PREFIX = "render_state."


@dataclass(frozen=True)
class TensorSpec:
    """Shape of one step of a per-step array and its numpy dtype name."""

    shape: tuple[int, ...]
    dtype: str

    @classmethod
    def of_steps(cls, array: np.ndarray) -> TensorSpec:
        """Spec of ``array[t]`` for an array indexed by step along axis 0."""
        return cls(tuple(int(d) for d in array.shape[1:]), np.dtype(array.dtype).name)

    def arrow_type(self, length: int) -> pa.DataType:
        """``fixed_shape_tensor`` of ``[length, *shape]``."""
        value_type = pa.from_numpy_dtype(np.dtype(self.dtype))
        return pa.fixed_shape_tensor(value_type, [length, *self.shape])


@dataclass(frozen=True)
class SegmentSpec:
    """What every segment of a store looks like: length L and per-step tensor specs."""

    length: int
    obs: TensorSpec
    actions: TensorSpec
    true_rewards: TensorSpec = TensorSpec((), "float32")
    render_state: tuple[tuple[str, TensorSpec], ...] = ()

    @classmethod
    def from_record(cls, record: SegmentRecord) -> SegmentSpec:
        """The spec a record defines (the first record written to a store fixes it)."""
        render = tuple(
            (key, TensorSpec.of_steps(np.asarray(value)))
            for key, value in sorted(record.render_state.items())
        )
        return cls(
            length=record.length,
            obs=TensorSpec.of_steps(np.asarray(record.obs)),
            actions=TensorSpec.of_steps(np.asarray(record.actions)),
            true_rewards=TensorSpec.of_steps(np.asarray(record.true_rewards)),
            render_state=render,
        )

    @classmethod
    def from_schema(cls, schema: pa.Schema) -> SegmentSpec:
        """The spec of a segment table written with ``SegmentSpec.schema()``."""

        def split(name: str) -> tuple[int, TensorSpec]:
            arrow_type = schema.field(name).type
            if not isinstance(arrow_type, pa.FixedShapeTensorType):
                raise SchemaMismatchError(
                    f"segment schema: field {name!r} is {arrow_type}, expected a "
                    "fixed_shape_tensor; the file was not written by rlhp"
                )
            shape = tuple(int(d) for d in arrow_type.shape)
            dtype = np.dtype(arrow_type.value_type.to_pandas_dtype()).name
            return shape[0], TensorSpec(shape[1:], dtype)

        length, obs = split("obs")
        _, actions = split("actions")
        _, true_rewards = split("true_rewards")
        render = tuple(
            (name[len(RENDER_PREFIX) :], split(name)[1])
            for name in schema.names
            if name.startswith(RENDER_PREFIX)
        )
        return cls(length, obs, actions, true_rewards, render)

    def schema(self) -> pa.Schema:
        """The Arrow schema of a table of these segments."""
        L = self.length
        fields = [
            pa.field("segment_id", pa.string(), nullable=False),
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("env_id", pa.string(), nullable=False),
            pa.field("worker", pa.int32(), nullable=False),
            pa.field("policy_version", pa.int64(), nullable=False),
            pa.field("t_start", pa.int64(), nullable=False),
            pa.field("obs", self.obs.arrow_type(L), nullable=False),
            pa.field("actions", self.actions.arrow_type(L), nullable=False),
            pa.field("true_rewards", self.true_rewards.arrow_type(L), nullable=False),
        ]
        fields += [
            pa.field(RENDER_PREFIX + key, spec.arrow_type(L), nullable=False)
            for key, spec in self.render_state
        ]
        fields.append(pa.field("created_at", pa.float64(), nullable=False))
        return pa.schema(fields, metadata={_SCHEMA_KEY: SEGMENT_SCHEMA_ID.encode()})

    def check(self, record: SegmentRecord) -> None:
        """Raise SchemaMismatchError naming the first field of ``record`` that does not fit."""
        got = SegmentSpec.from_record(record)
        for name in ("length", "obs", "actions", "true_rewards", "render_state"):
            if getattr(got, name) != getattr(self, name):
                raise SchemaMismatchError(
                    f"segment {record.segment_id!r}: field {name!r} is {getattr(got, name)}, "
                    f"the store holds {getattr(self, name)}; cut segments with the same "
                    "length, observation and action spaces, or use another store directory"
                )


def label_schema() -> pa.Schema:
    """The Arrow schema of a table of labels."""
    return pa.schema(
        [
            pa.field("label_id", pa.string(), nullable=False),
            pa.field("left", pa.string(), nullable=False),
            pa.field("right", pa.string(), nullable=False),
            pa.field("preference", pa.float64(), nullable=True),
            pa.field("source", pa.string(), nullable=False),
            pa.field("labeler", pa.string(), nullable=False),
            pa.field("query_strategy", pa.string(), nullable=False),
            pa.field("created_at", pa.float64(), nullable=False),
        ],
        metadata={_SCHEMA_KEY: LABEL_SCHEMA_ID.encode()},
    )


def check_schema(found: pa.Schema, expected: pa.Schema, where: str) -> None:
    """Raise SchemaMismatchError unless ``found`` is ``expected`` (fields and schema id)."""
    found_id = (found.metadata or {}).get(_SCHEMA_KEY, b"<none>").decode()
    expected_id = (expected.metadata or {}).get(_SCHEMA_KEY, b"").decode()
    if found_id != expected_id:
        raise SchemaMismatchError(
            f"{where}: schema id is {found_id!r}, expected {expected_id!r}; the file was "
            "written by another program or version. Move it out of the store directory"
        )
    if not found.remove_metadata().equals(expected.remove_metadata()):
        expected_fields = {f.name: f for f in expected}
        for f in found:
            if f.name not in expected_fields or not expected_fields[f.name].equals(f):
                want = expected_fields.get(f.name)
                raise SchemaMismatchError(
                    f"{where}: field {f.name!r} is {f.type}, expected "
                    f"{want.type if want is not None else 'no such field'}; open the store "
                    "with the segment spec it was written with, or use another directory"
                )
        missing = sorted(set(expected.names) - set(found.names))
        raise SchemaMismatchError(f"{where}: missing fields {missing}; use another directory")


def records_to_batch(records: Sequence[SegmentRecord], spec: SegmentSpec) -> pa.RecordBatch:
    """Stack records into one record batch of ``spec.schema()`` (checks every record)."""
    for record in records:
        spec.check(record)
    L = spec.length
    columns: list[pa.Array] = [
        pa.array([r.segment_id for r in records], pa.string()),
        pa.array([r.run_id for r in records], pa.string()),
        pa.array([r.env_id for r in records], pa.string()),
        pa.array([r.worker for r in records], pa.int32()),
        pa.array([r.policy_version for r in records], pa.int64()),
        pa.array([r.t_start for r in records], pa.int64()),
    ]
    for name in ("obs", "actions", "true_rewards"):
        tspec: TensorSpec = getattr(spec, name)
        stacked = np.stack([np.asarray(getattr(r, name)) for r in records])
        columns.append(_fixed_shape(stacked, tspec, L))
    for key, tspec in spec.render_state:
        stacked = np.stack([np.asarray(r.render_state[key]) for r in records])
        columns.append(_fixed_shape(stacked, tspec, L))
    columns.append(pa.array([r.created_at for r in records], pa.float64()))
    return pa.RecordBatch.from_arrays(columns, schema=spec.schema())


def _fixed_shape(stacked: np.ndarray, spec: TensorSpec, length: int) -> pa.Array:
    """A fixed_shape_tensor array over ``stacked`` [N, length, *shape] (no copy if C-ordered)."""
    stacked = np.ascontiguousarray(stacked, dtype=np.dtype(spec.dtype))
    flat = pa.array(stacked.reshape(-1))
    storage = pa.FixedSizeListArray.from_arrays(flat, int(np.prod((length, *spec.shape))))
    return pa.ExtensionArray.from_storage(spec.arrow_type(length), storage)


def tensor_column(data: pa.RecordBatch | pa.Table, name: str) -> np.ndarray:
    """Column ``name`` as one numpy array [N, L, ...]: zero-copy for a record batch or a
    single-chunk table column (read-only view), one copy for a multi-chunk table column."""
    column = data.column(name)
    if isinstance(column, pa.ChunkedArray):
        column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column.to_numpy_ndarray()


def batch_to_records(data: pa.RecordBatch | pa.Table) -> list[SegmentRecord]:
    """Records over the rows of ``data``; their arrays are read-only views into Arrow memory."""
    n = data.num_rows
    if n == 0:
        return []
    obs = tensor_column(data, "obs")
    actions = tensor_column(data, "actions")
    true_rewards = tensor_column(data, "true_rewards")
    render = {
        name[len(RENDER_PREFIX) :]: tensor_column(data, name)
        for name in data.schema.names
        if name.startswith(RENDER_PREFIX)
    }
    scalars = {
        name: data.column(name).to_pylist()
        for name in ("segment_id", "run_id", "env_id", "worker", "policy_version", "t_start")
    }
    created_at = data.column("created_at").to_pylist()
    return [
        SegmentRecord(
            segment_id=scalars["segment_id"][i],
            run_id=scalars["run_id"][i],
            env_id=scalars["env_id"][i],
            worker=scalars["worker"][i],
            policy_version=scalars["policy_version"][i],
            t_start=scalars["t_start"][i],
            obs=obs[i],
            actions=actions[i],
            true_rewards=true_rewards[i],
            render_state={key: value[i] for key, value in render.items()},
            created_at=created_at[i],
        )
        for i in range(n)
    ]


def labels_to_batch(labels: Sequence[LabelRecord]) -> pa.RecordBatch:
    """Labels as one record batch of ``label_schema()``."""
    return pa.RecordBatch.from_pylist(
        [
            {
                "label_id": lab.label_id,
                "left": lab.left,
                "right": lab.right,
                "preference": lab.preference,
                "source": lab.source,
                "labeler": lab.labeler,
                "query_strategy": lab.query_strategy,
                "created_at": lab.created_at,
            }
            for lab in labels
        ],
        schema=label_schema(),
    )


def table_to_labels(table: pa.Table | pa.RecordBatch) -> list[LabelRecord]:
    """Rows of a label table as records."""
    return [LabelRecord(**row) for row in table.to_pylist()]
