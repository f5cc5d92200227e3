"""50 simulated labellers, 2,000 answers over loopback HTTP against the app in its own process:
nothing lost, nothing duplicated, no pair answered twice. Latency is reported (in the test
artifacts and by ``benchmarks/feedback_load.py``), never asserted: this machine is shared."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from rlhp.feedback_app.loadtest import run_load_test


@pytest.mark.slow
def test_fifty_labellers_two_thousand_answers(tmp_path, artifacts_dir):
    report = run_load_test(labellers=50, answers=2000, directory=str(tmp_path))
    (artifacts_dir / "feedback_load.json").write_text(json.dumps(asdict(report), indent=2))
    print(f"answer latency p50 {report.answer_p50_ms:.1f} ms, p99 {report.answer_p99_ms:.1f} ms")
    assert report.answers_acknowledged == 2000
    assert report.labels_stored == 2000
    assert report.duplicate_labels == 0
    assert report.pairs_answered_twice == 0
    assert report.acknowledged_but_missing == 0
    assert report.conflicts == 0
    assert report.ok
