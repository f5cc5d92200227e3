"""Preference-model pre-training (PMP; Askell et al. 2021, "A General Language Assistant as
a Laboratory for Alignment"): fit the reward ensemble on a large, cheap label
source first (synthetic or noisy teachers, another task's labels), then fine-tune it on
the scarce target source (e.g. human labels). Also the Atari recipe of Christiano et al.
appendix A.2: pre-train on the initial labels for a number of epochs before RL starts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rlhp.data.run_labels import RunLabels
from rlhp.preference.dataset import PreferenceData
from rlhp.preference.ensemble import FitReport, RewardEnsemble


@dataclass
class PretrainReport:
    """The fit on the pre-training source, then the fit on the fine-tuning source."""

    pretrain: FitReport
    finetune: FitReport


def pretrain_then_finetune(
    ensemble: RewardEnsemble,
    pretrain_data: PreferenceData,
    finetune_data: PreferenceData,
    pretrain_epochs: int,
    finetune_epochs: int | None,
    finetune_lr: float | None = None,
    recent: tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor] | None = None,
    on_epoch: Callable[[int, int], None] | None = None,
) -> PretrainReport:
    """Fit ``ensemble`` on ``pretrain_data``, then on ``finetune_data`` (Askell et al. 2021).

    The fine-tuning phase starts from the pre-trained weights with fresh Adam moments
    (the pre-training source's gradient statistics say little about the target's) and
    optionally a different learning rate; λ_k keeps adapting on the target's validation
    split. Returns both fit reports; ``finetune.val_*`` is measured on target labels.
    ``finetune_epochs=None``: the config's ``epochs_per_fit``; ``recent``: the on-policy
    steps the output normalization is fitted on (``RewardEnsemble.fit``); ``on_epoch``: told
    (epochs done, epochs) over both phases.
    """
    if finetune_epochs is None:
        finetune_epochs = ensemble.cfg.epochs_per_fit
    total = pretrain_epochs + finetune_epochs

    def tell(offset: int) -> Callable[[int, int], None] | None:
        return None if on_epoch is None else lambda done, _: on_epoch(offset + done, total)

    pretrain = ensemble.fit(pretrain_data, epochs=pretrain_epochs, on_epoch=tell(0))
    lr = finetune_lr if finetune_lr is not None else ensemble.cfg.learning_rate
    ensemble.optimizers = [torch.optim.Adam(m.parameters(), lr=lr) for m in ensemble.members]
    finetune = ensemble.fit(
        finetune_data, epochs=finetune_epochs, recent=recent, on_epoch=tell(pretrain_epochs)
    )
    return PretrainReport(pretrain, finetune)


def pretrain_on_initial_labels(
    ensemble: RewardEnsemble, initial: PreferenceData, epochs: int
) -> FitReport | None:
    """Christiano et al. A.2: before RL, fit the reward model on the initial labels for
    ``epochs`` (``LabelScheduleConfig.pretrain_epochs``; 0 skips, returning None)."""
    if epochs <= 0:
        return None
    return ensemble.fit(initial, epochs=epochs)


def pretraining_data(run_dirs: Sequence[str | Path]) -> PreferenceData:
    """The answered labels of earlier runs (``reward_model.pretrain_from``, resolved to run
    directories), with the segments they name, as one data set (sources kept per label)."""
    parts = []
    for run_dir in run_dirs:
        source = RunLabels.open(run_dir)
        parts.append(PreferenceData.from_labels(source.answered(), source.segments))
    return PreferenceData.concat(parts)
