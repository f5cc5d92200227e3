"""An earlier run's labels and segments, as a source for another run: preference-model
pre-training (``reward_model.pretrain_from``) and label reuse (``label_schedule.reuse_from``).

A run directory holds ``labels/`` (the ``LabelStore``) and ``segments/`` (the segment
store's pinned files: every segment a label names). A reference to a run is its id (under
``runtime.runs_dir``), its directory, or its ``labels/`` directory. Sources are only read:
nothing in another run's directory is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rlhp.data.label_store import LabelStore, read_labels
from rlhp.data.schemas import SegmentSpec, table_to_labels
from rlhp.data.segment_store import SegmentStore
from rlhp.errors import ConfigError


def resolve_run_dir(ref: str, runs_dir: str | Path, field: str) -> Path:
    """The absolute run directory ``ref`` names (a run id, a run directory or its labels
    directory); ConfigError naming ``field`` when there is none."""
    for candidate in (Path(ref), Path(runs_dir) / ref):
        run_dir = candidate.parent if candidate.name == "labels" else candidate
        if (run_dir / "labels").is_dir() and (run_dir / "segments").is_dir():
            return run_dir.resolve()
    raise ConfigError(
        f"{field}: {ref!r} is not a run (a run id under {runs_dir}, a run directory, or its "
        "labels directory, holding labels/ and segments/); check the id or give the path"
    )


@dataclass
class RunLabels:
    """One source run's labels (``labels``, every row) and its pinned segments."""

    run_dir: Path
    labels: pa.Table
    segments: SegmentStore

    @classmethod
    def open(cls, run_dir: str | Path) -> RunLabels:
        run_dir = Path(run_dir)
        segments = SegmentStore(1, run_dir / "segments", read_only=True)
        return cls(run_dir, read_labels(run_dir / "labels"), segments)

    @property
    def spec(self) -> SegmentSpec | None:
        return self.segments.spec

    def answered(self) -> pa.Table:
        """The labels with an answer (``can't tell`` left out) whose segments are there."""
        table = self.labels.filter(pc.is_valid(self.labels.column("preference")))
        named = table.column("left").to_pylist() + table.column("right").to_pylist()
        missing = set(self.segments.missing(named))
        if not missing:
            return table
        keep = [
            a not in missing and b not in missing
            for a, b in zip(
                table.column("left").to_pylist(), table.column("right").to_pylist(), strict=True
            )
        ]
        return table.filter(pa.array(keep))


def check_shapes(
    source: RunLabels, obs_shape: tuple[int, ...], act_shape: tuple[int, ...], field: str
) -> None:
    """ConfigError naming ``field`` unless the source's segments have this run's per-step
    observation and action shapes (a reward model reads both)."""
    spec = source.spec
    if spec is None:
        raise ConfigError(f"{field}: {source.run_dir} has no labelled segments")
    if spec.obs.shape != tuple(obs_shape) or spec.actions.shape != tuple(act_shape):
        raise ConfigError(
            f"{field}: {source.run_dir} has observations {spec.obs.shape} and actions "
            f"{spec.actions.shape}, this run {tuple(obs_shape)} and {tuple(act_shape)}; "
            "use a source from an environment with the same spaces"
        )


def import_labels(sources: list[RunLabels], run_dir: str | Path) -> int:
    """Copy the sources' answered labels and the segments they name into the new run at
    ``run_dir`` (segments pinned first, then the labels appended: a label never names a
    segment the run does not have). Label ids are kept, so an id seen twice is taken once.
    Returns the number of labels imported."""
    run_dir = Path(run_dir)
    segments = SegmentStore(1, run_dir / "segments")
    store = LabelStore(run_dir / "labels")
    try:
        imported = 0
        for source in sources:
            labels = source.answered()
            ids = labels.column("label_id").to_pylist()
            fresh = [i for i, label_id in enumerate(ids) if label_id not in store]
            labels = labels.take(pa.array(fresh, type=pa.int64()))
            if not labels.num_rows:
                continue
            named = dict.fromkeys(
                labels.column("left").to_pylist() + labels.column("right").to_pylist()
            )
            segments.adopt(source.segments.table(list(named)))
            store.append(table_to_labels(labels))
            imported += labels.num_rows
        return imported
    finally:
        store.close()
