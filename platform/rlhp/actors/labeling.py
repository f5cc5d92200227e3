"""Labelling actor: a thin shell around ``rlhp.preference.labeling.LabelingProcess``.

It builds the run's ``LabelDesk`` (the configured labeler answering at once, or people
through the feedback actor's queue), sees the segment buffer actor as a segment store, and
reloads the reward model when a new version is published. How many labels are due is
computed from the label store, so a restarted actor neither repeats nor skips a query.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import ray

from rlhp.actors.segment_buffer import BufferClient
from rlhp.config import RunConfig
from rlhp.data.label_store import LabelStore
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.labelers import Pair
from rlhp.preference.labeling import ImmediateDesk, LabelDesk, LabelingProcess, QueuedDesk
from rlhp.preference.networks import InputSpec
from rlhp.preference.schedule import LabelSchedule
from rlhp.preference.teachers import make_teacher


class FeedbackClient:
    """The feedback actor as a ``FeedbackQueue`` (blocking calls)."""

    def __init__(self, feedback: Any) -> None:
        self.feedback = feedback

    def counts(self) -> dict[str, int]:
        return ray.get(self.feedback.counts.remote())

    def enqueue(self, pairs: Sequence[Pair], strategy: str) -> list[str]:
        return ray.get(self.feedback.enqueue.remote(list(pairs), strategy))

    def stats(self) -> dict[str, float]:
        return ray.get(self.feedback.stats.remote())


def make_desk(
    cfg: RunConfig, label_dir: str, segments: BufferClient, run_id: str, feedback: Any
) -> LabelDesk:
    """People through the feedback actor when the run has one (``teacher.kind=human``),
    else the labeler ``cfg.teacher`` describes, committing to the label store itself."""
    if feedback is not None:
        return QueuedDesk(FeedbackClient(feedback), cfg.feedback.max_pending)
    return ImmediateDesk(make_teacher(cfg.teacher), LabelStore(label_dir), segments, run_id)


class Labeling:
    def __init__(
        self,
        cfg_data: dict[str, Any],
        spec: InputSpec,
        label_dir: str,
        buffer: Any,
        run_id: str,
        max_per_round: int = 50,
        feedback: Any = None,
    ) -> None:
        cfg = RunConfig.model_validate(cfg_data)
        segments = BufferClient(buffer)
        desk = make_desk(cfg, label_dir, segments, run_id, feedback)
        self.process = LabelingProcess(
            LabelSchedule(cfg.label_schedule), cfg.query, desk, segments, max_per_round
        )
        # the oracle reward model has no ensemble to ask: its pairs stay random
        self.uses_ensemble = cfg.reward_model.kind != "oracle"
        self.ensemble = RewardEnsemble(spec, cfg.reward_model)
        self.ensemble_version = -1

    def asked(self) -> int:
        """Labels stored so far."""
        return self.process.stored()

    def round(self, global_step: int, reward_state: dict[str, Any] | None) -> dict[str, float]:
        """Ask for the labels due at ``global_step`` (see ``LabelingProcess.round``)."""
        if (
            self.uses_ensemble
            and reward_state is not None
            and reward_state["version"] != self.ensemble_version
        ):
            self.ensemble.load_state_dict(reward_state)
            self.ensemble_version = reward_state["version"]
        ensemble = self.ensemble if self.ensemble_version >= 0 else None
        return self.process.round(global_step, ensemble)

    def pid(self) -> int:
        return os.getpid()
