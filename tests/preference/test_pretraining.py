"""Preference-model pre-training on a cheap noisy source, fine-tuning on a few clean labels."""

from __future__ import annotations

import numpy as np
import pytest

from rlhp.errors import ConfigError
from rlhp.preference import (
    InputSpec,
    PreferenceData,
    RewardEnsemble,
    RewardModelConfig,
    SimulatedTeacher,
    TeacherConfig,
    pretrain_on_initial_labels,
    pretrain_then_finetune,
)

SPEC = InputSpec((4,), (2,))


def test_pretraining_on_noisy_labels_helps_a_small_clean_set(make_segments) -> None:
    noisy_teacher = SimulatedTeacher(TeacherConfig(epsilon=0.3, name="mistake", seed=0))
    oracle = SimulatedTeacher()
    big = make_segments(1200, seed=20)
    cheap_pairs = [(big[2 * i], big[2 * i + 1]) for i in range(600)]
    cheap = PreferenceData.from_pairs(
        cheap_pairs, noisy_teacher.label(cheap_pairs), source="noisy:mistake", id_prefix="cheap"
    )
    few = make_segments(60, seed=21)
    clean_pairs = [(few[2 * i], few[2 * i + 1]) for i in range(30)]
    clean = PreferenceData.from_pairs(clean_pairs, oracle.label(clean_pairs), id_prefix="clean")
    test_segments = make_segments(800, seed=22)
    test_pairs = [(test_segments[2 * i], test_segments[2 * i + 1]) for i in range(400)]
    test = PreferenceData.from_pairs(test_pairs, oracle.label(test_pairs), id_prefix="test")

    cfg = RewardModelConfig(seed=0)
    scratch = RewardEnsemble(SPEC, cfg)
    scratch.fit(clean, epochs=20)
    pretrained = RewardEnsemble(SPEC, cfg)
    report = pretrain_then_finetune(
        pretrained, cheap, clean, pretrain_epochs=10, finetune_epochs=20
    )
    told: list[tuple[int, int]] = []
    pretrain_then_finetune(
        RewardEnsemble(SPEC, cfg), cheap, clean, 2, 3, on_epoch=lambda *e: told.append(e)
    )
    assert told == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]  # both phases, one count
    acc_scratch = scratch.evaluate(test)["accuracy"]
    acc_pretrained = pretrained.evaluate(test)["accuracy"]
    assert report.finetune.version > report.pretrain.version
    assert report.pretrain.n_train + report.pretrain.n_val == len(cheap)
    assert acc_pretrained >= 0.85
    assert acc_pretrained > acc_scratch + 0.05, (acc_scratch, acc_pretrained)


def test_initial_label_pretraining(make_segments, make_oracle_pairs) -> None:
    pairs, prefs = make_oracle_pairs(make_segments(100, seed=23))
    data = PreferenceData.from_pairs(pairs, prefs)
    ensemble = RewardEnsemble(SPEC)
    assert pretrain_on_initial_labels(ensemble, data, epochs=0) is None
    assert ensemble.version == 0
    report = pretrain_on_initial_labels(ensemble, data, epochs=3)
    assert report is not None and len(report.history) == 3
    assert np.isfinite(report.metrics()["reward_model/train_loss"])


def test_pretraining_data_reads_earlier_runs(tmp_path, make_segments, make_oracle_pairs):
    from rlhp.data import LabelStore, SegmentStore
    from rlhp.preference import SimulatedTeacher, to_label_records
    from rlhp.preference.pretraining import pretraining_data

    dirs = []
    for r, length in enumerate((10, 10, 5)):
        run = tmp_path / f"run{r}"
        segments = SegmentStore(100, run / "segments")
        segs = make_segments(20, seed=r, length=length)
        segments.add(segs)
        pairs, _ = make_oracle_pairs(segs)
        ids = iter(range(100))
        teacher = SimulatedTeacher()
        records = to_label_records(
            pairs,
            teacher.label(pairs),
            teacher,
            "random",
            make_id=lambda r=r, ids=ids: f"r{r}-{next(ids)}",
        )
        segments.pin([s for x in records for s in (x.left, x.right)])
        LabelStore(run / "labels").append(records)
        dirs.append(run)
    data = pretraining_data(dirs[:2])
    assert len(data) == 20 and data.label_ids[0] == "r0-0" and data.label_ids[-1] == "r1-9"
    with pytest.raises(ConfigError, match=r"segment lengths \[5, 10\] differ"):
        pretraining_data(dirs)
