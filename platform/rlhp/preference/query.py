"""Query selection: which candidate pairs to ask about (Christiano et al. section 2.2.4).

One interface, ``QuerySelector.select(candidates, ensemble, k) -> pairs``:

- ``RandomSelector``: k candidates uniformly at random (the paper's "no queries" ablation
  baseline, and the only choice before a reward model exists).
- ``DisagreementSelector``: the paper's rule, "selecting those trajectories for which the
  predictions have the highest variance across ensemble members": score each candidate
  by Var_k P_hat_k[σ1 ≻ σ2] and keep the top k.
- ``EntropySelector``: top k by the binary entropy H(p) of the ensemble's mean
  p = (1/K) Σ_k P_hat_k[σ1 ≻ σ2]. Why this one: disagreement measures only epistemic
  uncertainty and is zero for a single model (K = 1) or for pairs all members find equally
  ambiguous; entropy also selects pairs whose outcome the model as a whole cannot call,
  which is where a label carries the most information about the decision boundary. B-Pref
  (Lee et al. 2021, section 4) reports entropy and disagreement sampling as the two
  strongest uncertainty rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from rlhp.data.records import SegmentRecord
from rlhp.errors import ConfigError
from rlhp.preference.config import QueryConfig
from rlhp.preference.ensemble import RewardEnsemble

Pair = tuple[SegmentRecord, SegmentRecord]


class CandidateSource(Protocol):
    """Where candidate pairs come from: a ``SegmentStore``, or the segment buffer actor seen
    through ``rlhp.actors.segment_buffer.BufferClient``."""

    def sample_candidates(
        self, n: int, rng: np.random.Generator, same_env_only: bool = True
    ) -> list[Pair]:
        """``n`` random pairs of segments from the ring."""
        ...


@runtime_checkable
class QuerySelector(Protocol):
    """Picks ``k`` pairs to label out of ``candidates``."""

    name: str

    def select(
        self, candidates: Sequence[Pair], ensemble: RewardEnsemble | None, k: int
    ) -> list[Pair]:
        """The chosen pairs, most informative first; ``min(k, len(candidates))`` of them."""
        ...


def candidate_probabilities(candidates: Sequence[Pair], ensemble: RewardEnsemble) -> torch.Tensor:
    """P_hat_k[σ1 ≻ σ2] of every member for every candidate, [K, N]."""

    def stack(side: int, name: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([np.asarray(getattr(p[side], name)) for p in candidates]))

    return ensemble.member_probabilities(
        stack(0, "obs"), stack(0, "actions"), stack(1, "obs"), stack(1, "actions")
    )


def _top_k(candidates: Sequence[Pair], score: torch.Tensor, k: int) -> list[Pair]:
    # stable sort on -score: ties keep candidate order, so selection is deterministic
    order = np.argsort(-score.numpy(), kind="stable")[:k]
    return [candidates[int(i)] for i in order]


def _need_ensemble(ensemble: RewardEnsemble | None, name: str) -> RewardEnsemble:
    if ensemble is None:
        raise ConfigError(
            f"query.strategy={name!r} scores pairs with the reward model; pass the ensemble, "
            "or use query.strategy='random' before the first reward model exists"
        )
    return ensemble


class RandomSelector:
    """k candidates uniformly without replacement."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def select(
        self, candidates: Sequence[Pair], ensemble: RewardEnsemble | None, k: int
    ) -> list[Pair]:
        """``min(k, N)`` candidates chosen uniformly at random."""
        chosen = self.rng.choice(len(candidates), size=min(k, len(candidates)), replace=False)
        return [candidates[int(i)] for i in chosen]


class DisagreementSelector:
    """Top k by variance across members of P_hat_k[σ1 ≻ σ2] (section 2.2.4)."""

    name = "disagreement"

    def scores(self, candidates: Sequence[Pair], ensemble: RewardEnsemble) -> torch.Tensor:
        """Var_k P_hat_k for each candidate, [N] (population variance over the K members)."""
        return candidate_probabilities(candidates, ensemble).var(dim=0, unbiased=False)

    def select(
        self, candidates: Sequence[Pair], ensemble: RewardEnsemble | None, k: int
    ) -> list[Pair]:
        """The ``k`` candidates the members disagree on most."""
        return _top_k(candidates, self.scores(candidates, _need_ensemble(ensemble, self.name)), k)


class EntropySelector:
    """Top k by binary entropy of the ensemble-mean preference probability."""

    name = "entropy"

    def scores(self, candidates: Sequence[Pair], ensemble: RewardEnsemble) -> torch.Tensor:
        """H(p) = -p log p - (1 - p) log(1 - p), p = mean_k P_hat_k, for each candidate."""
        p = candidate_probabilities(candidates, ensemble).mean(dim=0).clamp(1e-12, 1 - 1e-12)
        return -(p * p.log() + (1 - p) * (1 - p).log())

    def select(
        self, candidates: Sequence[Pair], ensemble: RewardEnsemble | None, k: int
    ) -> list[Pair]:
        """The ``k`` candidates whose outcome the ensemble is least sure of."""
        return _top_k(candidates, self.scores(candidates, _need_ensemble(ensemble, self.name)), k)


def make_selector(cfg: QueryConfig) -> QuerySelector:
    """The selector named by ``cfg.strategy``."""
    if cfg.strategy == "random":
        return RandomSelector(cfg.seed)
    if cfg.strategy == "disagreement":
        return DisagreementSelector()
    return EntropySelector()


def select_queries(
    store: CandidateSource,
    selector: QuerySelector,
    ensemble: RewardEnsemble | None,
    k: int,
    cfg: QueryConfig,
    rng: np.random.Generator,
) -> list[Pair]:
    """Sample ``k * cfg.candidate_multiplier`` candidate pairs from the store's ring and let
    ``selector`` keep ``k`` of them (section 2.2.4: score a large pool, ask about the best)."""
    candidates = store.sample_candidates(k * cfg.candidate_multiplier, rng, cfg.same_env_only)
    return selector.select(candidates, ensemble, k)
