"""Readers are consistent with a writer rotating in another process: every read holds every
label acknowledged before it, each once, in append order (a prefix of what was written)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

from rlhp.data import read_labels

WRITER = textwrap.dedent(
    """
    import sys
    from rlhp.data import LabelRecord, LabelStore

    store = LabelStore(sys.argv[1], rotate_every=1)  # a rotation after every append
    for i in range(int(sys.argv[2])):
        store.append([LabelRecord(f"k{i:06d}", "l", "r", 1.0, "synthetic", "o", "random")])
        print(i + 1, flush=True)
    """
)


def test_readers_miss_no_label_while_the_writer_rotates(tmp_path) -> None:
    total = 120
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), str(total)], stdout=subprocess.PIPE, text=True
    )
    acked = [0]  # labels the writer has acknowledged so far (it prints after each append)

    def follow() -> None:
        assert writer.stdout is not None
        for line in writer.stdout:
            acked[0] = int(line)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    reads = 0
    deadline = time.time() + 60
    while (writer.poll() is None or reads < 20) and time.time() < deadline:
        before = acked[0]
        if before == 0:  # the writer is still starting
            time.sleep(0.05)
            continue
        ids = read_labels(tmp_path).column("label_id").to_pylist()
        assert len(ids) >= before, f"read {len(ids)} labels, {before} were acknowledged before"
        assert ids == [f"k{i:06d}" for i in range(len(ids))], "a gap, a repeat or a reorder"
        reads += 1
    assert writer.wait(30) == 0
    follower.join(5)
    assert acked[0] == total and reads >= 20
    assert read_labels(tmp_path).num_rows == total
    assert len(list(tmp_path.glob("labels-*.arrows"))) == total
