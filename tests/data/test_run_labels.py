"""An earlier run as a label source: references resolve to run directories, its segments
are read without writing, and label reuse copies labels with the segments they name."""

from __future__ import annotations

import numpy as np
import pytest

from rlhp.data import LabelStore, SegmentStore
from rlhp.data.label_store import read_labels
from rlhp.data.records import LabelRecord, SegmentRecord
from rlhp.data.run_labels import RunLabels, check_shapes, import_labels, resolve_run_dir
from rlhp.errors import ConfigError


def _segment(i: int, obs_dim: int = 3) -> SegmentRecord:
    return SegmentRecord(f"src/{i}", "src", "Env-v0", 0, 0, 5 * i,
                         np.full((5, obs_dim), i, np.float32), np.zeros((5, 1), np.float32),
                         np.full(5, i, np.float32))  # fmt: skip


def _label(n: int, left: str, right: str, pref: float | None = 1.0) -> LabelRecord:
    return LabelRecord(f"src-{n:07d}", left, right, pref, "noisy:mistake", "mistake",
                       "random", 1000.0 + n)  # fmt: skip


def _source_run(run_dir, n_labels: int = 6):
    segments = SegmentStore(100, run_dir / "segments")
    segments.add([_segment(i) for i in range(20)])
    labels = LabelStore(run_dir / "labels")
    records = [_label(k, f"src/{2 * k}", f"src/{2 * k + 1}") for k in range(n_labels)]
    records.append(_label(n_labels, "src/18", "src/19", None))  # can't tell: not reused
    segments.pin([s for r in records for s in (r.left, r.right)])
    labels.append(records)
    labels.close()
    return run_dir


def test_a_run_is_found_by_id_directory_or_labels_directory(tmp_path):
    run = _source_run(tmp_path / "runs" / "abc")
    for ref in ("abc", str(run), str(run / "labels")):
        assert resolve_run_dir(ref, tmp_path / "runs", "reward_model.pretrain_from") == run
    with pytest.raises(ConfigError, match=r"^reward_model.pretrain_from: 'nope' is not a run"):
        resolve_run_dir("nope", tmp_path / "runs", "reward_model.pretrain_from")


def test_a_source_is_read_without_writing(tmp_path):
    run = _source_run(tmp_path / "src")
    stale = run / "segments" / "pinned-99999999.arrow.tmp"
    stale.write_bytes(b"half")
    source = RunLabels.open(run)
    assert stale.exists()  # a writer's clean-up would have removed it
    assert source.answered().num_rows == 6
    with pytest.raises(ConfigError, match="read-only"):
        source.segments.pin(["src/0"])
    check_shapes(source, (3,), (1,), "reward_model.pretrain_from")
    with pytest.raises(ConfigError, match=r"observations \(3,\).*this run \(11,\)"):
        check_shapes(source, (11,), (1,), "reward_model.pretrain_from")


def test_reused_labels_arrive_with_their_segments_once(tmp_path):
    source = RunLabels.open(_source_run(tmp_path / "src"))
    new = tmp_path / "new"
    assert import_labels([source, source], new) == 6  # the second copy: ids already there
    labels = read_labels(new / "labels")
    assert labels.column("label_id").to_pylist() == [f"src-{k:07d}" for k in range(6)]
    assert set(labels.column("source").to_pylist()) == {"noisy:mistake"}
    segments = SegmentStore(10, new / "segments")  # as the new run's buffer opens it
    named = labels.column("left").to_pylist() + labels.column("right").to_pylist()
    assert segments.missing(named) == [] and set(named) == segments.pinned_ids
    np.testing.assert_array_equal(segments.get(["src/7"])[0].obs, np.full((5, 3), 7))
