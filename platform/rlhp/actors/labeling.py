"""Labeling actor: paced by the label schedule, it picks pairs (query selection), asks the
labeler, and appends the answers to the durable label store.

Thin shell around ``LabelSchedule``, a ``QuerySelector``, a ``Labeler`` and the
``LabelStore``. How many labels are due is computed from the store itself, so a restarted
actor neither repeats nor skips a query. Segments are pinned in the buffer before a label
naming them is acknowledged.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import ray

from rlhp.config import RunConfig
from rlhp.data.label_store import LabelStore
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.labelers import Labeler, to_label_records
from rlhp.preference.networks import InputSpec
from rlhp.preference.query import DisagreementSelector, RandomSelector, make_selector
from rlhp.preference.schedule import LabelSchedule
from rlhp.preference.teachers import SimulatedTeacher


class Labeling:
    def __init__(
        self,
        cfg_data: dict[str, Any],
        spec: InputSpec,
        label_dir: str,
        buffer: Any,
        run_id: str,
        max_per_round: int = 50,
    ) -> None:
        cfg = RunConfig.model_validate(cfg_data)
        self.cfg, self.buffer, self.run_id, self.max_per_round = cfg, buffer, run_id, max_per_round
        self.schedule = LabelSchedule(cfg.label_schedule)
        self.store = LabelStore(label_dir)
        self.selector = make_selector(cfg.query)
        self.random_selector = RandomSelector(cfg.query.seed)
        self.labeler: Labeler = SimulatedTeacher(cfg.teacher)
        self.ensemble = RewardEnsemble(spec, cfg.reward_model)
        self.ensemble_version = -1

    def asked(self) -> int:
        return len(self.store)

    def due(self, global_step: int) -> int:
        return self.schedule.due(global_step, self.asked())

    def round(self, global_step: int, reward_state: dict[str, Any] | None) -> dict[str, Any]:
        """Ask for the labels due at ``global_step`` (at most ``max_per_round``)."""
        k = min(self.due(global_step), self.max_per_round)
        if k == 0:
            return {"asked": self.asked(), "new": 0}
        if reward_state is not None and reward_state["version"] != self.ensemble_version:
            self.ensemble.load_state_dict(reward_state)
            self.ensemble_version = reward_state["version"]
        # before the first reward model, there is nothing to disagree about: ask random pairs
        selector = self.selector if self.ensemble_version >= 0 else self.random_selector
        asked = self.asked()  # durable: seeds and ids below continue correctly after a restart
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
        answers = self.labeler.label(pairs)
        ids = iter(range(asked, asked + len(pairs)))
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

    def pid(self) -> int:
        return os.getpid()
