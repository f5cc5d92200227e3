"""Arrow schemas, the segment store and the label store (no Ray)."""

from rlhp.data.commit import commit_labels
from rlhp.data.errors import (
    CorruptLabelsError,
    DuplicateLabelError,
    DuplicateSegmentError,
    InvalidPreferenceError,
    SchemaMismatchError,
    UnknownSegmentError,
)
from rlhp.data.label_store import LabelStore, read_labels
from rlhp.data.records import (
    PREFER_LEFT,
    PREFER_RIGHT,
    TIE,
    LabelRecord,
    SegmentRecord,
)
from rlhp.data.schemas import (
    SegmentSpec,
    TensorSpec,
    batch_to_records,
    label_schema,
    records_to_batch,
    tensor_column,
)
from rlhp.data.segment_store import SegmentStore

__all__ = [
    "PREFER_LEFT",
    "PREFER_RIGHT",
    "TIE",
    "CorruptLabelsError",
    "DuplicateLabelError",
    "DuplicateSegmentError",
    "InvalidPreferenceError",
    "LabelRecord",
    "LabelStore",
    "SchemaMismatchError",
    "SegmentRecord",
    "SegmentSpec",
    "SegmentStore",
    "TensorSpec",
    "UnknownSegmentError",
    "batch_to_records",
    "commit_labels",
    "label_schema",
    "read_labels",
    "records_to_batch",
    "tensor_column",
]
