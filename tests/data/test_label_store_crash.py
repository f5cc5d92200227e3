"""A label store killed with SIGKILL while writing loses no acknowledged label."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rlhp.data import LabelStore, read_labels

WRITER = textwrap.dedent(
    """
    import sys
    from rlhp.data import LabelRecord, LabelStore

    store = LabelStore(sys.argv[1], rotate_every=int(sys.argv[2]))
    start = len(store)
    print("READY", flush=True)
    i = start
    while True:
        batch = [
            LabelRecord(f"k{i + j}", "left-segment-id", "right-segment-id",
                        (1.0, 0.0, 0.5, None)[(i + j) % 4], "synthetic", "oracle" * 20,
                        "random", float(i + j))
            for j in range(25)
        ]
        for ack in store.append(batch):
            print(ack, flush=True)
        i += 25
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX only")
def test_sigkill_during_writes_loses_no_acknowledged_label(tmp_path) -> None:
    rng = np.random.default_rng(0)
    acked: list[str] = []
    for round_ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), "60"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        stop_after = int(rng.integers(30, 400))
        for _ in range(stop_after):
            acked.append(proc.stdout.readline().strip())
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the writer is appending right now
        proc.wait()
        # every label the writer acknowledged is there, and the directory reads as one table
        table = read_labels(tmp_path)
        stored = set(table.column("label_id").to_pylist())
        assert set(acked) <= stored, f"round {round_}: lost {sorted(set(acked) - stored)[:5]}"
        with LabelStore(tmp_path, rotate_every=60) as store:  # resumes (cuts a torn tail)
            assert set(acked) <= store.label_ids
            assert store.table().num_rows == len(store)
        acked = sorted(stored)  # unacknowledged but complete writes are kept too
    assert len(list(tmp_path.glob("labels-*.arrows"))) >= 2  # rotation happened under fire
