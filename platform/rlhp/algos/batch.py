"""The flattened on-policy batch that PPO and TRPO consume."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """B = T * N samples; every tensor is indexed by sample along axis 0."""

    obs: torch.Tensor
    actions: torch.Tensor
    logp_old: torch.Tensor
    A_hat: torch.Tensor
    returns: torch.Tensor
    values_old: torch.Tensor

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    def __getitem__(self, idx: torch.Tensor) -> Batch:
        return Batch(*(t[idx] for t in vars(self).values()))

    def to(self, device: torch.device | str) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in vars(self).values()))
