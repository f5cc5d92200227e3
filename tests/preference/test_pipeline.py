"""The whole preference path on real stores: sample, select, label, commit, reload, fit."""

from __future__ import annotations

import itertools

import numpy as np

from rlhp.data import LabelStore, SegmentStore, commit_labels
from rlhp.preference import (
    InputSpec,
    LabelSchedule,
    LabelScheduleConfig,
    PreferenceData,
    QueryConfig,
    RewardEnsemble,
    RewardModelConfig,
    SimulatedTeacher,
    bpref_teacher,
    make_selector,
    select_queries,
    to_label_records,
)


def test_label_loop_survives_eviction_and_restart(tmp_path, make_segments) -> None:
    rng = np.random.default_rng(0)
    ids = (f"label-{i}" for i in itertools.count())
    segments = SegmentStore(capacity=60, directory=tmp_path / "segments")
    labels = LabelStore(tmp_path / "labels", rotate_every=25)
    ensemble = RewardEnsemble(InputSpec((4,), (2,)), RewardModelConfig(seed=0))
    schedule = LabelSchedule(
        LabelScheduleConfig(total_labels=120, initial_labels=40, total_timesteps=4000)
    )
    oracle, noisy = SimulatedTeacher(), bpref_teacher("mistake", seed=0)
    random_q = make_selector(QueryConfig(strategy="random"))
    disagreement = make_selector(QueryConfig(strategy="disagreement"))
    T = 0
    for round_ in range(8):
        segments.add(make_segments(40, seed=100 + round_))  # rollouts arrive, old ones evicted
        T += 500
        due = schedule.due(T if round_ else 0, len(labels))
        if due == 0:
            continue
        selector = random_q if round_ == 0 else disagreement
        pairs = select_queries(segments, selector, ensemble, due, QueryConfig(), rng)
        teacher = oracle if round_ % 2 == 0 else noisy
        records = to_label_records(
            pairs, teacher.label(pairs), teacher, selector.name, make_id=lambda: next(ids)
        )
        commit_labels(records, segments, labels)
        ensemble.fit(PreferenceData.from_labels(labels.table(), segments), epochs=3)
    labels.close()
    assert len(labels) == schedule.target(T)
    # restart: every label resolves to its pinned segments, and both label sources are there
    segments = SegmentStore(capacity=60, directory=tmp_path / "segments")
    table = LabelStore(tmp_path / "labels").table()
    data = PreferenceData.from_labels(table, segments)
    assert len(data) == table.num_rows
    assert set(data.sources) == {"synthetic", "noisy:mistake"}
    assert set(table.column("query_strategy").to_pylist()) == {"random", "disagreement"}
    restored = RewardEnsemble(InputSpec((4,), (2,)), RewardModelConfig(seed=0))
    report = restored.fit(data.from_sources("synthetic"), epochs=20)
    assert report.n_train > 0
    test = make_segments(400, seed=999)
    pairs = [(test[2 * i], test[2 * i + 1]) for i in range(200)]
    accuracy = restored.evaluate(PreferenceData.from_pairs(pairs, oracle.label(pairs)))
    assert accuracy["accuracy"] > 0.75
