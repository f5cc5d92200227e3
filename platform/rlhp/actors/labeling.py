"""Labeling actor: paced by the label schedule, it picks pairs (query selection), asks the
labeler, and appends the answers to the durable label store.

Thin shell around ``LabelSchedule``, a ``QuerySelector``, a ``Labeler`` and the
``LabelStore``. How many labels are due is computed from the store itself, so a restarted
actor neither repeats nor skips a query. Segments are pinned in the buffer before a label
naming them is acknowledged.

With people labelling (``teacher.kind=human``) the picked pairs go to the feedback actor's
queue instead, at most ``feedback.max_pending`` waiting at a time; the feedback actor stores
the answers, and the schedule counts both stored labels and pairs still waiting.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

import numpy as np
import ray

from rlhp.config import RunConfig
from rlhp.data.label_store import LabelStore
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.labelers import Labeler, ask, to_label_records
from rlhp.preference.networks import InputSpec
from rlhp.preference.query import DisagreementSelector, RandomSelector, make_selector
from rlhp.preference.schedule import LabelSchedule
from rlhp.preference.teachers import make_teacher


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
        self.cfg, self.buffer, self.run_id, self.max_per_round = cfg, buffer, run_id, max_per_round
        self.schedule = LabelSchedule(cfg.label_schedule)
        # human mode: the feedback actor owns the label store; queries go to its queue
        self.feedback = feedback
        self.store = LabelStore(label_dir) if feedback is None else None
        self.selector = make_selector(cfg.query)
        self.random_selector = RandomSelector(cfg.query.seed)
        self.labeler: Labeler | None = make_teacher(cfg.teacher) if feedback is None else None
        self.ensemble = RewardEnsemble(spec, cfg.reward_model)
        self.ensemble_version = -1

    def asked(self) -> int:
        """Labels stored so far."""
        if self.store is not None:
            return len(self.store)
        return int(ray.get(self.feedback.counts.remote())["stored"])

    def _issued(self) -> tuple[int, int]:
        """(queries asked: labels stored + pairs waiting for people, pairs waiting)."""
        if self.store is not None:
            return len(self.store), 0
        counts = ray.get(self.feedback.counts.remote())
        return counts["stored"] + counts["pending"], counts["pending"]

    def due(self, global_step: int) -> int:
        return self.schedule.due(global_step, self._issued()[0])

    def round(self, global_step: int, reward_state: dict[str, Any] | None) -> dict[str, Any]:
        """Ask for the labels due at ``global_step`` (at most ``max_per_round``)."""
        issued, waiting = self._issued()
        k = min(self.schedule.due(global_step, issued), self.max_per_round)
        if self.feedback is not None:  # people answer slowly: keep their queue short
            k = min(k, self.cfg.feedback.max_pending - waiting)
        if k <= 0:  # labels stored, as counted at the start of this round
            return self._human_stats() | {"asked": issued - waiting, "new": 0}
        oracle = self.cfg.reward_model.kind == "oracle"  # no ensemble to ask: random pairs
        if (
            not oracle
            and reward_state is not None
            and reward_state["version"] != self.ensemble_version
        ):
            self.ensemble.load_state_dict(reward_state)
            self.ensemble_version = reward_state["version"]
        # before the first reward model, there is nothing to disagree about: ask random pairs
        selector = self.selector if self.ensemble_version >= 0 else self.random_selector
        asked = issued  # from the durable store: seeds and ids continue after a restart
        candidates = ray.get(
            self.buffer.sample_candidates.remote(
                k * self.cfg.query.candidate_multiplier,
                [self.cfg.query.seed, asked],
                self.cfg.query.same_env_only,
            )
        )
        out: dict[str, Any] = {}
        if isinstance(selector, DisagreementSelector):
            out["query/disagreement"] = float(
                np.mean(selector.scores(candidates, self.ensemble).numpy())
            )
        pairs = selector.select(
            candidates, self.ensemble if self.ensemble_version >= 0 else None, k
        )
        if self.feedback is not None:  # segments pinned first: a label never names lost data
            ray.get(self.buffer.pin.remote([s.segment_id for p in pairs for s in p]))
            ray.get(self.feedback.enqueue.remote(list(pairs), selector.name))
            return out | self._human_stats() | {"asked": issued - waiting, "new": len(pairs)}
        answers = ask(self.labeler, pairs)  # a failing labeler: one line naming it
        # numbered from the count on, past any id still taken (after a quarantine, see LabelStore)
        ids = (n for n in itertools.count(asked) if f"{self.run_id}-{n:07d}" not in self.store)
        records = to_label_records(
            pairs,
            answers,
            self.labeler,
            selector.name,
            make_id=lambda: f"{self.run_id}-{next(ids):07d}",
        )
        ray.get(self.buffer.pin.remote([s for r in records for s in (r.left, r.right)]))
        self.store.append(records)  # fsynced: the labels are acknowledged from here on
        return out | {"asked": self.asked(), "new": len(records), "acked_at": time.time()}

    def _human_stats(self) -> dict[str, float]:
        return {} if self.feedback is None else ray.get(self.feedback.stats.remote())

    def pid(self) -> int:
        return os.getpid()
