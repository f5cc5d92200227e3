"""One labelling round of the loop (Christiano et al. section 2.2, process 3): the schedule
says how many labels are due, query selection picks that many pairs from the segments, and
whoever answers gets them.

    due = schedule.due(T, issued)                        (appendix A: rate ∝ 2e6 / (T + 2e6))
    pairs = select_queries(segments, selector, r_hat, due)               (section 2.2.4)
    desk.submit(pairs)    -> answers -> commit_labels (pin segments, append labels)

A ``LabelDesk`` is who answers, seen from the round: its counts, how many more pairs it takes
now, and ``submit``. Two desks cover every labeler:

- ``ImmediateDesk``: a ``Labeler`` that answers at once (the synthetic oracle, B-Pref's
  teachers, the shuffled control, an AI judge). Its answers are committed before ``submit``
  returns: the acknowledgement.
- ``QueuedDesk``: people. The pairs go to the feedback app's queue (at most
  ``feedback.max_pending`` waiting); the app commits each answer as it arrives, and the
  schedule counts stored labels and waiting pairs both, so nobody is asked twice.

Everything here is pure: the labelling actor only builds the desk and reloads r_hat.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from rlhp.data.commit import PinnableSegments, commit_labels, pin_present_pairs
from rlhp.data.label_store import LabelStore
from rlhp.preference.config import QueryConfig
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.labelers import Labeler, Pair, ask, to_label_records
from rlhp.preference.query import (
    CandidateSource,
    DisagreementSelector,
    EntropySelector,
    RandomSelector,
    make_selector,
    select_queries,
)
from rlhp.preference.schedule import LabelSchedule


class LabelDesk(Protocol):
    """Who answers the run's queries."""

    def counts(self) -> tuple[int, int]:
        """(labels stored, pairs asked and still waiting for an answer)."""
        ...

    def room(self) -> int | None:
        """How many more pairs it takes now (None: no limit)."""
        ...

    def submit(self, pairs: Sequence[Pair], strategy: str) -> int:
        """Hand over ``pairs`` (picked by ``strategy``); returns how many it took."""
        ...

    def stats(self) -> dict[str, float]:
        """Its own metrics for MLflow (e.g. the people's answer times); may be empty."""
        ...


class Segments(CandidateSource, PinnableSegments, Protocol):
    """The segments a round draws candidates from and a label commit pins."""


class ImmediateDesk:
    """A ``Labeler`` that answers at once; answers are committed through ``commit_labels``.

    Label ids are ``<run_id>-<n:07d>``, numbered on from the store's count past any id still
    taken, so a restarted desk neither repeats nor skips one.
    """

    def __init__(
        self, labeler: Labeler, store: LabelStore, segments: PinnableSegments, run_id: str
    ) -> None:
        self.labeler, self.store, self.segments, self.run_id = labeler, store, segments, run_id

    def counts(self) -> tuple[int, int]:
        return len(self.store), 0

    def room(self) -> int | None:
        return None

    def submit(self, pairs: Sequence[Pair], strategy: str) -> int:
        pairs = pin_present_pairs(pairs, self.segments)  # the ring may have moved on
        if not pairs:
            return 0
        answers = ask(self.labeler, pairs)  # a failing labeler: one line naming it
        free = (n for n in itertools.count(len(self.store)) if self._id(n) not in self.store)
        records = to_label_records(
            pairs, answers, self.labeler, strategy, make_id=lambda: self._id(next(free))
        )
        commit_labels(records, self.segments, self.store)  # fsynced: acknowledged from here
        return len(records)

    def stats(self) -> dict[str, float]:
        return {}

    def _id(self, n: int) -> str:
        return f"{self.run_id}-{n:07d}"


class FeedbackQueue(Protocol):
    """The feedback app's side of people labelling (``FeedbackService``, or its actor)."""

    def counts(self) -> dict[str, int]:
        """``{"stored": labels stored, "pending": pairs waiting}``."""
        ...

    def enqueue(self, pairs: Sequence[Pair], strategy: str) -> list[str]:
        """Queue pairs for people (their segments pinned first); returns the pair ids."""
        ...

    def stats(self) -> dict[str, float]:
        """The people's metrics (``human/...``)."""
        ...


class QueuedDesk:
    """People: pairs wait in the feedback app's queue, at most ``max_pending`` at a time."""

    def __init__(self, queue: FeedbackQueue, max_pending: int) -> None:
        self.queue, self.max_pending = queue, max_pending

    def counts(self) -> tuple[int, int]:
        c = self.queue.counts()
        return c["stored"], c["pending"]

    def room(self) -> int | None:
        return max(0, self.max_pending - self.counts()[1])

    def submit(self, pairs: Sequence[Pair], strategy: str) -> int:
        return len(self.queue.enqueue(list(pairs), strategy))

    def stats(self) -> dict[str, float]:
        return self.queue.stats()


class LabelingProcess:
    """The labelling side of the loop, one ``round`` at a time.

    Before the first reward model there is nothing to disagree about, so pairs are drawn at
    random (also with the oracle reward model, which has no ensemble); afterwards
    ``query.strategy`` picks them. The query seed of a round is ``[query.seed, issued]``:
    a restarted process continues the same sequence.
    """

    def __init__(
        self,
        schedule: LabelSchedule,
        query: QueryConfig,
        desk: LabelDesk,
        segments: CandidateSource,
        max_per_round: int = 50,
    ) -> None:
        self.schedule, self.query, self.desk, self.segments = schedule, query, desk, segments
        self.max_per_round = max_per_round
        self.selector = make_selector(query)
        self.random_selector = RandomSelector(query.seed)

    def stored(self) -> int:
        """Labels stored so far."""
        return self.desk.counts()[0]

    def round(self, global_step: int, ensemble: RewardEnsemble | None) -> dict[str, float]:
        """Ask for the labels due at ``global_step``, at most ``max_per_round`` and what the
        desk has room for. Returns ``asked`` (labels stored), ``new`` (pairs handed over),
        ``query/disagreement`` or ``query/entropy`` (the mean score of the pairs asked) and
        the desk's own metrics."""
        stored, waiting = self.desk.counts()
        issued = stored + waiting
        k = min(self.schedule.due(global_step, issued), self.max_per_round)
        room = self.desk.room()
        if room is not None:
            k = min(k, room)
        if k <= 0:
            return self.desk.stats() | {"asked": float(stored), "new": 0.0}
        selector = self.selector if ensemble is not None else self.random_selector
        rng = np.random.default_rng([self.query.seed, issued])
        pairs = select_queries(self.segments, selector, ensemble, k, self.query, rng)
        out: dict[str, float] = {}
        if ensemble is not None and isinstance(selector, DisagreementSelector | EntropySelector):
            name = "disagreement" if isinstance(selector, DisagreementSelector) else "entropy"
            out[f"query/{name}"] = (
                float(np.mean(selector.scores(pairs, ensemble).numpy())) if pairs else 0.0
            )
        new = self.desk.submit(pairs, selector.name) if pairs else 0
        return out | self.desk.stats() | {"asked": float(self.stored()), "new": float(new)}
