"""Reward trainer actor: fits the ensemble on the durable label store, publishes versions.

Thin shell around ``rlhp.preference.RewardEnsemble``. It reads labels from the label
store's files (never from another actor's memory) and the labelled segments from the segment
buffer, and saves its own state atomically after every fit, so a restarted trainer resumes
from its last published version without losing or re-counting a label. With
``reward_model.keep_versions`` it also keeps every published version beside it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import ray
import torch

from rlhp.actors.segment_buffer import BufferClient
from rlhp.checkpoints import RewardModelCheckpoint, reward_model_version_path
from rlhp.config import RunConfig
from rlhp.data.label_store import read_labels
from rlhp.preference.dataset import PreferenceData
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.networks import InputSpec
from rlhp.preference.oracle import OracleRewardModel
from rlhp.preference.pretraining import pretrain_then_finetune, pretraining_data
from rlhp.preference.reward_models import build_reward_model


class RewardTrainer:
    def __init__(
        self,
        cfg_data: dict[str, Any],
        spec: InputSpec,
        label_dir: str,
        buffer: Any,
        checkpoint: str,
    ) -> None:
        cfg = RunConfig.model_validate(cfg_data)
        rm = cfg.reward_model
        if ray.get_gpu_ids() and rm.device == "cpu":
            rm = rm.model_copy(update={"device": "cuda"})  # placed on a GPU bundle: use it
        torch.set_num_threads(1)
        self.cfg = cfg
        self.ensemble = build_reward_model(spec, rm)  # the ensemble, or the oracle diagnostic
        self.label_dir, self.buffer = Path(label_dir), buffer
        self.checkpoint = Path(checkpoint)
        self.labels_fitted = 0
        self.newest_label_time = 0.0
        self.progress = (0, 0)  # (epochs done, epochs) of the fit running now (fit_progress)
        saved = RewardModelCheckpoint.load(self.checkpoint)  # never runs code from the file
        if saved is not None:
            self.ensemble.load_state_dict(saved.model)
            self.labels_fitted = saved.labels_fitted
            self.newest_label_time = saved.newest_label_time
        if isinstance(self.ensemble, RewardEnsemble):
            # Adam now, while the other actors start, rather than in the first fit (on the
            # initial labels' path): building one imports torch._dynamo, seconds of CPU.
            self.ensemble.optimizers  # noqa: B018

    def _labels(self) -> pa.Table | None:
        if not self.label_dir.exists():
            return None
        table = read_labels(self.label_dir)
        return table if table.num_rows else None

    def fit_round(
        self, epochs: int | None = None, wait: bool = True, after: Any = None
    ) -> dict[str, Any] | None:
        """One fit on every label so far if new labels arrived; else return None, after
        ``runtime.reward_fit_interval_s`` when ``wait`` (the asynchronous loop polls again).
        ``after``: a labelling round's object reference; Ray starts the fit once that round
        has stored its labels (``runtime.lockstep=pipelined``); its value is not used.

        With ``reward_model.refit_online=false`` only the first fit (on the initial labels)
        happens; the model is frozen after it.
        """
        rm = self.cfg.reward_model
        table = self._labels()
        frozen = not rm.refit_online and self.ensemble.fits > 0
        if table is None or table.num_rows == self.labels_fitted or frozen:
            if wait:
                time.sleep(self.cfg.runtime.reward_fit_interval_s)
            return None
        trainable = table.filter(pc.is_valid(table.column("preference")))
        if trainable.num_rows == 0:
            self.labels_fitted = table.num_rows
            return None
        data = PreferenceData.from_labels(trainable, BufferClient(self.buffer))
        obs, actions, true_rewards = ray.get(
            self.buffer.recent_steps.remote(rm.normalization_steps)
        )
        # the anchor of predicted returns: the first labels' segments (random policy, A.1)
        reference = data.subset(
            range(min(len(data), max(1, self.cfg.label_schedule.initial_labels)))
        )
        if isinstance(self.ensemble, OracleRewardModel):
            metrics = self.ensemble.fit(data, true_rewards).metrics()
            self.ensemble.set_reference_from_returns(
                torch.cat([reference.true_return_1, reference.true_return_2]),
                reference.obs_1.shape[1],
            )
        else:
            self.progress = (0, self.cfg.reward_model.epochs_per_fit if epochs is None else epochs)
            metrics = self._fit(data, epochs, (obs, actions))
            self.ensemble.set_reference(
                torch.cat([reference.obs_1, reference.obs_2]).flatten(0, 1),
                torch.cat([reference.act_1, reference.act_2]).flatten(0, 1),
            )
        self.labels_fitted = table.num_rows
        self.newest_label_time = float(pc.max(table.column("created_at")).as_py())
        self._save()
        return {
            "metrics": metrics,
            "state": self.state(),
            "newest_label_time": self.newest_label_time,
        }

    def _fit(self, data: PreferenceData, epochs: int | None, recent: tuple[Any, Any]) -> dict:
        """Fit the ensemble; the first fit of a run with ``reward_model.pretrain_from`` is
        pre-training on those runs' labels, then fine-tuning on this run's (Askell et al.
        2021); its metrics carry both phases (``reward_model/pretrain/...``)."""
        rm = self.cfg.reward_model
        if not rm.pretrain_from or self.ensemble.fits > 0:
            return self.ensemble.fit(data, epochs, recent, on_epoch=self._on_epoch).metrics()
        source = pretraining_data(rm.pretrain_from)
        both = pretrain_then_finetune(
            self.ensemble, source, data, rm.pretrain_from_epochs, epochs, rm.finetune_lr, recent,
            on_epoch=self._on_epoch,
        )  # fmt: skip
        phase = {
            k.replace("reward_model/", "reward_model/pretrain/", 1): v
            for k, v in both.pretrain.metrics().items()
        }
        return both.finetune.metrics() | phase | {"reward_model/pretrain/labels": len(source)}

    def _on_epoch(self, done: int, epochs: int) -> None:
        self.progress = (done, epochs)

    @ray.method(concurrency_group="status")
    def fit_progress(self) -> tuple[int, int]:
        """(epochs done, epochs) of the fit running now, answered while it runs: this method
        has its own thread (the ``status`` concurrency group); every other call waits its
        turn on the actor's one default thread, in the order it was sent."""
        return self.progress

    def state(self) -> dict[str, Any]:
        return self.ensemble.state_dict()

    def _save(self) -> None:
        state = self.ensemble.state_dict()
        saved = RewardModelCheckpoint(state, self.labels_fitted, self.newest_label_time)
        saved.save(self.checkpoint)
        if self.cfg.reward_model.keep_versions:
            path = reward_model_version_path(self.checkpoint.parent, int(state["version"]))
            path.parent.mkdir(exist_ok=True)
            saved.save(path)

    def pid(self) -> int:
        return os.getpid()
