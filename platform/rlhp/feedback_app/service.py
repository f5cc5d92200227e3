"""The labelling service: a queue of pairs waiting for people, leases, answers, statistics.

Pure Python (no web framework, no Ray), thread-safe, so the web app, the feedback actor and
the tests all drive the same object.

- **Queue.** The labelling actor enqueues the pairs its query selector picked (paced by the
  label schedule). A pair is offered to ``overlap`` different labellers: with the default
  of one, a pair shown to one person is not shown to anyone else while their lease runs.
- **Leases.** ``next_pair`` hands a labeller a pair with a fresh random lease id; only that
  labeller with that lease can answer it. A forged lease is refused (403), a replayed one or
  an answer to a pair that already has its answers is a conflict (409), an unknown pair is
  404. A lease that runs out (``lease_s``) frees the pair for someone else; a late answer
  still counts while the pair needs answers.
- **Answers** become ``LabelRecord`` s (source ``human``, labeller = the token's name) and are
  acknowledged only once the label store has them on disk (group commit). An answer the
  store cannot write is a 503 ("send it again"); ``health`` reports the store's state.
- **Crashes.** Given a ``state_dir`` and the run's ``segments``, the queue is journalled
  (``queue_journal``) and leases are signed with a key kept there: a restarted service hands
  out the same pairs under the same ids, accepts leases issued before the restart, and
  releases the pinned segments that no stored label names and no queued pair will.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from rlhp.data.commit import pin_present_pairs
from rlhp.data.errors import UnknownSegmentError
from rlhp.data.label_store import LabelStore
from rlhp.data.records import PREFER_LEFT, PREFER_RIGHT, TIE, LabelRecord, SegmentRecord
from rlhp.errors import ConfigError
from rlhp.feedback_app.config import FeedbackConfig
from rlhp.feedback_app.errors import (
    AlreadyAnsweredError,
    FeedbackError,
    NotYoursError,
    StorageError,
    UnauthorizedError,
    UnknownItemError,
)
from rlhp.feedback_app.group_commit import GroupCommitter
from rlhp.feedback_app.queue_journal import QueuedPair, QueueJournal, answers_since
from rlhp.feedback_app.tokens import labeller_for

Choice = Literal["left", "right", "tie", "cant_tell"]
CHOICES: dict[str, float | None] = {
    "left": PREFER_LEFT,
    "right": PREFER_RIGHT,
    "tie": TIE,
    "cant_tell": None,  # recorded, never trained on (DESIGN.md, "Label")
}
MAX_LEASES_PER_LABELLER = 2  # the pair on screen and the one prefetched behind it
_REMEMBER_DONE = 10_000  # finished pairs remembered to tell a replay from an unknown id


class ClipSource(Protocol):
    """Renders a segment as a browser-playable video (bytes) on request."""

    media_type: str

    def clip(self, segment: SegmentRecord) -> bytes: ...

    def prefetch(self, segments: Sequence[SegmentRecord]) -> None: ...


class SegmentSource(Protocol):
    """The run's segments (a ``SegmentStore``, or the segment buffer actor behind an adapter):
    queued pairs' segments are pinned there, and read back from there after a restart."""

    def get(self, segment_ids: Sequence[str]) -> list[SegmentRecord]: ...

    def pin(self, segment_ids: Sequence[str]) -> None: ...

    def unpin_except(self, keep: Sequence[str]) -> list[str]: ...


def clip_id(segment_id: str) -> str:
    """The opaque id a segment's clip is served under (16 hex characters)."""
    return hashlib.sha256(segment_id.encode()).hexdigest()[:16]


@dataclass
class _Lease:
    lease_id: str
    issued_at: float


@dataclass
class _Pending:
    pair_id: str
    left: SegmentRecord
    right: SegmentRecord
    strategy: str
    leases: dict[str, _Lease] = field(default_factory=dict)  # labeller -> lease
    answers: dict[str, float | None] = field(default_factory=dict)  # labeller -> answer
    committing: set[str] = field(default_factory=set)


class FeedbackService:
    """Serves queued pairs to people and stores their answers (see the module docstring)."""

    def __init__(
        self,
        cfg: FeedbackConfig,
        store: LabelStore,
        tokens: dict[str, str],
        run_id: str,
        task: str,
        clips: ClipSource | None = None,
        clock: Callable[[], float] = time.time,
        state_dir: str | Path | None = None,
        segments: SegmentSource | None = None,
    ) -> None:
        if state_dir is not None and segments is None:
            raise ConfigError(
                "feedback service: a state_dir needs the run's segments to restore queued "
                "pairs from; pass segments= (the segment store or buffer)"
            )
        self.cfg, self.store, self.tokens, self.run_id = cfg, store, tokens, run_id
        self.task, self.clips, self.clock, self.segments = task, clips, clock, segments
        self._lock = threading.Lock()
        self._journal = QueueJournal(state_dir) if state_dir is not None else None
        self._lease_key = self._journal.lease_key() if self._journal else secrets.token_bytes(32)
        self._epoch = secrets.token_hex(4)  # leases of an earlier incarnation carry another
        self._journal_files: dict[int, set[str]] = {}  # journal file -> its pairs still queued
        self._pair_file: dict[str, int] = {}
        self._queue: OrderedDict[str, _Pending] = OrderedDict()
        self._done: OrderedDict[str, set[str]] = OrderedDict()  # pair id -> who answered
        self._segments: dict[str, SegmentRecord] = {}  # clip id -> segment (queued pairs)
        self._clip_refs: dict[str, int] = {}
        self._held: dict[str, dict[str, None]] = {}  # labeller -> pair ids leased, unanswered
        self._committer = GroupCommitter(store, lambda n: f"{run_id}-{n:07d}")
        self._per_labeller: dict[str, int] = {}
        self._answer_s: deque[float] = deque(maxlen=5000)
        self._choices = {c: 0 for c in CHOICES}
        self._agree = self._compared = 0
        self._last_seen: dict[str, float] = {}
        self._progress: dict[str, Any] = {}
        self._predicted: deque[tuple[int, float]] = deque(maxlen=60)
        self.restored = {"pairs": 0, "answered": 0, "dropped": 0, "unpinned": 0}
        if self._journal is not None:
            self._restore()

    # -------------------------------------------------------------- the labelling actor's side
    def enqueue(
        self, pairs: Sequence[tuple[SegmentRecord, SegmentRecord]], strategy: str
    ) -> list[str]:
        """Queue ``pairs`` for people; returns their pair ids. Clips start rendering now.

        With ``segments``, the pairs' segments are pinned first (a pair whose segments are no
        longer in the store is skipped), and with a ``state_dir`` the pairs are journalled
        before anyone can be shown them.
        """
        pairs = (
            pin_present_pairs(pairs, self.segments) if self.segments is not None else list(pairs)
        )
        before = len(self.store)  # every answer to these pairs is stored after this
        queued = [
            QueuedPair(secrets.token_hex(8), left.segment_id, right.segment_id, strategy, before)
            for left, right in pairs
        ]
        seq = self._journal.record(queued) if self._journal is not None and queued else None
        with self._lock:
            for q, (left, right) in zip(queued, pairs, strict=True):
                self._add(_Pending(q.pair_id, left, right, strategy), seq)
        if self.clips is not None:
            self.clips.prefetch([s for pair in pairs for s in pair])
        return [q.pair_id for q in queued]

    def _add(self, p: _Pending, seq: int | None) -> None:
        """Put ``p`` in the queue (lock held); ``seq``: the journal file it is in."""
        self._queue[p.pair_id] = p
        for seg in (p.left, p.right):
            cid = clip_id(seg.segment_id)
            self._segments[cid] = seg
            self._clip_refs[cid] = self._clip_refs.get(cid, 0) + 1
        if seq is not None:
            self._journal_files.setdefault(seq, set()).add(p.pair_id)
            self._pair_file[p.pair_id] = seq

    def _restore(self) -> None:
        """After a restart: queue again the journalled pairs the label store does not answer
        yet (same ids), remember the answered ones (a replay is a 409, not a 404), compact the
        journal, and unpin what no stored label names and no queued pair will."""
        assert self._journal is not None and self.segments is not None
        journalled = [pair for _, pair in self._journal.load()]
        labels = self.store.table()
        answers = answers_since(journalled, labels, self.cfg.overlap)
        waiting = []
        for q in journalled:
            got = answers.get(q.pair_id, {})
            if len(got) >= self.cfg.overlap:
                self._done[q.pair_id] = set(got)
            else:
                waiting.append(q)
        records = self._records({s for q in waiting for s in (q.left, q.right)})
        kept = [q for q in waiting if q.left in records and q.right in records]
        seq = self._journal.compact(kept)
        for q in kept:
            p = _Pending(q.pair_id, records[q.left], records[q.right], q.strategy)
            p.answers.update(answers.get(q.pair_id, {}))
            self._add(p, seq)
        named = set(labels.column("left").to_pylist()) | set(labels.column("right").to_pylist())
        keep = named | {s for q in kept for s in (q.left, q.right)}
        unpinned = self.segments.unpin_except(sorted(keep))
        self.restored = {
            "pairs": len(kept),
            "answered": len(journalled) - len(waiting),
            "dropped": len(waiting) - len(kept),
            "unpinned": len(unpinned),
        }
        if self.clips is not None and kept:
            self.clips.prefetch([s for p in self._queue.values() for s in (p.left, p.right)])

    def _records(self, segment_ids: set[str]) -> dict[str, SegmentRecord]:
        """The segments still retrievable among ``segment_ids``, by id."""
        assert self.segments is not None
        ids = sorted(segment_ids)
        try:
            return {r.segment_id: r for r in self.segments.get(ids)} if ids else {}
        except UnknownSegmentError:
            found = {}
            for segment_id in ids:
                try:
                    found[segment_id] = self.segments.get([segment_id])[0]
                except UnknownSegmentError:
                    continue
            return found

    def counts(self) -> dict[str, int]:
        """Labels stored, and pairs still waiting for answers (the schedule counts both)."""
        with self._lock:
            return {"stored": len(self.store), "pending": len(self._queue)}

    def set_progress(self, progress: dict[str, float]) -> None:
        """The run's progress as the page shows it (steps, labels, predicted return)."""
        with self._lock:
            self._progress = dict(progress)
            pred = progress.get("predicted_episode_return")
            if pred is not None and math.isfinite(pred):
                self._predicted.append((int(progress.get("global_step", 0)), float(pred)))

    # -------------------------------------------------------------- the web API (token first)
    def api_status(self, token: str | None) -> dict[str, Any]:
        return self.status(self.authenticate(token))

    def api_next(self, token: str | None, holding: Sequence[str]) -> dict[str, Any] | None:
        return self.next_pair(self.authenticate(token), holding)

    def api_answer(
        self, token: str | None, pair_id: str, lease: str, choice: str, answer_ms: float | None
    ) -> dict[str, Any]:
        return self.answer(self.authenticate(token), pair_id, lease, choice, answer_ms)

    def api_answer_submit(
        self, token: str | None, pair_id: str, lease: str, choice: str, answer_ms: float | None
    ) -> Future[dict[str, Any]]:
        return self.submit_answer(self.authenticate(token), pair_id, lease, choice, answer_ms)

    def api_clip(self, token: str | None, cid: str) -> tuple[bytes, str]:
        self.authenticate(token)
        return self.clip(cid), self.media_type

    def api_health(self) -> dict[str, Any]:
        return self.health()

    def health(self) -> dict[str, Any]:
        """``status``: ``ok``; ``degraded`` (answers are stored, but the label store reports
        a problem, e.g. a failed file rotation); ``failing`` (answers cannot be stored now).
        With the store's own report and the number of pairs waiting."""
        store = self.store.health()
        status = "ok" if store["ok"] else "degraded" if store["writable"] else "failing"
        with self._lock:
            waiting = len(self._queue)
        return {"status": status, "label_store": store, "waiting_pairs": waiting}

    # -------------------------------------------------------------- the labellers' side
    def authenticate(self, token: str | None) -> str:
        """The labeller a bearer token names; UnauthorizedError (401) otherwise."""
        name = labeller_for(self.tokens, token)
        if name is None:
            raise UnauthorizedError(
                "missing or unknown labeller token: open the link the run printed "
                "(…/#token=…) or send `Authorization: Bearer <token>`"
            )
        return name

    def next_pair(self, labeller: str, holding: Sequence[str] = ()) -> dict[str, Any] | None:
        """A pair for ``labeller`` to answer, or None when nothing is waiting for them.

        ``holding``: pair ids the page already has (on screen, prefetched). A lease the
        labeller holds but the page lost (a reload) is handed out again first.
        """
        now = self.clock()
        with self._lock:
            self._last_seen[labeller] = now
            held = [self._queue[pid] for pid in self._held.get(labeller, {})]
            for p in held:
                if p.pair_id not in holding:
                    return self._offer(p, p.leases[labeller])
            if len(held) >= MAX_LEASES_PER_LABELLER:
                return None
            for p in self._queue.values():
                if labeller in p.leases or labeller in p.answers:
                    continue
                live = sum(
                    1
                    for who, lease in p.leases.items()
                    if who not in p.answers and now - lease.issued_at < self.cfg.lease_s
                )
                if len(p.answers) + live < self.cfg.overlap:
                    for who in [w for w in p.leases if w not in p.answers]:
                        if now - p.leases[who].issued_at >= self.cfg.lease_s:
                            del p.leases[who]  # ran out: the pair moves on to this labeller
                            self._held[who].pop(p.pair_id, None)
                    lease = _Lease(self._sign(p.pair_id, labeller, self._epoch, now), now)
                    p.leases[labeller] = lease
                    self._held.setdefault(labeller, {})[p.pair_id] = None
                    return self._offer(p, lease)
        return None

    def _sign(self, pair_id: str, labeller: str, epoch: str, issued_at: float) -> str:
        """A lease id: ``epoch.issued_ms.mac``, signed with the key kept in ``state_dir``."""
        ms = f"{int(issued_at * 1000):x}"
        msg = f"{epoch}|{ms}|{pair_id}|{labeller}".encode()
        return f"{epoch}.{ms}.{hmac.new(self._lease_key, msg, hashlib.sha256).hexdigest()[:32]}"

    def _earlier_lease(self, pair_id: str, labeller: str, lease: str) -> _Lease | None:
        """``lease`` if an earlier incarnation of this service (before a crash) issued it for
        ``pair_id`` to ``labeller``; leases of this one are checked against its own table."""
        epoch, _, rest = lease.partition(".")
        ms, _, _ = rest.partition(".")
        if epoch == self._epoch or not ms:
            return None
        try:
            issued_at = int(ms, 16) / 1000.0
        except ValueError:
            return None
        good = self._sign(pair_id, labeller, epoch, issued_at)
        return _Lease(lease, issued_at) if hmac.compare_digest(good, lease) else None

    def _offer(self, p: _Pending, lease: _Lease) -> dict[str, Any]:
        return {
            "pair_id": p.pair_id,
            "lease": lease.lease_id,
            "left_clip": clip_id(p.left.segment_id),
            "right_clip": clip_id(p.right.segment_id),
            "steps": p.left.length,
        }

    def answer(
        self,
        labeller: str,
        pair_id: str,
        lease: str,
        choice: str,
        answer_ms: float | None = None,
    ) -> dict[str, Any]:
        """Store ``labeller``'s answer to ``pair_id``; returns once it is durable."""
        return self.submit_answer(labeller, pair_id, lease, choice, answer_ms).result(timeout=60)

    def submit_answer(
        self,
        labeller: str,
        pair_id: str,
        lease: str,
        choice: str,
        answer_ms: float | None = None,
    ) -> Future[dict[str, Any]]:
        """Check an answer and hand it to the label writer. Bad submissions raise at once;
        the returned future resolves with the reply once the label is durable."""
        if choice not in CHOICES:
            raise FeedbackError(f"choice must be one of {sorted(CHOICES)}, got {choice!r}")
        now = self.clock()
        with self._lock:
            p = self._queue.get(pair_id)
            if p is None:
                if labeller in self._done.get(pair_id, ()):
                    raise AlreadyAnsweredError(f"pair {pair_id} was already answered by you")
                if pair_id in self._done:
                    raise AlreadyAnsweredError(f"pair {pair_id} already has all its answers")
                raise UnknownItemError(f"no pair {pair_id!r} is waiting for an answer")
            held = p.leases.get(labeller)
            if held is None and (held := self._earlier_lease(pair_id, labeller, lease)):
                p.leases[labeller] = held  # handed out before a restart: still theirs
                self._held.setdefault(labeller, {})[pair_id] = None
            if held is None or not hmac.compare_digest(held.lease_id.encode(), lease.encode()):
                raise NotYoursError(
                    f"pair {pair_id} was not handed to you with this lease; ask for the next pair"
                )
            if labeller in p.answers or labeller in p.committing:
                raise AlreadyAnsweredError(f"pair {pair_id} was already answered by you")
            if len(p.answers) + len(p.committing) >= self.cfg.overlap:
                raise AlreadyAnsweredError(f"pair {pair_id} already has all its answers")
            p.committing.add(labeller)
            issued_at = held.issued_at
        record = LabelRecord(
            label_id="",
            left=p.left.segment_id,
            right=p.right.segment_id,
            preference=CHOICES[choice],
            source="human",
            labeler=labeller,
            query_strategy=p.strategy,
            created_at=now,
        )
        reply: Future[dict[str, Any]] = Future()

        def stored(durable: Future[LabelRecord]) -> None:  # on the label writer's thread
            try:
                label = durable.result()
            except BaseException as err:
                with self._lock:
                    p.committing.discard(labeller)  # not stored: the labeller may send it again
                if isinstance(err, OSError):
                    err = StorageError(
                        f"your answer was not stored: the label store cannot write ({err}); "
                        "send it again in a moment"
                    )
                reply.set_exception(err)
                return
            with self._lock:
                p.committing.discard(labeller)
                p.answers[labeller] = CHOICES[choice]
                self._held[labeller].pop(pair_id, None)
                self._record_stats(labeller, choice, answer_ms, now - issued_at)
                if len(p.answers) >= self.cfg.overlap:
                    self._finish(p)
                mine = self._per_labeller[labeller]
            reply.set_result({"label_id": label.label_id, "your_labels": mine})

        self._committer.submit(record).add_done_callback(stored)
        return reply

    def _record_stats(
        self, labeller: str, choice: str, answer_ms: float | None, server_s: float
    ) -> None:
        self._per_labeller[labeller] = self._per_labeller.get(labeller, 0) + 1
        self._choices[choice] += 1
        # the page measures from when the clips started playing; fall back to the lease age
        plausible = answer_ms is not None and 0 < answer_ms < 3_600_000
        self._answer_s.append(answer_ms / 1000.0 if plausible else server_s)  # type: ignore[operator]

    def _finish(self, p: _Pending) -> None:
        del self._queue[p.pair_id]
        seq = self._pair_file.pop(p.pair_id, None)
        if seq is not None and self._journal is not None:
            left = self._journal_files[seq]
            left.discard(p.pair_id)
            if not left:  # every pair of that journal file has its answers on disk
                del self._journal_files[seq]
                self._journal.forget(seq)
        for who in p.leases:
            self._held.get(who, {}).pop(p.pair_id, None)
        self._done[p.pair_id] = set(p.answers)
        while len(self._done) > _REMEMBER_DONE:
            self._done.popitem(last=False)
        given = [a for a in p.answers.values() if a is not None]
        for i in range(len(given)):  # agreement between people (overlap >= 2)
            for j in range(i + 1, len(given)):
                self._compared += 1
                self._agree += given[i] == given[j]
        for seg in (p.left, p.right):
            cid = clip_id(seg.segment_id)
            self._clip_refs[cid] -= 1
            if self._clip_refs[cid] == 0:
                del self._clip_refs[cid], self._segments[cid]

    def clip(self, cid: str) -> bytes:
        """The video of a queued pair's clip, by clip id only (never a path)."""
        with self._lock:
            segment = self._segments.get(cid)
        if segment is None or self.clips is None:
            raise UnknownItemError(f"no clip {cid!r} belongs to a pair waiting for an answer")
        return self.clips.clip(segment)

    @property
    def media_type(self) -> str:
        return self.clips.media_type if self.clips is not None else "video/webm"

    def status(self, labeller: str) -> dict[str, Any]:
        """What the page shows: the task, this labeller's count, the run's progress."""
        now = self.clock()
        with self._lock:
            self._last_seen[labeller] = now
            return {
                "labeller": labeller,
                "task": self.task,
                "your_labels": self._per_labeller.get(labeller, 0),
                "labels": len(self.store),
                "waiting_pairs": len(self._queue),
                "labellers_online": sum(1 for t in self._last_seen.values() if now - t < 60),
                "progress": dict(self._progress),
                "predicted_return": [list(x) for x in self._predicted],
            }

    def stats(self) -> dict[str, float]:
        """Human-labelling metrics for MLflow (``human/...``)."""
        with self._lock:
            n = sum(self._choices.values())
            out: dict[str, float] = {
                "human/labels": float(n),
                "human/pending_pairs": float(len(self._queue)),
                "human/labellers": float(len(self._per_labeller)),
            }
            for name, count in self._per_labeller.items():
                out[f"human/labels_by/{name}"] = float(count)
            if n:
                out["human/tie_rate"] = self._choices["tie"] / n
                out["human/cant_tell_rate"] = self._choices["cant_tell"] / n
                times = np.asarray(self._answer_s)
                out["human/answer_time_median_s"] = float(np.median(times))
                out["human/answer_time_p90_s"] = float(np.percentile(times, 90))
            if self._compared:
                out["human/agreement"] = self._agree / self._compared
            return out

    def close(self) -> None:
        """Finish pending writes (answers in flight are stored before this returns)."""
        self._committer.close()
