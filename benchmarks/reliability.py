"""Label durability under injected faults: the figures of ``docs/reliability.md``.

Every scenario runs the real stores (real files, real processes, real HTTP for the load) and
injects its faults at the os calls (``tests/fault_injection.py``: ENOSPC / EIO from
``os.open / write / fsync / replace / ftruncate``), by SIGKILL, or by damaging bytes on
disk. For each it counts labels acknowledged (the call returned / HTTP 200), stored (read
back with ``read_labels`` after reopening), quarantined (damaged bytes kept aside), lost
(acknowledged, neither stored nor quarantined: must be 0) and duplicated (must be 0).

    python benchmarks/reliability.py            # ~2-5 minutes on 2 cores
    python benchmarks/reliability.py --quick    # fewer rounds, no load test
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fault_injection import Faults, fd_dir, fd_named, named
from rlhp.data import LabelRecord, LabelStore, SegmentRecord, SegmentStore, read_labels
from rlhp.data.errors import CorruptLabelsError
from rlhp.data.label_log import scan_label_file
from rlhp.data.label_store import ACTIVE_NAME
from rlhp.data.schemas import label_schema


@dataclass
class Row:
    fault: str
    injected: str
    acknowledged: int
    stored: int
    quarantined: int
    lost: int
    duplicated: int
    note: str = ""


def label(i: int, prefix: str = "k") -> LabelRecord:
    return LabelRecord(
        f"{prefix}{i:06d}",
        "left",
        "right",
        (1.0, 0.0, 0.5, None)[i % 4],
        "synthetic",
        "oracle",
        "random",
        float(i),
    )


def count(directory: Path, acked: list[str], quarantined: int = 0, **row) -> Row:
    """Stored: labels in the store (a kill can store a complete label it did not get to
    acknowledge). Lost: acknowledged, neither stored nor quarantined."""
    ids = read_labels(directory).column("label_id").to_pylist()
    lost = len(set(acked) - set(ids)) - quarantined
    return Row(
        acknowledged=len(acked),
        stored=len(set(ids)),
        quarantined=quarantined,
        lost=lost,
        duplicated=len(ids) - len(set(ids)),
        **row,
    )


# -- kills --------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from rlhp.data import LabelRecord, LabelStore
    store = LabelStore(sys.argv[1], rotate_every=60)
    i = len(store)
    print("READY", flush=True)
    while True:
        batch = [LabelRecord(f"k{i + j:06d}", "l", "r", 1.0, "synthetic", "o", "random")
                 for j in range(5)]
        for ack in store.append(batch):
            print(ack, flush=True)
        i += 5
    """
)


def kill_writer(base: Path, rounds: int) -> Row:
    rng = np.random.default_rng(0)
    acked: list[str] = []
    for _ in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(base)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        for _ in range(int(rng.integers(20, 300))):
            acked.append(proc.stdout.readline().strip())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        acked += proc.stdout.read().split()  # acknowledged before it died, not yet read here
        LabelStore(base, rotate_every=60).close()  # the next writer reopens (cuts a torn tail)
    return count(
        base,
        acked,
        fault="SIGKILL of the label writer mid-append",
        injected=f"{rounds} kills, rotation every 60 labels",
    )


SERVICE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np
    from rlhp.data import LabelStore, SegmentRecord, SegmentStore
    from rlhp.feedback_app.config import FeedbackConfig
    from rlhp.feedback_app.service import FeedbackService

    base, tokens, n = Path(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
    segments = SegmentStore(10_000, base / "segments")
    segs = [SegmentRecord(f"s{base.name}-{i}", "run", "Env-v0", 0, 0, 4 * i,
                          np.full((4, 3), i, np.float32), np.zeros((4, 1), np.float32),
                          np.zeros(4, np.float32)) for i in range(2 * n)]
    segments.add(segs)
    service = FeedbackService(FeedbackConfig(), LabelStore(base / "labels"),
                              tokens, "run", "task", state_dir=base / "feedback",
                              segments=segments)
    service.enqueue(list(zip(segs[0::2], segs[1::2])), "random")
    held = service.next_pair("alice")  # on alice's screen when the process dies
    print(json.dumps(held), flush=True)
    while True:
        pair = service.next_pair("bob")
        if pair is None:
            break
        print(service.answer("bob", pair["pair_id"], pair["lease"], "left")["label_id"],
              flush=True)
    """
)


def kill_feedback_service(base: Path, rounds: int) -> Row:
    from rlhp.feedback_app.config import FeedbackConfig
    from rlhp.feedback_app.service import FeedbackService

    tokens = {"alice-token-0123456789": "alice", "bob-token-000123456789": "bob"}
    rng = np.random.default_rng(1)
    acked: list[str] = []
    kept = 0
    for r in range(rounds):
        run = base / f"run{r}"
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVICE, str(run), json.dumps(tokens), "60"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        held = json.loads(proc.stdout.readline())
        mine = [proc.stdout.readline().strip() for _ in range(int(rng.integers(5, 40)))]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        service = FeedbackService(
            FeedbackConfig(),
            LabelStore(run / "labels"),
            tokens,
            "run",
            "task",
            state_dir=run / "feedback",
            segments=SegmentStore(10_000, run / "segments"),
        )
        stored_then = len(service.store)
        kept += service.counts()["pending"] == 60 - stored_then  # every unanswered pair is back
        mine.append(service.answer("alice", held["pair_id"], held["lease"], "tie")["label_id"])
        while (pair := service.next_pair("bob")) is not None:
            mine.append(service.answer("bob", pair["pair_id"], pair["lease"], "left")["label_id"])
        service.close()
        service.store.close()
        row = count(run / "labels", mine, fault="", injected="")
        assert row.lost == 0 and row.duplicated == 0 and row.stored == 60, row
        acked += [f"{r}/{x}" for x in mine]
    return Row(
        "SIGKILL of the labelling service",
        f"{rounds} kills, 60 pairs queued each",
        len(acked),
        len(acked),
        0,
        0,
        0,
        f"queue back after {kept}/{rounds} restarts; held leases answered: {rounds}",
    )


# -- ENOSPC / EIO -------------------------------------------------------------------------


def disk_fault(
    base: Path,
    name: str,
    call: str,
    code: int,
    when: Callable,
    every: int,
    n: int = 300,
    rotate_every: int = 5,
) -> Row:
    """``n`` single-label appends; the ``call`` fails with ``code`` on every ``every``-th
    append's attempt (``when`` picks the file)."""
    acked: list[str] = []
    refused = fired = 0
    with pytest.MonkeyPatch.context() as mp:
        faults = Faults(mp)
        store = LabelStore(base, rotate_every=rotate_every)
        for i in range(n):
            rule = faults.fail(call, code, when(base), times=1) if i % every == 0 else None
            try:
                acked += store.append([label(i)])
            except OSError:
                refused += 1
            if rule is not None:
                fired += rule.fired
                faults.rules.remove(rule)
        health = store.health()
        store.close()
    assert health["ok"], health
    LabelStore(base, rotate_every=rotate_every).close()
    note = (
        f"{refused} appends refused (not acknowledged, nothing of them stored)"
        if refused
        else ("no append refused; store healthy again at the end")
    )
    return count(
        base, acked, fault=name, note=note, injected=f"{fired} x {os.strerror(code)} in {n} appends"
    )


def dst(prefix: str) -> Callable:
    return lambda base: lambda src, d: os.path.basename(d).startswith(prefix)


# -- corruption ---------------------------------------------------------------------------


def corruption(base: Path, trials: int, sealed: bool) -> Row:
    rng = np.random.default_rng(2)
    acked_all, stored_all, quarantined_all, lost_all, dup_all, errors = 0, 0, 0, 0, 0, 0
    for t in range(trials):
        d = base / f"t{t}"
        acked: list[str] = []
        with LabelStore(d, rotate_every=20 if sealed else 10_000) as store:
            for i in range(50):
                acked += store.append([label(i)])
        path = sorted(d.glob("labels-*.arrows"))[1] if sealed else d / ACTIVE_NAME
        spans = scan_label_file(path.read_bytes(), path, label_schema()).spans
        k = int(rng.integers(0, len(spans) - 1))  # never the last: that is a torn tail
        start, end = spans[k]
        data = bytearray(path.read_bytes())
        data[int(rng.integers(start, end))] ^= 0xFF
        path.write_bytes(bytes(data))
        try:
            LabelStore(d).close()
        except CorruptLabelsError:
            errors += 1
        LabelStore(d).close()  # opens again with the intact labels
        row = count(d, acked, quarantined=1, fault="", injected="")
        acked_all += row.acknowledged
        stored_all += row.stored
        quarantined_all += 1
        lost_all += row.lost
        dup_all += row.duplicated
    where = "a sealed file" if sealed else "the active file"
    return Row(
        f"corruption mid-file in {where}",
        f"{trials} random byte flips in acked messages",
        acked_all,
        stored_all,
        quarantined_all,
        lost_all,
        dup_all,
        f"{errors}/{trials} opens raised one CorruptLabelsError; the damaged message's "
        "label kept in quarantine/, all others in place",
    )


def torn_tails(base: Path, trials: int) -> Row:
    rng = np.random.default_rng(3)
    acked_all, stored_all, silent = 0, 0, 0
    for t in range(trials):
        d = base / f"t{t}"
        acked: list[str] = []
        with LabelStore(d) as store:
            for i in range(20):
                acked += store.append([label(i)])
        active = d / ACTIVE_NAME
        good = active.read_bytes()
        with LabelStore(d) as store:  # the 21st append is cut by a "crash" part way
            store.append([label(20)])
        torn = active.read_bytes()
        cut = int(rng.integers(len(good) + 1, len(torn)))
        tail = torn[len(good) : cut]
        if t % 2:  # some file systems leave zeros where the data did not reach the disk
            tail = tail[: len(tail) // 2] + b"\x00" * (len(tail) - len(tail) // 2)
        active.write_bytes(good + tail)
        LabelStore(d).close()
        silent += active.read_bytes() == good and not (d / "quarantine").exists()
        row = count(d, acked, fault="", injected="")
        acked_all += row.acknowledged
        stored_all += row.stored
    return Row(
        "torn tail (crash mid-append)",
        f"{trials} appends cut at a random byte",
        acked_all,
        stored_all,
        0,
        acked_all - stored_all,
        0,
        f"{silent}/{trials} cut silently; the torn label was never acknowledged",
    )


# -- rotation races -----------------------------------------------------------------------

RACER = textwrap.dedent(
    """
    import sys
    from rlhp.data import LabelRecord, LabelStore
    store = LabelStore(sys.argv[1], rotate_every=1)
    for i in range(int(sys.argv[2])):
        store.append([LabelRecord(f"k{i:06d}", "l", "r", 1.0, "synthetic", "o", "random")])
        print(i + 1, flush=True)
    """
)


def rotation_race(base: Path, n: int) -> Row:
    proc = subprocess.Popen(
        [sys.executable, "-c", RACER, str(base), str(n)], stdout=subprocess.PIPE, text=True
    )
    acked = [0]

    def follow() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked[0] = int(line)

    threading.Thread(target=follow, daemon=True).start()
    reads = missed = bad = 0
    while proc.poll() is None:
        before = acked[0]
        if before == 0:
            time.sleep(0.05)
            continue
        ids = read_labels(base).column("label_id").to_pylist()
        reads += 1
        missed += max(0, before - len(ids))
        bad += ids != [f"k{i:06d}" for i in range(len(ids))]
    proc.wait()
    ids = [f"k{i:06d}" for i in range(n)]
    return count(
        base,
        ids,
        fault="rotation race: readers while the writer rotates",
        injected=f"a rotation after each of {n} appends, {reads} concurrent reads",
        note=f"acknowledged labels missing from a read: {missed}; reads out of order "
        f"or with a gap: {bad}",
    )


# -- bad input and load -------------------------------------------------------------------


def bad_inputs(base: Path) -> Row:
    from rlhp.data import commit_labels

    segments = SegmentStore(10, base / "segments")
    segments.add(
        [
            SegmentRecord(
                f"s{i}",
                "run",
                "E-v0",
                0,
                0,
                0,
                np.zeros((2, 1), np.float32),
                np.zeros((2, 1), np.float32),
                np.zeros(2, np.float32),
            )
            for i in range(3)
        ]
    )
    good = LabelRecord("good", "s0", "s1", 1.0, "synthetic", "oracle", "random")
    bad = [
        good.__class__(**{**asdict(good), **change})
        for change in (
            {"preference": 2.0},
            {"preference": -1.0},
            {"preference": 0.3},
            {"preference": float("nan")},
            {"preference": True},
            {"preference": "1"},
            {"label_id": ""},
            {"right": "s0"},
            {"right": "s9"},
            {"labeler": ""},
            {"source": ""},
            {"query_strategy": ""},
        )
    ]
    refused = 0
    with LabelStore(base / "labels") as store:
        acked = commit_labels([good], segments, store)
        for record in [*bad, good]:  # the last: a duplicate id
            try:
                commit_labels([record], segments, store)
            except ValueError:
                refused += 1
    row = count(
        base / "labels",
        acked,
        fault="bad input",
        injected=f"{len(bad) + 1} bad labels",
        note=f"{refused} refused with a one-line error, nothing of them stored",
    )
    return row


def load(base: Path, answers: int) -> Row:
    from rlhp.feedback_app.loadtest import run_load_test

    report = run_load_test(labellers=50, answers=answers, directory=str(base))
    return Row(
        "load: 50 labellers over HTTP, no think time",
        f"{answers} answers, group commit",
        report.answers_acknowledged,
        report.labels_stored - report.duplicate_labels,
        0,
        report.acknowledged_but_missing,
        report.duplicate_labels,
        f"answer p99 {report.answer_p99_ms:.0f} ms, {report.conflicts} conflicts, "
        f"{report.pairs_answered_twice} pairs answered twice",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    r = 2 if args.quick else 5
    work = Path(tempfile.mkdtemp(prefix="rlhp-reliability-"))
    at = iter(range(100))

    def d() -> Path:
        return work / f"s{next(at)}"

    rows = [
        kill_writer(d(), r),
        kill_feedback_service(d(), r),
        disk_fault(
            d(),
            "ENOSPC preparing the next file (rotation)",
            "open",
            errno.ENOSPC,
            lambda b: named(ACTIVE_NAME + ".tmp"),
            every=3,
        ),
        disk_fault(
            d(),
            "EIO renaming the active file to sealed (rotation)",
            "replace",
            errno.EIO,
            dst("labels-"),
            every=3,
        ),
        disk_fault(
            d(),
            "EIO renaming the new active file in (rotation)",
            "replace",
            errno.EIO,
            dst(ACTIVE_NAME),
            every=7,
        ),
        disk_fault(
            d(), "EIO on the directory fsync (rotation)", "fsync", errno.EIO, fd_dir, every=7
        ),
        disk_fault(
            d(),
            "ENOSPC writing a label (half written)",
            "write",
            errno.ENOSPC,
            lambda b: fd_named(ACTIVE_NAME),
            every=7,
        ),
        disk_fault(
            d(),
            "EIO on a label's fsync",
            "fsync",
            errno.EIO,
            lambda b: fd_named(ACTIVE_NAME),
            every=7,
        ),
        corruption(d(), 4 * r, sealed=False),
        corruption(d(), 4 * r, sealed=True),
        torn_tails(d(), 4 * r),
        rotation_race(d(), 100 if args.quick else 300),
        bad_inputs(d()),
    ]
    if not args.quick:
        rows.append(load(d(), 2000))
    cols = [
        "fault",
        "injected",
        "acknowledged",
        "stored",
        "quarantined",
        "lost",
        "duplicated",
        "note",
    ]
    print("| " + " | ".join(cols) + " |")
    print(
        "|"
        + "|".join(" --- " if c in ("fault", "injected", "note") else " ---: " for c in cols)
        + "|"
    )
    for row in rows:
        print("| " + " | ".join(str(v) for v in asdict(row).values()) + " |")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "reliability.json").write_text(json.dumps([asdict(x) for x in rows], indent=2))
    assert all(row.lost == 0 and row.duplicated == 0 for row in rows), "a label was lost"


if __name__ == "__main__":
    main()
