"""Observation normalization with running statistics stored as module buffers.

The statistics are part of the policy's ``state_dict``, so a saved policy carries the exact
normalization it was trained with and restores it on load.
"""

from __future__ import annotations

import torch
from torch import nn


class ObservationNormalizer(nn.Module):
    """``clip((x - mean) / sqrt(var + eps), -clip, clip)`` with running mean and variance.

    ``update`` merges a batch with Chan et al.'s parallel variance formula. The learner
    freezes the statistics during one iteration (collect, then update) so that the log-probs
    recorded at collection time and those recomputed in the update use the same inputs.
    """

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(eps, dtype=torch.float64))
        self.clip = clip
        self.eps = eps
        self._refresh()

    def _refresh(self) -> None:
        self._mean32 = self.mean.float()
        self._inv_std32 = (self.var + self.eps).rsqrt().float()

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Merge the statistics of ``batch`` ([B, *shape]) into the running ones."""
        batch = batch.reshape(-1, *self.mean.shape).to(torch.float64)
        b_mean, b_var, b_count = batch.mean(0), batch.var(0, unbiased=False), batch.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        m2 = self.var * self.count + b_var * b_count + delta.pow(2) * self.count * b_count / total
        self.mean.copy_(self.mean + delta * b_count / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)
        self._refresh()

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super()._load_from_state_dict(*args, **kwargs)
        self._refresh()

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        out = super()._apply(fn, recurse)
        self._refresh()
        return out

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return ((obs - self._mean32) * self._inv_std32).clamp(-self.clip, self.clip)
