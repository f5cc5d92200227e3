"""The labeler interface and the adapter for AI judges (any callable comparing two clips).

A ``Labeler`` answers a list of pairs with one preference per pair: μ(left) in
{1.0, 0.0, 0.5} or ``None`` ("can't tell" / skipped). Synthetic and B-Pref teachers
(``rlhp.preference.teachers``), the human web app and AI judges all implement it, so the
labelling actor does not care who answers.
"""

from __future__ import annotations

import math
import numbers
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from rlhp.data.errors import InvalidPreferenceError
from rlhp.data.records import PREFER_LEFT, PREFER_RIGHT, TIE, LabelRecord, SegmentRecord
from rlhp.errors import ConfigError

Pair = tuple[SegmentRecord, SegmentRecord]


class LabelerError(ConfigError):
    """A labeler failed or answered out of range; the message names it. Labels stored before
    stay stored."""


def ask(labeler: Labeler, pairs: Sequence[Pair]) -> list[float | None]:
    """``labeler.label(pairs)``, with any failure of the labeler (an AI judge's code, a
    service it calls) raised as one ``LabelerError`` line naming it."""
    try:
        return labeler.label(pairs)
    except Exception as err:
        what = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise LabelerError(
            f"teacher: labeler {labeler.name!r} ({labeler.source}) failed on "
            f"{len(pairs)} pairs: {type(err).__name__}: {what}"
        ) from None


@runtime_checkable
class Labeler(Protocol):
    """Answers "which clip is better?" for pairs of segments.

    ``name`` identifies the labeler (recorded as ``LabelRecord.labeler``); ``source`` is
    its kind (``synthetic``, ``noisy:<kind>``, ``human``, ``judge:<name>``).
    """

    name: str
    source: str

    def label(self, pairs: Sequence[Pair]) -> list[float | None]:
        """One answer per pair, in order: 1.0 left, 0.0 right, 0.5 tie, None skip."""
        ...


class CallableJudgeLabeler:
    """Wraps any callable ``fn(left, right) -> float | None`` as a Labeler (an AI judge).

    ``fn`` returns its probability that the left clip is better, in [0, 1], or None to
    abstain. Answers within ``tie_margin`` of 0.5 become a tie (0.5); above, 1.0; below,
    0.0. An answer outside [0, 1] (or NaN) raises InvalidPreferenceError naming the judge.
    """

    def __init__(
        self,
        fn: Callable[[SegmentRecord, SegmentRecord], float | None],
        name: str = "judge",
        tie_margin: float = 0.0,
    ) -> None:
        if not 0.0 <= tie_margin < 0.5:
            raise ConfigError(f"judge.tie_margin: must be in [0, 0.5), got {tie_margin}")
        self.fn = fn
        self.name = name
        self.source = f"judge:{name}"
        self.tie_margin = tie_margin

    def label(self, pairs: Sequence[Pair]) -> list[float | None]:
        """Ask ``fn`` about each pair and map its probability to {1.0, 0.5, 0.0} or None."""
        answers: list[float | None] = []
        for left, right in pairs:
            p = self.fn(left, right)
            if p is None:
                answers.append(None)
                continue
            if not isinstance(p, numbers.Real) or math.isnan(p) or not 0.0 <= p <= 1.0:
                raise InvalidPreferenceError(
                    f"judge {self.name!r} answered {p!r} for ({left.segment_id!r}, "
                    f"{right.segment_id!r}); it must return P(left better) in [0, 1] or None"
                )
            if abs(p - 0.5) <= self.tie_margin:
                answers.append(TIE)
            else:
                answers.append(PREFER_LEFT if p > 0.5 else PREFER_RIGHT)
        return answers


def to_label_records(
    pairs: Sequence[Pair],
    answers: Sequence[float | None],
    labeler: Labeler,
    query_strategy: str,
    clock: Callable[[], float] = time.time,
    make_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> list[LabelRecord]:
    """Label records for a labeler's answers (None kept as "can't tell").

    Ids come from ``make_id`` (random uuids by default; pass a seeded or counting factory
    for reproducible runs: the validation split hashes label ids).
    """
    if len(pairs) != len(answers):
        raise ConfigError(
            f"labeler {labeler.name!r} returned {len(answers)} answers for {len(pairs)} pairs; "
            "a Labeler must answer every pair (None to skip)"
        )
    return [
        LabelRecord(
            label_id=make_id(),
            left=left.segment_id,
            right=right.segment_id,
            preference=answer,
            source=labeler.source,
            labeler=labeler.name,
            query_strategy=query_strategy,
            created_at=clock(),
        )
        for (left, right), answer in zip(pairs, answers, strict=True)
    ]
