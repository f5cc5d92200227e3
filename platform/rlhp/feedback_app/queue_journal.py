"""The labelling queue on disk, so that pairs waiting for people survive a crash.

``QueueJournal`` keeps, in the run's ``feedback/`` directory:

- ``pairs-NNNNNNNN.json``: one file per ``enqueue`` (``write_atomic``, before any person is
  shown the pairs): pair id, the two segment ids, the query strategy, and how many labels
  the store held then. Answers are not journalled: they are the label store's own labels,
  so ``answers_since`` finds, for each journalled pair, the human labels written after it
  was queued that answer it. A file whose pairs all have their answers is deleted;
  ``compact`` rewrites the journal as one file of the pairs still waiting.
- ``lease.key``: the secret that signs leases, so a lease handed out before a restart is
  still accepted after it (people holding one do not get a 404).

Pure Python, no Ray: the service uses it, the tests drive it on real files.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa

from rlhp.data._durable import fsync_dir, remove_stale_tmp, unlink_quietly, write_atomic

_KEY_BYTES = 32


@dataclass(frozen=True)
class QueuedPair:
    """A pair waiting for people, as journalled (segments by id only)."""

    pair_id: str
    left: str
    right: str
    strategy: str
    labels_before: int  # labels in the store when it was queued: its answers come after


class QueueJournal:
    """The journal in ``directory`` (created if missing)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(self.directory)
        self.damaged: list[str] = []  # journal files that could not be read (moved aside)
        self._lock = threading.Lock()  # file numbers are handed out one at a time
        files = self._files()
        self._next = _seq(files[-1]) + 1 if files else 0

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("pairs-*.json"))

    def lease_key(self) -> bytes:
        """The lease-signing secret, made (durably) on first use."""
        path = self.directory / "lease.key"
        if path.exists() and len(key := path.read_bytes()) == _KEY_BYTES:
            return key
        key = secrets.token_bytes(_KEY_BYTES)
        write_atomic(path, key)
        return key

    def load(self) -> list[tuple[int, QueuedPair]]:
        """Every journalled pair, oldest first, with the number of the file it is in. A file
        that does not parse (written atomically, so only outside damage does that) is
        renamed to ``*.damaged`` and named in ``damaged``: its pairs are asked again."""
        out = []
        for path in self._files():
            try:
                rows = json.loads(path.read_bytes())
                pairs = [QueuedPair(**row) for row in rows]
            except (ValueError, TypeError) as err:
                os.replace(path, path.with_name(path.name + ".damaged"))
                self.damaged.append(f"{path}: {err}")
                continue
            out += [(_seq(path), pair) for pair in pairs]
        return out

    def record(self, pairs: Sequence[QueuedPair]) -> int:
        """Journal ``pairs`` durably; the number of their file (for ``forget``)."""
        with self._lock:
            seq = self._next
            self._next += 1
        write_atomic(self._path(seq), json.dumps([asdict(p) for p in pairs]).encode())
        return seq

    def forget(self, seq: int) -> None:
        """Delete file ``seq``: all its pairs have their answers in the label store. Not
        fsynced: if the deletion is lost, restoring finds the answers again."""
        unlink_quietly(self._path(seq))

    def compact(self, pending: Sequence[QueuedPair]) -> int | None:
        """Replace the journal by one file of ``pending``; its number (None if empty)."""
        old = self._files()
        seq = self.record(pending) if pending else None
        for path in old:
            path.unlink()
        if old:
            fsync_dir(self.directory)
        return seq

    def _path(self, seq: int) -> Path:
        return self.directory / f"pairs-{seq:08d}.json"


def _seq(path: Path) -> int:
    return int(path.stem.split("-")[1])


def answers_since(
    pairs: Sequence[QueuedPair], labels: pa.Table, overlap: int
) -> dict[str, dict[str, float | None]]:
    """``{pair_id: {labeller: preference}}``: the stored human labels that answer each pair.

    A label answers a pair if it compares the same two segments (same sides) and was stored
    after the pair was queued (its index >= ``labels_before``). Each label answers one pair
    (the earliest queued that still needs it), each labeller answers a pair once, and a pair
    takes at most ``overlap`` answers: the same bookkeeping the service keeps in memory.
    """
    by_segments: dict[tuple[str, str], list[int]] = {}
    rows = labels.select(["left", "right", "source", "labeler", "preference"]).to_pylist()
    for i, row in enumerate(rows):
        if row["source"] == "human":
            by_segments.setdefault((row["left"], row["right"]), []).append(i)
    used: set[int] = set()
    out: dict[str, dict[str, float | None]] = {}
    for pair in pairs:
        got: dict[str, float | None] = {}
        for i in by_segments.get((pair.left, pair.right), []):
            if len(got) >= overlap:
                break
            who = rows[i]["labeler"]
            if i >= pair.labels_before and i not in used and who not in got:
                used.add(i)
                got[who] = rows[i]["preference"]
        if got:
            out[pair.pair_id] = got
    return out
