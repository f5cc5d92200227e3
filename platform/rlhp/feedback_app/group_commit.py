"""Group commit: many threads hand in labels, one writer appends them with one fsync per group.

With 50 people answering at once, one fsync per answer would queue every request behind all
the others; here the writer takes whatever has arrived while the previous write was on disk
and stores it in one ``LabelStore.append``. ``commit`` returns only once the label is durable
(the acknowledgement), so nothing a labeller was told is stored can be lost. A group the store
could not write fails for each of its callers, and the next group is tried afresh: a failure
never leaves the writer stuck.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from rlhp.data.label_store import LabelStore
from rlhp.data.records import LabelRecord
from rlhp.data.schemas import labels_to_batch


class GroupCommitter:
    """Appends labels from any thread to ``store``; ``make_id(n)`` names the n-th label."""

    def __init__(self, store: LabelStore, make_id: Callable[[int], str]) -> None:
        self.store, self.make_id = store, make_id
        # the first Arrow conversion loads pyarrow's kernels (~0.2 s): pay that now, not while
        # the first labellers wait for their acknowledgement
        labels_to_batch([LabelRecord("warm-up", "a", "b", None, "human", "warm-up", "warm-up")])
        self._queue: queue.Queue[tuple[LabelRecord, Future[LabelRecord]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._write_loop, name="label-writer", daemon=True)
        self._thread.start()

    def submit(self, record: LabelRecord) -> Future[LabelRecord]:
        """Queue ``record`` for the next write; the future resolves with the stored record
        (its ``label_id`` assigned) once it is durable."""
        done: Future[LabelRecord] = Future()
        self._queue.put((record, done))
        return done

    def commit(self, record: LabelRecord, timeout: float = 30.0) -> LabelRecord:
        """Store ``record`` and return it once durable."""
        return self.submit(record).result(timeout)

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            group = [item]
            while True:  # everything that arrived during the last write goes in this one
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(more)
            records = [
                dataclasses.replace(r, label_id=label_id)
                for (r, _), label_id in zip(group, self._new_ids(len(group)), strict=True)
            ]
            try:
                self.store.append(records)
            except BaseException as err:  # nothing of this group was stored: tell every caller
                for _, done in group:
                    done.set_exception(err)
                continue
            for record, (_, done) in zip(records, group, strict=True):
                done.set_result(record)

    def _new_ids(self, n: int) -> list[str]:
        """``n`` ids the store does not hold: ``make_id`` from the store's size on, skipping
        taken ones (after a quarantine the store holds fewer labels than ids were given)."""
        ids: list[str] = []
        i = len(self.store)
        while len(ids) < n:
            if (label_id := self.make_id(i)) not in self.store:
                ids.append(label_id)
            i += 1
        return ids

    def close(self) -> None:
        """Finish the queued writes and stop the writer."""
        self._queue.put(None)
        self._thread.join()
